"""Publishing waits out an event log that fails transiently, within its patience."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest
from structlog.testing import capture_logs

from pikcha.adapters.memory import InMemoryCrmStore, InMemoryEventLog
from pikcha.application.publish import (
    AppendRetry,
    EnvelopeFactory,
    mark_name,
    publish_changes,
    publish_records,
)
from pikcha.domain.entities import Entity
from pikcha.domain.errors import InfrastructureError
from pikcha.domain.masking import Masker
from pikcha.ports.event_log import OutgoingMessage
from pikcha.testing import TEST_KEY, fixed_clock, sequential_ids
from tests.unit.domain.records import product

NOW = datetime(2025, 9, 30, 12, 0)
PATIENCE = AppendRetry(backoff=0.5, max_backoff=2.0, max_wait=5.0)


class FailingLog(InMemoryEventLog):
    """An in-memory log whose first ``failures`` appends raise ``error``."""

    def __init__(self, failures: int, error: InfrastructureError) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.attempts = 0

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error

        return super().append(stream, messages)


def down() -> InfrastructureError:
    return InfrastructureError("Kafka at 127.0.0.1:9092: broker down", transient=True)


def envelopes() -> EnvelopeFactory:
    return EnvelopeFactory(Masker(TEST_KEY, "test"), sequential_ids(), fixed_clock(NOW))


def products(count: int) -> list[tuple[Entity, dict[str, object]]]:
    return [(Entity.PRODUCT, {**product(), "id": f"prd-{n}"}) for n in range(count)]


def published(log: InMemoryEventLog) -> int:
    return sum(log.end_offsets("products").values())


def test_a_transient_failure_is_retried_after_doubling_pauses() -> None:
    """Three refusals are waited out with pauses of 0.5, 1 and 2 s; all lands."""
    log = FailingLog(3, down())
    pauses: list[float] = []

    with capture_logs() as logs:
        report = publish_records(
            products(3), log, envelopes(), sleep=pauses.append, retry=PATIENCE
        )

    assert pauses == [0.5, 1.0, 2.0]
    assert [e["attempt"] for e in logs if e["event"] == "append_retried"] == [1, 2, 3]
    assert report.total == published(log) == 3


def test_a_permanent_failure_is_raised_at_once() -> None:
    """An error that waiting cannot cure is raised without a pause."""
    log = FailingLog(1, InfrastructureError("topic name refused"))
    pauses: list[float] = []

    with pytest.raises(InfrastructureError, match="topic name refused"):
        publish_records(
            products(3), log, envelopes(), sleep=pauses.append, retry=PATIENCE
        )

    assert pauses == []
    assert log.attempts == 1


def test_when_patience_runs_out_the_error_names_the_setting_to_raise() -> None:
    """Pauses adding up to max_wait, then one transient error, chained, that
    keeps the log's message and names PIKCHA_PUBLISH_MAX_WAIT."""
    error = down()
    log = FailingLog(100, error)
    pauses: list[float] = []

    with pytest.raises(InfrastructureError) as caught:
        publish_records(
            products(3), log, envelopes(), sleep=pauses.append, retry=PATIENCE
        )

    assert pauses == [0.5, 1.0, 2.0, 1.5]
    assert caught.value.transient
    assert caught.value.__cause__ is error
    assert "127.0.0.1:9092: broker down" in str(caught.value)
    assert "retried for 5 s" in str(caught.value)
    assert "PIKCHA_PUBLISH_MAX_WAIT" in str(caught.value)


def test_publishing_changes_saves_the_mark_only_once_the_batch_is_appended() -> None:
    """The feed position moves after the retried append succeeds, not before."""
    crm = InMemoryCrmStore()
    crm.upsert(Entity.PRODUCT, [document for _, document in products(4)])
    log = FailingLog(2, down())
    marks: list[int] = []

    def pause(seconds: float) -> None:
        marks.append(crm.get_mark(mark_name(Entity.PRODUCT)))

    report = publish_changes(crm, log, envelopes(), retry=PATIENCE, sleep=pause)

    assert marks == [0, 0]
    assert report.published["product"] == published(log) == 4
    assert crm.get_mark(mark_name(Entity.PRODUCT)) > 0
