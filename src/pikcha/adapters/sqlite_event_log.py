"""The embedded event log: one SQLite file in WAL mode.

One process writes and several may read at once. Each stream has one
partition (0); offsets are assigned densely inside ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import orjson

from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    NotFoundError,
)
from pikcha.ports.event_log import Message, OutgoingMessage

_STREAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_POLL_INTERVAL = 0.05
_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    PRIMARY KEY (stream, "partition", "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    "group" TEXT NOT NULL,
    stream TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY ("group", stream, "partition")
) WITHOUT ROWID;
"""


class SqliteEventLog:
    """An event log in the SQLite file at ``path`` (created with its folder).

    Durable when :meth:`append` returns (``synchronous=FULL``). Readers in
    other processes see appended messages at their next poll; a waiting poll
    looks again every 50 ms. Each thread gets its own connection, and
    :meth:`close` closes them all. A write waits up to ``busy_timeout`` seconds
    for another writer's lock, then raises a transient
    :class:`~pikcha.domain.errors.InfrastructureError`.
    """

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_ms = int(busy_timeout * 1000)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the folder of the event log {str(self.path)!r}: "
                f"{exc.strerror}; set PIKCHA_EVENT_LOG to sqlite:///PATH in a "
                "writable folder"
            ) from exc
        with self._translate():
            connection = self._connection()
            try:
                connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            except sqlite3.Error:
                if connection.in_transaction:
                    connection.rollback()
                raise

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        _check_stream(stream)
        with self._transaction() as connection:
            self._create(connection, stream)
            (start,) = connection.execute(
                'SELECT COALESCE(MAX("offset") + 1, 0) FROM messages '
                'WHERE stream = ? AND "partition" = 0',
                (stream,),
            ).fetchone()
            connection.executemany(
                'INSERT INTO messages (stream, "partition", "offset", key, value, '
                "headers) VALUES (?, 0, ?, ?, ?, ?)",
                [
                    (
                        stream,
                        start + number,
                        message.key,
                        bytes(message.value),
                        json.dumps(dict(message.headers), ensure_ascii=False),
                    )
                    for number, message in enumerate(messages)
                ],
            )

        return len(messages)

    def consumer(self, group: str, streams: Sequence[str]) -> SqliteConsumer:
        for stream in streams:
            _check_stream(stream)
        with self._transaction() as connection:
            for stream in streams:
                self._create(connection, stream)
        start = {
            (stream, number): offset
            for stream in dict.fromkeys(streams)
            for number, offset in self.committed(group, stream).items()
        }

        return SqliteConsumer(self, group, start)

    def end_offsets(self, stream: str) -> dict[int, int]:
        self._require(stream)
        with self._translate():
            (end,) = (
                self._connection()
                .execute(
                    'SELECT COALESCE(MAX("offset") + 1, 0) FROM messages '
                    'WHERE stream = ? AND "partition" = 0',
                    (stream,),
                )
                .fetchone()
            )

        return {0: end}

    def committed(self, group: str, stream: str) -> dict[int, int]:
        self._require(stream)
        with self._translate():
            rows = (
                self._connection()
                .execute(
                    'SELECT "partition", next_offset FROM group_offsets '
                    'WHERE "group" = ? AND stream = ?',
                    (group, stream),
                )
                .fetchall()
            )

        return {0: 0} | dict(rows)

    def streams(self) -> list[str]:
        with self._translate():
            rows = self._connection().execute("SELECT name FROM streams").fetchall()

        return sorted(name for (name,) in rows)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def _read(self, stream: str, offset: int, limit: int) -> list[Message]:
        with self._translate():
            rows = (
                self._connection()
                .execute(
                    'SELECT "offset", key, value, headers FROM messages '
                    'WHERE stream = ? AND "partition" = 0 AND "offset" >= ? '
                    'ORDER BY "offset" LIMIT ?',
                    (stream, offset, limit),
                )
                .fetchall()
            )

        # Headers are text to text, written by json.dumps: orjson reads them
        # to the same mapping, several times faster.
        return [
            Message(stream, 0, number, key, bytes(value), orjson.loads(headers))
            for number, key, value, headers in rows
        ]

    def _commit(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        with self._transaction() as connection:
            connection.executemany(
                'INSERT INTO group_offsets ("group", stream, "partition", '
                "next_offset) VALUES (?, ?, ?, ?) "
                'ON CONFLICT ("group", stream, "partition") DO UPDATE SET '
                "next_offset = MAX(next_offset, excluded.next_offset)",
                [
                    (group, stream, number, offset + 1)
                    for (stream, number), offset in offsets.items()
                ],
            )

    def _create(self, connection: sqlite3.Connection, stream: str) -> None:
        connection.execute(
            "INSERT OR IGNORE INTO streams (name, partitions) VALUES (?, 1)",
            (stream,),
        )

    def _require(self, stream: str) -> None:
        with self._translate():
            found = (
                self._connection()
                .execute("SELECT 1 FROM streams WHERE name = ?", (stream,))
                .fetchone()
            )
        if found is None:
            raise NotFoundError(
                f"stream {stream!r} does not exist in the event log "
                f"{str(self.path)!r}; append to it or open a consumer on it first"
            )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "db", None)
        if connection is not None and not self._closed:
            return connection
        with self._lock:
            if self._closed:
                raise InfrastructureError(
                    f"the event log {str(self.path)!r} was closed; open a new one"
                )
            connection = sqlite3.connect(
                self.path,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._connections.append(connection)
        self._local.db = connection
        connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")

        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._translate():
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.rollback()
                raise

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            raise InfrastructureError(
                f"event log {str(self.path)!r}: {text}",
                transient="locked" in text or "busy" in text,
            ) from exc


class SqliteConsumer:
    """A member of a consumer group of :class:`SqliteEventLog`."""

    def __init__(
        self, log: SqliteEventLog, group: str, start: dict[tuple[str, int], int]
    ) -> None:
        self.group = group
        self.positions = start
        self._log = log
        self._turn = 0
        self._closed = False

    def poll(self, max_messages: int, timeout: float = 0.0) -> list[Message]:
        if max_messages < 1:
            raise ConfigurationError(
                f"max_messages must be at least 1, got {max_messages}"
            )
        deadline = time.monotonic() + timeout
        while True:
            batch = self._read(max_messages)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                break
            time.sleep(min(_POLL_INTERVAL, remaining))
        for message in batch:
            self.positions[(message.stream, message.partition)] = message.offset + 1

        return batch

    def commit(self, messages: Sequence[Message]) -> None:
        self._check_open()
        highest: dict[tuple[str, int], int] = {}
        for message in messages:
            position = (message.stream, message.partition)
            highest[position] = max(highest.get(position, -1), message.offset)
        if highest:
            self._log._commit(self.group, highest)

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

    def _read(self, limit: int) -> list[Message]:
        self._check_open()
        items = list(self.positions.items())
        self._turn = (self._turn + 1) % max(len(items), 1)
        batch: list[Message] = []
        for (stream, _), offset in items[self._turn :] + items[: self._turn]:
            batch.extend(self._log._read(stream, offset, limit - len(batch)))
            if len(batch) >= limit:
                break

        return batch

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                f"this consumer of group {self.group!r} was closed; "
                "open a new one with EventLog.consumer"
            )


def _check_stream(stream: str) -> None:
    if not _STREAM_NAME.fullmatch(stream):
        raise ConfigurationError(
            f"stream name {stream!r} is not valid: use 1 to 249 letters, "
            "digits, '.', '_' or '-'"
        )
