"""The projector's batches: positions follow writes; the process is left as found."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.memory_warehouse import InMemoryWarehouse
from pikcha.application.generate import GeneratorConfig, iter_records
from pikcha.application.project import Projector, ProjectorConfig, ProjectReport
from pikcha.application.publish import EnvelopeFactory, publish_records
from pikcha.domain.errors import InfrastructureError
from pikcha.domain.masking import Masker
from pikcha.ports.warehouse import ProjectedEvent
from pikcha.testing import fixed_clock, sequential_ids

NOW = datetime(2025, 9, 30, 12, 0)


def committed(log: InMemoryEventLog) -> int:
    return sum(
        sum(log.committed("warehouse", stream).values())
        for stream in ("stores", "products", "customers", "purchases")
    )


class WatchedWarehouse(InMemoryWarehouse):
    """Notes how much was committed when each write began; may fail for good."""

    def __init__(self, log: InMemoryEventLog, fail_at: int | None = None) -> None:
        super().__init__()
        self.log = log
        self.fail_at = fail_at
        self.committed_at_write: list[int] = []

    def write(self, events: Sequence[ProjectedEvent]) -> int:
        if len(self.committed_at_write) == self.fail_at:
            raise InfrastructureError("the warehouse is gone", transient=False)
        self.committed_at_write.append(committed(self.log))

        return super().write(events)


@pytest.fixture
def log() -> InMemoryEventLog:
    log = InMemoryEventLog()
    factory = EnvelopeFactory(
        Masker(b"project-key-0123456789ab", "test"),
        sequential_ids("e"),
        fixed_clock(datetime(2025, 9, 30, tzinfo=UTC)),
    )
    publish_records(
        iter_records(GeneratorConfig(seed=2, now=NOW, purchases=200)), log, factory
    )

    return log


def projector(log: InMemoryEventLog, warehouse: InMemoryWarehouse) -> Projector:
    warehouse.migrate()

    return Projector(
        log, warehouse, lambda: NOW, ProjectorConfig(batch_size=50, poll_timeout=0)
    )


def test_each_batch_is_committed_after_its_write_and_before_the_next(
    log: InMemoryEventLog,
) -> None:
    """When batch k is written, exactly the batches before it are committed."""
    warehouse = WatchedWarehouse(log)

    report = projector(log, warehouse).run()

    assert report.batches == len(warehouse.committed_at_write) > 2
    assert warehouse.committed_at_write == [
        min(50 * k, report.read) for k in range(report.batches)
    ]
    assert committed(log) == report.read


def test_a_failed_write_commits_nothing_of_its_batch(log: InMemoryEventLog) -> None:
    """The error surfaces from run, and the position stays before the batch."""
    warehouse = WatchedWarehouse(log, fail_at=2)

    with pytest.raises(InfrastructureError, match="gone"):
        projector(log, warehouse).run()

    assert committed(log) == 100


def test_the_collector_thresholds_are_restored_after_a_run(
    log: InMemoryEventLog,
) -> None:
    """The young generation is collected less often during a run, not after."""
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    runner = projector(log, InMemoryWarehouse())

    def note(_: ProjectReport) -> None:
        during.append(gc.get_threshold())

    runner.on_batch = note
    runner.run()

    assert gc.get_threshold() == before
    assert during and all(limits[0] >= before[0] for limits in during)
