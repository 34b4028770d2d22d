"""Documents a second into and out of the CRM on MongoDB.

Generates JSON Lines (``write_jsonl``), then measures, each step in a child
process so its peak memory (max RSS) is its own:

- load: ``load_directory`` into an empty database (every document new);
- reload: the same files again (every document compared, none written);
- scan: every document of every entity, in id order;
- changes: the whole change feed, in pages of 5,000, as ``pikcha publish`` reads.

Without ``--url`` it starts SecantusDB (``secantusd-py``, the server the test
suite uses) on a free loopback port and stops it afterwards; its own peak
memory is reported too. Figures go to ``benchmarks/results/mongo.json``.

Run: ``python benchmarks/bench_mongo.py [--purchases N] [--url URL] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    NOW,
    free_port,
    in_child,
    peak_rss_mib,
    process_peak_mib,
    write_figures,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "mongo.json"


def _rate(count: int, seconds: float) -> dict[str, Any]:
    return {
        "documents": count,
        "seconds": round(seconds, 3),
        "documents_per_second": round(count / seconds) if seconds else None,
        "peak_rss_mib": peak_rss_mib(),
    }


def load(url: str, source: str) -> dict[str, Any]:
    from pikcha.adapters.mongo_crm import MongoCrmStore
    from pikcha.application.load import load_directory

    crm = MongoCrmStore(url)
    started = time.perf_counter()
    report = load_directory(Path(source), crm)
    seconds = time.perf_counter() - started
    crm.close()
    figures = _rate(report.loaded, seconds)
    figures |= {
        "inserted": report.upserts.inserted,
        "updated": report.upserts.updated,
        "unchanged": report.upserts.unchanged,
        "re_sent": report.resent,
        "problems": len(report.problems),
    }

    return figures


def scan(url: str) -> dict[str, Any]:
    from pikcha.adapters.mongo_crm import MongoCrmStore
    from pikcha.domain.entities import Entity

    crm = MongoCrmStore(url)
    started = time.perf_counter()
    count = sum(1 for entity in Entity for _ in crm.scan(entity, 1000))
    seconds = time.perf_counter() - started
    crm.close()

    return _rate(count, seconds)


def changes(url: str, page: int) -> dict[str, Any]:
    from pikcha.adapters.mongo_crm import MongoCrmStore
    from pikcha.domain.entities import Entity

    crm = MongoCrmStore(url)
    count = 0
    started = time.perf_counter()
    for entity in Entity:
        after = 0
        while batch := crm.changes(entity, after, page):
            count += len(batch)
            after = batch[-1].seq
    seconds = time.perf_counter() - started
    crm.close()

    return _rate(count, seconds) | {"page": page}


@contextmanager
def secantus(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """SecantusDB on a free loopback port, stopped by its pid at the end."""
    from pymongo import MongoClient

    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        sys.exit("secantusd-py is missing: pip install secantusdb==0.7.0b3, or --url")
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}/"
    with (folder / "secantusd.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--storage-path", str(folder / "data"), "--log-level", "WARNING"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with MongoClient(url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def run(url: str, purchases: int, page: int, folder: Path) -> dict[str, Any]:
    from pikcha.application.generate import GeneratorConfig, write_jsonl

    source = folder / "source"
    generated = write_jsonl(
        GeneratorConfig(seed=1, now=NOW, purchases=purchases), source
    )
    database = f"{url.split('?')[0].rstrip('/')}/pikcha_bench_{uuid.uuid4().hex[:8]}"
    if "?" in url:
        database += "?" + url.split("?", 1)[1]
    figures: dict[str, Any] = {"records": generated.total}
    figures["load"] = in_child(load, database, str(source))
    figures["reload"] = in_child(load, database, str(source))
    figures["scan"] = in_child(scan, database)
    figures["changes"] = in_child(changes, database, page)

    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=5_000)
    parser.add_argument(
        "--url", default=None, help="A MongoDB server (default: start SecantusDB)."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    options, _ = parser.parse_known_args()

    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "server": "external" if options.url else "secantusd-py (SecantusDB 0.7.0b3)",
        "purchases": options.purchases,
    }
    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as name:
        folder = Path(name)
        if options.url:
            figures |= run(options.url, options.purchases, options.page, folder)
        else:
            with secantus(folder) as (url, process):
                figures |= run(url, options.purchases, options.page, folder)
                figures["server_peak_rss_mib"] = process_peak_mib(process.pid)
    write_figures(figures, options.out)


if __name__ == "__main__":
    main()
