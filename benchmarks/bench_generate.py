"""Throughput of the generator (purchases a second, JSON Lines included) and of
masking (customers a second), on one core.

Run: ``python benchmarks/bench_generate.py [--purchases N] [--customers N]
[--out PATH]``. Prints the results and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import peak_rss_mib
from pikcha.application.generate import GeneratorConfig, iter_records, write_jsonl
from pikcha.domain.entities import Entity
from pikcha.domain.masking import Masker

NOW = datetime(2025, 9, 24, 20, 46, 44)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "generate.json"


def pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})

    return core


def bench_generate(purchases: int, seed: int) -> dict[str, Any]:
    config = GeneratorConfig(now=NOW, seed=seed, purchases=purchases)
    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        report = write_jsonl(config, folder)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = report.paths[Entity.PURCHASE].stat().st_size

    return {
        "purchases": purchases,
        "records": report.total,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "purchases_per_second": round(purchases / wall),
        "purchases_per_cpu_second": round(purchases / cpu),
        "purchases_jsonl_bytes": size,
        "peak_rss_mib": peak_rss_mib(),
    }


def bench_memory(purchases: int, seed: int) -> dict[str, Any]:
    config = GeneratorConfig(now=NOW, seed=seed, purchases=purchases)
    tracemalloc.start()
    try:
        for _ in iter_records(config):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    return {"purchases": purchases, "traced_peak_mib": round(peak / 2**20, 1)}


def bench_masking(customers: int, seed: int) -> dict[str, Any]:
    config = GeneratorConfig(now=NOW, seed=seed, customers=customers, purchases=0)
    docs = [doc for entity, doc in iter_records(config) if entity is Entity.CUSTOMER]
    masker = Masker(key=b"k" * 32, key_id="bench")

    wall, cpu = time.perf_counter(), time.process_time()
    masked = [masker.mask(Entity.CUSTOMER, doc) for doc in docs]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    flagged = sum(1 for doc in masked if "masking_flags" in doc)

    return {
        "customers": len(docs),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "customers_per_second": round(len(docs) / wall),
        "customers_per_cpu_second": round(len(docs) / cpu),
        "flagged": flagged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--memory-purchases", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    core = pin_to_one_core()
    results = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "pinned_core": core,
        "generate": bench_generate(args.purchases, args.seed),
        "masking": bench_masking(args.customers, args.seed),
        "memory": bench_memory(args.memory_purchases, args.seed),
    }

    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
