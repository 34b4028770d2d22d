"""Quality metrics of a table, as pure functions.

*Repeated data* are different events with the same ``entity_id`` and the same
``content_hash``. A table's duplicate share is the part of its rows that repeat
an earlier row: ``(rows - distinct) / rows``, where ``distinct`` counts the
distinct ``(entity_id, content_hash)`` pairs. Redelivered events (the same
``event_id`` again) never reach a table and are not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

DEFAULT_THRESHOLD = Fraction(1, 2)


@dataclass(frozen=True)
class TableMetrics:
    table: str
    rows: int
    distinct: int
    rejected: Mapping[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.rows - self.distinct

    @property
    def duplicate_share(self) -> float:
        return float(self.exact_share)

    @property
    def exact_share(self) -> Fraction:
        return Fraction(self.duplicates, self.rows) if self.rows else Fraction(0)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def over(self, threshold: Fraction | float | str) -> bool:
        """True when the duplicate share is strictly above the threshold."""
        return self.exact_share > as_fraction(threshold)


def as_fraction(value: Fraction | float | str) -> Fraction:
    if isinstance(value, float):
        value = repr(value)
    return Fraction(value)


def table_metrics(
    table: str,
    keys: Iterable[tuple[str, str]],
    rejected_rules: Iterable[str] = (),
) -> TableMetrics:
    """Metrics of a table from its rows' ``(entity_id, content_hash)`` pairs."""
    rows = 0
    seen: set[tuple[str, str]] = set()
    for key in keys:
        rows += 1
        seen.add(key)

    return TableMetrics(table, rows, len(seen), dict(Counter(rejected_rules)))
