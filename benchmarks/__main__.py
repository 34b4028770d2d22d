"""Run every benchmark in turn: ``python -m benchmarks`` (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = (
    "bench_generate.py",
    "bench_projection.py",
    "bench_features.py",
    "bench_mongo.py",
    "bench_kafka.py",
)


def main() -> int:
    here = Path(__file__).parent
    # Each script takes its own volume flags; arguments given here go to all.
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        code = subprocess.call([sys.executable, str(here / script), *sys.argv[1:]])
        if code:
            return code

    return 0


if __name__ == "__main__":
    sys.exit(main())
