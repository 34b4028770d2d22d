"""Warehouse: the analytical store with raw, clean, rejected and mart layers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pikcha.domain.cleaning import CleanRow, Rejection
from pikcha.domain.entities import Entity
from pikcha.domain.quality import TableMetrics

MARTS = ("customer_aggregates", "store_daily", "product_sales", "city_sales")
"""The marts :meth:`Warehouse.build_marts` rebuilds, by name."""

VIEWS = (
    "v_store_sales",
    "v_top_products",
    "v_daily_sales",
    "v_customer_activity",
    "v_city_sales",
    "v_duplicate_share",
)
"""The views dashboard panels read, by name; :meth:`Warehouse.query` runs them."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """An envelope as received, with its lineage in the event log."""

    entity: Entity
    event_id: str
    event_type: str
    schema_version: int
    entity_id: str
    occurred_at: datetime
    source: str
    content_hash: str
    mask_key_id: str
    payload: str
    stream: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ProjectedEvent:
    """A raw event and what cleaning made of it: a clean row or a rejection."""

    raw: RawEvent
    outcome: CleanRow | Rejection


@dataclass(frozen=True)
class Reconciliation:
    """How an entity's raw events divide up.

    Among the events that passed every rule, the clean layer holds the latest
    per ``entity_id`` (by position in the log); ``repeated`` counts valid events
    that repeat the ``(entity_id, content_hash)`` of another valid event and
    ``superseded`` the remaining older versions.
    """

    entity: Entity
    raw: int
    clean: int
    rejected: int
    repeated: int
    superseded: int

    @property
    def balanced(self) -> bool:
        return self.raw == self.clean + self.rejected + self.repeated + self.superseded


class Warehouse(Protocol):
    """Layers of tables fed by the projection, and the queries over them.

    :meth:`write` is idempotent by ``event_id``: writing an event again, in the
    same batch or any later one, leaves every table as if it had been written
    once, whatever crash happened in between. Within an entity, the clean row
    is the valid event with the highest ``(partition, offset)``; an event of a
    given ``entity_id`` always comes from one partition.
    """

    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied, in order; returns their names."""
        ...

    def write(self, events: Sequence[ProjectedEvent]) -> int:
        """Store a batch; returns how many events were new."""
        ...

    def build_marts(self, now: datetime) -> dict[str, int]:
        """Rebuild every mart from the clean layer; rows per mart."""
        ...

    def clean_rows(self, entity: Entity) -> Iterator[Any]:
        """The clean layer of an entity, one row per id, in id order.

        Rows are the clean dataclasses of :mod:`pikcha.domain.cleaning`;
        purchases carry their items.
        """
        ...

    def quality(self) -> list[TableMetrics]:
        """Metrics of each entity's raw table, with rejections by rule."""
        ...

    def record_quality(
        self, load_id: str, checked_at: datetime, metrics: Sequence[TableMetrics]
    ) -> None:
        """Keep one quality check's metrics in the data-quality mart."""
        ...

    def reconcile(self) -> Mapping[Entity, Reconciliation]: ...

    def query(self, name: str) -> list[dict[str, Any]]:
        """The rows of a mart or view named in :data:`MARTS` or :data:`VIEWS`."""
        ...

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows in a stable order, for comparing two warehouses."""
        ...

    def reset(self) -> None:
        """Drop every table Pikcha made; :meth:`migrate` builds them anew."""
        ...

    def close(self) -> None: ...
