"""Projection into chDB and the ClickHouse feature engine, against a baseline.

Publishes generated purchases (with their stores, products and customers) as
masked envelopes into a SQLite event log, then measures, in one run:

- Pikcha's projector: batched decode, clean and column-oriented inserts;
- the seed-style baseline: one message decoded and inserted per call, as a
  naive consumer does, on a sample of the same events (it is too slow for all);
- the ClickHouse feature engine on the projected data.

Each step runs in a child process so its peak memory (max RSS) is its own.
Figures go to ``benchmarks/results/projection.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

NOW = datetime(2025, 9, 30, 12, 0)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def publish(home: Path, purchases: int) -> dict[str, Any]:
    from pikcha.adapters.sqlite_event_log import SqliteEventLog
    from pikcha.application.generate import GeneratorConfig, iter_records
    from pikcha.application.publish import EnvelopeFactory, to_message
    from pikcha.domain.events import stream_of
    from pikcha.domain.masking import Masker
    from pikcha.testing import fixed_clock, sequential_ids

    log = SqliteEventLog(home / "events.db")
    factory = EnvelopeFactory(
        Masker(b"bench-key-0123456789abcdef", "bench"),
        sequential_ids("e"),
        fixed_clock(datetime(2025, 9, 30, tzinfo=UTC)),
    )
    started = time.perf_counter()
    batch: dict[str, list[Any]] = {}
    count = 0
    for entity, record in iter_records(
        GeneratorConfig(seed=1, now=NOW, purchases=purchases)
    ):
        stream = stream_of(entity)
        batch.setdefault(stream, []).append(to_message(factory(entity, record)))
        count += 1
        if len(batch[stream]) >= 5000:
            log.append(stream, batch.pop(stream))
    for stream, messages in batch.items():
        log.append(stream, messages)
    log.close()
    seconds = time.perf_counter() - started

    return {
        "events": count,
        "seconds": seconds,
        "events_per_second": count / seconds,
        "peak_rss_mib": _peak_mib(),
    }


def project(home: Path, batch_size: int) -> dict[str, Any]:
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
    from pikcha.adapters.sqlite_event_log import SqliteEventLog
    from pikcha.application.project import Projector, ProjectorConfig

    log = SqliteEventLog(home / "events.db")
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    warehouse.migrate()
    started = time.perf_counter()
    report = Projector(
        log,
        warehouse,
        lambda: NOW,
        ProjectorConfig(batch_size=batch_size, poll_timeout=0.05),
    ).run()
    seconds = time.perf_counter() - started
    warehouse.close()
    log.close()

    return {
        "events": report.projected,
        "seconds": seconds,
        "events_per_second": report.projected / seconds,
        "batch_size": batch_size,
        "peak_rss_mib": _peak_mib(),
    }


def baseline(home: Path, sample: int) -> dict[str, Any]:
    """One message at a time: decode, clean, insert, commit, like a naive loop."""
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
    from pikcha.adapters.sqlite_event_log import SqliteEventLog
    from pikcha.application.project import project_message

    log = SqliteEventLog(home / "events.db")
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'baseline'}")
    warehouse.migrate()
    done = 0
    started = time.perf_counter()
    with log.consumer("baseline", ["purchases"]) as consumer:
        while done < sample:
            messages = consumer.poll(1)
            if not messages:
                break
            warehouse.write([project_message(messages[0], NOW)])
            consumer.commit(messages)
            done += 1
    seconds = time.perf_counter() - started
    warehouse.close()
    log.close()

    return {
        "events": done,
        "seconds": seconds,
        "events_per_second": done / seconds,
        "peak_rss_mib": _peak_mib(),
    }


def features(home: Path) -> dict[str, Any]:
    from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    started = time.perf_counter()
    rows = ClickHouseFeatureEngine(warehouse.client).compute(
        datetime(2025, 9, 30, 23, 59, 59)
    )
    seconds = time.perf_counter() - started
    warehouse.close()

    return {"customers": len(rows), "seconds": seconds, "peak_rss_mib": _peak_mib()}


def _child(name: str, *args: Any) -> dict[str, Any]:
    with get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(globals()[name], args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/projection.json")
    )
    options, _ = parser.parse_known_args()

    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as folder:
        home = Path(folder)
        figures: dict[str, Any] = {
            "cpu_count": os.cpu_count(),
            "purchases": options.purchases,
            "publish": _child("publish", home, options.purchases),
        }
        figures["project"] = _child("project", home, options.batch_size)
        figures["baseline"] = _child("baseline", home, options.baseline_sample)
        figures["features_clickhouse"] = _child("features", home)
    figures["projection_vs_baseline"] = (
        figures["project"]["events_per_second"]
        / figures["baseline"]["events_per_second"]
    )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
