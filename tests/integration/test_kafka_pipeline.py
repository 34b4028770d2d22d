"""The pipeline on Kafka (the Tansu test broker, or PIKCHA_TEST_KAFKA) and chDB.

Every test gets topics and consumer groups of its own through a unique topic
prefix, and a chDB warehouse of its own under its temporary folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.kafka import KafkaEventLog
from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.application.project import (
    DEFAULT_GROUP,
    ENTITY_STREAMS,
    Projector,
    ProjectorConfig,
    ProjectReport,
    project_message,
)
from pikcha.application.publish import EnvelopeFactory
from pikcha.domain.entities import Entity
from pikcha.domain.events import (
    DEAD_LETTERS,
    EVENT_TYPES,
    SCHEMA_VERSION,
    canonical_json,
    decode_envelope,
)
from pikcha.domain.masking import Masker
from pikcha.ports.event_log import Consumer, EventLog, Message, OutgoingMessage
from pikcha.testing import TEST_KEY, fixed_clock
from tests.services.kafka import SESSION_TIMEOUT

# Cleaning judges dates by the projector's clock, so data is made relative to it.
NOW = datetime.now().replace(microsecond=0)
ID_SLOT = "id-########"
EVENT_SLOT = "evt-########"
Position = tuple[str, int, int]


def entity_events(entity: Entity, count: int) -> list[OutgoingMessage]:
    """``count`` events of distinct records of ``entity``, built fast.

    A few generated records are enveloped once with placeholder ids; each
    event swaps in its own ids and its payload's hash, byte for byte.
    """
    factory = EnvelopeFactory(
        Masker(TEST_KEY, "test"),
        lambda: EVENT_SLOT,
        fixed_clock(NOW.astimezone(UTC)),
        source="test",
    )
    templates = []
    for kind, record in iter_records(GeneratorConfig(seed=5, now=NOW, purchases=40)):
        if kind is entity:
            envelope = factory(kind, {**record, entity.id_field: ID_SLOT})
            templates.append(
                (
                    envelope.to_bytes(),
                    canonical_json(envelope.payload),
                    envelope.content_hash.encode(),
                )
            )
    made = []
    for number in range(count):
        value, payload, digest = templates[number % len(templates)]
        record_id = f"id-{number:08d}".encode()
        event_id = f"evt-{number:08d}".encode()
        fresh = hashlib.sha256(payload.replace(ID_SLOT.encode(), record_id))
        value = (
            value.replace(ID_SLOT.encode(), record_id)
            .replace(EVENT_SLOT.encode(), event_id)
            .replace(digest, fresh.hexdigest().encode())
        )
        headers = {
            "event_id": event_id.decode(),
            "event_type": EVENT_TYPES[entity],
            "schema_version": str(SCHEMA_VERSION),
        }
        made.append(OutgoingMessage(record_id.decode(), value, headers))
    assert decode_envelope(made[-1].value).to_bytes() == made[-1].value

    return made


@pytest.fixture(scope="module")
def products() -> list[OutgoingMessage]:
    """Product events: the lightest to project, so volume stays cheap."""
    return entity_events(Entity.PRODUCT, 100_000)


@pytest.fixture
def prefix() -> str:
    return f"it-{uuid.uuid4().hex[:12]}."


@pytest.fixture
def log(kafka_bootstrap: str, prefix: str) -> Iterator[KafkaEventLog]:
    made = kafka_log(kafka_bootstrap, prefix)
    yield made
    made.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[ClickHouseWarehouse]:
    made = ClickHouseWarehouse(f"chdb://{tmp_path / 'wh'}")
    made.migrate()
    yield made
    made.close()


def kafka_log(servers: str, prefix: str) -> KafkaEventLog:
    return KafkaEventLog(
        f"kafka://{servers}", topic_prefix=prefix, session_timeout=SESSION_TIMEOUT
    )


def append(log: EventLog, stream: str, messages: Sequence[OutgoingMessage]) -> None:
    for start in range(0, len(messages), 5000):
        log.append(stream, messages[start : start + 5000])


def raw_counts(warehouse: ClickHouseWarehouse, table: str) -> tuple[int, int]:
    rows = warehouse.client.query(f"SELECT count(), uniqExact(event_id) FROM {table}")
    count, distinct = rows.result_rows[0]

    return count, distinct


def caught_up(log: EventLog, group: str, stream: str) -> bool:
    return log.committed(group, stream) == log.end_offsets(stream)


class RecordingLog:
    """An event log whose consumers note every position they poll."""

    def __init__(self, log: EventLog, pause: float = 0.0) -> None:
        self.log = log
        self.pause = pause
        self.polled: list[Position] = []

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        return self.log.append(stream, messages)

    def consumer(self, group: str, streams: Sequence[str]) -> Consumer:
        inner = self.log.consumer(group, streams)
        polled = self.polled
        pause = self.pause

        class Recording:
            def poll(self, max_messages: int, timeout: float = 0.0) -> list[Message]:
                batch = inner.poll(max_messages, timeout)
                polled.extend(positions(batch))
                if batch:
                    time.sleep(pause)
                return batch

            def commit(self, messages: Sequence[Message]) -> None:
                inner.commit(messages)

            def close(self) -> None:
                inner.close()

            def __enter__(self) -> Recording:
                return self

            def __exit__(self, *exc: object) -> None:
                inner.close()

        return Recording()

    def end_offsets(self, stream: str) -> dict[int, int]:
        return self.log.end_offsets(stream)

    def committed(self, group: str, stream: str) -> dict[int, int]:
        return self.log.committed(group, stream)

    def streams(self) -> list[str]:
        return self.log.streams()

    def close(self) -> None:
        self.log.close()


def positions(messages: Sequence[Message]) -> list[Position]:
    return [(m.stream, m.partition, m.offset) for m in messages]


def run_projectors(
    logs: Sequence[EventLog], warehouse: ClickHouseWarehouse, batch_size: int
) -> list[ProjectReport]:
    """Run one projector per log, each in a thread, all in one group."""
    reports: list[ProjectReport] = []
    failures: list[BaseException] = []

    def work(log: EventLog) -> None:
        config = ProjectorConfig(batch_size=batch_size, poll_timeout=0.2)
        try:
            reports.append(Projector(log, warehouse, lambda: NOW, config).run())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if failures:
        raise failures[0]

    return reports


def test_two_consumers_of_one_group_project_each_event_once(
    log: KafkaEventLog,
    warehouse: ClickHouseWarehouse,
    products: list[OutgoingMessage],
) -> None:
    """Two projector threads share the partitions; raw holds 100,000 events once."""
    append(log, "products", products)

    reports = run_projectors([log, log], warehouse, batch_size=5000)

    assert raw_counts(warehouse, "raw_products") == (100_000, 100_000)
    assert len(reports) == 2
    assert all(report.read > 0 for report in reports)
    assert sum(report.new for report in reports) == 100_000
    assert caught_up(log, DEFAULT_GROUP, "products")


def test_a_dropped_member_s_uncommitted_messages_go_to_the_other(
    log: KafkaEventLog,
    warehouse: ClickHouseWarehouse,
    products: list[OutgoingMessage],
) -> None:
    """A member leaving without commit: the survivor re-reads its batch, once."""
    append(log, "products", products[:20_000])
    # Paced, so that the survivor is still reading when the other member has
    # joined: unpaced, it can finish before the group rebalances.
    survivor = RecordingLog(log, pause=0.25)
    reports: list[ProjectReport] = []
    thread = threading.Thread(
        target=lambda: reports.extend(run_projectors([survivor], warehouse, 1000))
    )
    thread.start()
    # The other member joins once the survivor is reading, so the group is
    # steady while it polls and commits.
    deadline = time.monotonic() + 30
    while not survivor.polled and time.monotonic() < deadline:
        time.sleep(0.05)

    with log.consumer(DEFAULT_GROUP, list(ENTITY_STREAMS)) as dropped:
        committed = poll_some(dropped)
        warehouse.write([project_message(m, NOW) for m in committed])
        dropped.commit(committed)
        uncommitted = poll_some(dropped)
        warehouse.write([project_message(m, NOW) for m in uncommitted])
    thread.join(timeout=300)

    assert reports, "the surviving projector did not finish"
    assert set(positions(uncommitted)) <= set(survivor.polled)
    assert not set(positions(committed)) & set(survivor.polled)
    assert raw_counts(warehouse, "raw_products") == (20_000, 20_000)
    assert caught_up(log, DEFAULT_GROUP, "products")


def poll_some(consumer: Consumer) -> list[Message]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if batch := consumer.poll(300, timeout=0.5):
            return batch
    raise AssertionError("the member received no message within 30 s")


def cli_env(home: Path, servers: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    env.update(
        PIKCHA_HOME=str(home),
        PIKCHA_EVENT_LOG=f"kafka://{servers}",
        PIKCHA_KAFKA_TOPIC_PREFIX=prefix,
        PIKCHA_KAFKA_SESSION_TIMEOUT_MS=str(int(SESSION_TIMEOUT * 1000)),
        PIKCHA_BATCH_SIZE="700",
        PIKCHA_FEATURES="clickhouse",
    )

    return env


def test_a_killed_stream_process_loses_and_doubles_nothing(
    tmp_path: Path,
    log: KafkaEventLog,
    kafka_bootstrap: str,
    prefix: str,
    products: list[OutgoingMessage],
) -> None:
    """pikcha stream SIGKILLed mid-stream and restarted: each event once."""
    append(log, "products", products[:40_000])
    home = tmp_path / "var"
    command = [sys.executable, "-m", "pikcha.entrypoints.cli", "stream"]
    env = cli_env(home, kafka_bootstrap, prefix)
    chance = random.Random(7)

    for low, high in ((2_000, 12_000), (16_000, 28_000)):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Killed once the group has committed some but not all of the events.
        done = committed_total(log, low + chance.random() * (high - low), process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert 0 < done < 40_000
    final = subprocess.run(command, env=env, capture_output=True, timeout=300)

    assert final.returncode == 0, final.stderr.decode()
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    try:
        assert raw_counts(warehouse, "raw_products") == (40_000, 40_000)
    finally:
        warehouse.close()
    assert caught_up(log, DEFAULT_GROUP, "products")


def test_sigterm_ends_a_following_stream_after_committing_its_batch(
    tmp_path: Path,
    log: KafkaEventLog,
    kafka_bootstrap: str,
    prefix: str,
    products: list[OutgoingMessage],
) -> None:
    """SIGTERM: pikcha stream --follow commits what it wrote, leaves, exits 0."""
    append(log, "products", products[:40_000])
    home = tmp_path / "var"
    process = subprocess.Popen(
        [sys.executable, "-m", "pikcha.entrypoints.cli", "stream", "--follow"],
        env=cli_env(home, kafka_bootstrap, prefix),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    committed_total(log, 5_000, process)

    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=120)

    assert process.returncode == 0, errors.decode()
    assert group_state(kafka_bootstrap, prefix + DEFAULT_GROUP) == "EMPTY"
    done = sum(log.committed(DEFAULT_GROUP, "products").values())
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    try:
        assert raw_counts(warehouse, "raw_products") == (done, done)
    finally:
        warehouse.close()
    assert 0 < done < 40_000


def group_state(servers: str, group: str) -> str:
    """The coordinator's state of a consumer group: EMPTY once all have left."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers})
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)

    return str(description.state.name)


