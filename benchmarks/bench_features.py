"""The feature table of N purchases by Spark, ClickHouse SQL and the reference.

The shop is generated once (``pikcha.application.generate``), cleaned by the
domain rules and written through the ClickHouse warehouse adapter into a chDB
folder. Then each engine runs in a child process of its own, opening that
folder in turn, so that its seconds and its peak memory are its own; Spark's
peak adds the JVM's (``VmHWM`` of the processes the child started) to the
Python driver's. Spark runs twice: with the Arrow path the engine uses, and
with the rows path (the views fetched as Python tuples and handed to
``createDataFrame`` as a list) for comparison. Every run hashes its rows, so
the figures come with the proof that the engines agree.

Run: ``python benchmarks/bench_features.py [--purchases N] [--out PATH]
[--data DIR] [--driver-memory 2g] [--no-rows-path]``. ``--data`` keeps the
built warehouse in DIR and reuses it when it is already there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import NOW, in_child, peak_rss_mib, write_figures

AS_OF = datetime(2025, 9, 30, 23, 59, 59, 999_999)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "features.json"
BATCH = 20_000


def descendants() -> set[int]:
    """The processes this one started, and theirs (the JVM, for Spark)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found |= frontier

    return found


def descendants_peak_mib() -> float:
    """The summed peak RSS (``VmHWM``) of :func:`descendants`."""
    total = 0
    for pid in descendants():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])

    return round(total / 1024, 1)


