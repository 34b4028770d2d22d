"""The pipeline: every use case over one set of ports.

A :class:`Pipeline` is built from adapters (by the container from settings, by
:func:`pikcha.testing.memory_pipeline` for tests, or by hand) and runs one step
or all of them. Ids and time come from the callables it is given.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from pikcha.application.features import FeatureExport, export_features
from pikcha.application.load import LoadReport, load_directory
from pikcha.application.project import Projector, ProjectorConfig, ProjectReport
from pikcha.application.publish import (
    AppendRetry,
    EnvelopeFactory,
    PublishReport,
    publish_changes,
)
from pikcha.application.quality import QualityReport, check_quality
from pikcha.domain.masking import Masker
from pikcha.domain.quality import DEFAULT_THRESHOLD
from pikcha.ports.crm import CrmStore
from pikcha.ports.event_log import EventLog
from pikcha.ports.features import FeatureEngine
from pikcha.ports.notifier import Notifier
from pikcha.ports.objects import ObjectStore
from pikcha.ports.warehouse import Warehouse


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return uuid.uuid4().hex


def end_of_day(day: date) -> datetime:
    """The last instant of a day: features "as of" a date see all of it."""
    return datetime.combine(day, dtime.max)


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    stages: list[Stage] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)


@dataclass
class Pipeline:
    """The ports Pikcha runs on, and the steps it runs over them."""

    event_log: EventLog
    warehouse: Warehouse
    crm: CrmStore
    objects: ObjectStore
    features: FeatureEngine
    notifier: Notifier
    masker: Masker
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_event_id
    threshold: Any = DEFAULT_THRESHOLD
    batch_size: int = 5000
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    retry: AppendRetry = field(default_factory=AppendRetry)

    def wall_clock(self) -> datetime:
        """The shop's local wall-clock time, naive, as its records hold it."""
        return self.clock().astimezone().replace(tzinfo=None)

    def load(
        self, directory: Path, progress: Callable[[int], None] | None = None
    ) -> LoadReport:
        return load_directory(directory, self.crm, min(self.batch_size, 1000), progress)

    def publish(
        self, resend: bool = False, progress: Callable[[int], None] | None = None
    ) -> PublishReport:
        factory = EnvelopeFactory(self.masker, self.new_id, self.clock)

        return publish_changes(
            self.crm,
            self.event_log,
            factory,
            min(self.batch_size, 5000),
            resend,
            progress,
            retry=self.retry,
        )

    def make_projector(
        self, on_batch: Callable[[ProjectReport], None] | None = None
    ) -> Projector:
        projector = Projector(
            self.event_log, self.warehouse, self.wall_clock, self.projector, on_batch
        )
        # The warehouse may be held by another process, or down, for a while:
        # wait for it with the patience the projection itself has.
        projector.retry(self.warehouse.migrate)

        return projector

    def project(
        self,
        follow: bool = False,
        on_batch: Callable[[ProjectReport], None] | None = None,
    ) -> ProjectReport:
        return self.make_projector(on_batch).run(follow=follow)

    def build_marts(self) -> dict[str, int]:
        return self.warehouse.build_marts(self.wall_clock())

    def export_features(self, as_of: datetime | None = None) -> FeatureExport:
        return export_features(
            self.features, self.objects, as_of or end_of_day(self.wall_clock().date())
        )

    def check_quality(self, load_id: str | None = None) -> QualityReport:
        return check_quality(
            self.warehouse,
            self.notifier,
            load_id or self.new_id(),
            self.clock(),
            self.threshold,
        )

    def replay(
        self, on_batch: Callable[[ProjectReport], None] | None = None
    ) -> ProjectReport:
        """Drop the warehouse and rebuild it from the start of every stream."""
        config = replace(self.projector, group=f"replay-{self.new_id()}")
        projector = Projector(
            self.event_log, self.warehouse, self.wall_clock, config, on_batch
        )
        # As for a projection: a warehouse held by another process, or down,
        # is waited for before anything is dropped.
        projector.retry(self.warehouse.reset)
        projector.retry(self.warehouse.migrate)
        report = projector.run()
        self.build_marts()

        return report

    def run(
        self,
        source: Path,
        as_of: datetime | None = None,
        run_id: str | None = None,
        before: Callable[[RunSummary], None] | None = None,
    ) -> RunSummary:
        """Load, publish, project, build marts, export features and check quality."""
        summary = RunSummary(run_id or self.new_id())
        if before:
            before(summary)
        with timed(summary, "load") as stage:
            loaded = self.load(source)
            stage.counts = {
                "records": sum(loaded.records.values()),
                "re-sent": loaded.resent,
                "problems": len(loaded.problems),
            }
        with timed(summary, "publish") as stage:
            published = self.publish()
            stage.counts = {"events": published.total}
        with timed(summary, "project") as stage:
            projected = self.project()
            stage.counts = {
                "events": projected.projected,
                "new": projected.new,
                "dead_letters": projected.dead_lettered,
            }
        with timed(summary, "marts") as stage:
            stage.counts = dict(self.build_marts())
        with timed(summary, "features") as stage:
            export = self.export_features(as_of)
            stage.counts = {"customers": export.rows, "engine": export.engine}
            summary.outputs["features csv"] = self.objects.location(export.csv_key)
            summary.outputs["features parquet"] = self.objects.location(
                export.parquet_key
            )
            summary.outputs["manifest"] = self.objects.location(export.manifest_key)
        with timed(summary, "quality") as stage:
            quality = self.check_quality(summary.run_id)
            stage.counts = {
                "tables": len(quality.metrics),
                "alerts": len(quality.alerted),
            }
            key = f"quality/{summary.run_id}.json"
            self.objects.put(key, quality_json(quality), "application/json")
            summary.outputs["quality report"] = self.objects.location(key)

        return summary


def quality_json(report: QualityReport) -> bytes:
    document = {
        "load_id": report.load_id,
        "checked_at": report.checked_at.isoformat(),
        "threshold": str(report.threshold),
        "alerted": list(report.alerted),
        "tables": [
            {
                "table": m.table,
                "rows": m.rows,
                "distinct": m.distinct,
                "duplicates": m.duplicates,
                "duplicate_share": m.duplicate_share,
                "rejected": dict(m.rejected),
            }
            for m in report.metrics
        ],
    }

    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


@contextmanager
def timed(summary: RunSummary, name: str) -> Iterator[Stage]:
    stage = Stage(name)
    started = time.perf_counter()
    try:
        yield stage
    finally:
        stage.seconds = time.perf_counter() - started
        summary.stages.append(stage)
