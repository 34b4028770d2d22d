"""The embedded CRM: raw documents and their change feed in one SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError, InfrastructureError
from pikcha.ports.crm import Change, UpsertReport

# Stays below SQLite's limit on the number of parameters of one statement.
_CHUNK = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    entity TEXT NOT NULL,
    seq INTEGER NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (entity, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""


class SqliteCrmStore:
    """A CRM store in the SQLite file at ``path`` (created with its folder).

    Documents are kept as canonical JSON text (sorted keys, UTF-8), so two
    documents are identical when their texts are. One connection serves every
    thread, one call at a time; each upsert or resend is one transaction.
    """

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the folder of the CRM store {str(self.path)!r}: "
                f"{exc.strerror}; set PIKCHA_CRM to sqlite:///PATH in a "
                "writable folder"
            ) from exc
        with self._translate():
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")

    def upsert(
        self, entity: Entity, documents: Sequence[Mapping[str, Any]]
    ) -> UpsertReport:
        accepted: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        for index, document in enumerate(documents):
            try:
                accepted.append(_canonical(entity, document))
            except ValueError as exc:
                failed.append((f"{entity.value} document #{index}", str(exc)))
        inserted = updated = unchanged = 0
        with self._transaction() as db:
            current = self._texts(db, entity, [i for i, _ in accepted])
            feed: list[str] = []
            for entity_id, text in accepted:
                previous = current.get(entity_id)
                if previous == text:
                    unchanged += 1
                    continue
                if previous is None:
                    inserted += 1
                else:
                    updated += 1
                current[entity_id] = text
                feed.append(entity_id)
            db.executemany(
                "INSERT INTO documents (entity, id, document) VALUES (?, ?, ?) "
                "ON CONFLICT (entity, id) DO UPDATE SET document = excluded.document",
                [(entity.value, i, current[i]) for i in dict.fromkeys(feed)],
            )
            self._append(db, entity, feed)

        return UpsertReport(inserted, updated, unchanged, tuple(failed))

    def resend(self, entity: Entity, ids: Sequence[str]) -> int:
        with self._transaction() as db:
            known = self._texts(db, entity, ids)
            feed = [i for i in ids if i in known]
            self._append(db, entity, feed)

        return len(feed)

    def changes(self, entity: Entity, after: int, limit: int) -> list[Change]:
        if limit < 0:
            raise ConfigurationError(f"limit must be at least 0, got {limit}")
        with self._translate(), self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT c.seq, c.entity_id, d.document FROM changes c "
                    "JOIN documents d ON d.entity = c.entity AND d.id = c.entity_id "
                    "WHERE c.entity = ? AND c.seq > ? ORDER BY c.seq LIMIT ?",
                    (entity.value, after, limit),
                )
                .fetchall()
            )

        return [Change(seq, i, json.loads(text)) for seq, i, text in rows]

    def scan(
        self, entity: Entity, batch_size: int = 1000
    ) -> Iterator[Mapping[str, Any]]:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        after: tuple[str, ...] = ()
        while True:
            with self._translate(), self._lock:
                rows = (
                    self._connection()
                    .execute(
                        "SELECT id, document FROM documents WHERE entity = ? "
                        f"{'AND id > ? ' if after else ''}ORDER BY id LIMIT ?",
                        (entity.value, *after, batch_size),
                    )
                    .fetchall()
                )
            for _, text in rows:
                yield json.loads(text)
            if len(rows) < batch_size:
                return
            after = (rows[-1][0],)

    def count(self, entity: Entity) -> int:
        with self._translate(), self._lock:
            (total,) = (
                self._connection()
                .execute(
                    "SELECT COUNT(*) FROM documents WHERE entity = ?", (entity.value,)
                )
                .fetchone()
            )

        return int(total)

    def get_mark(self, name: str) -> int:
        with self._translate(), self._lock:
            row = (
                self._connection()
                .execute("SELECT value FROM marks WHERE name = ?", (name,))
                .fetchone()
            )

        return 0 if row is None else int(row[0])

    def set_mark(self, name: str, value: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO marks (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _texts(
        self, db: sqlite3.Connection, entity: Entity, ids: Sequence[str]
    ) -> dict[str, str]:
        unique = list(dict.fromkeys(ids))
        found: dict[str, str] = {}
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            found.update(
                db.execute(
                    f"SELECT id, document FROM documents "
                    f"WHERE entity = ? AND id IN ({marks})",
                    (entity.value, *chunk),
                ).fetchall()
            )

        return found

    def _append(self, db: sqlite3.Connection, entity: Entity, ids: list[str]) -> None:
        (last,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE entity = ?",
            (entity.value,),
        ).fetchone()
        db.executemany(
            "INSERT INTO changes (entity, seq, entity_id) VALUES (?, ?, ?)",
            [(entity.value, last + n, i) for n, i in enumerate(ids, start=1)],
        )

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise InfrastructureError(
                f"the CRM store {str(self.path)!r} was closed; open a new one"
            )

        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._translate(), self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            raise InfrastructureError(
                f"CRM store {str(self.path)!r}: {text}",
                transient="locked" in text or "busy" in text,
            ) from exc


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
