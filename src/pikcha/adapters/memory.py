"""In-memory adapters: faithful, thread-safe and open to inspection by tests.

They keep the invariants and raise the errors of the real adapters, and expose
their state (messages appended, offsets committed, documents stored, alerts
sent) so that a test can look at what a use case did.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from pikcha.domain.entities import Entity
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    NotFoundError,
    PikchaError,
)
from pikcha.ports.crm import Change, UpsertReport
from pikcha.ports.event_log import Message, OutgoingMessage
from pikcha.ports.notifier import Alert
from pikcha.ports.objects import ObjectInfo

_STREAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class InMemoryEventLog:
    """Streams held in lists, ``partitions`` per stream (one by default).

    A message goes to partition ``crc32(key) % partitions``, so a key always
    lands in the same partition. Every consumer reads every partition of its
    streams, starting at the group's committed offsets.
    """

    def __init__(self, partitions: int = 1) -> None:
        if partitions < 1:
            raise ConfigurationError(
                f"partitions must be at least 1, got {partitions}; "
                "pass partitions=1 or more to InMemoryEventLog"
            )
        self.partitions = partitions
        self._streams: dict[str, list[list[Message]]] = {}
        self._offsets: dict[tuple[str, str, int], int] = {}
        self._changed = threading.Condition(threading.RLock())
        self._closed = False

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        with self._changed:
            partitions = self._open_stream(stream)
            for outgoing in messages:
                number = zlib.crc32(outgoing.key.encode()) % self.partitions
                partition = partitions[number]
                partition.append(
                    Message(
                        stream,
                        number,
                        len(partition),
                        outgoing.key,
                        bytes(outgoing.value),
                        dict(outgoing.headers),
                    )
                )
            self._changed.notify_all()

        return len(messages)

    def consumer(self, group: str, streams: Sequence[str]) -> InMemoryConsumer:
        with self._changed:
            for stream in streams:
                self._open_stream(stream)
            start = {
                (stream, number): self._offsets.get((group, stream, number), 0)
                for stream in dict.fromkeys(streams)
                for number in range(self.partitions)
            }

        return InMemoryConsumer(self, group, start)

    def end_offsets(self, stream: str) -> dict[int, int]:
        with self._changed:
            partitions = self._existing(stream)

            return {number: len(rows) for number, rows in enumerate(partitions)}

    def committed(self, group: str, stream: str) -> dict[int, int]:
        with self._changed:
            self._existing(stream)

            return {
                number: self._offsets.get((group, stream, number), 0)
                for number in range(self.partitions)
            }

    def streams(self) -> list[str]:
        with self._changed:
            return sorted(self._streams)

    def messages(self, stream: str) -> list[Message]:
        """Every message of ``stream``, partition by partition, in offset order."""
        with self._changed:
            return [row for rows in self._existing(stream) for row in rows]

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _read(
        self, positions: Mapping[tuple[str, int], int], limit: int
    ) -> list[Message]:
        batch: list[Message] = []
        for (stream, number), offset in positions.items():
            rows = self._streams[stream][number]
            batch.extend(rows[offset : offset + limit - len(batch)])
            if len(batch) >= limit:
                break

        return batch

    def _commit(self, group: str, stream: str, number: int, next_offset: int) -> None:
        key = (group, stream, number)
        self._offsets[key] = max(self._offsets.get(key, 0), next_offset)

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                "the in-memory event log was closed; create a new one"
            )

    def _open_stream(self, stream: str) -> list[list[Message]]:
        self._check_open()
        if not _STREAM_NAME.fullmatch(stream):
            raise ConfigurationError(
                f"stream name {stream!r} is not valid: use 1 to 249 letters, "
                "digits, '.', '_' or '-'"
            )

        return self._streams.setdefault(stream, [[] for _ in range(self.partitions)])

    def _existing(self, stream: str) -> list[list[Message]]:
        self._check_open()
        if stream not in self._streams:
            raise NotFoundError(
                f"stream {stream!r} does not exist; append to it or open a "
                "consumer on it first"
            )

        return self._streams[stream]


class InMemoryConsumer:
    """A member of a consumer group of :class:`InMemoryEventLog`."""

    def __init__(
        self, log: InMemoryEventLog, group: str, start: dict[tuple[str, int], int]
    ) -> None:
        self.group = group
        self.positions = start
        self._log = log
        self._turn = 0
        self._closed = False

    def poll(self, max_messages: int, timeout: float = 0.0) -> list[Message]:
        _check_batch(max_messages, "max_messages")
        deadline = time.monotonic() + timeout
        with self._log._changed:
            while True:
                self._check_open()
                batch = self._log._read(self._rotated(), max_messages)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    break
                self._log._changed.wait(remaining)
            for message in batch:
                self.positions[(message.stream, message.partition)] = message.offset + 1

        return batch

    def commit(self, messages: Sequence[Message]) -> None:
        highest: dict[tuple[str, int], int] = {}
        for message in messages:
            position = (message.stream, message.partition)
            highest[position] = max(highest.get(position, -1), message.offset)
        with self._log._changed:
            self._check_open()
            for (stream, number), offset in highest.items():
                self._log._commit(self.group, stream, number, offset + 1)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _rotated(self) -> dict[tuple[str, int], int]:
        # Start each poll at the next partition so that none starves the rest.
        items = list(self.positions.items())
        self._turn = (self._turn + 1) % max(len(items), 1)

        return dict(items[self._turn :] + items[: self._turn])

    def _check_open(self) -> None:
        self._log._check_open()
        if self._closed:
            raise InfrastructureError(
                f"this consumer of group {self.group!r} was closed; "
                "open a new one with EventLog.consumer"
            )


class InMemoryCrmStore:
    """Documents kept as canonical JSON text, with a change feed per entity."""

    def __init__(self) -> None:
        self.documents: dict[Entity, dict[str, str]] = {e: {} for e in Entity}
        self.feed: dict[Entity, list[str]] = {e: [] for e in Entity}
        self.marks: dict[str, int] = {}
        self._lock = threading.RLock()

    def upsert(
        self, entity: Entity, documents: Sequence[Mapping[str, Any]]
    ) -> UpsertReport:
        inserted = updated = unchanged = 0
        failed: list[tuple[str, str]] = []
        with self._lock:
            stored = self.documents[entity]
            for index, document in enumerate(documents):
                try:
                    entity_id, text = _canonical(entity, document)
                except ValueError as exc:
                    failed.append((f"{entity.value} document #{index}", str(exc)))
                    continue
                previous = stored.get(entity_id)
                if previous == text:
                    unchanged += 1
                    continue
                if previous is None:
                    inserted += 1
                else:
                    updated += 1
                stored[entity_id] = text
                self.feed[entity].append(entity_id)

        return UpsertReport(inserted, updated, unchanged, tuple(failed))

    def resend(self, entity: Entity, ids: Sequence[str]) -> int:
        with self._lock:
            known = [i for i in ids if i in self.documents[entity]]
            self.feed[entity].extend(known)

        return len(known)

    def changes(self, entity: Entity, after: int, limit: int) -> list[Change]:
        _check_batch(limit, "limit", minimum=0)
        with self._lock:
            ids = self.feed[entity][max(after, 0) : max(after, 0) + limit]
            stored = self.documents[entity]

            return [
                Change(seq, entity_id, json.loads(stored[entity_id]))
                for seq, entity_id in enumerate(ids, start=max(after, 0) + 1)
            ]

    def scan(
        self, entity: Entity, batch_size: int = 1000
    ) -> Iterator[Mapping[str, Any]]:
        _check_batch(batch_size, "batch_size")
        last: str | None = None
        while True:
            with self._lock:
                stored = self.documents[entity]
                ids = sorted(i for i in stored if last is None or i > last)
                batch = [stored[i] for i in ids[:batch_size]]
            for text in batch:
                yield json.loads(text)
            if len(batch) < batch_size:
                return
            last = ids[batch_size - 1]

    def count(self, entity: Entity) -> int:
        with self._lock:
            return len(self.documents[entity])

    def get_mark(self, name: str) -> int:
        with self._lock:
            return self.marks.get(name, 0)

    def set_mark(self, name: str, value: int) -> None:
        with self._lock:
            self.marks[name] = value

    def close(self) -> None:
        pass


class InMemoryObjectStore:
    """Objects in a dictionary; ``location`` gives a ``memory://`` URL."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        _check_key(key)
        data = bytes(data)
        info = ObjectInfo(
            key, len(data), hashlib.sha256(data).hexdigest(), content_type
        )
        with self._lock:
            self.objects[key] = (data, info)

        return info

    def get(self, key: str) -> bytes:
        return self._find(key)[0]

    def stat(self, key: str) -> ObjectInfo:
        return self._find(key)[1]

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        with self._lock:
            return [
                info
                for key, (_, info) in sorted(self.objects.items())
                if key.startswith(prefix)
            ]

    def location(self, key: str) -> str:
        _check_key(key)

        return f"memory://{key}"

    def _find(self, key: str) -> tuple[bytes, ObjectInfo]:
        _check_key(key)
        with self._lock:
            found = self.objects.get(key)
        if found is None:
            raise NotFoundError(f"object {key!r} does not exist in the memory store")

        return found


