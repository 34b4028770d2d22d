"""The ClickHouse SQL engine equals the reference implementation, row for row.

The data goes straight into the clean tables of ``infra/clickhouse`` (one
version each), so that both engines read exactly the same rows. Runs on chDB in
a temporary directory, or on the server named by ``PIKCHA_TEST_CLICKHOUSE``.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine
from pikcha.domain.cleaning import CleanCustomer, CleanItem, CleanProduct, CleanPurchase
from pikcha.domain.errors import InfrastructureError
from pikcha.domain.features import FEATURE_NAMES, FeatureRow, compute_features

MIGRATION = Path(__file__).parents[2] / "infra" / "clickhouse" / "0001_layers.sql"
CLEAN_TABLES = (
    "clean_customers",
    "clean_products",
    "clean_purchases",
    "clean_purchase_items",
)
CODES = (None, "bakery", "meat", "dairy", "fruits", "vegetables")
PAYMENTS = ("cash", "card", "other")
STORES = {"s0": "moscow", "s1": "moscow", "s2": "kazan", "s3": "tver"}
PRODUCT_IDS = tuple(f"p{number}" for number in range(6))
UNKNOWN_PRODUCT = "p-unknown"
UNKNOWN_CUSTOMER = "c-unknown"
EDGE_DAYS = (0, 7, 14, 30, 90)
OTHER_DAYS = (1, 2, 6, 8, 13, 15, 29, 31, 89, 91, 400)
HOURS = (6, 7, 8, 9, 10, 12, 19, 20, 21)
WORKDAYS = (0, 1, 2, 3, 4)
WEEKEND = (5, 6)


def statements(sql: str) -> list[str]:
    """The statements of a migration file, without its comment lines."""
    code = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    )

    return [statement.strip() for statement in code.split(";") if statement.strip()]


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("PIKCHA_TEST_CLICKHOUSE")

    return configured or f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="module")
def client(dsn: str) -> Iterator[Client]:
    client = clickhouse_connect.get_client(dsn=dsn)
    for statement in statements(MIGRATION.read_text(encoding="utf-8")):
        client.command(statement)
    yield client
    client.close()


def utc(when: datetime) -> datetime:
    """The wall-clock value as a UTC instant, so the driver stores it unshifted."""
    return when.replace(tzinfo=UTC)


def load(
    client: Client,
    customers: Sequence[CleanCustomer],
    products: Sequence[CleanProduct],
    purchases: Sequence[CleanPurchase],
) -> None:
    """Replace the clean layer by these rows, each as version 1."""
    for table in CLEAN_TABLES:
        client.command(f"TRUNCATE TABLE {table}")
    meta = ("e", "h", 1)
    insert(
        client,
        "clean_customers",
        [
            (
                c.customer_id,
                c.gender,
                c.birth_date,
                utc(c.registration_date),
                c.is_loyalty_member,
                c.city,
                c.email_token,
                c.phone_token,
                c.loyalty_card_token,
                *meta,
            )
            for c in customers
        ],
    )
    insert(
        client,
        "clean_products",
        [
            (
                p.product_id,
                p.name,
                p.category,
                p.category_code,
                p.price,
                p.is_organic,
                *meta,
            )
            for p in products
        ],
    )
    insert(
        client,
        "clean_purchases",
        [
            (
                p.purchase_id,
                p.customer_id,
                p.store_id,
                p.store_city,
                utc(p.purchase_datetime),
                p.total_amount,
                p.payment_method,
                p.is_delivery,
                p.line_count,
                p.quantity_total,
                *meta,
            )
            for p in purchases
        ],
    )
    insert(
        client,
        "clean_purchase_items",
        [
            (
                i.purchase_id,
                i.line_no,
                i.product_id,
                i.name,
                i.category,
                i.category_code,
                i.quantity,
                i.price_per_unit,
                i.total_price,
                "e",
                1,
            )
            for p in purchases
            for i in p.items
        ],
    )


def insert(client: Client, table: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        # Every column but the write time, which the server fills in.
        names = client.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = {table:String} AND name != 'projected_at' ORDER BY position",
            parameters={"table": table},
        ).result_columns[0]
        client.insert(table, rows, column_names=list(names))


def table(rows: Sequence[FeatureRow]) -> dict[str, dict[str, int]]:
    """Rows keyed by customer, each feature by name, for a readable diff."""
    return {
        row.customer_id: dict(zip(FEATURE_NAMES, row.values, strict=True))
        for row in rows
    }


def assert_engines_agree(
    client: Client,
    customers: Sequence[CleanCustomer],
    products: Sequence[CleanProduct],
    purchases: Sequence[CleanPurchase],
    as_of: datetime,
) -> None:
    load(client, customers, products, purchases)

    actual = ClickHouseFeatureEngine(client).compute(as_of)
    expected = compute_features(customers, purchases, products, as_of)

    assert [row.customer_id for row in actual] == [row.customer_id for row in expected]
    assert table(actual) == table(expected)


def customer(customer_id: str, registered: datetime, loyalty: bool) -> CleanCustomer:
    return CleanCustomer(
        customer_id=customer_id,
        gender="m",
        birth_date=None,
        registration_date=registered,
        is_loyalty_member=loyalty,
        city="moscow",
        email_token=None,
        phone_token=None,
        loyalty_card_token=None,
    )


def product(product_id: str, code: str | None, organic: bool) -> CleanProduct:
    return CleanProduct(
        product_id=product_id,
        name=f"product {product_id}",
        category=code or "other",
        category_code=code,
        price=Decimal("10.00"),
        is_organic=organic,
    )


def purchase(
    purchase_id: str,
    customer_id: str,
    when: datetime,
    kopecks: int,
    payment: str,
    store: str,
    delivery: bool,
    lines: Sequence[tuple[str, str | None, int]],
) -> CleanPurchase:
    """A purchase of ``(product, category code, thousandths of a unit)`` lines."""
    items = tuple(
        CleanItem(
            purchase_id=purchase_id,
            line_no=number,
            product_id=product_id,
            name=f"product {product_id}",
            category=code or "other",
            category_code=code,
            quantity=Decimal(milli) / 1000,
            price_per_unit=Decimal("10.00"),
            total_price=Decimal(kopecks) / 100 if number == 0 else Decimal("0.00"),
        )
        for number, (product_id, code, milli) in enumerate(lines)
    )

    return CleanPurchase(
        purchase_id=purchase_id,
        customer_id=customer_id,
        store_id=store,
        store_city=STORES[store],
        purchase_datetime=when,
        total_amount=Decimal(kopecks) / 100,
        payment_method=payment,
        is_delivery=delivery,
        line_count=len(items),
        quantity_total=sum((item.quantity for item in items), Decimal(0)),
        items=items,
    )


# Generated data that lands on the catalogue's boundaries


as_ofs = st.builds(
    lambda day, hour, micro: (
        datetime(2026, 3, 2) + timedelta(days=day, hours=hour, microseconds=micro)
    ),
    st.integers(0, 6),
    st.sampled_from((0, 9, 12, 20, 23)),
    st.sampled_from((0, 1, 500_000, 999_999)),
)
near = st.sampled_from((-1, 0, 1))
line_specs = st.tuples(
    st.sampled_from((*PRODUCT_IDS, UNKNOWN_PRODUCT)), st.sampled_from(CODES)
)


@st.composite
def window_moments(draw: st.DrawFn, as_of: datetime) -> datetime:
    """A second either side of ``as_of`` less whole days, mostly a window's length."""
    days = draw(st.sampled_from(EDGE_DAYS if draw(st.integers(0, 3)) else OTHER_DAYS))

    return as_of - timedelta(days=days, seconds=draw(near))


