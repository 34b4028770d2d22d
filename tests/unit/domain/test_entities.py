"""The shape checks of the shop's four kinds of record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from pikcha.domain.cleaning import validate_record
from pikcha.domain.entities import (
    Customer,
    Entity,
    Product,
    Purchase,
    Store,
    parse_record,
    record_id,
)
from pikcha.domain.errors import RecordError
from tests.unit.domain import records

NOW = datetime(2025, 10, 1, 12, 0)

EXAMPLES: list[tuple[Entity, Callable[[], dict[str, Any]], type]] = [
    (Entity.STORE, records.store, Store),
    (Entity.CUSTOMER, records.customer, Customer),
    (Entity.PRODUCT, records.product, Product),
    (Entity.PURCHASE, records.purchase, Purchase),
]


@pytest.mark.parametrize(("entity", "make", "model"), EXAMPLES)
def test_the_example_record_validates(
    entity: Entity, make: Callable[[], dict[str, Any]], model: type
) -> None:
    """Each example record parses into its entity's model."""
    assert isinstance(parse_record(entity, make()), model)


@pytest.mark.parametrize(("entity", "make"), [example[:2] for example in EXAMPLES])
def test_the_example_record_passes_every_cleaning_rule(
    entity: Entity, make: Callable[[], dict[str, Any]]
) -> None:
    """Each example record gives a clean row."""
    row = validate_record(entity, make(), NOW)

    assert getattr(row, f"{entity.value}_id") == record_id(entity, make())


def test_dates_of_a_customer_are_parsed() -> None:
    """Date strings become dates and date-times."""
    parsed = parse_record(Entity.CUSTOMER, records.customer())

    assert isinstance(parsed, Customer)
    assert parsed.birth_date == date(1985, 3, 13)
    assert parsed.registration_date == datetime(2025, 9, 24, 20, 46, 44, 824710)


def test_an_integer_is_accepted_where_a_number_is_expected() -> None:
    """A whole quantity written as 3 is a number."""
    parsed = parse_record(Entity.PURCHASE, records.purchase())

    assert isinstance(parsed, Purchase)
    assert parsed.items[0].quantity == 3


def test_unknown_keys_are_ignored() -> None:
    """A source file with an extra key still parses."""
    record = records.product() | {"shelf": "A-3"}

    assert isinstance(parse_record(Entity.PRODUCT, record), Product)


def without(record: dict[str, Any], key: str) -> dict[str, Any]:
    del record[key]
    return record