class InMemoryNotifier:
    """Keeps every alert in :attr:`sent`; raises ``error`` instead when given."""

    def __init__(self, error: PikchaError | None = None) -> None:
        self.sent: list[Alert] = []
        self.error = error
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            if self.error is not None:
                raise self.error
            self.sent.append(alert)


def _check_key(key: str) -> None:
    parts = set(key.split("/"))
    if "\\" in key or "\x00" in key or parts & {"", ".", ".."}:
        raise ConfigurationError(
            f"object key {key!r} is not valid: use a relative '/'-separated path "
            "with no empty, '.' or '..' parts, no backslash and no leading '/'"
        )


def _canonical(entity: Entity, document: Any) -> tuple[str, str]:
    field = entity.id_field
    if not isinstance(document, Mapping):
        raise ValueError(
            f"expected a JSON object with a string {field!r}, "
            f"got {type(document).__name__}"
        )
    entity_id = document.get(field)
    if not isinstance(entity_id, str):
        problem = "is missing" if entity_id is None else "is not a string"
        raise ValueError(f"field {field!r} {problem}")
    try:
        text = json.dumps(
            dict(document), ensure_ascii=False, sort_keys=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"document is not plain JSON: {exc}") from None

    return entity_id, text


def _check_batch(value: int, name: str, minimum: int = 1) -> None:
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