@st.composite
def clock_moments(
    draw: st.DrawFn, as_of: datetime, weekdays: Sequence[int]
) -> datetime:
    """An hour boundary on one of ``weekdays``, one to sixteen weeks back."""
    weekday = draw(st.sampled_from(weekdays))
    weeks = draw(st.sampled_from((1, 2, 4, 16)))
    day = as_of.date() - timedelta(days=(as_of.weekday() - weekday) % 7 + 7 * weeks)
    minute, second = draw(st.sampled_from(((0, 0), (59, 59))))

    return datetime.combine(day, time(draw(st.sampled_from(HOURS)), minute, second))


def counts(n: int) -> st.SearchStrategy[int]:
    """How many of ``n`` purchases share a trait: at and around 0.5, 0.6, 0.7."""
    edges = {0, n // 2, (n + 1) // 2, 6 * n // 10, -(-6 * n // 10), 7 * n // 10}

    return st.sampled_from(sorted({*edges, min(7 * n // 10 + 1, n), n}))


@st.composite
def histories(
    draw: st.DrawFn, customer_id: str, as_of: datetime
) -> list[CleanPurchase]:
    """One customer's purchases, with shares, sums and averages near the edges.

    Exactly the first ``weekend`` purchases are forced onto a weekend, the
    first ``main`` paid one way and no other, the first ``single`` given one
    line. Every basket but the last is one amount and every quantity but the
    last one portion; the last ones may be off by a kopeck or a thousandth, so
    that sums and averages land on the thresholds or just beside them.
    """
    n = draw(st.sampled_from((0, 1, 2, 3, 5, 10)))
    weekend, main, single = draw(counts(n)), draw(counts(n)), draw(counts(n))
    method = draw(st.sampled_from(("cash", "card")))
    others = st.sampled_from([other for other in PAYMENTS if other != method])
    base = draw(st.sampled_from((0, 20_000, 100_000, 200_000, 500_000, 1_000_000)))
    portion = draw(st.sampled_from((1_000, 4_000, 12_000)))
    purchases = []
    for index in range(n):
        if index < weekend:
            when = draw(clock_moments(as_of, WEEKEND))
        else:
            when = draw(
                st.one_of(window_moments(as_of), clock_moments(as_of, WORKDAYS))
            )
        kopecks, milli = (
            (base + draw(near), portion + draw(near))
            if index == n - 1
            else (base, portion)
        )
        extra = [
            draw(st.sampled_from((1, 250)))
            for _ in range(0 if index < single else draw(st.integers(1, 3)))
        ]
        millis = [milli - sum(extra), *extra]
        purchases.append(
            purchase(
                f"{customer_id}-{index}",
                customer_id,
                when,
                max(kopecks, 0),
                method if index < main else draw(others),
                draw(st.sampled_from(sorted(STORES))),
                draw(st.booleans()),
                [(*draw(line_specs), milli) for milli in millis],
            )
        )

    return purchases


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[list[CleanCustomer], list[CleanProduct], list[CleanPurchase], datetime]:
    as_of = draw(as_ofs)
    customers = [
        customer(
            f"c{number}",
            as_of
            - timedelta(
                days=draw(st.sampled_from((0, 7, 30, 400))), seconds=draw(near)
            ),
            draw(st.booleans()),
        )
        for number in range(draw(st.integers(1, 5)))
    ]
    products = [
        product(product_id, draw(st.sampled_from(CODES)), draw(st.booleans()))
        for product_id in PRODUCT_IDS
    ]
    owners = [c.customer_id for c in customers] + [UNKNOWN_CUSTOMER]
    purchases = [p for owner in owners for p in draw(histories(owner, as_of))]

    return customers, products, purchases, as_of


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(world=worlds())
def test_clickhouse_equals_reference_on_generated_data(
    client: Client,
    world: tuple[
        list[CleanCustomer], list[CleanProduct], list[CleanPurchase], datetime
    ],
) -> None:
    """On data around every boundary, ClickHouse computes the reference's table."""
    customers, products, purchases, as_of = world

    assert_engines_agree(client, customers, products, purchases, as_of)


# Every boundary, built on purpose


class Shop:
    """Customers and purchases for one ``as_of``, each under a fresh id."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.customers: list[CleanCustomer] = []
        self.purchases: list[CleanPurchase] = []
        self.products = [
            product(product_id, code, product_id == "p1")
            for product_id, code in zip(PRODUCT_IDS, CODES, strict=True)
        ]

    def ago(self, days: int, seconds: int = 0) -> datetime:
        return self.as_of - timedelta(days=days, seconds=seconds)

    def customer(
        self, registered: datetime | None = None, loyalty: bool = False
    ) -> str:
        customer_id = f"c{len(self.customers):04d}"
        when = self.ago(400) if registered is None else registered
        self.customers.append(customer(customer_id, when, loyalty))

        return customer_id

    def buy(
        self,
        customer_id: str,
        when: datetime | None = None,
        *,
        kopecks: int = 50_000,
        payment: str = "card",
        store: str = "s0",
        delivery: bool = False,
        lines: Sequence[tuple[str, str | None, int]] = (("p0", None, 1_000),),
    ) -> None:
        """A purchase, by default a card basket of 500 a day before ``as_of``."""
        self.purchases.append(
            purchase(
                f"pu{len(self.purchases):05d}",
                customer_id,
                self.ago(1) if when is None else when,
                kopecks,
                payment,
                store,
                delivery,
                lines,
            )
        )

    def last_week(self, weekday: int, clock: time) -> datetime:
        """That weekday of the week before ``as_of``'s, at ``clock``."""
        back = (self.as_of.weekday() - weekday) % 7 + 7

        return datetime.combine(self.as_of.date() - timedelta(days=back), clock)


def windows(shop: Shop) -> None:
    """One purchase a second either side of every window edge, per category."""
    for days, seconds, code in itertools.product(EDGE_DAYS, (-1, 0, 1), CODES):
        when = shop.ago(days, seconds)
        shop.buy(shop.customer(), when, kopecks=200_001, lines=[("p0", code, 1_000)])
    for seconds, code in itertools.product((-1, 0, 1), ("fruits", None)):
        customer_id = shop.customer()
        for when in (shop.ago(1), shop.ago(2), shop.ago(30, seconds)):
            shop.buy(customer_id, when, lines=[("p0", code, 1_000)])
    for days, seconds in itertools.product((0, 30), (-1, 0, 1)):
        shop.customer(registered=shop.ago(days, seconds))


def clocks(shop: Shop) -> None:
    """A purchase at each hour edge on each day of the week."""
    edges = [time(6, 59, 59), time(7), time(8, 59, 59), time(9), time(9, 59, 59)]
    edges += [time(10), time(19, 59, 59), time(20), time(23, 59, 59), time(0)]
    for weekday, clock in itertools.product(range(7), edges):
        shop.buy(shop.customer(), shop.last_week(weekday, clock))


def shares(shop: Shop) -> None:
    """Each ``k`` of ``n`` up to ten: paid in cash, by card, at weekends, one line."""
    saturday, monday = shop.last_week(5, time(12)), shop.last_week(0, time(12))
    one, two = [("p0", None, 1_000)], [("p0", None, 1_000), ("p2", None, 1_000)]
    for n in range(1, 11):
        for k in range(n + 1):
            cash, card, weekend, single = (shop.customer() for _ in range(4))
            for index in range(n):
                chosen = index < k
                shop.buy(cash, payment="cash" if chosen else "other")
                shop.buy(card, payment="card" if chosen else "cash")
                shop.buy(weekend, saturday if chosen else monday)
                shop.buy(single, lines=one if chosen else two)


def amounts(shop: Shop) -> None:
    """Baskets and quantities whose sums and averages sit on or beside a limit."""
    bases = (20_000, 100_000, 200_000, 500_000, 1_000_000)
    for base, n, off in itertools.product(bases, (1, 2, 3), (-1, 0, 1)):
        customer_id = shop.customer()
        for index in range(n):
            last = index == n - 1
            shop.buy(customer_id, kopecks=base + off if last else base)
    for n, off in itertools.product((1, 2, 3), (-1, 0, 1)):
        customer_id = shop.customer()
        for index in range(n):
            milli = 4_000 + off if index == n - 1 else 4_000
            lines = [("p0", None, milli - 500), ("p2", None, 500)]
            shop.buy(customer_id, lines=lines)
    customer_id = shop.customer()
    shop.buy(customer_id, shop.ago(100), kopecks=900_000)
    shop.buy(customer_id, shop.ago(0, -1), kopecks=100_000)


def others(shop: Shop) -> None:
    """Loyalty, stores and cities, delivery, organic products, strangers."""
    for loyalty, n in itertools.product((False, True), (2, 3)):
        customer_id = shop.customer(loyalty=loyalty)
        for _ in range(n):
            shop.buy(customer_id)
    for stores in (["s0"], ["s0", "s0"], ["s0", "s1"], ["s0", "s2"], ["s1", "s2"]):
        customer_id = shop.customer()
        for store in stores:
            shop.buy(customer_id, store=store)
    for delivery in (False, True):
        shop.buy(shop.customer(), shop.ago(300), delivery=delivery)
    for product_id in (*PRODUCT_IDS, UNKNOWN_PRODUCT):
        shop.buy(shop.customer(), lines=[(product_id, None, 1_000)])
    varied = shop.customer()
    for code in ("bakery", "meat", "dairy", None):
        shop.buy(varied, lines=[("p0", code, 1_000), ("p3", code, 1_000)])
    shop.buy(UNKNOWN_CUSTOMER, kopecks=1_000_000, delivery=True)
    shop.buy(shop.customer(registered=shop.ago(0, -1)), delivery=True)
    shop.customer()


@pytest.mark.parametrize(
    "as_of",
    [
        pytest.param(datetime(2026, 3, 18, 20, 0, 0, 500_000), id="wednesday-evening"),
        pytest.param(datetime(2026, 3, 22), id="sunday-midnight"),
        pytest.param(datetime(2026, 3, 28, 9, 0, 0, 999_999), id="saturday-morning"),
    ],
)
def test_clickhouse_equals_reference_on_every_boundary(
    client: Client, as_of: datetime
) -> None:
    """Customers built on each edge of each feature get the reference's values."""
    shop = Shop(as_of)
    for build in (windows, clocks, shares, amounts, others):
        build(shop)

    assert_engines_agree(client, shop.customers, shop.products, shop.purchases, as_of)


def random_world(
    rng: random.Random, customers: int, purchases: int, as_of: datetime
) -> tuple[list[CleanCustomer], list[CleanProduct], list[CleanPurchase]]:
    """A shop of many customers, with prices and times spread over a year."""
    people = [
        customer(
            f"c{number:05d}",
            as_of - timedelta(seconds=rng.randint(-30 * 86_400, 400 * 86_400)),
            rng.random() < 0.4,
        )
        for number in range(customers)
    ]
    products = [
        product(f"p{number}", rng.choice(CODES), rng.random() < 0.2)
        for number in range(40)
    ]
    owners = [c.customer_id for c in people] + [UNKNOWN_CUSTOMER]
    baskets = [
        purchase(
            f"pu{number:06d}",
            rng.choice(owners),
            as_of - timedelta(seconds=rng.randint(-5 * 86_400, 120 * 86_400)),
            rng.choice((rng.randint(0, 500_000), rng.choice((20_000, 100_000)))),
            rng.choice(PAYMENTS),
            rng.choice(sorted(STORES)),
            rng.random() < 0.3,
            [
                (
                    f"p{rng.randrange(42)}",
                    rng.choice(CODES),
                    rng.choice((1_000, 2_000, rng.randint(1, 9_000))),
                )
                for _ in range(rng.randint(1, 5))
            ],
        )
        for number in range(purchases)
    ]

    return people, products, baskets


def test_clickhouse_equals_reference_on_a_large_random_shop(client: Client) -> None:
    """On 2,000 customers and 20,000 purchases both engines give the same table."""
    as_of = datetime(2026, 3, 18, 20, 0, 0, 250_000)
    customers, products, purchases = random_world(
        random.Random(1), 2_000, 20_000, as_of
    )

    assert_engines_agree(client, customers, products, purchases, as_of)


def test_clickhouse_engine_is_named_clickhouse(client: Client) -> None:
    """The engine reports its name for manifests and logs."""
    assert ClickHouseFeatureEngine(client).name == "clickhouse"


def test_clickhouse_engine_returns_no_rows_for_an_empty_warehouse(
    client: Client,
) -> None:
    """With no clean customers the table is empty."""
    load(client, [], [], [])

    assert ClickHouseFeatureEngine(client).compute(datetime(2026, 3, 18)) == []


def test_clickhouse_engine_translates_a_missing_table(client: Client, dsn: str) -> None:
    """A warehouse without the migrations raises InfrastructureError, chained."""
    client.command("CREATE DATABASE IF NOT EXISTS pikcha_unmigrated")
    bare = clickhouse_connect.get_client(dsn=dsn, database="pikcha_unmigrated")
    try:
        with pytest.raises(InfrastructureError, match="2026-03-18T00:00:00") as caught:
            ClickHouseFeatureEngine(bare).compute(datetime(2026, 3, 18))
    finally:
        bare.close()

    assert caught.value.__cause__ is not None
    assert not caught.value.transient
