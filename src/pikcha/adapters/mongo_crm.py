"""The CRM on MongoDB: raw documents, their change feed and marks, via pymongo.

The database is the one the URL's path names ("pikcha" when it names none):

- ``<entity>s`` (``stores``, ``products``, ...): one record per document with
  the entity id as ``_id``, whose index keeps ids unique. The document sits
  under ``doc`` as a BSON document, exactly as given, when BSON holds it
  faithfully: every key a plain field name (not empty, no leading ``$``, no
  ``.``, no NUL) and every integer within 64 bits. Any other document sits
  under ``json`` as canonical JSON text. ``hash`` is a digest of the canonical
  JSON, which tells a changed document from an unchanged one; ``batch`` names
  the write that stored it.
- ``<entity>s.changes``: the change feed, ``{seq, id}``, with a unique index
  on ``seq`` made on first use.
- ``counters``: the last ``seq`` handed out per entity.
- ``journal``: the batches whose change entries may not be written yet.
- ``marks``: the named high-water marks.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from bson import ObjectId
from pymongo import ASCENDING, InsertOne, MongoClient, ReplaceOne, ReturnDocument
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError, InfrastructureError, PikchaError
from pikcha.ports.crm import Change, UpsertReport

T = TypeVar("T")
Record = dict[str, Any]

DEFAULT_DATABASE = "pikcha"
# Some servers match an $in list against every candidate, so a lookup costs the
# square of the list's length there; short lists keep it linear everywhere.
_LOOKUP = 50
# BSON documents end at 16 MiB; a JSON text near that fails before the server.
_MAX_BYTES = 16 * 1024 * 1024 - 64 * 1024
# Servers refuse BSON nested deeper than 100 levels; JSON text has no limit.
_MAX_DEPTH = 90
_INT64 = 2**63
_DUPLICATE_KEY = 11000
_AUTH_FAILED = frozenset({13, 18})
_SECRET_OPTION = re.compile(r"(?i)([^&=?]*(?:password|secret|token|properties)=)[^&]*")


@dataclass(frozen=True, slots=True)
class _Row:
    index: int
    id: str
    body: Record
    digest: str


class MongoCrmStore:
    """A CRM store in the MongoDB database that ``url`` names.

    ``url`` is any MongoDB connection string, ``mongodb+srv://``, replica sets,
    TLS and authentication options included. A server gets ``timeout`` seconds
    to be found unless the URL sets ``serverSelectionTimeoutMS``; the store
    pings it on opening, so a wrong URL fails here. Network errors and primary
    changes are retried ``retries`` times, waiting ``backoff`` seconds and
    twice as long each time.

    Without transactions each batch of an upsert opens a journal entry, writes
    its documents, appends their change entries and closes the entry. After a
    crash in between, the next upsert of the same content finds the entry still
    open and feeds those documents again, so each change is fed at least once.
    Run one writer per entity at a time: a reader may pass a block of entries
    that a second concurrent writer has not written yet, and a write that fails
    after its seqs were handed out leaves a gap in them.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        batch_size: int = 1000,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ConfigurationError(
                f"PIKCHA_CRM is not a URL ({exc}); write mongodb://[user:password@]"
                "host[:port][/database][?options]"
            ) from None
        self.url = _redact(url)
        self._hosts = parts.netloc.rpartition("@")[2] or "localhost"
        self._secrets = [
            s for s in {parts.password, unquote(parts.password or "")} if s
        ]
        self._batch_size = max(1, batch_size)
        self._retries = retries
        self._backoff = backoff
        self._ready: set[Entity] = set()
        self._closed = False
        self._lock = threading.Lock()
        # Options the URL sets win over the defaults given here.
        defaults: dict[str, Any] = {
            "appname": "pikcha",
            "serverselectiontimeoutms": timeout * 1000,
        }
        given = {key.lower() for key, _ in parse_qsl(parts.query)}
        options = {k: v for k, v in defaults.items() if k not in given}
        try:
            self._client: MongoClient[Record] = MongoClient(url, **options)
            self._db = self._client.get_default_database(DEFAULT_DATABASE)
        except (PyMongoError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"PIKCHA_CRM={self.url} is not a usable MongoDB URL: "
                f"{self._scrub(str(exc))}; write mongodb://[user:password@]host"
                "[:port][/database][?options]"
            ) from exc
        self._timeout = self._client.options.server_selection_timeout
        try:
            self._call("connecting", lambda: self._db.command("ping"))
        except PikchaError:
            self._client.close()
            raise

    def upsert(
        self, entity: Entity, documents: Sequence[Mapping[str, Any]]
    ) -> UpsertReport:
        self._check_open()
        rows: list[_Row] = []
        failed: list[tuple[int, str]] = []
        for index, document in enumerate(documents):
            try:
                rows.append(_prepare(entity, index, document))
            except ValueError as exc:
                failed.append((index, str(exc)))
        report = UpsertReport()
        for part in _parts(rows, self._batch_size):
            report = report + self._upsert_part(entity, part, failed)
        records = tuple(
            (f"{entity.value} document #{i}", why) for i, why in sorted(failed)
        )

        return UpsertReport(report.inserted, report.updated, report.unchanged, records)

    def resend(self, entity: Entity, ids: Sequence[str]) -> int:
        self._check_open()
        known = self._lookup(self._documents(entity), ids, {"_id": True})
        feed = [entity_id for entity_id in ids if entity_id in known]
        self._append(entity, feed)

        return len(feed)

    def changes(self, entity: Entity, after: int, limit: int) -> list[Change]:
        if limit < 0:
            raise ConfigurationError(f"limit must be at least 0, got {limit}")
        self._check_open()
        if limit == 0:
            return []
        feed = self._changes(entity)
        top = self._last_seq(entity)
        entries: list[Record] = []
        low = after
        # Bounded seq ranges walk the index; the loop only repeats over gaps.
        while len(entries) < limit and low < top:
            high = min(low + limit - len(entries), top)
            query = {"seq": {"$gt": low, "$lte": high}}
            entries += self._find(feed, query, {"_id": False}, sort="seq")
            low = high
        ids = [entry["id"] for entry in entries]
        found = self._lookup(self._documents(entity), ids)

        return [
            Change(int(entry["seq"]), entry["id"], _document(found[entry["id"]]))
            for entry in entries
            if entry["id"] in found
        ]

    def scan(
        self, entity: Entity, batch_size: int = 1000
    ) -> Iterator[Mapping[str, Any]]:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        documents = self._documents(entity)
        cursor: Cursor[Record] | None = None
        last: str | None = None

        def page() -> list[Record]:
            # A cursor lost to a network error reopens after the last id read.
            nonlocal cursor
            if cursor is None:
                # Whole records: the hash and batch fields cost less to send
                # than a projection costs some servers to apply.
                query = {} if last is None else {"_id": {"$gt": last}}
                cursor = (
                    documents.find(query).sort("_id", ASCENDING).batch_size(batch_size)
                )
            try:
                return list(islice(cursor, batch_size))
            except PyMongoError:
                cursor.close()
                cursor = None
                raise

        try:
            while records := self._call(f"scanning {entity.directory}", page):
                last = records[-1]["_id"]
                for record in records:
                    yield _document(record)
        finally:
            if cursor is not None:
                cursor.close()

    def count(self, entity: Entity) -> int:
        documents = self._documents(entity)

        return self._call(
            f"counting {entity.directory}", lambda: documents.count_documents({})
        )

    def get_mark(self, name: str) -> int:
        record = self._call(
            f"reading mark {name!r}",
            lambda: self._db["marks"].find_one({"_id": name}),
        )

        return 0 if record is None else int(record["value"])

    def set_mark(self, name: str, value: int) -> None:
        self._call(
            f"setting mark {name!r}",
            lambda: self._db["marks"].update_one(
                {"_id": name}, {"$set": {"value": value}}, upsert=True
            ),
        )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()

    def _upsert_part(
        self, entity: Entity, part: list[_Row], failed: list[tuple[int, str]]
    ) -> UpsertReport:
        # A document is written again when its content changed, or when the
        # batch that wrote it never closed: its writer died before feeding it.
        fields = {"hash": True, "batch": True}
        stored = self._lookup(self._documents(entity), [r.id for r in part], fields)
        batches = [record.get("batch") for record in stored.values()]
        journal = self._db["journal"]
        unfinished = self._lookup(journal, [b for b in batches if b], {"_id": True})
        changed = [row for row in part if _differs(stored.get(row.id), row, unfinished)]

        batch = ObjectId()
        if changed:
            opened = {"entity": entity.value}
            self._call(
                "opening a batch",
                lambda: journal.replace_one({"_id": batch}, opened, upsert=True),
            )
        refused = self._write(entity, changed, batch, set(stored))
        fed = [row for row in changed if row.id not in refused]
        self._append(entity, [row.id for row in fed])
        if changed:
            self._call("closing a batch", lambda: journal.delete_one({"_id": batch}))

        failed += [(row.index, refused[row.id]) for row in changed if row.id in refused]
        inserted = sum(row.id not in stored for row in fed)

        return UpsertReport(inserted, len(fed) - inserted, len(part) - len(changed))

    def _write(
        self, entity: Entity, rows: list[_Row], batch: ObjectId, stored: set[str]
    ) -> dict[str, str]:
        """Store the rows' documents; the reason for each id the server refused.

        A new id is inserted, which costs less than an upsert; if it exists by
        then (another writer, or this write's own lost first attempt), it is
        written again as an upsert.
        """
        errors = self._bulk(entity, rows, batch, stored)
        raced = [
            row
            for row in rows
            if row.id not in stored
            and errors.get(row.id, {}).get("code") == _DUPLICATE_KEY
        ]
        if raced:
            for row in raced:
                del errors[row.id]
            errors |= self._bulk(entity, raced, batch, {row.id for row in raced})

        return {entity_id: _refusal(error) for entity_id, error in errors.items()}

    def _bulk(
        self, entity: Entity, rows: list[_Row], batch: ObjectId, stored: set[str]
    ) -> dict[str, Record]:
        if not rows:
            return {}
        documents = self._documents(entity)
        operations: list[InsertOne[Record] | ReplaceOne[Record]] = [
            ReplaceOne({"_id": row.id}, _record(row, batch), upsert=True)
            if row.id in stored
            else InsertOne({"_id": row.id, **_record(row, batch)})
            for row in rows
        ]

        def write() -> dict[str, Record]:
            try:
                documents.bulk_write(operations, ordered=False)
            except BulkWriteError as exc:
                if exc.details.get("writeConcernErrors"):
                    raise
                return {
                    rows[error["index"]].id: error
                    for error in exc.details.get("writeErrors", [])
                }

            return {}

        return self._call(f"writing {entity.directory}", write)

    def _append(self, entity: Entity, ids: list[str]) -> None:
        if not ids:
            return
        feed = self._changes(entity)
        first = self._allocate(entity, len(ids))
        entries = [{"seq": first + n, "id": i} for n, i in enumerate(ids)]

        def insert() -> None:
            try:
                feed.insert_many(entries, ordered=False)
            except BulkWriteError as exc:
                # A retry meets the entries that its lost first attempt wrote.
                codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
                if exc.details.get("writeConcernErrors") or codes != {_DUPLICATE_KEY}:
                    raise

        self._call(f"appending to the {entity.value} change feed", insert)

    def _allocate(self, entity: Entity, count: int) -> int:
        """Hand out ``count`` seqs in one block; returns the first of them.

        The block carries a token, so a retry whose first attempt went through
        finds its block instead of taking a second one.
        """
        counters = self._db["counters"]
        token = uuid.uuid4().hex

        def allocate() -> int:
            for _ in range(2):
                try:
                    record = counters.find_one_and_update(
                        {"_id": entity.value, "token": {"$ne": token}},
                        {"$inc": {"seq": count}, "$set": {"token": token}},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
                except DuplicateKeyError:
                    record = counters.find_one({"_id": entity.value})
                    if record is None or record.get("token") != token:
                        continue
                if record is not None:
                    return int(record["seq"]) - count + 1
            raise InfrastructureError(
                f"MongoDB at {self._hosts}: no {entity.value} seqs could be "
                "handed out; another writer keeps taking them, try again",
                transient=True,
            )

        return self._call(f"handing out {entity.value} seqs", allocate)

    def _lookup(
        self,
        collection: Collection[Record],
        ids: Sequence[Any],
        fields: Record | None = None,
    ) -> dict[Any, Record]:
        unique = list(dict.fromkeys(ids))
        found: dict[Any, Record] = {}
        for start in range(0, len(unique), _LOOKUP):
            query = {"_id": {"$in": unique[start : start + _LOOKUP]}}
            records = self._find(collection, query, fields)
            found.update((record["_id"], record) for record in records)

        return found

    def _find(
        self,
        collection: Collection[Record],
        query: Record,
        fields: Record | None,
        sort: str | None = None,
    ) -> list[Record]:
        def find() -> list[Record]:
            cursor = collection.find(query, fields)
            return list(cursor if sort is None else cursor.sort(sort, ASCENDING))

        return self._call(f"reading {collection.name}", find)

    def _last_seq(self, entity: Entity) -> int:
        record = self._call(
            f"reading the {entity.value} counter",
            lambda: self._db["counters"].find_one({"_id": entity.value}),
        )

        return 0 if record is None else int(record["seq"])

    def _documents(self, entity: Entity) -> Collection[Record]:
        return self._db[entity.directory]

    def _changes(self, entity: Entity) -> Collection[Record]:
        feed = self._db[f"{entity.directory}.changes"]
        if entity not in self._ready:
            self._call(
                f"indexing {feed.name}",
                lambda: feed.create_index(
                    [("seq", ASCENDING)], unique=True, name="seq_unique"
                ),
            )
            self._ready.add(entity)

        return feed

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                f"the CRM store on MongoDB at {self._hosts} was closed; open a new one"
            )

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one operation, retrying transient failures with backoff."""
        self._check_open()
        attempt = 0
        while True:
            try:
                return operation()
            except PyMongoError as exc:
                attempt += 1
                if attempt > self._retries or not _transient(exc):
                    raise self._translate(what, exc, attempt) from exc
            time.sleep(self._backoff * 2 ** (attempt - 1))

    def _translate(self, what: str, exc: PyMongoError, attempts: int) -> PikchaError:
        where = f"MongoDB at {self._hosts} (PIKCHA_CRM={self.url})"
        reason = self._scrub(_reason(exc))
        if attempts > 1:
            reason += f" (tried {attempts} times)"
        if isinstance(exc, ServerSelectionTimeoutError):
            return InfrastructureError(
                f"cannot reach {where} within {self._timeout:g} s while {what}: "
                f"{reason}; start the server, or set PIKCHA_CRM to the URL of one "
                "that runs",
                transient=True,
            )
        if isinstance(exc, OperationFailure) and exc.code in _AUTH_FAILED:
            return ConfigurationError(
                f"{where} refused {what}: {reason}; check the user, password and "
                "authSource in PIKCHA_CRM"
            )

        return InfrastructureError(
            f"{where} failed {what}: {reason}", transient=_transient(exc)
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")

        return text


def _prepare(entity: Entity, index: int, document: Any) -> _Row:
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
    plain = dict(document)
    try:
        text = json.dumps(plain, ensure_ascii=False, sort_keys=True, allow_nan=False)
        data = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"document is not plain JSON: {exc}") from None
    if len(data) > _MAX_BYTES:
        raise ValueError(
            f"document is {len(data)} bytes of JSON; MongoDB holds at most "
            "16 MiB per document"
        )
    body = {"doc": plain} if _bson_safe(plain, 0) else {"json": text}

    return _Row(
        index, entity_id, body, hashlib.blake2b(data, digest_size=16).hexdigest()
    )


def _bson_safe(value: Any, depth: int) -> bool:
    """Whether BSON stores ``value`` and gives back an equal one."""
    kind = type(value)
    if kind is dict:
        return depth < _MAX_DEPTH and all(
            type(key) is str
            and key
            and key[0] != "$"
            and "." not in key
            and "\0" not in key
            and _bson_safe(item, depth + 1)
            for key, item in value.items()
        )
    if kind is list or kind is tuple:
        return depth < _MAX_DEPTH and all(_bson_safe(v, depth + 1) for v in value)
    if kind is int:
        return bool(-_INT64 <= value < _INT64)

    return kind is str or kind is float or kind is bool or value is None


def _document(record: Record) -> Record:
    if "doc" in record:
        document: Record = record["doc"]
        return document
    loaded: Record = json.loads(record["json"])

    return loaded


def _record(row: _Row, batch: ObjectId) -> Record:
    return {**row.body, "hash": row.digest, "batch": batch}


def _differs(stored: Record | None, row: _Row, unfinished: Mapping[Any, Any]) -> bool:
    return (
        stored is None
        or stored.get("hash") != row.digest
        or stored.get("batch") in unfinished
    )


def _parts(rows: list[_Row], size: int) -> Iterator[list[_Row]]:
    """Consecutive runs of at most ``size`` rows, no id twice within a run."""
    part: list[_Row] = []
    ids: set[str] = set()
    for row in rows:
        if row.id in ids or len(part) >= size:
            yield part
            part, ids = [], set()
        part.append(row)
        ids.add(row.id)
    if part:
        yield part


def _transient(exc: PyMongoError) -> bool:
    if isinstance(exc, ServerSelectionTimeoutError):
        # The driver has already waited the whole selection timeout.
        return False

    return isinstance(exc, AutoReconnect) or exc.has_error_label("RetryableWriteError")


def _refusal(error: Mapping[str, Any]) -> str:
    # Only the code and message: the rest of a write error echoes the document.
    message = str(error.get("errmsg", "no reason given"))[:200]

    return f"refused by MongoDB (code {error.get('code')}): {message}"


def _reason(exc: PyMongoError) -> str:
    if isinstance(exc, BulkWriteError):
        # Its text holds the documents themselves, personal data included.
        details = exc.details
        errors = details.get("writeConcernErrors") or details.get("writeErrors") or []
        text = str(errors[0].get("errmsg", "")) if errors else "bulk write failed"
    else:
        text = str(exc)
    for cut in (" (configured timeouts", ", Timeout:", ", full error:"):
        text = text.split(cut, 1)[0]

    return text[:300]


def _redact(url: str) -> str:
    """The URL with its password and secret options replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        user_info, _, hosts = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{hosts}")

    return parts._replace(query=_SECRET_OPTION.sub(r"\1***", parts.query)).geturl()