def committed_total(
    log: EventLog, least: float, process: subprocess.Popen[bytes]
) -> int:
    """The group's committed total once it reaches ``least`` (or stops growing)."""
    deadline = time.monotonic() + 120
    total = 0
    while total < least and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        total = sum(log.committed(DEFAULT_GROUP, "products").values())

    return total


def test_poison_messages_are_dead_lettered_and_the_rest_projected(
    log: KafkaEventLog, warehouse: ClickHouseWarehouse
) -> None:
    """Poison amid good events goes to dead letters with reasons; counts add up."""
    good = entity_events(Entity.PURCHASE, 400)
    customer = next(
        record
        for entity, record in iter_records(GeneratorConfig(now=NOW))
        if entity is Entity.CUSTOMER
    )
    wrong_stream = EnvelopeFactory(
        Masker(TEST_KEY, "test"), lambda: "evt-wrong", fixed_clock(NOW)
    )(Entity.CUSTOMER, customer)
    document = json.loads(good[0].value)
    poison = {
        "not JSON": b"{not json",
        "unknown event type": canonical_json({**document, "event_type": "x.y"}),
        "event type": wrong_stream.to_bytes(),
        "payload": canonical_json({**document, "payload": {"purchase_id": "p"}}),
        "oversized": good[1].value + b" " * 70_000,
    }
    bad = [OutgoingMessage(f"id-{n:08d}", v) for n, v in enumerate(poison.values())]
    log.append("purchases", good[:200])
    log.append("purchases", bad)
    log.append("purchases", good[200:])

    config = ProjectorConfig(max_message_bytes=65_536, poll_timeout=0.2)
    report = Projector(log, warehouse, lambda: NOW, config).run()

    assert (report.read, report.projected, report.dead_lettered) == (405, 400, 5)
    assert raw_counts(warehouse, "raw_purchases") == (400, 400)
    with log.consumer("inspect", [DEAD_LETTERS]) as consumer:
        letters = drain(consumer, 5)
    bodies = {json.loads(m.value)["reason"]: json.loads(m.value) for m in letters}
    for kind, value in poison.items():
        (reason,) = [r for r in bodies if r.startswith(kind)]
        assert base64.b64decode(bodies[reason]["value_base64"]) == value
        assert bodies[reason]["stream"] == "purchases"
    assert all(m.headers == {"reason": json.loads(m.value)["reason"]} for m in letters)
    assert caught_up(log, DEFAULT_GROUP, "purchases")


