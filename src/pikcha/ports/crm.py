"""CrmStore: the shop's own system of record, holding raw JSON documents."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pikcha.domain.entities import Entity


@dataclass(frozen=True)
class UpsertReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """``(record, reason)`` for each document that was not stored."""

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __add__(self, other: UpsertReport) -> UpsertReport:
        return UpsertReport(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            (*self.failed, *other.failed),
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of an entity's change feed: ``seq`` grows by one per entry."""

    seq: int
    entity_id: str
    document: Mapping[str, Any]


class CrmStore(Protocol):
    """Raw documents by entity and id, with a change feed for publishing.

    Documents are kept exactly as given (personal data included: this is the
    shop's own system). Every insert or content change appends one entry to the
    entity's change feed; storing an identical document again changes nothing.
    :meth:`resend` appends entries for unchanged documents, as a system does
    when a user sends the same record twice. Documents without an id string
    under the entity's id field are reported in ``failed`` and the rest stored.
    """

    def upsert(
        self, entity: Entity, documents: Sequence[Mapping[str, Any]]
    ) -> UpsertReport: ...

    def resend(self, entity: Entity, ids: Sequence[str]) -> int:
        """Append a change entry for each stored id; returns how many."""
        ...

    def changes(self, entity: Entity, after: int, limit: int) -> list[Change]:
        """Up to ``limit`` entries with ``seq > after``, in ``seq`` order, each
        holding the document as it is now."""
        ...

    def scan(
        self, entity: Entity, batch_size: int = 1000
    ) -> Iterator[Mapping[str, Any]]:
        """Every stored document of the entity, in id order."""
        ...

    def count(self, entity: Entity) -> int: ...

    def get_mark(self, name: str) -> int:
        """A named high-water mark (0 when never set)."""
        ...

    def set_mark(self, name: str, value: int) -> None: ...

    def close(self) -> None: ...