def changed(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *heads, leaf = path.split(".")
    node: Any = record
    for head in heads:
        node = node[int(head)] if isinstance(node, list) else node[head]
    node[leaf] = value

    return record


@pytest.mark.parametrize(
    ("entity", "make", "field"),
    [
        (Entity.STORE, records.store, "store_id"),
        (Entity.CUSTOMER, records.customer, "customer_id"),
        (Entity.PRODUCT, records.product, "id"),
        (Entity.PURCHASE, records.purchase, "purchase_id"),
    ],
)
def test_a_record_without_its_id_is_rejected(
    entity: Entity, make: Callable[[], dict[str, Any]], field: str
) -> None:
    """A missing id is named as missing, and the file names the record."""
    source = f"data/{entity.directory}/broken.json"

    with pytest.raises(RecordError) as caught:
        parse_record(entity, without(make(), field), source)

    assert (caught.value.record, caught.value.field) == (source, field)
    assert caught.value.problem == "is missing"
    assert str(caught.value) == f"{source}: field '{field}': is missing"


def test_a_record_without_id_or_source_is_named_by_its_entity() -> None:
    """With nothing else to go by, the message says the record has no id."""
    with pytest.raises(RecordError, match=r"^store without id: field 'store_id'"):
        parse_record(Entity.STORE, without(records.store(), "store_id"))


@pytest.mark.parametrize(
    ("entity", "make", "path", "value", "name", "problem"),
    [
        (
            Entity.PRODUCT,
            records.product,
            "price",
            "54.1",
            "product 'prd-1000'",
            "valid number",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "is_delivery",
            1,
            "purchase 'ord-00001'",
            "valid boolean",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "items.0.quantity",
            True,
            "purchase 'ord-00001'",
            "valid number",
        ),
        (
            Entity.CUSTOMER,
            records.customer,
            "registration_date",
            "2025-13-40",
            "customer 'cus-1000'",
            "valid datetime",
        ),
        (
            Entity.PURCHASE,
            records.purchase,
            "purchase_datetime",
            "yesterday",
            "purchase 'ord-00001'",
            "valid datetime",
        ),
        (
            Entity.STORE,
            records.store,
            "last_inventory_date",
            "24.09.2025",
            "store 'store-001'",
            "valid date",
        ),
        (
            Entity.STORE,
            records.store,
            "manager.phone",
            79123456789,
            "store 'store-001'",
            "valid string",
        ),
    ],
)
def test_a_wrong_value_is_rejected_naming_record_field_and_problem(
    entity: Entity,
    make: Callable[[], dict[str, Any]],
    path: str,
    value: Any,
    name: str,
    problem: str,
) -> None:
    """The id names the record, the dotted path the field, the text the problem."""
    with pytest.raises(RecordError) as caught:
        parse_record(entity, changed(make(), path, value))

    assert caught.value.record == name
    assert caught.value.field == path
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{name}: field '{path}': ")


def test_a_source_names_the_record_in_place_of_its_id() -> None:
    """Given a file name, the error names the file."""
    source = "data/products/prd-1000.json"

    with pytest.raises(RecordError, match=r"^data/products/prd-1000\.json: field"):
        parse_record(
            Entity.PRODUCT, changed(records.product(), "price", "54.1"), source
        )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ([records.store()], "an array"),
        ("store-001", "a string"),
        (None, "null"),
        (12, "a number"),
    ],
)
def test_a_record_that_is_not_an_object_is_rejected(data: Any, kind: str) -> None:
    """Only a JSON object can be a record, and the message says what came instead."""
    with pytest.raises(RecordError) as caught:
        parse_record(Entity.STORE, data, "data/stores/list.json")

    assert caught.value.record == "data/stores/list.json"
    assert caught.value.field == "<record>"
    assert caught.value.problem == f"expected a JSON object, got {kind}"


def test_a_negative_price_is_rejected_by_the_not_negative_rule() -> None:
    """validate_record names the record, the field and the rule broken."""
    with pytest.raises(RecordError) as caught:
        validate_record(Entity.PRODUCT, changed(records.product(), "price", -54.1), NOW)

    assert caught.value.record == "product 'prd-1000'"
    assert caught.value.field == "price"
    assert "not_negative" in caught.value.problem
    assert "-54.1" in caught.value.problem


def test_validate_record_names_the_source_of_a_broken_rule() -> None:
    """A file name given as source names the rejected record."""
    source = "data/products/prd-1000.json"

    with pytest.raises(
        RecordError, match=r"^data/products/prd-1000\.json: field 'price'"
    ):
        validate_record(
            Entity.PRODUCT, changed(records.product(), "price", -1.0), NOW, source
        )


@pytest.mark.parametrize(
    ("entity", "data", "expected"),
    [
        (Entity.STORE, {"store_id": "store-001"}, "store-001"),
        (Entity.PRODUCT, {"id": "prd-1"}, "prd-1"),
        (Entity.PRODUCT, {"id": 7}, None),
        (Entity.CUSTOMER, {}, None),
    ],
)
def test_record_id_reads_the_entitys_own_id_field(
    entity: Entity, data: dict[str, Any], expected: str | None
) -> None:
    """The id is the string under the entity's id field, or None."""
    assert record_id(entity, data) == expected


@pytest.mark.parametrize(
    ("entity", "directory", "id_field"),
    [
        (Entity.STORE, "stores", "store_id"),
        (Entity.PRODUCT, "products", "id"),
        (Entity.CUSTOMER, "customers", "customer_id"),
        (Entity.PURCHASE, "purchases", "purchase_id"),
    ],
)
def test_each_entity_names_its_folder_and_id_field(
    entity: Entity, directory: str, id_field: str
) -> None:
    """The source layout is DIR/<entity>s/ and each entity has its own id key."""
    assert (entity.directory, entity.id_field) == (directory, id_field)
