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
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

NOW = datetime(2025, 9, 30, 12, 0)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "mongo.json"


def _peak_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)


def _rate(count: int, seconds: float) -> dict[str, Any]:
    return {
        "documents": count,
        "seconds": round(seconds, 3),
        "documents_per_second": round(count / seconds) if seconds else None,
        "peak_rss_mib": _peak_mib(),
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


def _child(name: str, *args: Any) -> dict[str, Any]:
    with get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(globals()[name], args)

    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]

    return port


def _server_peak_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)

    return None


@contextmanager
def secantus(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """SecantusDB on a free loopback port, stopped by its pid at the end."""
    from pymongo import MongoClient

    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        sys.exit("secantusd-py is missing: pip install secantusdb==0.7.0b3, or --url")
    port = _free_port()
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
    figures["load"] = _child("load", database, str(source))
    figures["reload"] = _child("load", database, str(source))
    figures["scan"] = _child("scan", database)
    figures["changes"] = _child("changes", database, page)

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
                figures["server_peak_rss_mib"] = _server_peak_mib(process.pid)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
