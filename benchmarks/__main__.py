"""Run every benchmark, then gather the figures: ``python -m benchmarks``.

``make bench`` runs this. ``--purchases N`` sets the volume of the event path
(default 100,000 purchases); generation and the feature engines take twice
that, the CRM a fifth. Each script writes its JSON under
``benchmarks/results/``; :mod:`benchmarks.summary` then writes
``benchmarks/results.json`` and ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def plan(purchases: int) -> list[tuple[str, list[str]]]:
    return [
        ("bench_generate.py", ["--purchases", str(purchases * 2)]),
        ("bench_pipeline.py", ["--purchases", str(purchases)]),
        ("bench_features.py", ["--purchases", str(purchases * 2), "--no-rows-path"]),
        ("bench_mongo.py", ["--purchases", str(max(purchases // 5, 1))]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=100_000)
    options = parser.parse_args()

    here = Path(__file__).resolve().parent
    for script, arguments in plan(options.purchases):
        print(f"== {script} {' '.join(arguments)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(here / script), *arguments])
        print(f"== {script}: {time.monotonic() - started:.0f} s", flush=True)
        if code:
            print(f"{script} failed with exit code {code}", file=sys.stderr)
            return code

    return subprocess.call([sys.executable, str(here / "summary.py")])


if __name__ == "__main__":
    sys.exit(main())
