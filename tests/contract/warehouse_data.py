"""Projected events built by hand for the Warehouse contract, and a small shop."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pikcha.domain.cleaning import (
    CleanCustomer,
    CleanItem,
    CleanProduct,
    CleanPurchase,
    CleanRow,
    CleanStore,
    Rejection,
    Rule,
)
from pikcha.domain.entities import Entity
from pikcha.ports.warehouse import ProjectedEvent, RawEvent

NOW = datetime(2024, 6, 30, 12, 0)
PARTITIONS = 3


def projected(
    entity: Entity,
    entity_id: str,
    offset: int,
    outcome: CleanRow | Rejection,
    *,
    content: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime = datetime(2024, 6, 1, 8, 30, 0, 250),
) -> ProjectedEvent:
    """An event at ``offset`` of the entity's partition; the content hash comes
    from ``content`` when given, else from the outcome, so equal rows repeat."""
    body = content if content is not None else repr(outcome)
    raw = RawEvent(
        entity=entity,
        event_id=event_id or f"{entity.value}-{entity_id}-{offset}",
        event_type=f"{entity.value}.upserted",
        schema_version=1,
        entity_id=entity_id,
        occurred_at=occurred_at,
        source="test",
        content_hash=hashlib.sha256(f"{entity_id}|{body}".encode()).hexdigest(),
        mask_key_id="k1",
        payload=f'{{"id": "{entity_id}", "body": "{len(body)}"}}',
        stream=f"{entity.value}s",
        partition=zlib.crc32(entity_id.encode()) % PARTITIONS,
        offset=offset,
    )

    return ProjectedEvent(raw, outcome)


def store(
    store_id: str, offset: int, name: str = "пикча центр", city: str = "москва"
) -> ProjectedEvent:
    row = CleanStore(store_id, name, "большая пикча", "супермаркет", city, True, False)

    return projected(Entity.STORE, store_id, offset, row)


def product(
    product_id: str,
    offset: int,
    name: str = "хлеб",
    category: str = "зерновые и хлебобулочные изделия",
    code: str | None = "bakery",
    price: str = "50.00",
) -> ProjectedEvent:
    row = CleanProduct(product_id, name, category, code, Decimal(price), False)

    return projected(Entity.PRODUCT, product_id, offset, row)


def customer(
    customer_id: str,
    offset: int,
    registered: datetime = datetime(2023, 1, 1, 10, 0),
    loyal: bool = False,
    city: str = "москва",
    born: date | None = date(1990, 5, 17),
) -> ProjectedEvent:
    row = CleanCustomer(
        customer_id,
        "female",
        born,
        registered,
        loyal,
        city,
        f"email-{customer_id}",
        None,
        "card-token" if loyal else None,
    )

    return projected(Entity.CUSTOMER, customer_id, offset, row)


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: str
    price: str
    name: str = "хлеб"
    code: str | None = "bakery"

    @property
    def total(self) -> Decimal:
        return (Decimal(self.quantity) * Decimal(self.price)).quantize(Decimal("0.01"))


def purchase(
    purchase_id: str,
    offset: int,
    *lines: Line,
    customer_id: str = "c1",
    store_id: str = "s1",
    city: str = "москва",
    when: datetime = datetime(2024, 6, 1, 10, 0),
    payment: str = "card",
    delivery: bool = False,
) -> ProjectedEvent:
    items = tuple(
        CleanItem(
            purchase_id,
            number,
            line.product_id,
            line.name,
            "категория",
            line.code,
            Decimal(line.quantity).quantize(Decimal("0.001")),
            Decimal(line.price),
            line.total,
        )
        for number, line in enumerate(lines)
    )
    row = CleanPurchase(
        purchase_id,
        customer_id,
        store_id,
        city,
        when,
        sum((line.total for line in lines), Decimal("0.00")),
        payment,
        delivery,
        len(items),
        sum((item.quantity for item in items), Decimal("0.000")),
        items,
    )

    return projected(Entity.PURCHASE, purchase_id, offset, row)


def rejected(
    entity: Entity,
    entity_id: str,
    offset: int,
    rule: Rule = Rule.NOT_NEGATIVE,
    content: str | None = None,
) -> ProjectedEvent:
    reason = Rejection(rule, "price", f"{entity_id} breaks {rule}")

    return projected(
        entity, entity_id, offset, reason, content=content or f"bad {offset}"
    )


BREAD = Line("p1", "2", "50.00")
MILK = Line("p2", "1", "80.00", name="молоко", code="dairy")


def shop() -> list[ProjectedEvent]:
    """Two stores, two known products and one only seen in a basket, three
    customers (one new, one never buying) and four purchases, with an older
    version of one purchase and a rejected later version of another."""
    return [
        store("s1", 1),
        store("s2", 2, name="пикча север", city="казань"),
        product("p1", 1),
        product("p2", 2, name="молоко", category="молочные продукты", code="dairy"),
        customer("c1", 1, registered=datetime(2024, 6, 20, 9, 0), loyal=True),
        customer("c2", 2, city="казань"),
        customer("c3", 3, registered=datetime(2022, 5, 5), loyal=True),
        purchase("b1", 1, BREAD, MILK, when=datetime(2024, 6, 29, 18, 0)),
        purchase(
            "b2",
            2,
            Line("p3", "1.5", "200.00", name="сыр", code="dairy"),
            store_id="s2",
            city="казань",
            when=datetime(2024, 6, 10, 9, 30),
            payment="cash",
            delivery=True,
        ),
        purchase("b3", 3, BREAD, Line("p2", "10", "99.90"), customer_id="c2"),
        purchase(
            "b4",
            4,
            Line("p2", "1", "80.03", name="молоко", code="dairy"),
            customer_id="c2",
            when=datetime(2024, 5, 1, 23, 59, 59, 999999),
            payment="cash",
        ),
        purchase(
            "b3",
            13,
            Line("p1", "1", "50.00"),
            customer_id="c2",
            when=datetime(2024, 5, 1, 10, 0),
        ),
        rejected(Entity.PURCHASE, "b4", 14),
    ]