def cpu_seconds() -> float:
    """CPU time of this process and its descendants, user and system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick

    return total


def timed_engine(base: type[Any]) -> type[Any]:
    """A Spark engine that times its reads from ClickHouse and its hand-over
    to Spark, the two steps where the Arrow and the rows paths differ."""

    class TimedEngine(base):  # type: ignore[misc, valid-type]
        timings: dict[str, float]

        def _fetch(self, view: str, as_of: datetime) -> Any:
            started = time.perf_counter()
            result = super()._fetch(view, as_of)
            self.timings["fetch"] += time.perf_counter() - started
            return result

        def _frames(self, spark: Any, fetched: list[Any]) -> Any:
            started = time.perf_counter()
            result = super()._frames(spark, fetched)
            self.timings["to_spark"] += time.perf_counter() - started
            return result

    return TimedEngine


def events(purchases: int) -> Iterator[Any]:
    """Generated records, cleaned, as projected events of the warehouse port."""
    from pikcha.application.generate import GeneratorConfig, iter_records
    from pikcha.domain.cleaning import Rejection, clean
    from pikcha.domain.entities import parse_record
    from pikcha.domain.events import stream_of
    from pikcha.ports.warehouse import ProjectedEvent, RawEvent

    config = GeneratorConfig(
        seed=1, now=NOW, purchases=purchases, customers=max(purchases // 5, 100)
    )
    stamp = datetime(2025, 9, 30, tzinfo=UTC)
    for offset, (entity, document) in enumerate(iter_records(config)):
        outcome = clean(entity, parse_record(entity, document), NOW)
        if isinstance(outcome, Rejection):
            continue
        raw = RawEvent(
            entity=entity,
            event_id=f"e{offset:09d}",
            event_type=f"{entity.value}.upserted",
            schema_version=1,
            entity_id=str(getattr(outcome, f"{entity.value}_id")),
            occurred_at=stamp,
            source="bench",
            content_hash=f"h{offset}",
            mask_key_id="bench",
            payload="",
            stream=stream_of(entity),
            partition=0,
            offset=offset,
        )
        yield ProjectedEvent(raw, outcome)


def build(folder: Path, purchases: int) -> dict[str, Any]:
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

    warehouse = ClickHouseWarehouse(f"chdb://{folder}")
    started = time.perf_counter()
    warehouse.migrate()
    batch: list[Any] = []
    for event in events(purchases):
        batch.append(event)
        if len(batch) >= BATCH:
            warehouse.write(batch)
            batch.clear()
    warehouse.write(batch)
    seconds = time.perf_counter() - started
    counts = {
        view: warehouse.client.query(f"SELECT count() FROM {view}").result_rows[0][0]
        for view in (
            "current_customers",
            "current_products",
            "current_purchases",
            "current_purchase_items",
        )
    }
    warehouse.close()

    return {"seconds": round(seconds, 1), "rows": counts}


def digest(rows: Sequence[Any]) -> str:
    hasher = hashlib.sha256()
    for row in rows:
        hasher.update(f"{row.customer_id},{row.values}\n".encode())

    return hasher.hexdigest()


def rows_path_engine(base: type[Any]) -> type[Any]:
    """The Spark engine with the views fetched as Python tuples (numbered in
    Python too) and handed to ``createDataFrame`` as lists, instead of Arrow."""
    from pikcha.adapters.spark_features import NUMBERED, SOURCES, source_query

    class RowsPathEngine(base):  # type: ignore[misc, valid-type]
        def _fetch(self, view: str, as_of: datetime) -> Any:
            result = self._source.query(
                source_query(view), parameters={"as_of": as_of.isoformat(sep=" ")}
            )
            names = [name for name, _ in SOURCES[view]]
            numbers: list[dict[Any, int]] = [{} for _ in NUMBERED.get(view, ())]
            rows = []
            for row in result.result_rows:
                # TIMESTAMP_NTZ takes naive datetimes; the driver may add UTC.
                values = [
                    value.replace(tzinfo=None) if isinstance(value, datetime) else value
                    for value in row
                ]
                numbered = zip(NUMBERED.get(view, ()), numbers, strict=True)
                for (column, _), seen in numbered:
                    value = values[names.index(column)]
                    blank = value is None or (column == "category_code" and not value)
                    values.append(None if blank else seen.setdefault(value, len(seen)))
                rows.append(tuple(values))

            return rows, list(numbers[-1]) if numbers else []

        def _frames(self, spark: Any, fetched: list[Any]) -> Any:
            from pikcha.adapters.spark_features import source_schema

            frames, codes = [], []
            for view, (rows, values) in zip(SOURCES, fetched, strict=True):
                frames.append(spark.createDataFrame(rows, source_schema(view)))
                codes = values or codes

            return frames, codes

    return RowsPathEngine


def run_engine(folder: Path, engine: str, driver_memory: str | None) -> dict[str, Any]:
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

    warehouse = ClickHouseWarehouse(f"chdb://{folder}")
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    if engine == "reference":
        from pikcha.adapters.reference_features import ReferenceFeatureEngine

        feature_engine: Any = ReferenceFeatureEngine(warehouse)
    elif engine == "clickhouse":
        from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine

        feature_engine = ClickHouseFeatureEngine(warehouse.client)
    else:
        from pikcha.adapters.spark_features import SparkFeatureEngine, spark_session

        kind = timed_engine(
            SparkFeatureEngine
            if engine == "spark"
            else rows_path_engine(SparkFeatureEngine)
        )
        feature_engine = kind(warehouse.client, driver_memory=driver_memory)
        spark_session(driver_memory=driver_memory).range(1).count()
        figures["session_start_seconds"] = round(time.perf_counter() - started, 2)
    runs = 2 if engine.startswith("spark") else 1
    for run in range(runs):
        # The first run includes the JVM's warm-up (class loading, JIT).
        label = "" if run == 0 else "second_run_"
        if engine.startswith("spark"):
            feature_engine.timings = {"fetch": 0.0, "to_spark": 0.0}
        started, cpu = time.perf_counter(), cpu_seconds()
        rows = feature_engine.compute(AS_OF)
        figures[f"{label}seconds"] = round(time.perf_counter() - started, 2)
        figures[f"{label}cpu_seconds"] = round(cpu_seconds() - cpu, 2)
        if engine.startswith("spark"):
            for step, seconds in feature_engine.timings.items():
                figures[f"{label}{step}_seconds"] = round(seconds, 2)
    figures["customers"] = len(rows)
    figures["sha256"] = digest(rows)
    figures["peak_rss_mib"] = peak_rss_mib()
    if engine.startswith("spark"):
        figures["jvm_peak_rss_mib"] = descendants_peak_mib()
        figures["total_peak_rss_mib"] = round(
            figures["peak_rss_mib"] + figures["jvm_peak_rss_mib"], 1
        )
    warehouse.close()

    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--no-rows-path", action="store_true")
    options, _ = parser.parse_known_args()

    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as scratch:
        folder = options.data or Path(scratch) / "warehouse"
        figures: dict[str, Any] = {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "purchases": options.purchases,
            "as_of": AS_OF.isoformat(),
            "spark_driver_memory": options.driver_memory,
            "load_average_at_start": os.getloadavg(),
        }
        marker = folder / "built.json"
        if marker.is_file():
            figures["build"] = json.loads(marker.read_text())
            figures["build"]["reused"] = True
        else:
            figures["build"] = in_child(build, folder.resolve(), options.purchases)
            marker.write_text(json.dumps(figures["build"]))
        if figures["build"]["rows"]["current_purchases"] != options.purchases:
            raise SystemExit(f"{folder} holds another volume; pick another --data")
        print(json.dumps(figures), flush=True)
        engines = ["clickhouse", "spark", "reference"]
        if not options.no_rows_path:
            engines.insert(2, "spark_rows_path")
        for engine in engines:
            figures[engine] = in_child(
                run_engine, folder.resolve(), engine, options.driver_memory
            )
            print(engine, json.dumps(figures[engine]), flush=True)
    figures["load_average_at_end"] = os.getloadavg()
    hashes = {figures[engine]["sha256"] for engine in engines}
    figures["engines_agree"] = len(hashes) == 1
    write_figures(figures, options.out)


if __name__ == "__main__":
    main()
