"""The warehouse in plain Python: the ClickHouse adapter's rules without a server.

Tables are dictionaries keyed like the ClickHouse tables' sorting keys, marts
and views are computed with the same definitions, and :meth:`dump` gives the
same table names, columns and rows as the ClickHouse adapter for the same
events. :meth:`migrate` records the migration files of ``infra/clickhouse``
(or ``migrations_dir``) by name and checksum without running them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
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
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    NotFoundError,
)
from pikcha.domain.quality import TableMetrics
from pikcha.ports.warehouse import (
    MARTS,
    VIEWS,
    ProjectedEvent,
    RawEvent,
    Reconciliation,
)

Row = tuple[Any, ...]

_ROWS: Mapping[Entity, type[CleanRow]] = {
    Entity.STORE: CleanStore,
    Entity.PRODUCT: CleanProduct,
    Entity.CUSTOMER: CleanCustomer,
    Entity.PURCHASE: CleanPurchase,
}
_TABLES: Mapping[Entity, str] = {
    Entity.STORE: "stores",
    Entity.PRODUCT: "products",
    Entity.CUSTOMER: "customers",
    Entity.PURCHASE: "purchases",
}
_RAW_COLUMNS = tuple(f.name for f in fields(RawEvent) if f.name != "entity")
_ITEM_COLUMNS = tuple(f.name for f in fields(CleanItem))
_MART_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "customer_aggregates": (
        "customer_id",
        "purchase_count",
        "total_spent",
        "avg_basket",
        "first_purchase",
        "last_purchase",
        "distinct_stores",
        "cash_count",
        "card_count",
        "delivery_count",
        "is_new_customer",
        "is_loyalty_member",
        "city",
    ),
    "store_daily": ("store_id", "day", "purchases", "revenue"),
    "product_sales": ("product_id", "name", "category_code", "units", "revenue"),
    "city_sales": ("city", "purchases", "revenue", "customers"),
}
_QUALITY_COLUMNS = (
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
_ORDER: Mapping[str, Callable[[dict[str, Any]], Any]] = {
    "customer_aggregates": lambda r: r["customer_id"],
    "store_daily": lambda r: (r["store_id"], r["day"]),
    "product_sales": lambda r: r["product_id"],
    "city_sales": lambda r: r["city"],
    "v_store_sales": lambda r: (-r["revenue"], r["store_id"]),
    "v_top_products": lambda r: (-r["revenue"], r["product_id"]),
    "v_daily_sales": lambda r: r["day"],
    "v_customer_activity": lambda r: r["segment"],
    "v_city_sales": lambda r: (-r["revenue"], r["city"]),
    "v_duplicate_share": lambda r: r["table_name"],
}
_MONTH = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class _Version:
    row: CleanRow
    event_id: str
    content_hash: str
    version: int


class InMemoryWarehouse:
    """The warehouse held in dictionaries behind one lock.

    The tables are attributes a test can look at: ``applied`` migrations,
    ``raw`` and ``clean`` per entity, ``rejected``, ``items`` (each purchase
    line as its newest version wrote it), ``marts`` and ``data_quality``.
    """

    applied: dict[str, str]
    raw: dict[Entity, dict[str, RawEvent]]
    rejected: dict[tuple[str, str], tuple[RawEvent, Rejection]]
    clean: dict[Entity, dict[str, _Version]]
    items: dict[tuple[str, int], Row]
    marts: dict[str, list[dict[str, Any]]]
    data_quality: dict[tuple[str, str], dict[str, Any]]

    def __init__(self, migrations_dir: Path | None = None) -> None:
        self._migrations_dir = migrations_dir
        self._mutex = threading.RLock()
        self._closed = False
        self._clear()

    def migrate(self) -> list[str]:
        with self._open():
            files = _migrations(self._migrations_dir)
            for name, checksum in files:
                recorded = self.applied.get(name)
                if recorded is not None and recorded != checksum:
                    raise IntegrityError(
                        f"migration {name} was applied to memory:// with checksum "
                        f"{recorded} but the file now has {checksum}; restore the "
                        "file and put the change in a new migration, or reset the "
                        "warehouse"
                    )
            pending = [(n, c) for n, c in files if n not in self.applied]
            self.applied.update(pending)

            return [name for name, _ in pending]

    def write(self, events: Sequence[ProjectedEvent]) -> int:
        for event in events:
            _check_outcome(event)
        with self._tables("write a batch"):
            fresh: dict[str, ProjectedEvent] = {}
            for event in events:
                entry = event.raw
                if entry.event_id not in self.raw[entry.entity]:
                    fresh.setdefault(entry.event_id, event)
            for event in fresh.values():
                self._add(event)

            return len(fresh)

    def build_marts(self, now: datetime) -> dict[str, int]:
        now = now.replace(tzinfo=None)
        with self._tables("build the marts"):
            purchases = [v.row for v in self.clean[Entity.PURCHASE].values()]
            self.marts = {
                "customer_aggregates": self._customer_aggregates(purchases, now),
                "store_daily": _store_daily(purchases),
                "product_sales": self._product_sales(purchases),
                "city_sales": _city_sales(purchases),
            }

            return {name: len(self.marts[name]) for name in MARTS}

    def clean_rows(self, entity: Entity) -> Iterator[Any]:
        with self._tables(f"read the clean {entity.value}s"):
            rows = [self.clean[entity][key].row for key in sorted(self.clean[entity])]
        yield from rows

    def quality(self) -> list[TableMetrics]:
        with self._tables("measure quality"):
            by_rule: dict[str, Counter[str]] = defaultdict(Counter)
            for (entity, _), (_, rejection) in self.rejected.items():
                by_rule[entity][rejection.rule.value] += 1

            return [
                TableMetrics(
                    f"raw_{_TABLES[entity]}",
                    len(events),
                    len({(e.entity_id, e.content_hash) for e in events.values()}),
                    dict(by_rule[entity.value]),
                )
                for entity, events in self.raw.items()
            ]

    def record_quality(
        self, load_id: str, checked_at: datetime, metrics: Sequence[TableMetrics]
    ) -> None:
        with self._tables("record quality"):
            for m in metrics:
                self.data_quality[(load_id, m.table)] = {
                    "load_id": load_id,
                    "checked_at": _instant(checked_at),
                    "table_name": m.table,
                    "rows": m.rows,
                    "distinct_rows": m.distinct,
                    "duplicates": m.duplicates,
                    "duplicate_share": m.duplicate_share,
                    "rejected": m.rejected_total,
                    "rejected_by_rule": dict(m.rejected),
                }

    def reconcile(self) -> Mapping[Entity, Reconciliation]:
        with self._tables("reconcile the layers"):
            result = {}
            for entity, events in self.raw.items():
                refused = {e for kind, e in self.rejected if kind == entity.value}
                valid = [e for e in events.values() if e.event_id not in refused]
                pairs = len({(e.entity_id, e.content_hash) for e in valid})
                ids = len({e.entity_id for e in valid})
                result[entity] = Reconciliation(
                    entity=entity,
                    raw=len(events),
                    clean=len(self.clean[entity]),
                    rejected=len(events) - len(valid),
                    repeated=len(valid) - pairs,
                    superseded=pairs - ids,
                )

            return result

    def query(self, name: str) -> list[dict[str, Any]]:
        if name not in _ORDER:
            known = ", ".join((*MARTS, *VIEWS))
            raise NotFoundError(f"no mart or view named {name!r}; known: {known}")
        with self._tables(f"query {name}"):
            views = {
                "v_store_sales": self._v_store_sales,
                "v_top_products": self._v_top_products,
                "v_daily_sales": self._v_daily_sales,
                "v_customer_activity": self._v_customer_activity,
                "v_city_sales": self._v_city_sales,
                "v_duplicate_share": self._v_duplicate_share,
            }
            view = views.get(name)
            rows = view() if view else [dict(r) for r in self.marts[name]]

            return sorted(rows, key=_ORDER[name])

    def dump(self) -> dict[str, list[Row]]:
        with self._open():
            if not self.applied:
                return {}
            tables: dict[str, list[Row]] = {}
            for entity, events in self.raw.items():
                tables[f"raw_{_TABLES[entity]}"] = [
                    tuple(_instant(getattr(e, c)) for c in _RAW_COLUMNS)
                    for e in events.values()
                ]
            tables["rejected"] = [
                (
                    kind,
                    e.event_id,
                    e.entity_id,
                    e.content_hash,
                    rejection.rule.value,
                    rejection.field,
                    rejection.problem,
                    e.payload,
                    e.offset,
                )
                for (kind, _), (e, rejection) in self.rejected.items()
            ]
            for entity, versions in self.clean.items():
                tables[f"clean_{_TABLES[entity]}"] = [
                    (*_columns(v.row), v.event_id, v.content_hash, v.version)
                    for v in versions.values()
                ]
            tables["clean_purchase_items"] = list(self.items.values())
            for name, columns in _MART_COLUMNS.items():
                tables[name] = [tuple(r[c] for c in columns) for r in self.marts[name]]
            tables["data_quality"] = [
                tuple(r[c] for c in _QUALITY_COLUMNS)
                for r in self.data_quality.values()
            ]
            tables["pikcha_migrations"] = list(self.applied.items())

            return {name: sorted(rows, key=_sort_key) for name, rows in tables.items()}

    def reset(self) -> None:
        with self._open():
            self._clear()

    def close(self) -> None:
        with self._mutex:
            self._closed = True

    def _clear(self) -> None:
        self.applied = {}
        self.raw = {e: {} for e in Entity}
        self.rejected = {}
        self.clean = {e: {} for e in Entity}
        self.items = {}
        self.marts = {name: [] for name in MARTS}
        self.data_quality = {}

    def _open(self) -> AbstractContextManager[None]:
        return self._tables(None)

    @contextmanager
    def _tables(self, doing: str | None) -> Iterator[None]:
        with self._mutex:
            if self._closed:
                raise InfrastructureError(
                    "warehouse memory:// is closed; open a new InMemoryWarehouse"
                )
            if doing is not None and not self.applied:
                raise InfrastructureError(
                    f"warehouse memory:// could not {doing}: its tables do not "
                    "exist; apply the migrations first (Warehouse.migrate)"
                )
            yield

    def _add(self, event: ProjectedEvent) -> None:
        entry, outcome = event.raw, event.outcome
        self.raw[entry.entity][entry.event_id] = entry
        if isinstance(outcome, Rejection):
            self.rejected[(entry.entity.value, entry.event_id)] = (entry, outcome)
            return
        row = _naive(outcome)
        versions = self.clean[entry.entity]
        key = _columns(row)[0]
        current = versions.get(key)
        if current is None or current.version <= entry.offset:
            versions[key] = _Version(
                row, entry.event_id, entry.content_hash, entry.offset
            )
        if isinstance(row, CleanPurchase):
            for item in row.items:
                line = (item.purchase_id, item.line_no)
                stored = self.items.get(line)
                if stored is None or stored[-1] <= entry.offset:
                    self.items[line] = (*_columns(item), entry.event_id, entry.offset)

    def _customer_aggregates(
        self, purchases: list[Any], now: datetime
    ) -> list[dict[str, Any]]:
        mine: dict[str, list[CleanPurchase]] = defaultdict(list)
        for purchase in purchases:
            mine[purchase.customer_id].append(purchase)
        rows = []
        for version in self.clean[Entity.CUSTOMER].values():
            customer: Any = version.row
            bought = mine.get(customer.customer_id, [])
            spent = sum((p.total_amount for p in bought), Decimal("0.00"))
            times = [p.purchase_datetime for p in bought]
            rows.append(
                {
                    "customer_id": customer.customer_id,
                    "purchase_count": len(bought),
                    "total_spent": spent,
                    "avg_basket": _truncated_mean(spent, len(bought)),
                    "first_purchase": min(times, default=None),
                    "last_purchase": max(times, default=None),
                    "distinct_stores": len({p.store_id for p in bought}),
                    "cash_count": sum(p.payment_method == "cash" for p in bought),
                    "card_count": sum(p.payment_method == "card" for p in bought),
                    "delivery_count": sum(p.is_delivery for p in bought),
                    "is_new_customer": customer.registration_date >= now - _MONTH,
                    "is_loyalty_member": customer.is_loyalty_member,
                    "city": customer.city,
                }
            )

        return rows

    def _product_sales(self, purchases: list[Any]) -> list[dict[str, Any]]:
        lines: dict[str, list[CleanItem]] = defaultdict(list)
        for purchase in purchases:
            for item in purchase.items:
                lines[item.product_id].append(item)
        products = self.clean[Entity.PRODUCT]
        rows = []
        for product_id, items in lines.items():
            known = products.get(product_id)
            codes = [i.category_code for i in items if i.category_code is not None]
            name, code = min(i.name for i in items), min(codes, default=None)
            if known is not None:
                product: Any = known.row
                name, code = product.name, product.category_code
            rows.append(
                {
                    "product_id": product_id,
                    "name": name,
                    "category_code": code,
                    "units": sum((i.quantity for i in items), Decimal("0.000")),
                    "revenue": sum((i.total_price for i in items), Decimal("0.00")),
                }
            )

        return rows

    def _v_store_sales(self) -> list[dict[str, Any]]:
        stores = self.clean[Entity.STORE]
        rows = []
        for store_id, days in _group(self.marts["store_daily"], "store_id").items():
            known = stores.get(store_id)
            store: Any = known.row if known else None
            rows.append(
                {
                    "store_id": store_id,
                    "store_name": store.store_name if store else "",
                    "city": store.city if store else "",
                    "purchases": sum(d["purchases"] for d in days),
                    "revenue": sum((d["revenue"] for d in days), Decimal("0.00")),
                }
            )

        return rows

    def _v_top_products(self) -> list[dict[str, Any]]:
        top = sorted(self.marts["product_sales"], key=_ORDER["v_top_products"])[:10]

        return [
            {c: r[c] for c in ("product_id", "name", "units", "revenue")} for r in top
        ]

    def _v_daily_sales(self) -> list[dict[str, Any]]:
        return [
            {
                "day": day,
                "purchases": sum(r["purchases"] for r in rows),
                "revenue": sum((r["revenue"] for r in rows), Decimal("0.00")),
            }
            for day, rows in _group(self.marts["store_daily"], "day").items()
        ]

    def _v_customer_activity(self) -> list[dict[str, Any]]:
        customers = self.marts["customer_aggregates"]
        times = [c["last_purchase"] for c in customers if c["last_purchase"]]
        since = max(times) - _MONTH if times else None
        active = sum(
            1
            for c in customers
            if since is not None
            and c["last_purchase"] is not None
            and c["last_purchase"] >= since
        )
        counts = {
            "active": active,
            "inactive": len(customers) - active,
            "loyal": sum(1 for c in customers if c["is_loyalty_member"]),
            "new": sum(1 for c in customers if c["is_new_customer"]),
        }

        return [{"segment": s, "customers": n} for s, n in counts.items()]

    def _v_city_sales(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.marts["city_sales"]]

    def _v_duplicate_share(self) -> list[dict[str, Any]]:
        loads = self.data_quality.values()
        if not loads:
            return []
        latest = max((r["checked_at"], r["load_id"]) for r in loads)[1]
        columns = ("table_name", "duplicate_share", "rows", "duplicates")

        return [{c: r[c] for c in columns} for r in loads if r["load_id"] == latest]


def _migrations(explicit: Path | None) -> list[tuple[str, str]]:
    here = Path(__file__).resolve()
    candidates = (
        [explicit]
        if explicit is not None
        else [
            here.parents[3] / "infra" / "clickhouse",
            here.parent / "clickhouse" / "migrations",
        ]
    )
    for directory in candidates:
        files = sorted(directory.glob("*.sql"), key=lambda p: p.name)
        if files:
            return [
                (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
                for path in files
            ]
    tried = ", ".join(str(path) for path in candidates)
    raise ConfigurationError(
        f"no ClickHouse migrations (*.sql) found in {tried}; "
        "pass migrations_dir or reinstall pikcha"
    )


def _check_outcome(event: ProjectedEvent) -> None:
    expected = _ROWS[event.raw.entity]
    if not isinstance(event.outcome, (expected, Rejection)):
        raise IntegrityError(
            f"event {event.raw.event_id} of a {event.raw.entity.value} carries a "
            f"{type(event.outcome).__name__}; project it to a {expected.__name__} "
            "or a Rejection"
        )


def _store_daily(purchases: list[Any]) -> list[dict[str, Any]]:
    days: dict[tuple[str, Any], list[CleanPurchase]] = defaultdict(list)
    for p in purchases:
        days[(p.store_id, p.purchase_datetime.date())].append(p)

    return [
        {
            "store_id": store_id,
            "day": day,
            "purchases": len(bought),
            "revenue": sum((p.total_amount for p in bought), Decimal("0.00")),
        }
        for (store_id, day), bought in days.items()
    ]


def _city_sales(purchases: list[Any]) -> list[dict[str, Any]]:
    cities: dict[str, list[CleanPurchase]] = defaultdict(list)
    for p in purchases:
        cities[p.store_city].append(p)

    return [
        {
            "city": city,
            "purchases": len(bought),
            "revenue": sum((p.total_amount for p in bought), Decimal("0.00")),
            "customers": len({p.customer_id for p in bought}),
        }
        for city, bought in cities.items()
    ]


def _group(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)

    return groups


def _truncated_mean(total: Decimal, count: int) -> Decimal:
    # ClickHouse divides decimals truncating toward zero, at the dividend's scale.
    kopecks = int(total.scaleb(2))
    quotient = abs(kopecks) // max(count, 1) * (1 if kopecks >= 0 else -1)

    return Decimal(quotient).scaleb(-2)


def _columns(row: Any) -> Row:
    return tuple(getattr(row, f.name) for f in fields(row) if f.name != "items")


def _naive(row: CleanRow) -> CleanRow:
    changes = {
        f.name: _instant(getattr(row, f.name))
        for f in fields(row)
        if isinstance(getattr(row, f.name), datetime)
    }

    return replace(row, **changes) if changes else row


def _instant(value: Any) -> Any:
    # Aware datetimes are kept as their UTC instant, as ClickHouse's UTC columns do.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)

    return value


def _sort_key(row: Row) -> Row:
    # ClickHouse orders NULLs last and leaves Map columns out of the order.
    return tuple((v is None, v) for v in row if not isinstance(v, dict))
