"""The synthetic shop data: volumes, validity, determinism, anomalies, writers."""

from __future__ import annotations

import json
import re
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from pikcha.application.generate import (
    APPLICABLE,
    BIG_NETWORK,
    CORRUPTIONS,
    SMALL_NETWORK,
    Anomaly,
    Generated,
    GeneratorConfig,
    encode_line,
    iter_generated,
    iter_records,
    write_files,
    write_jsonl,
)
from pikcha.domain.categories import Category, category_code
from pikcha.domain.cleaning import Rejection, Rule, clean, validate_record
from pikcha.domain.entities import Entity, parse_record
from pikcha.domain.errors import ConfigurationError
from pikcha.domain.masking import normalise_email

NOW = datetime(2025, 9, 24, 20, 46, 44, 824710)
ORDER = [Entity.STORE, Entity.PRODUCT, Entity.CUSTOMER, Entity.PURCHASE]
SMALL = {"stores": 6, "products": 12, "customers": 20, "purchases": 60}
EXPECTED_RULES = {
    Anomaly.NULLS: {Rule.REQUIRED_PRESENT},
    Anomaly.EMPTY_STRINGS: {Rule.ID_PRESENT, Rule.REQUIRED_PRESENT},
    Anomaly.FUTURE_DATES: {Rule.DATE_NOT_FUTURE},
    Anomaly.NEGATIVE_PRICES: {Rule.NOT_NEGATIVE},
    Anomaly.BROKEN_TOTALS: {Rule.TOTAL_MATCHES_LINES},
}


@pytest.fixture(scope="module")
def default_records() -> dict[Entity, list[dict[str, Any]]]:
    grouped: dict[Entity, list[dict[str, Any]]] = {entity: [] for entity in Entity}
    for entity, doc in iter_records(GeneratorConfig(now=NOW, seed=7)):
        grouped[entity].append(doc)

    return grouped


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for number, value in enumerate(node):
            yield from leaves(value, f"{prefix}{number}.")
    else:
        yield prefix.rstrip("."), node


def every_record(kind: Anomaly) -> GeneratorConfig:
    share: dict[str, Any] = {kind.value: 1.0}

    return GeneratorConfig(now=NOW, seed=5, **share)


def rejection(item: Generated) -> Rejection | None:
    outcome = clean(item.entity, parse_record(item.entity, item.data), NOW)

    return outcome if isinstance(outcome, Rejection) else None


# Volumes and shape.


