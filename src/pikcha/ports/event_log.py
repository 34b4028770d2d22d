"""EventLog: named, append-only, partitioned streams read by consumer groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to append: ``key`` routes it (all messages of a key keep order)."""

    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message and its position: ``(stream, partition, offset)``."""

    stream: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Consumer(Protocol):
    """One member of a consumer group, reading some streams.

    A new member starts each partition at the group's committed position (the
    start of the stream when nothing was committed) and then moves forward
    with each :meth:`poll`, whether or not it commits. Messages of one
    partition arrive in offset order. What was polled but not committed is
    delivered again to the next member that reads that partition: delivery is
    at least once, and the reader makes it effectively once.
    """

    def poll(self, max_messages: int, timeout: float = 0.0) -> list[Message]:
        """Up to ``max_messages`` next messages; waits at most ``timeout`` seconds
        for the first one, and returns an empty list when there is none."""
        ...

    def commit(self, messages: Sequence[Message]) -> None:
        """Record, for every partition in ``messages``, that the group has
        processed everything up to and including the highest offset given."""
        ...

    def close(self) -> None:
        """Leave the group without committing anything more."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class EventLog(Protocol):
    """Append envelopes to streams and read them back per consumer group.

    Appending is durable when :meth:`append` returns; a failure raises a
    :class:`~pikcha.domain.errors.PikchaError` and never drops silently.
    Offsets of a partition start at 0 and grow by one per message.
    """

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        """Append the messages in order; returns how many were appended."""
        ...

    def consumer(self, group: str, streams: Sequence[str]) -> Consumer:
        """A new member of ``group`` reading ``streams`` (created when missing)."""
        ...

    def end_offsets(self, stream: str) -> dict[int, int]:
        """Per partition, the offset the next appended message will get."""
        ...

    def committed(self, group: str, stream: str) -> dict[int, int]:
        """Per partition, the next offset the group will read (0 when none)."""
        ...

    def streams(self) -> list[str]:
        """The names of the streams that exist, sorted."""
        ...

    def close(self) -> None: ...
