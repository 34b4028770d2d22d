"""Check data quality and alert on tables that are mostly repeated data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from pikcha.domain.errors import InfrastructureError, PikchaError
from pikcha.domain.quality import DEFAULT_THRESHOLD, TableMetrics, as_fraction
from pikcha.ports.notifier import Alert, Notifier
from pikcha.ports.warehouse import Warehouse


@dataclass(frozen=True)
class QualityReport:
    load_id: str
    checked_at: datetime
    threshold: Fraction
    metrics: Sequence[TableMetrics]
    alerted: Sequence[str]


def duplicate_alert(
    metrics: TableMetrics, threshold: Fraction, load_id: str, checked_at: datetime
) -> Alert:
    percent = f"{float(threshold) * 100:g}%"
    share = f"{metrics.duplicate_share:.1%}"
    text = (
        f"Table {metrics.table}: duplicate share {share} is above {percent}. "
        f"{metrics.duplicates} of {metrics.rows} rows repeat an earlier row "
        f"({metrics.distinct} distinct). Window: every event projected up to "
        f"{checked_at.isoformat(timespec='seconds')} (check {load_id})."
    )

    return Alert(
        title=f"Pikcha: duplicate share above {percent} in {metrics.table}",
        text=text,
        labels={"table": metrics.table, "load_id": load_id, "share": share},
    )


def check_quality(
    warehouse: Warehouse,
    notifier: Notifier,
    load_id: str,
    checked_at: datetime,
    threshold: Fraction | float | str = DEFAULT_THRESHOLD,
) -> QualityReport:
    """Record every table's metrics and send one alert per table over the threshold."""
    limit = as_fraction(threshold)
    metrics = warehouse.quality()
    warehouse.record_quality(load_id, checked_at, metrics)
    alerted = []
    failures: list[str] = []
    for table in metrics:
        if not table.over(limit):
            continue
        # One table's failed alert must not silence the others.
        try:
            notifier.send(duplicate_alert(table, limit, load_id, checked_at))
        except PikchaError as exc:
            failures.append(f"{table.table}: {exc}")
            continue
        alerted.append(table.table)
    if failures:
        raise InfrastructureError(
            f"{len(failures)} of {len(failures) + len(alerted)} alerts were not "
            f"delivered (metrics of check {load_id} are recorded): "
            + "; ".join(failures)
        )

    return QualityReport(load_id, checked_at, limit, metrics, alerted)
