"""The warehouse on ClickHouse, through clickhouse-connect.

One code path serves ``chdb:///abs/path`` (chDB embedded in this process) and
``http(s)://user:password@host:8123/db`` (a server). A chDB path belongs to one
process at a time; the adapter holds ``<path>/.pikcha.lock`` while it is open.

The adapter opens at its first call, not when constructed, and each call tries
again until it has: a path another process holds, or a server that is down,
raises a transient :class:`InfrastructureError` (a :class:`LockedError` for
the path) that a caller may retry with the same object.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from pikcha.adapters.clickhouse import connection, marts, migrations
from pikcha.adapters.clickhouse.tables import (
    ITEM_COLUMNS,
    ITEM_TABLE_COLUMNS,
    LAYOUTS,
    MIGRATIONS_TABLE,
    QUALITY_COLUMNS,
    RAW_COLUMNS,
    REJECTED_COLUMNS,
    Batch,
    Row,
    check_outcome,
)
from pikcha.domain.cleaning import CleanItem, CleanPurchase
from pikcha.domain.entities import Entity
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    NotFoundError,
)
from pikcha.domain.quality import TableMetrics
from pikcha.ports.warehouse import MARTS, VIEWS, ProjectedEvent, Reconciliation

_UNKNOWN_TABLE = 60
_CHUNK = 5_000
_PAGE = 10_000


class ClickHouseWarehouse:
    """The warehouse on chDB or a ClickHouse server, chosen by the URL scheme.

    Naive datetimes are UTC wall-clock values and read back unchanged; aware
    ones are stored as their UTC instant. ``migrations_dir`` defaults to the
    repository's ``infra/clickhouse``, else the copy packaged with Pikcha.
    Migration files must be safe to run again (``IF NOT EXISTS``): one that
    fails halfway is not recorded and runs whole next time. A mart reads empty
    while :meth:`build_marts` rebuilds it.
    """

    def __init__(self, url: str, migrations_dir: Path | None = None) -> None:
        self._where = connection.redact(url)
        self._migrations_dir = migrations_dir
        self._mutex = threading.RLock()
        self._lockfile: IO[str] | None = None
        self._client: Client | None = None
        self._closed = False
        self._path: Path | None = None
        self._target: dict[str, Any] = {}
        self._database = ""
        scheme = urlsplit(url).scheme
        if scheme == "chdb":
            self._path = connection.chdb_path(url)
        elif scheme in ("http", "https"):
            self._target, self._database = connection.server_target(url)
        else:
            raise ConfigurationError(
                f"warehouse URL {self._where} has an unknown scheme {scheme!r}; set "
                f"PIKCHA_WAREHOUSE to {connection.USAGE}"
            )
        self._server = self._path is None

    @property
    def client(self) -> Client:
        """A clickhouse-connect client of this warehouse, for other ClickHouse
        adapters that read it (the feature engines). Lending it opens nothing:
        the warehouse opens at the client's first use."""
        return cast(Client, _LentClient(self))

    def migrate(self) -> list[str]:
        with self._calling("apply migrations") as client:
            client.command(MIGRATIONS_TABLE)
            applied = {
                name: checksum
                for name, checksum in _rows(
                    client, "SELECT name, checksum FROM pikcha_migrations FINAL"
                )
            }
            pending = []
            for migration in self._migrations():
                recorded = applied.get(migration.name)
                if recorded is None:
                    pending.append(migration)
                elif recorded != migration.checksum:
                    raise IntegrityError(
                        f"migration {migration.name} was applied to {self._where} "
                        f"with checksum {recorded} but the file now has "
                        f"{migration.checksum}; restore the file and put the change "
                        "in a new migration, or reset the warehouse"
                    )
            for migration in pending:
                for statement in migration.statements:
                    client.command(statement)
                _insert(
                    client,
                    "pikcha_migrations",
                    ("name", "checksum"),
                    [(migration.name, migration.checksum)],
                )

            return [migration.name for migration in pending]

    def write(self, events: Sequence[ProjectedEvent]) -> int:
        for event in events:
            check_outcome(event)
        with self._calling("write a batch") as client:
            fresh = self._fresh(client, events)
            batch = Batch.of(fresh)

            # Raw rows go last: until they land, a retry sees the events as new
            # and writes everything again, which the table keys absorb.
            for entity, rows in batch.clean.items():
                layout = LAYOUTS[entity]
                _insert(client, layout.clean, layout.clean_columns, rows)
            _insert(client, "clean_purchase_items", ITEM_TABLE_COLUMNS, batch.items)
            _insert(client, "rejected", REJECTED_COLUMNS, batch.rejected)
            for entity, rows in batch.raw.items():
                _insert(client, LAYOUTS[entity].raw, RAW_COLUMNS, rows)

            return len(fresh)

    def build_marts(self, now: datetime) -> dict[str, int]:
        # Like the cleaning rules, `now` is the shop's wall clock: an offset,
        # if any, is dropped.
        stamp = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        with self._calling("build the marts") as client:
            counts = {}
            for name in MARTS:
                client.command(f"TRUNCATE TABLE {name}")
                client.command(marts.BUILDS[name], parameters={"now": stamp})
                counts[name] = _one(client, f"SELECT count() FROM {name}")[0]

            return counts

    def clean_rows(self, entity: Entity) -> Iterator[Any]:
        layout = LAYOUTS[entity]
        select = f"SELECT {_names(layout.columns)} FROM {layout.view}"
        order = f"ORDER BY {layout.key} LIMIT {_PAGE}"
        after: str | None = None
        while True:
            with self._calling(f"read the clean {entity.value}s") as client:
                if after is None:
                    page = _rows(client, f"{select} {order}")
                else:
                    page = _rows(
                        client,
                        f"{select} WHERE {layout.key} > {{after:String}} {order}",
                        after=after,
                    )
                if not page:
                    return
                lines = _items(client, page) if entity is Entity.PURCHASE else {}
            for row in page:
                values = dict(zip(layout.columns, row, strict=True))
                if entity is Entity.PURCHASE:
                    yield CleanPurchase(**values, items=tuple(lines.get(row[0], ())))
                else:
                    yield layout.row(**values)
            after = page[-1][0]

    def quality(self) -> list[TableMetrics]:
        with self._calling("measure quality") as client:
            by_rule: dict[str, dict[str, int]] = defaultdict(dict)
            for entity, rule, count in _rows(
                client,
                "SELECT entity, rule, count() FROM rejected FINAL "
                "GROUP BY entity, rule",
            ):
                by_rule[entity][rule] = count
            metrics = []
            for entity, layout in LAYOUTS.items():
                rows, distinct = _one(
                    client,
                    "SELECT count(), uniqExact((entity_id, content_hash)) "
                    f"FROM {layout.raw} FINAL",
                )
                metrics.append(
                    TableMetrics(layout.raw, rows, distinct, by_rule[entity.value])
                )

            return metrics

    def record_quality(
        self, load_id: str, checked_at: datetime, metrics: Sequence[TableMetrics]
    ) -> None:
        rows = [
            (
                load_id,
                checked_at,
                m.table,
                m.rows,
                m.distinct,
                m.duplicates,
                m.duplicate_share,
                m.rejected_total,
                dict(m.rejected),
            )
            for m in metrics
        ]
        with self._calling("record quality") as client:
            _insert(client, "data_quality", QUALITY_COLUMNS, rows)

    def reconcile(self) -> Mapping[Entity, Reconciliation]:
        result = {}
        with self._calling("reconcile the layers") as client:
            for entity, layout in LAYOUTS.items():
                raw, rejected, pairs, ids = _one(
                    client,
                    "SELECT count(), countIf(is_rejected), "
                    "uniqExactIf((entity_id, content_hash), NOT is_rejected), "
                    "uniqExactIf(entity_id, NOT is_rejected) "
                    "FROM (SELECT entity_id, content_hash, event_id IN ("
                    "SELECT event_id FROM rejected FINAL WHERE entity = {entity:String}"
                    f") AS is_rejected FROM {layout.raw} FINAL)",
                    entity=entity.value,
                )
                (clean,) = _one(client, f"SELECT count() FROM {layout.clean} FINAL")
                result[entity] = Reconciliation(
                    entity=entity,
                    raw=raw,
                    clean=clean,
                    rejected=rejected,
                    repeated=raw - rejected - pairs,
                    superseded=pairs - ids,
                )

        return result

    def query(self, name: str) -> list[dict[str, Any]]:
        if name not in marts.ORDER:
            known = ", ".join((*MARTS, *VIEWS))
            raise NotFoundError(f"no mart or view named {name!r}; known: {known}")
        with self._calling(f"query {name}") as client:
            result = client.query(f"SELECT * FROM {name} ORDER BY {marts.ORDER[name]}")

            return list(result.named_results())

    def dump(self) -> dict[str, list[Row]]:
        created = migrations.created(self._migrations())
        tables = [name for kind, name in created if kind == "TABLE"]
        with self._calling("dump the tables") as client:
            engines: dict[str, str] = dict(
                _rows(
                    client,
                    "SELECT name, engine FROM system.tables "
                    "WHERE database = currentDatabase()",
                )
            )
            dumped = {}
            for name in [*tables, "pikcha_migrations"]:
                if name in engines:
                    dumped[name] = _dump(client, name, engines[name])

            return dumped

    def reset(self) -> None:
        objects = migrations.created(self._migrations())
        with self._calling("reset") as client:
            for kind, name in reversed([("TABLE", "pikcha_migrations"), *objects]):
                client.command(f"DROP {kind} IF EXISTS `{name}`")

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._lockfile is not None:
                connection.release(self._lockfile)
                self._lockfile = None

    def _migrations(self) -> list[migrations.Migration]:
        return migrations.load(migrations.locate(self._migrations_dir))

    def _fresh(
        self, client: Client, events: Sequence[ProjectedEvent]
    ) -> list[ProjectedEvent]:
        unique: dict[str, ProjectedEvent] = {}
        for event in events:
            unique.setdefault(event.raw.event_id, event)
        wanted: dict[Entity, list[str]] = defaultdict(list)
        for event_id, event in unique.items():
            wanted[event.raw.entity].append(event_id)
        known: set[str] = set()
        for entity, ids in wanted.items():
            sql = (
                f"SELECT event_id FROM {LAYOUTS[entity].raw} "
                "WHERE event_id IN {ids:Array(String)}"
            )
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                known.update(row[0] for row in _rows(client, sql, ids=chunk))

        return [event for event_id, event in unique.items() if event_id not in known]

    @contextmanager
    def _calling(self, doing: str) -> Iterator[Client]:
        with self._mutex:
            if self._closed:
                raise InfrastructureError(
                    f"warehouse {self._where} is closed; open a new ClickHouseWarehouse"
                )
            if self._client is None:
                self._client = self._connect()
            try:
                yield self._client
            except ClickHouseError as exc:
                raise self._failed(doing, exc) from exc

    def _connect(self) -> Client:
        if self._path is None:
            bootstrap = self._open(**self._target)
            try:
                bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{self._database}`")
            except ClickHouseError as exc:
                raise self._failed(
                    f"create the database {self._database}", exc
                ) from exc
            finally:
                bootstrap.close()
            return self._open(**self._target, database=self._database)
        self._lockfile = connection.hold(self._path)
        try:
            return self._open(dsn=f"chdb://{self._path}")
        except BaseException:
            connection.release(self._lockfile)
            self._lockfile = None
            raise

    def _failed(self, doing: str, exc: ClickHouseError) -> InfrastructureError:
        hint = ""
        if getattr(exc, "code", None) == _UNKNOWN_TABLE:
            hint = "; apply the migrations first (Warehouse.migrate)"

        return InfrastructureError(
            f"warehouse {self._where} could not {doing}: {exc}{hint}",
            transient=self._server and isinstance(exc, OperationalError),
        )

    def _open(self, **target: Any) -> Client:
        try:
            return connection.open_client(**target)
        except ClickHouseError as exc:
            raise self._failed("connect", exc) from exc


class _LentClient:
    """Stands in for the client until it is used, then opens the warehouse."""

    def __init__(self, warehouse: ClickHouseWarehouse) -> None:
        self._warehouse = warehouse

    def __getattr__(self, name: str) -> Any:
        with self._warehouse._calling("lend its client") as client:
            return getattr(client, name)


def _rows(client: Client, sql: str, **parameters: Any) -> list[Row]:
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def _one(client: Client, sql: str, **parameters: Any) -> Row:
    return _rows(client, sql, **parameters)[0]


def _items(client: Client, page: Sequence[Row]) -> dict[str, list[CleanItem]]:
    rows = _rows(
        client,
        f"SELECT {_names(ITEM_COLUMNS)} FROM current_purchase_items "
        "WHERE purchase_id >= {first:String} AND purchase_id <= {last:String} "
        "ORDER BY purchase_id, line_no",
        first=page[0][0],
        last=page[-1][0],
    )
    lines: dict[str, list[CleanItem]] = defaultdict(list)
    for row in rows:
        lines[row[0]].append(CleanItem(*row))

    return lines


# Times the server fills in at insert: they differ between equal histories.
_WRITE_TIMES = frozenset({"applied_at", "projected_at"})


def _dump(client: Client, table: str, engine: str) -> list[Row]:
    columns = [
        (name, kind)
        for name, kind in _rows(
            client,
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = {table:String} "
            "ORDER BY position",
            table=table,
        )
        if name not in _WRITE_TIMES
    ]
    order = _names([name for name, kind in columns if "Map(" not in kind])
    final = " FINAL" if "Replacing" in engine else ""

    return _rows(
        client,
        f"SELECT {_names([name for name, _ in columns])} FROM {table}{final} "
        f"ORDER BY {order}",
    )


def _insert(
    client: Client, table: str, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    if not rows:
        return
    data = []
    for column in zip(*rows, strict=True):
        sample = next((value for value in column if value is not None), None)
        if isinstance(sample, datetime):
            # The driver reads a naive datetime as local time: pin it to UTC.
            data.append(
                [
                    value.replace(tzinfo=UTC)
                    if value is not None and value.tzinfo is None
                    else value
                    for value in column
                ]
            )
        else:
            data.append(list(column))
    client.insert(table, data, column_names=list(columns), column_oriented=True)


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f"`{column}`" for column in columns)
