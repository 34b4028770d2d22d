"""Publishing while the Kafka broker stops and starts again.

The broker is Tansu keeping its data in a bucket of the test S3 server, so a
restart keeps everything it acknowledged. Its idempotent producer support is
not crash-safe on that storage (see :mod:`pikcha.adapters.kafka`), so the
producer runs with idempotence off: a batch retried across the restart may be
stored twice, with the same event ids.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import pytest

from pikcha.adapters.kafka import KafkaEventLog
from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.application.project import Projector, ProjectorConfig
from pikcha.application.publish import AppendRetry, EnvelopeFactory, publish_records
from pikcha.domain.entities import Entity
from pikcha.domain.errors import InfrastructureError
from pikcha.domain.events import EVENT_TYPES, stream_of
from pikcha.domain.masking import Masker
from pikcha.ports.event_log import Consumer, EventLog, Message, OutgoingMessage
from pikcha.testing import TEST_KEY, fixed_clock, sequential_ids
from tests.services.kafka import SESSION_TIMEOUT, RestartableBroker

NOW = datetime(2025, 9, 30, 12, 0)
RECORDS = GeneratorConfig(
    now=NOW, seed=11, stores=6, products=20, customers=200, purchases=1500
)
STREAMS = [stream_of(entity) for entity in Entity]
BATCH = 500
# The append during which the broker is killed, one of 500 purchases, and how
# long after it starts: while Tansu stores the batch, which takes some 20 ms.
FAULTY_APPEND = 5
KILL_DELAY = 0.005
DOWN = 3.0


class FaultAt:
    """An event log that runs ``fault`` as append number ``at`` starts, and keeps
    the messages of every append that returned (the acknowledged ones)."""

    def __init__(self, log: EventLog, at: int, fault: Callable[[], None]) -> None:
        self.log = log
        self.at = at
        self.fault = fault
        self.calls = 0
        self.acknowledged: list[OutgoingMessage] = []

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        self.calls += 1
        if self.calls == self.at:
            self.fault()
        appended = self.log.append(stream, messages)
        self.acknowledged += messages

        return appended

    def consumer(self, group: str, streams: Sequence[str]) -> Consumer:
        return self.log.consumer(group, streams)

    def end_offsets(self, stream: str) -> dict[int, int]:
        return self.log.end_offsets(stream)

    def committed(self, group: str, stream: str) -> dict[int, int]:
        return self.log.committed(group, stream)

    def streams(self) -> list[str]:
        return self.log.streams()

    def close(self) -> None:
        self.log.close()


def envelopes() -> EnvelopeFactory:
    """The same ids and time on every call, so two publishes make equal events."""
    return EnvelopeFactory(Masker(TEST_KEY, "test"), sequential_ids(), fixed_clock(NOW))


def expected_messages() -> list[OutgoingMessage]:
    """What publishing the generated records appends when nothing goes wrong."""
    kept = FaultAt(InMemoryEventLog(), at=0, fault=lambda: None)
    publish_records(iter_records(RECORDS), kept, envelopes(), batch_size=BATCH)

    return kept.acknowledged


def read_back(log: EventLog, least: int) -> list[Message]:
    """Every message of the entity streams, read by a new group until it has at
    least ``least`` and a poll finds nothing more."""
    got: list[Message] = []
    deadline = time.monotonic() + 30
    with log.consumer(f"check-{uuid.uuid4().hex[:8]}", STREAMS) as consumer:
        while time.monotonic() < deadline:
            batch = consumer.poll(5000, timeout=1.0)
            got += batch
            if not batch and len(got) >= least:
                break

    return got


def kafka_log(broker: RestartableBroker, **options: float) -> KafkaEventLog:
    """A log on ``broker`` whose streams exist already, as on a running
    installation, so that the outage meets appends rather than topic creation."""
    made = KafkaEventLog(
        f"kafka://{broker.bootstrap}",
        partitions=3,
        session_timeout=SESSION_TIMEOUT,
        idempotence=False,
        **options,
    )
    made.consumer("setup", STREAMS).close()

    return made


@pytest.fixture
def kafka(restartable_kafka: RestartableBroker) -> Iterator[KafkaEventLog]:
    made = kafka_log(restartable_kafka)
    yield made
    made.close()


def test_publishing_waits_out_a_broker_restart_and_loses_nothing(
    restartable_kafka: RestartableBroker, kafka: KafkaEventLog
) -> None:
    """The broker is killed while an append is stored and is back 3 s later:
    publishing ends without an error after the restart, and every event is in
    the streams. A batch whose acknowledgement died with the broker is sent
    again and may be stored twice, with the same event ids; projecting into a
    warehouse keeps each event once, so raw holds exactly the expected rows."""
    expected = expected_messages()
    restarted: list[float] = []
    failures: list[BaseException] = []

    def outage() -> None:
        try:
            time.sleep(KILL_DELAY)
            restartable_kafka.stop()
            time.sleep(DOWN)
            restartable_kafka.start()
            restarted.append(time.monotonic())
        except BaseException as exc:
            failures.append(exc)

    restart = threading.Thread(target=outage)
    faulty = FaultAt(kafka, FAULTY_APPEND, restart.start)

    report = publish_records(
        iter_records(RECORDS), faulty, envelopes(), batch_size=BATCH
    )
    finished = time.monotonic()
    restart.join(timeout=60)

    assert not failures, failures
    assert restarted and finished > restarted[0], "publishing ended before the restart"
    assert report.total == len(expected)
    read = Counter(message.value for message in read_back(kafka, len(expected)))
    assert set(read) == {message.value for message in expected}
    duplicates = sum(read.values()) - len(read)
    # Only the batch in flight when the broker died can be sent twice.
    assert duplicates <= BATCH, f"{duplicates} events were stored twice"
    warehouse = InMemoryWarehouse()
    warehouse.migrate()
    config = ProjectorConfig(poll_timeout=0.2, idle_timeout=5.0)
    Projector(kafka, warehouse, fixed_clock(NOW), config).run()
    for entity in Entity:
        wanted = {
            m.headers["event_id"]
            for m in expected
            if m.headers["event_type"] == EVENT_TYPES[entity]
        }
        assert set(warehouse.raw[entity]) == wanted, entity


def test_a_broker_down_past_the_patience_fails_once_and_keeps_what_was_acknowledged(
    restartable_kafka: RestartableBroker,
) -> None:
    """With the broker down longer than the delivery timeout and the publishing
    retries, one transient error names the broker and the settings to raise;
    once the broker is back, every append acknowledged before is still there."""
    kafka = kafka_log(restartable_kafka, delivery_timeout=1.0)
    faulty = FaultAt(kafka, FAULTY_APPEND, restartable_kafka.stop)
    patience = AppendRetry(backoff=0.2, max_wait=0.5)

    try:
        with pytest.raises(InfrastructureError) as caught:
            publish_records(
                iter_records(RECORDS),
                faulty,
                envelopes(),
                batch_size=BATCH,
                retry=patience,
            )

        message = str(caught.value)
        assert caught.value.transient
        assert restartable_kafka.bootstrap in message
        assert "PIKCHA_KAFKA_DELIVERY_TIMEOUT_MS" in message
        assert "PIKCHA_PUBLISH_MAX_WAIT" in message
        assert "\n" not in message
        # Pauses of 0.2 and 0.3 s fill max_wait: three tries, then nothing more.
        assert faulty.calls == FAULTY_APPEND + 2
        restartable_kafka.start()
        acknowledged = {m.value for m in faulty.acknowledged}
        assert acknowledged
        read = {m.value for m in read_back(kafka, len(acknowledged))}
        assert acknowledged <= read
    finally:
        kafka.close()
