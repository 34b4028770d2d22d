"""Column layouts of the Pikcha tables and the rows a batch of events makes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from pikcha.domain.cleaning import (
    CleanCustomer,
    CleanItem,
    CleanProduct,
    CleanPurchase,
    CleanRow,
    CleanStore,
    Rejection,
)
from pikcha.domain.entities import Entity
from pikcha.domain.errors import IntegrityError
from pikcha.ports.warehouse import ProjectedEvent

Row = tuple[Any, ...]

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS pikcha_migrations
(
    name String,
    checksum String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY name
"""


@dataclass(frozen=True, slots=True)
class Layout:
    raw: str
    clean: str
    view: str
    key: str
    row: type[CleanRow]

    @property
    def columns(self) -> tuple[str, ...]:
        """The clean row's own columns, without its items and lineage."""
        return tuple(f.name for f in fields(self.row) if f.name != "items")

    @property
    def clean_columns(self) -> tuple[str, ...]:
        return (*self.columns, *LINEAGE)


LAYOUTS: Mapping[Entity, Layout] = {
    Entity.STORE: Layout(
        "raw_stores", "clean_stores", "current_stores", "store_id", CleanStore
    ),
    Entity.PRODUCT: Layout(
        "raw_products", "clean_products", "current_products", "product_id", CleanProduct
    ),
    Entity.CUSTOMER: Layout(
        "raw_customers",
        "clean_customers",
        "current_customers",
        "customer_id",
        CleanCustomer,
    ),
    Entity.PURCHASE: Layout(
        "raw_purchases",
        "clean_purchases",
        "current_purchases",
        "purchase_id",
        CleanPurchase,
    ),
}
RAW_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "entity_id",
    "occurred_at",
    "source",
    "content_hash",
    "mask_key_id",
    "payload",
    "stream",
    "partition",
    "offset",
)
REJECTED_COLUMNS = (
    "entity",
    "event_id",
    "entity_id",
    "content_hash",
    "rule",
    "field",
    "problem",
    "payload",
    "version",
)
LINEAGE = ("event_id", "content_hash", "version")
ITEM_COLUMNS = tuple(f.name for f in fields(CleanItem))
ITEM_TABLE_COLUMNS = (*ITEM_COLUMNS, "event_id", "version")
QUALITY_COLUMNS = (
    "load_id",
    "checked_at",
    "table_name",
    "rows",
    "distinct_rows",
    "duplicates",
    "duplicate_share",
    "rejected",
    "rejected_by_rule",
)


def check_outcome(event: ProjectedEvent) -> None:
    """Refuse an event whose clean row is of another entity."""
    expected = LAYOUTS[event.raw.entity].row
    if not isinstance(event.outcome, (expected, Rejection)):
        raise IntegrityError(
            f"event {event.raw.event_id} of a {event.raw.entity.value} carries a "
            f"{type(event.outcome).__name__}; project it to a {expected.__name__} "
            "or a Rejection"
        )


@dataclass
class Batch:
    """The rows of each table that a batch of new events adds."""

    raw: dict[Entity, list[Row]] = field(default_factory=lambda: defaultdict(list))
    clean: dict[Entity, list[Row]] = field(default_factory=lambda: defaultdict(list))
    items: list[Row] = field(default_factory=list)
    rejected: list[Row] = field(default_factory=list)

    @classmethod
    def of(cls, events: Sequence[ProjectedEvent]) -> Batch:
        batch = cls()
        for event in events:
            batch.add(event)

        return batch

    def add(self, event: ProjectedEvent) -> None:
        entry, outcome = event.raw, event.outcome
        self.raw[entry.entity].append(_RAW_VALUES(entry))
        if isinstance(outcome, Rejection):
            self.rejected.append(
                (
                    entry.entity.value,
                    entry.event_id,
                    entry.entity_id,
                    entry.content_hash,
                    outcome.rule.value,
                    outcome.field,
                    outcome.problem,
                    entry.payload,
                    entry.offset,
                )
            )
            return
        values = _CLEAN_VALUES[entry.entity](outcome)
        self.clean[entry.entity].append(
            (*values, entry.event_id, entry.content_hash, entry.offset)
        )
        if isinstance(outcome, CleanPurchase):
            lineage = (entry.event_id, entry.offset)
            self.items.extend(
                [(*_ITEM_VALUES(item), *lineage) for item in outcome.items]
            )


# attrgetter reads a row's values in one call, several times faster than a
# getattr per column: this runs for every event and every purchase line.
_RAW_VALUES = attrgetter(*RAW_COLUMNS)
_ITEM_VALUES = attrgetter(*ITEM_COLUMNS)
_CLEAN_VALUES = {
    entity: attrgetter(*layout.columns) for entity, layout in LAYOUTS.items()
}