def drain(consumer: Consumer, count: int) -> list[Message]:
    received: list[Message] = []
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        received += consumer.poll(count - len(received), timeout=0.2)

    return received


def test_pikcha_run_works_on_kafka(
    tmp_path: Path, kafka_bootstrap: str, prefix: str, log: KafkaEventLog
) -> None:
    """pikcha run publishes to Kafka topics and projects every event."""
    home = tmp_path / "var"
    env = cli_env(home, kafka_bootstrap, prefix)
    command = [sys.executable, "-m", "pikcha.entrypoints.cli", "run"]
    options = ["--purchases", "300", "--now", NOW.isoformat(), "--seed", "3"]

    done = subprocess.run(command + options, env=env, capture_output=True, timeout=300)

    assert done.returncode == 0, done.stderr.decode()
    assert set(ENTITY_STREAMS) <= set(log.streams())
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    try:
        for stream, entity in ENTITY_STREAMS.items():
            published = sum(log.end_offsets(stream).values())
            assert published > 0
            assert raw_counts(warehouse, f"raw_{entity.value}s") == (
                published,
                published,
            )
    finally:
        warehouse.close()


# From the start, one message, exit at the end, quiet, as JSON with headers.
KCAT_READ = ["-o", "beginning", "-c", "1", "-e", "-q", "-J"]


