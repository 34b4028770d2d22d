"""Project events from the event log into the warehouse.

Messages are read in batches per consumer group. Each is decoded, checked and
cleaned; what cannot be projected (bad JSON, an unknown event type, a payload
without the record's shape, a message over the size limit, an event on the
wrong stream) goes to the dead-letter stream with its reason and its original
bytes. The batch is written to the warehouse, and only then is the read
position committed: a crash at any point re-reads at most the uncommitted
batch, and the warehouse's idempotence by ``event_id`` absorbs it.
"""

from __future__ import annotations

import base64
import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog

from pikcha.application.retry import retry_transient
from pikcha.domain.cleaning import clean
from pikcha.domain.entities import Entity, parse_record
from pikcha.domain.errors import EnvelopeError, RecordError
from pikcha.domain.events import (
    DEAD_LETTERS,
    canonical_json,
    decode_with_payload,
    stream_of,
)
from pikcha.ports.event_log import Consumer, EventLog, Message, OutgoingMessage
from pikcha.ports.warehouse import ProjectedEvent, RawEvent, Warehouse

T = TypeVar("T")
log = structlog.get_logger("pikcha.project")

ENTITY_STREAMS = {stream_of(entity): entity for entity in Entity}
DEFAULT_GROUP = "warehouse"
MAX_MESSAGE_BYTES = 1 << 20


@dataclass
class ProjectReport:
    read: int = 0
    projected: int = 0
    new: int = 0
    dead_lettered: int = 0
    batches: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectorConfig:
    group: str = DEFAULT_GROUP
    batch_size: int = 5000
    poll_timeout: float = 0.5
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # A transient failure (a warehouse held by another process or down, an
    # unreachable broker) is retried after ``backoff`` seconds, doubling up to
    # ``max_backoff``, until the waits add up to ``max_wait``; then it is raised.
    backoff: float = 0.2
    max_backoff: float = 10.0
    max_wait: float = 60.0
    # A run without follow also ends after this many seconds without a
    # message, even if the end offsets still show a gap (None: never).
    idle_timeout: float | None = 30.0


def dead_letter(message: Message, reason: str) -> OutgoingMessage:
    """A dead letter keeps the original bytes (base64) and where they came from."""
    body = {
        "reason": reason,
        "stream": message.stream,
        "partition": message.partition,
        "offset": message.offset,
        "key": message.key,
        "value_base64": base64.b64encode(message.value).decode("ascii"),
    }
    position = f"{message.stream}/{message.partition}/{message.offset}"

    return OutgoingMessage(
        key=position, value=canonical_json(body), headers={"reason": reason}
    )


def project_message(
    message: Message, now: datetime, max_bytes: int = MAX_MESSAGE_BYTES
) -> ProjectedEvent:
    """Decode and clean one message; raises :class:`EnvelopeError` for poison."""
    if len(message.value) > max_bytes:
        raise EnvelopeError(f"oversized: {len(message.value)} bytes, limit {max_bytes}")
    envelope, payload = decode_with_payload(message.value)
    entity = envelope.entity
    expected = ENTITY_STREAMS.get(message.stream)
    if expected is not None and expected is not entity:
        raise EnvelopeError(
            f"event type {envelope.event_type!r} does not belong on stream "
            f"{message.stream!r}"
        )
    try:
        record = parse_record(entity, envelope.payload, f"event {envelope.event_id}")
    except RecordError as exc:
        raise EnvelopeError(f"payload: {exc}") from None
    if getattr(record, entity.id_field) != envelope.entity_id:
        raise EnvelopeError("entity_id differs from the id in the payload")
    raw = RawEvent(
        entity=entity,
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        entity_id=envelope.entity_id,
        occurred_at=envelope.occurred_at,
        source=envelope.source,
        content_hash=envelope.content_hash,
        mask_key_id=envelope.mask_key_id,
        payload=payload.decode("utf-8"),
        stream=message.stream,
        partition=message.partition,
        offset=message.offset,
    )

    return ProjectedEvent(raw=raw, outcome=clean(entity, record, now))


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


