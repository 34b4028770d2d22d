"""ObjectStore: named objects (bytes) in one bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str
    content_type: str


class ObjectStore(Protocol):
    """Put, get, list and stat whole objects.

    A put replaces the object atomically: a reader sees the old object or the
    new one, never a part. Keys are ``/``-separated relative paths without
    ``..``; a bad key raises :class:`~pikcha.domain.errors.ConfigurationError`
    and a missing object :class:`~pikcha.domain.errors.NotFoundError`.
    """

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ObjectInfo: ...

    def get(self, key: str) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """The objects whose key starts with ``prefix``, sorted by key."""
        ...

    def location(self, key: str) -> str:
        """Where a person finds the object (a path or URL), for summaries."""
        ...