def kcat_env(folder: Path) -> dict[str, str]:
    """The environment for kcat, on the librdkafka that confluent-kafka ships.

    Debian's kcat links librdkafka 2.0.2, which cannot parse the Tansu broker's
    ApiVersions answer ("Read underflow"); the wheel's newer library keeps the
    same ABI. Against another broker the system library would do as well.
    """
    import confluent_kafka

    env = dict(os.environ)
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if found:
        (folder / "librdkafka.so.1").symlink_to(found[0])
        env["LD_LIBRARY_PATH"] = str(folder)

    return env


def test_kcat_reads_a_pikcha_message(
    tmp_path: Path,
    log: KafkaEventLog,
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    """kcat decodes a Pikcha message's key, canonical JSON value and headers."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed; apt-get install kcat")
    sent = entity_events(Entity.PURCHASE, 8)[7]
    log.append("purchases", [sent])

    done = subprocess.run(
        [kcat, "-b", kafka_bootstrap, "-C", "-t", f"{prefix}purchases", *KCAT_READ],
        env=kcat_env(tmp_path),
        capture_output=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr.decode()
    record = json.loads(done.stdout)
    headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
    envelope = decode_envelope(record["payload"].encode("utf-8"))
    assert record["key"] == sent.key == envelope.entity_id
    assert record["payload"].encode("utf-8") == sent.value == envelope.to_bytes()
    assert headers == {
        "event_id": envelope.event_id,
        "event_type": "purchase.recorded",
        "schema_version": "1",
    }


class OverstatedLog(RecordingLog):
    """End offsets one past the truth, as a miscounting broker reports them."""

    def end_offsets(self, stream: str) -> dict[int, int]:
        return {p: end + 1 for p, end in self.log.end_offsets(stream).items()}


def test_a_run_ends_when_the_log_stays_idle_past_wrong_end_offsets() -> None:
    """With end offsets no consumer reaches, a run ends after idle_timeout."""
    inner = InMemoryEventLog()
    inner.append("products", entity_events(Entity.PRODUCT, 30))
    warehouse = InMemoryWarehouse()
    warehouse.migrate()
    config = ProjectorConfig(poll_timeout=0.05, idle_timeout=0.5)

    report = Projector(OverstatedLog(inner), warehouse, lambda: NOW, config).run(
        streams=["products"]
    )

    assert report.projected == 30