@contextmanager
def _fewer_collections(threshold: int = 20_000) -> Iterator[None]:
    """Run the young-generation collector less often, for the duration.

    A batch makes hundreds of thousands of short-lived objects and keeps
    almost none; collecting after every 700 allocations, the default, costs a
    tenth of the projection's time for nothing.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class Projector:
    """Reads one consumer group's streams into the warehouse."""

    def __init__(
        self,
        log: EventLog,
        warehouse: Warehouse,
        clock: Callable[[], datetime],
        config: ProjectorConfig | None = None,
        on_batch: Callable[[ProjectReport], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.log = log
        self.warehouse = warehouse
        self.clock = clock
        self.config = config or ProjectorConfig()
        self.on_batch = on_batch
        self.sleep = sleep
        self.stop = threading.Event()

    def run(
        self, follow: bool = False, streams: Sequence[str] | None = None
    ) -> ProjectReport:
        """Project until caught up (or, with ``follow``, until :attr:`stop` is set).

        Caught up means the group has committed every stream's end offsets, or
        nothing has arrived for ``idle_timeout`` seconds: a log may report end
        offsets that no consumer reaches (a transactional producer's markers,
        a broker that miscounts), and a run must still end.
        """
        report = ProjectReport()
        names = list(streams or ENTITY_STREAMS)
        with (
            _fewer_collections(),
            self.log.consumer(self.config.group, names) as consumer,
        ):
            last_message = time.monotonic()
            while not self.stop.is_set():
                messages = consumer.poll(
                    self.config.batch_size, self.config.poll_timeout
                )
                if not messages:
                    if follow:
                        continue
                    if self._caught_up(names, time.monotonic() - last_message):
                        break
                    continue
                self._batch(consumer, messages, report)
                last_message = time.monotonic()

        return report

    def _caught_up(self, streams: Sequence[str], idle: float = 0.0) -> bool:
        for stream in streams:
            ends = self.log.end_offsets(stream)
            done = self.log.committed(self.config.group, stream)
            if any(done.get(partition, 0) < end for partition, end in ends.items()):
                limit = self.config.idle_timeout
                return limit is not None and idle >= limit

        return True

    def _prepare(
        self, messages: list[Message], report: ProjectReport
    ) -> tuple[list[ProjectedEvent], int]:
        """Decode and clean a batch; its poison goes to the dead letters now."""
        now = self.clock()
        projected: list[ProjectedEvent] = []
        dead: list[OutgoingMessage] = []
        for message in messages:
            try:
                projected.append(
                    project_message(message, now, self.config.max_message_bytes)
                )
            except EnvelopeError as exc:
                reason = str(exc)
                dead.append(dead_letter(message, reason))
                kind = _reason_kind(reason)
                report.reasons[kind] = report.reasons.get(kind, 0) + 1
        # Dead letters and the warehouse first, the position last: a crash
        # in between repeats work, never loses it.
        if dead:
            self.retry(lambda: self.log.append(DEAD_LETTERS, dead))

        return projected, len(dead)

    def _batch(
        self, consumer: Consumer, messages: list[Message], report: ProjectReport
    ) -> None:
        # Everything polled is written and committed before the next poll: a
        # rebalance inside that poll then hands over no batch in flight.
        projected, dead = self._prepare(messages, report)
        new = self.retry(lambda: self.warehouse.write(projected)) if projected else 0
        self.retry(lambda: consumer.commit(messages))
        report.read += len(messages)
        report.projected += len(projected)
        report.new += new
        report.dead_lettered += dead
        report.batches += 1
        if self.on_batch:
            self.on_batch(report)

    def retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, waiting out transient failures with this projector's
        backoff and patience (also for steps around a run, such as migrating)."""
        return retry_transient(
            action,
            backoff=self.config.backoff,
            max_backoff=self.config.max_backoff,
            max_wait=self.config.max_wait,
            sleep=self.sleep,
            logger=log,
            event="transient_failure",
        )