def test_default_config_gives_the_default_volumes(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    counts = {entity: len(docs) for entity, docs in default_records.items()}

    assert counts[Entity.STORE] == 45
    assert counts[Entity.PRODUCT] >= 20
    assert counts[Entity.CUSTOMER] >= counts[Entity.STORE]
    assert counts[Entity.PURCHASE] >= 200


def test_records_come_as_stores_products_customers_then_purchases() -> None:
    entities = [entity for entity, _ in iter_records(GeneratorConfig(now=NOW, **SMALL))]

    assert list(dict.fromkeys(entities)) == ORDER
    assert entities == sorted(entities, key=ORDER.index)


def test_stores_are_thirty_supermarkets_and_fifteen_small_shops(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    stores = default_records[Entity.STORE]
    big = [s for s in stores if s["store_network"] == BIG_NETWORK]
    small = [s for s in stores if s["store_network"] == SMALL_NETWORK]

    assert (len(big), len(small)) == (30, 15)
    assert all(
        s["store_type_description"]
        == "Супермаркет более 200 кв.м. Входит в сеть из 30 магазинов."
        for s in big
    )
    assert all(
        "менее 100 кв.м" in s["store_type_description"]
        and "из 15 магазинов" in s["store_type_description"]
        for s in small
    )
    assert all(s["store_name"].startswith(s["store_network"] + " — ") for s in stores)
    assert len({s["store_name"] for s in stores}) == len(stores)


def test_every_store_offers_the_five_categories(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    for store in default_records[Entity.STORE]:
        codes = {category_code(name) for name in store["categories"]}

        assert codes == set(Category)


def test_products_cover_the_five_categories(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    products = default_records[Entity.PRODUCT]
    codes = Counter(category_code(p["group"]) for p in products)

    assert set(codes) == set(Category)
    assert min(codes.values()) >= 4


def test_every_store_has_a_customer_living_by_it(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    homes = {
        json.dumps(c["purchase_location"], sort_keys=True)
        for c in default_records[Entity.CUSTOMER]
    }
    locations = {
        json.dumps(s["location"], sort_keys=True) for s in default_records[Entity.STORE]
    }

    assert locations <= homes


def test_purchases_fall_within_ninety_days_before_now(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    moments = [
        datetime.fromisoformat(p["purchase_datetime"])
        for p in default_records[Entity.PURCHASE]
    ]

    assert all(NOW - timedelta(days=90) <= moment <= NOW for moment in moments)
    assert max(moments) - min(moments) > timedelta(days=60)


def test_purchases_come_after_their_customer_registered(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    registered = {
        c["customer_id"]: datetime.fromisoformat(c["registration_date"])
        for c in default_records[Entity.CUSTOMER]
    }

    for purchase in default_records[Entity.PURCHASE]:
        moment = datetime.fromisoformat(purchase["purchase_datetime"])

        assert moment >= registered[purchase["customer"]["customer_id"]]


def test_ids_follow_the_source_patterns(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    def ids(entity: Entity) -> list[str]:
        return [doc[entity.id_field] for doc in default_records[entity]]

    assert ids(Entity.STORE)[:2] == ["store-001", "store-002"]
    assert ids(Entity.PRODUCT)[:2] == ["prd-1000", "prd-1001"]
    assert ids(Entity.CUSTOMER)[:2] == ["cus-1000", "cus-1001"]
    assert ids(Entity.PURCHASE)[:2] == ["ord-00001", "ord-00002"]
    assert ids(Entity.PURCHASE)[-1] == "ord-01000"
    for entity in Entity:
        assert len(set(ids(entity))) == len(ids(entity))


def test_purchase_ids_are_padded_to_fit_the_count() -> None:
    config = GeneratorConfig(now=NOW, stores=2, products=5, customers=2)
    large = GeneratorConfig(
        now=NOW, stores=2, products=5, customers=2, purchases=5_000_000
    )

    def first_purchase(c: GeneratorConfig) -> str:
        docs = (d for e, d in iter_records(c) if e is Entity.PURCHASE)
        purchase = next(docs)

        return str(purchase["purchase_id"])

    assert first_purchase(config) == "ord-00001"
    assert first_purchase(large) == "ord-0000001"


def test_purchases_refer_to_generated_stores_customers_and_products(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    stores = {s["store_id"]: s for s in default_records[Entity.STORE]}
    customers = {c["customer_id"]: c for c in default_records[Entity.CUSTOMER]}
    products = {p["id"]: p for p in default_records[Entity.PRODUCT]}

    for purchase in default_records[Entity.PURCHASE]:
        store = stores[purchase["store"]["store_id"]]
        customer = customers[purchase["customer"]["customer_id"]]

        assert purchase["store"]["location"] == store["location"]
        assert purchase["customer"]["last_name"] == customer["last_name"]
        for item in purchase["items"]:
            product = products[item["product_id"]]
            assert item["category"] == product["group"]
            assert item["price_per_unit"] == product["price"]
            assert item["manufacturer"] == product["manufacturer"]


# Validity.


def test_clean_records_pass_the_cleaning_rules(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    for entity, docs in default_records.items():
        for doc in docs:
            validate_record(entity, doc, NOW)


def test_money_adds_up_to_the_kopeck(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    for purchase in default_records[Entity.PURCHASE]:
        lines = [Decimal(repr(item["total_price"])) for item in purchase["items"]]
        for item in purchase["items"]:
            price = Decimal(repr(item["price_per_unit"]))
            exact = Decimal(repr(item["quantity"])) * price

            assert price == price.quantize(Decimal("0.01"))
            assert abs(Decimal(repr(item["total_price"])) - exact) <= Decimal("0.005")
        assert Decimal(repr(purchase["total_amount"])) == sum(lines)


def test_purchases_have_one_to_several_distinct_items(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    sizes = Counter(len(p["items"]) for p in default_records[Entity.PURCHASE])

    assert min(sizes) == 1
    assert max(sizes) >= 5
    for purchase in default_records[Entity.PURCHASE]:
        ids = [item["product_id"] for item in purchase["items"]]
        assert len(set(ids)) == len(ids)


def test_phones_parse_as_russian_numbers_in_several_spellings(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    phones = [c["phone"] for c in default_records[Entity.CUSTOMER]]
    phones += [s["manager"]["phone"] for s in default_records[Entity.STORE]]
    shapes = {phone[:2] + re.sub(r"\d", "9", phone[2:]) for phone in phones}

    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "RU"))
    assert {"+7 (999) 999-99-99", "8 999 999 99 99", "+79999999999"} <= shapes


def test_emails_are_distinct_and_normalisable(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    emails = [c["email"] for c in default_records[Entity.CUSTOMER]]
    normal = [normalise_email(email) for email in emails]

    assert len(set(normal)) == len(emails)
    assert all(re.fullmatch(r"[\w.]+@[\w.-]+\.[a-z]+", e, re.ASCII) for e in normal)
    assert any(email != email.lower() for email in emails)


def test_only_loyalty_members_carry_a_card(
    default_records: dict[Entity, list[dict[str, Any]]],
) -> None:
    customers = default_records[Entity.CUSTOMER]

    for customer in customers:
        card = customer["loyalty_card_number"]
        if customer["is_loyalty_member"]:
            assert re.fullmatch(r"LOYAL-[0-9A-F]{10}", card)
        else:
            assert card is None
    assert {c["is_loyalty_member"] for c in customers} == {True, False}


# Determinism.


def test_the_same_seed_writes_identical_files(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=11, nulls=0.1, repeated=0.1)
    write_files(config, tmp_path / "a")
    write_files(config, tmp_path / "b")

    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")

    assert len(first) > 1000
    assert first == second


def test_the_same_seed_writes_identical_json_lines(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=11, broken_totals=0.2, repeated=0.1)
    write_jsonl(config, tmp_path / "a")
    write_jsonl(config, tmp_path / "b")

    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_another_seed_writes_other_data(tmp_path: Path) -> None:
    write_jsonl(GeneratorConfig(now=NOW, seed=1), tmp_path / "a")
    write_jsonl(GeneratorConfig(now=NOW, seed=2), tmp_path / "b")
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")

    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


# Anomalies.


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corrupting_kind_breaks_exactly_its_rule(kind: Anomaly) -> None:
    config = every_record(kind)
    seen: Counter[Entity] = Counter()

    for item in iter_generated(config):
        found = rejection(item)
        if kind not in APPLICABLE[item.entity]:
            assert item.anomaly is None
            assert found is None
            continue
        assert item.anomaly is kind
        assert found is not None
        assert found.rule in EXPECTED_RULES[kind]
        assert (found.rule, found.field) == (item.rule, item.field)
        seen[item.entity] += 1

    assert set(seen) == {e for e in Entity if kind in APPLICABLE[e]}


@pytest.mark.parametrize(
    "kind", [k for k in CORRUPTIONS if k is not Anomaly.NEGATIVE_PRICES]
)
def test_a_corruption_changes_only_its_field(kind: Anomaly) -> None:
    dirty = iter_generated(every_record(kind))
    pristine = iter_generated(GeneratorConfig(now=NOW, seed=5))

    for broken, original in zip(dirty, pristine, strict=True):
        before, after = dict(leaves(original.data)), dict(leaves(broken.data))
        changed = {path for path in before if before[path] != after[path]}

        assert changed == ({broken.field} if broken.anomaly else set())


def test_negative_prices_turn_a_purchase_into_a_consistent_refund() -> None:
    config = GeneratorConfig(now=NOW, seed=5, purchases=50, negative_prices=1.0)
    purchases = [d for e, d in iter_records(config) if e is Entity.PURCHASE]

    for purchase in purchases:
        lines = [Decimal(repr(item["total_price"])) for item in purchase["items"]]

        assert all(item["price_per_unit"] < 0 for item in purchase["items"])
        assert all(item["quantity"] > 0 for item in purchase["items"])
        assert Decimal(repr(purchase["total_amount"])) == sum(lines) < 0


def test_broken_totals_miss_the_lines_by_more_than_a_kopeck() -> None:
    config = GeneratorConfig(now=NOW, seed=5, broken_totals=1.0)
    purchases = [d for e, d in iter_records(config) if e is Entity.PURCHASE]

    for purchase in purchases:
        lines = sum(Decimal(repr(item["total_price"])) for item in purchase["items"])
        total = Decimal(repr(purchase["total_amount"]))

        assert abs(total - lines) > Decimal("0.01")
        assert total >= 0


def test_half_shares_split_the_records_and_leave_the_rest_clean() -> None:
    config = GeneratorConfig(now=NOW, seed=9, nulls=0.5, future_dates=0.5)
    marks: Counter[Anomaly | None] = Counter()

    for item in iter_generated(config):
        if item.entity is not Entity.PURCHASE:
            continue
        marks[item.anomaly] += 1
        found = rejection(item)
        if item.anomaly is None:
            assert found is None
        else:
            assert found is not None and found.rule in EXPECTED_RULES[item.anomaly]

    assert marks[None] == 0
    assert 400 <= marks[Anomaly.NULLS] <= 600
    assert marks[Anomaly.NULLS] + marks[Anomaly.FUTURE_DATES] == 1000


def test_anomaly_shares_are_kept_within_a_tolerance() -> None:
    config = GeneratorConfig(now=NOW, seed=9, purchases=4000, empty_strings=0.1)
    marked = [
        item.anomaly is Anomaly.EMPTY_STRINGS
        for item in iter_generated(config)
        if item.entity is Entity.PURCHASE
    ]

    assert 0.08 <= sum(marked) / len(marked) <= 0.12


def test_repeated_records_follow_as_identical_copies() -> None:
    config = GeneratorConfig(
        now=NOW, seed=3, repeated=1.0, negative_prices=0.3, **SMALL
    )
    items = list(iter_generated(config))
    originals, copies = items[0::2], items[1::2]

    assert len(originals) == sum(SMALL.values())
    for original, repeat in zip(originals, copies, strict=True):
        assert (original.repeat, repeat.repeat) == (0, 1)
        assert repeat.data == original.data
        assert repeat.key == f"{original.key}~r1"
        assert repeat.anomaly is original.anomaly


def test_repeats_pass_the_rules_when_their_original_does() -> None:
    config = GeneratorConfig(now=NOW, seed=3, repeated=0.5)

    for item in iter_generated(config):
        validate_record(item.entity, item.data, NOW)


def test_file_layout_writes_repeats_under_their_own_name(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=3, repeated=0.5, **SMALL)
    report = write_files(config, tmp_path)
    repeats = sorted(tmp_path.rglob("*~r1.json"))

    assert len(repeats) == report.anomaly_total(Anomaly.REPEATED) > 0
    for path in repeats:
        original = path.with_name(path.name.replace("~r1", ""))
        assert path.read_bytes() == original.read_bytes()


def test_a_blanked_id_keeps_the_intended_file_name(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=3, empty_strings=1.0, **SMALL)
    write_files(config, tmp_path)
    store_files = sorted((tmp_path / "stores").glob("*.json"))

    assert [path.stem for path in store_files] == [
        f"store-{n:03d}" for n in range(1, 7)
    ]


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"nulls": 0.6, "broken_totals": 0.6}, "sum to 1.2"),
        ({"repeated": 1.5}, "repeated = 1.5"),
        ({"future_dates": -0.1}, "future_dates = -0.1"),
        ({"stores": 0}, "stores = 0"),
        ({"purchases": -1}, "purchases = -1"),
    ],
)
def test_a_wrong_setting_is_refused_by_name(changes: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(word)):
        GeneratorConfig(now=NOW, **changes)


def test_a_now_with_a_time_zone_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="time zone"):
        GeneratorConfig(now=datetime.fromisoformat("2025-09-24T12:00:00+03:00"))


# Writers.


def test_file_layout_holds_one_pretty_file_per_record(tmp_path: Path) -> None:
    report = write_files(GeneratorConfig(now=NOW, **SMALL), tmp_path)
    first = tmp_path / "purchases" / "ord-00001.json"
    text = first.read_text(encoding="utf-8")

    for entity in Entity:
        files = list((tmp_path / entity.directory).glob("*.json"))
        assert len(files) == report.records[entity] == SMALL[entity.directory]
    assert text.startswith('{\n  "purchase_id": "ord-00001",')
    assert "Молоч" in text or "Зерновые" in text or "Мясо" in text or "Овощи" in text


def test_json_lines_round_trip(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=4, repeated=0.2, nulls=0.2)
    report = write_jsonl(config, tmp_path)
    expected: dict[Entity, list[dict[str, Any]]] = {entity: [] for entity in Entity}
    for entity, doc in iter_records(config):
        expected[entity].append(doc)

    for entity in Entity:
        path = tmp_path / entity.directory / f"{entity.directory}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()

        assert report.paths[entity] == path
        assert [json.loads(line) for line in lines] == expected[entity]
        assert lines == [encode_line(doc) for doc in expected[entity]]


def test_pre_encoded_lines_match_their_records() -> None:
    config = GeneratorConfig(now=NOW, seed=4, repeated=0.2, broken_totals=0.2)
    purchases = [
        item
        for item in iter_generated(config, lines=True)
        if item.entity is Entity.PURCHASE
    ]

    for item in purchases:
        assert item.line is None or item.line == encode_line(item.data)
    assert all((item.line is None) == (item.anomaly is not None) for item in purchases)


def test_the_report_counts_records_and_anomalies(tmp_path: Path) -> None:
    config = GeneratorConfig(now=NOW, seed=4, repeated=0.2, broken_totals=0.3)
    report = write_jsonl(config, tmp_path)
    marks: Counter[tuple[Entity, Anomaly]] = Counter()
    for item in iter_generated(config):
        if item.repeat:
            marks[item.entity, Anomaly.REPEATED] += 1
        elif item.anomaly is not None:
            marks[item.entity, item.anomaly] += 1

    assert report.total == sum(report.records.values())
    assert (
        report.records[Entity.PURCHASE]
        == 1000 + marks[Entity.PURCHASE, Anomaly.REPEATED]
    )
    assert (
        report.anomalies[Entity.PURCHASE][Anomaly.BROKEN_TOTALS]
        == marks[Entity.PURCHASE, Anomaly.BROKEN_TOTALS]
    )
    assert report.anomaly_total(Anomaly.REPEATED) == sum(
        n for (_, kind), n in marks.items() if kind is Anomaly.REPEATED
    )


@pytest.mark.parametrize("writer", [write_files, write_jsonl])
def test_writers_leave_no_temporary_files(writer: Any, tmp_path: Path) -> None:
    writer(GeneratorConfig(now=NOW, **SMALL), tmp_path)

    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_progress_is_reported_every_n_purchases(tmp_path: Path) -> None:
    calls: list[int] = []
    config = GeneratorConfig(now=NOW, purchases=250, stores=3, customers=5)

    write_jsonl(config, tmp_path, progress=calls.append, progress_every=100)

    assert calls == [100, 200, 250]


def test_a_failed_json_lines_run_leaves_no_files(tmp_path: Path) -> None:
    def crash(count: int) -> None:
        raise RuntimeError(f"stopped at {count}")

    with pytest.raises(RuntimeError):
        write_jsonl(
            GeneratorConfig(now=NOW), tmp_path, progress=crash, progress_every=10
        )

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_streaming_many_purchases_keeps_memory_bounded() -> None:
    config = GeneratorConfig(now=NOW, seed=1, purchases=200_000)
    tracemalloc.start()
    try:
        count = sum(
            1 for entity, _ in iter_records(config) if entity is Entity.PURCHASE
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_000
    assert peak < 50 * 1024 * 1024


def test_generation_is_lazy() -> None:
    config = GeneratorConfig(now=NOW, purchases=10**12)

    first = list(islice(iter_records(config), 300))

    assert first[-1][0] is Entity.PURCHASE
