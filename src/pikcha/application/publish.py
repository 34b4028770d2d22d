"""Publish the CRM's changes as masked events.

Each entry of an entity's change feed becomes one envelope: the document is
checked for shape, its personal data masked, and the envelope appended to the
entity's stream with the entity id as key. The feed position is saved in the
CRM after each appended batch, so a crash re-publishes at most one batch;
re-published events carry new ids and the same content hash, which the quality
check counts as repeated data, never as loss.

An append that fails transiently (a broker restarting, a database briefly
locked) is tried again with the same messages after a growing pause, until
the pauses add up to :attr:`AppendRetry.max_wait`. Part of a failed batch may
already be stored, so a retry can store some events twice, with the same
event ids: a redelivery, which the warehouse keeps once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from pikcha.application.load import ENTITY_ORDER
from pikcha.application.retry import retry_transient
from pikcha.domain.entities import Entity, parse_record
from pikcha.domain.errors import InfrastructureError, RecordError
from pikcha.domain.events import Envelope, make_envelope, stream_of
from pikcha.domain.masking import Masker
from pikcha.ports.crm import CrmStore
from pikcha.ports.event_log import EventLog, OutgoingMessage

logger = structlog.get_logger("pikcha.publish")
T = TypeVar("T")


@dataclass
class PublishReport:
    published: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.published.values())


@dataclass(frozen=True)
class AppendRetry:
    """How long publishing waits out an event log that fails transiently.

    The first pause is ``backoff`` seconds, doubling up to ``max_backoff``;
    once the pauses add up to ``max_wait`` the last error is raised again, with
    how long publishing retried and the setting that lets it wait longer.
    """

    backoff: float = 0.5
    max_backoff: float = 5.0
    max_wait: float = 60.0

    def run(self, action: Callable[[], T], sleep: Callable[[float], None]) -> T:
        """The result of ``action``, tried again after each transient failure."""
        return retry_transient(
            action,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            max_wait=self.max_wait,
            sleep=sleep,
            logger=logger,
            event="append_retried",
            give_up=_given_up,
        )


def _given_up(error: InfrastructureError, waited: float) -> InfrastructureError:
    return InfrastructureError(
        f"{error} (publishing retried for {waited:g} s; raise "
        "PIKCHA_PUBLISH_MAX_WAIT to wait longer)",
        transient=True,
    )


def mark_name(entity: Entity) -> str:
    return f"published:{entity.value}"


def to_message(envelope: Envelope) -> OutgoingMessage:
    return OutgoingMessage(
        key=envelope.entity_id,
        value=envelope.to_bytes(),
        headers={
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
            "schema_version": str(envelope.schema_version),
        },
    )


@dataclass
class EnvelopeFactory:
    """Masks a document and wraps it; ids and time come from outside."""

    masker: Masker
    new_id: Callable[[], str]
    clock: Callable[[], datetime]
    source: str = "crm"

    def __call__(self, entity: Entity, document: Mapping[str, Any]) -> Envelope:
        record = parse_record(entity, document)

        return make_envelope(
            entity=entity,
            entity_id=str(getattr(record, entity.id_field)),
            masked_payload=self.masker.mask(entity, document),
            event_id=self.new_id(),
            occurred_at=self.clock(),
            source=self.source,
            mask_key_id=self.masker.key_id,
        )


def publish_changes(
    crm: CrmStore,
    log: EventLog,
    envelopes: EnvelopeFactory,
    batch_size: int = 1000,
    resend: bool = False,
    progress: Callable[[int], None] | None = None,
    retry: AppendRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishReport:
    """Publish what changed in the CRM since the last publish.

    With ``resend`` every stored document is published once more, whatever
    was published before: a deliberate re-send of the whole CRM.
    """
    report = PublishReport()
    patience = retry or AppendRetry()

    def append(stream: str, messages: list[OutgoingMessage]) -> int:
        return patience.run(partial(log.append, stream, messages), sleep)

    total = 0
    for entity in ENTITY_ORDER:
        count = 0
        stream = stream_of(entity)
        if resend:
            batch: list[OutgoingMessage] = []
            for document in crm.scan(entity, batch_size):
                message = _message(entity, document, envelopes, report)
                if message is not None:
                    batch.append(message)
                if len(batch) >= batch_size:
                    count += append(stream, batch)
                    batch = []
            count += append(stream, batch) if batch else 0
        else:
            mark = crm.get_mark(mark_name(entity))
            while changes := crm.changes(entity, mark, batch_size):
                messages = [
                    message
                    for change in changes
                    if (message := _message(entity, change.document, envelopes, report))
                ]
                count += append(stream, messages) if messages else 0
                mark = changes[-1].seq
                crm.set_mark(mark_name(entity), mark)
                if progress:
                    progress(total + count)
        total += count
        report.published[entity.value] = count

    return report


def _message(
    entity: Entity,
    document: Mapping[str, Any],
    envelopes: EnvelopeFactory,
    report: PublishReport,
) -> OutgoingMessage | None:
    try:
        return to_message(envelopes(entity, document))
    except RecordError as exc:
        report.skipped.append((f"{entity.value} {exc.record}", str(exc)))
        return None


def publish_records(
    records: Iterable[tuple[Entity, Mapping[str, Any]]],
    log: EventLog,
    envelopes: EnvelopeFactory,
    rate: float | None = None,
    batch_size: int = 500,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
    retry: AppendRetry | None = None,
) -> PublishReport:
    """Publish records straight to the event log, as a till streams its sales.

    With ``rate`` (records per second) publishing is paced; it ends when the
    records run out or ``stop()`` says so, after appending what it holds.
    ``sleep`` serves both the pacing and the pauses between retries.
    """
    report = PublishReport()
    patience = retry or AppendRetry()
    pending: dict[Entity, list[OutgoingMessage]] = {}
    started = clock()
    sent = 0

    def flush() -> None:
        for entity, messages in pending.items():
            if messages:
                patience.run(partial(log.append, stream_of(entity), messages), sleep)
                report.published[entity.value] = report.published.get(
                    entity.value, 0
                ) + len(messages)
        pending.clear()

    for entity, document in records:
        if stop():
            break
        message = _message(entity, document, envelopes, report)
        if message is not None:
            pending.setdefault(entity, []).append(message)
            sent += 1
        if sum(len(m) for m in pending.values()) >= batch_size:
            flush()
            if progress:
                progress(sent)
        if rate:
            ahead = sent / rate - (clock() - started)
            if ahead > 0:
                flush()
                sleep(ahead)
    flush()

    return report
