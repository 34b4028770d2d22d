"""Synthetic data of the chain «Пикча»: stores, products, customers, purchases.

The records have the JSON shape of the shop's source files
(:mod:`pikcha.domain.entities`). Everything follows from the seed and the
caller's ``now``: Faker, seeded once, fills small pools of names and streets up
front, and one :class:`random.Random` draws every record, so the same
configuration gives the same bytes. Purchases are drawn lazily; only the stores,
products and customers stay in memory.

Anomalies come from a second random stream, so switching them on leaves the
clean content of every record as it was. Each corrupting kind breaks exactly
one cleaning rule (:class:`~pikcha.domain.cleaning.Rule`) and at most one kind
hits a record, so the shares of the corrupting kinds may sum to at most 1. The
share of a kind counts among the records of the entities it applies to.
``repeated`` emits a record, clean or not, a second time unchanged. The kinds:

- ``nulls``: a field the rules require turns null: a store's name or city; a
  product's name, group or price; a customer's registration date (the rules
  require nothing else of a customer); a purchase's store city, time, payment
  method, total, or a line's quantity, price, total or category.
- ``empty_strings``: an id, or a required text of the fields above, turns "".
- ``future_dates``: a customer's birth or registration date, or a purchase's
  time, falls after ``now``.
- ``negative_prices``: a product's price turns negative, or a purchase becomes
  a refund booked as a sale (every price and total negative, still adding up).
- ``broken_totals``: a purchase's total misses the sum of its lines by two
  kopecks to five hundred roubles.

The dictionaries yielded share nested parts (a store's location, a product's
manufacturer) with each other: treat them as read-only.
"""

from __future__ import annotations

import copy
import enum
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

from faker import Faker

from pikcha.domain.cleaning import Rule
from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError

Doc = dict[str, Any]
Progress = Callable[[int], None]

BIG_NETWORK = "Большая Пикча"
SMALL_NETWORK = "Маленькая Пикча"
CATEGORIES: tuple[str, ...] = (
    "🥖🥖 Зерновые и хлебобулочные изделия",
    "🥩🥩 Мясо, рыба, яйца и бобовые",
    "🥛🥛 Молочные продукты",
    "🍏🍏 Фрукты и ягоды",
    "🥦🥦 Овощи и зелень",
)
PAYMENT_METHODS: tuple[str, ...] = ("card", "cash", "sbp")
WINDOW_DAYS = 90

_RUSSIA = "Россия"
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000

encode_line: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
"""A record as one compact JSON line, the form of the ``.jsonl`` files."""


class Anomaly(enum.StrEnum):
    """The kinds of dirty data the generator can plant."""

    REPEATED = "repeated"
    NULLS = "nulls"
    EMPTY_STRINGS = "empty_strings"
    FUTURE_DATES = "future_dates"
    NEGATIVE_PRICES = "negative_prices"
    BROKEN_TOTALS = "broken_totals"


CORRUPTIONS: tuple[Anomaly, ...] = (
    Anomaly.NULLS,
    Anomaly.EMPTY_STRINGS,
    Anomaly.FUTURE_DATES,
    Anomaly.NEGATIVE_PRICES,
    Anomaly.BROKEN_TOTALS,
)

# The rules have nothing to say about a store's dates or prices, a product's
# dates or any total but a purchase's, so those kinds skip those entities.
APPLICABLE: Mapping[Entity, tuple[Anomaly, ...]] = {
    Entity.STORE: (Anomaly.NULLS, Anomaly.EMPTY_STRINGS),
    Entity.PRODUCT: (Anomaly.NULLS, Anomaly.EMPTY_STRINGS, Anomaly.NEGATIVE_PRICES),
    Entity.CUSTOMER: (Anomaly.NULLS, Anomaly.EMPTY_STRINGS, Anomaly.FUTURE_DATES),
    Entity.PURCHASE: CORRUPTIONS,
}


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig:
    """Volumes, seed, the caller's ``now`` and the share of each anomaly.

    Two thirds of the stores (30 of the default 45) are supermarkets of
    «Большая Пикча», the rest small shops of «Маленькая Пикча». Purchases fall
    within the ``WINDOW_DAYS`` days before ``now``, a naive local time.
    """

    now: datetime
    seed: int = 0
    stores: int = 45
    products: int = 40
    customers: int = 100
    purchases: int = 1_000
    repeated: float = 0.0
    nulls: float = 0.0
    empty_strings: float = 0.0
    future_dates: float = 0.0
    negative_prices: float = 0.0
    broken_totals: float = 0.0

    def __post_init__(self) -> None:
        if self.now.tzinfo is not None:
            raise ConfigurationError(
                f"now = {self.now.isoformat()} carries a time zone; "
                "give the shop's naive local time"
            )
        for name, least in (("stores", 1), ("products", 1), ("customers", 1)):
            if getattr(self, name) < least:
                raise ConfigurationError(
                    f"{name} = {getattr(self, name)}: the generator needs "
                    f"at least {least}; raise {name}"
                )
        if self.purchases < 0:
            raise ConfigurationError(
                f"purchases = {self.purchases} is negative; give 0 or more"
            )
        for kind in Anomaly:
            value = self.share(kind)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(
                    f"{kind} = {value} is not a share; give a number from 0 to 1"
                )
        total = sum(self.share(kind) for kind in CORRUPTIONS)
        if total > 1.0 + 1e-9:
            raise ConfigurationError(
                f"the corrupting anomaly shares sum to {total:g}; a record takes "
                f"at most one of them, so lower {', '.join(CORRUPTIONS)} to sum "
                "to 1 or less"
            )

    def share(self, kind: Anomaly) -> float:
        value: float = getattr(self, kind.value)

        return value

    @property
    def big_stores(self) -> int:
        return self.stores * 2 // 3

    @property
    def small_stores(self) -> int:
        return self.stores - self.big_stores


@dataclass(frozen=True, slots=True)
class Generated:
    """One emitted record and what was done to it.

    ``key`` names the record's file: its id (the id it would have had, when an
    anomaly blanked it), with ``~r<N>`` for the N-th repeat. ``field`` and
    ``rule`` say which field was broken and which cleaning rule it now fails.
    ``line``, when asked for and known, is ``data`` as compact JSON
    (:data:`encode_line`), assembled from parts encoded once.
    """

    entity: Entity
    data: Doc
    key: str
    anomaly: Anomaly | None = None
    field: str | None = None
    rule: Rule | None = None
    repeat: int = 0
    line: str | None = None


@dataclass(frozen=True)
class GenerateReport:
    """What a writer produced, and where.

    ``records`` counts the records of each entity, repeats included;
    ``anomalies`` counts, per entity, the records each kind changed and the
    repeats. ``paths`` holds each entity's folder (``layout`` "files") or file
    (``layout`` "jsonl").
    """

    out_dir: Path
    layout: str
    records: Mapping[Entity, int]
    anomalies: Mapping[Entity, Mapping[Anomaly, int]]
    paths: Mapping[Entity, Path]

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def anomaly_total(self, kind: Anomaly) -> int:
        return sum(counts.get(kind, 0) for counts in self.anomalies.values())


def iter_records(config: GeneratorConfig) -> Iterator[tuple[Entity, Doc]]:
    """Stores, products, customers, then purchases, as ``(entity, record)``."""
    for item in iter_generated(config):
        yield item.entity, item.data


def iter_generated(
    config: GeneratorConfig, *, lines: bool = False
) -> Iterator[Generated]:
    """The records of :func:`iter_records` with what each anomaly did to them.

    With ``lines``, each purchase that no anomaly changed comes with its JSON
    line, which spares a writer most of the encoding.
    """
    rng = Random(config.seed)
    pools = _faker_pools(config.seed)
    marker = _Marker(config)
    shops = _build_stores(config, rng, pools)
    goods = _build_products(config, rng, pools)
    shoppers, customers = _build_customers(config, rng, pools, shops)

    for shop in shops:
        yield from marker.emit(Entity.STORE, shop.doc, shop.doc["store_id"])
    for good in goods:
        yield from marker.emit(Entity.PRODUCT, good.doc, good.product_id)
    for doc in customers:
        yield from marker.emit(Entity.CUSTOMER, doc, doc["customer_id"])
    for doc, line in _purchases(config, rng, shops, goods, shoppers, lines):
        yield from marker.emit(Entity.PURCHASE, doc, doc["purchase_id"], line)


def write_files(
    config: GeneratorConfig,
    out_dir: Path | str,
    *,
    progress: Progress | None = None,
    progress_every: int = 10_000,
) -> GenerateReport:
    """Write the source layout, ``DIR/<entity>s/<id>.json``, one file a record.

    Each file is written under a temporary name and renamed when complete.
    Files of the same names are replaced; other files are left where they are.
    """
    tally = _Tally(progress, progress_every)
    out = Path(out_dir)
    folders = {entity: out / entity.directory for entity in Entity}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    for item in iter_generated(config):
        text = json.dumps(item.data, ensure_ascii=False, indent=2) + "\n"
        _write_atomically(folders[item.entity] / f"{item.key}.json", text.encode())
        tally.add(item)
    tally.finish()

    return tally.report(out, "files", folders)


def write_jsonl(
    config: GeneratorConfig,
    out_dir: Path | str,
    *,
    progress: Progress | None = None,
    progress_every: int = 10_000,
) -> GenerateReport:
    """Write ``DIR/<entity>s/<entity>s.jsonl``, one compact record a line.

    The four files are written under temporary names and renamed once all are
    complete; on an error the temporary files are removed.
    """
    out = Path(out_dir)
    paths = {
        entity: out / entity.directory / f"{entity.directory}.jsonl"
        for entity in Entity
    }
    temps = {entity: _temporary(path) for entity, path in paths.items()}
    tally = _Tally(progress, progress_every)

    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    sinks = {
        entity: temp.open("w", encoding="utf-8", newline="\n", buffering=1 << 20)
        for entity, temp in temps.items()
    }
    try:
        for item in iter_generated(config, lines=True):
            sink = sinks[item.entity]
            sink.write(item.line or encode_line(item.data))
            sink.write("\n")
            tally.add(item)
    except BaseException:
        for entity, sink in sinks.items():
            sink.close()
            temps[entity].unlink(missing_ok=True)
        raise
    for sink in sinks.values():
        sink.close()
    for entity, temp in temps.items():
        os.replace(temp, paths[entity])
    tally.finish()

    return tally.report(out, "jsonl", paths)


def _temporary(path: Path) -> Path:
    # A dot name ending in .tmp is skipped by readers of *.json and *.jsonl.
    return path.with_name(f".{path.name}.tmp")


def _write_atomically(path: Path, data: bytes) -> None:
    temp = _temporary(path)
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class _Tally:
    def __init__(self, progress: Progress | None, every: int) -> None:
        if every < 1:
            raise ConfigurationError(
                f"progress_every = {every}: report progress every 1 or more purchases"
            )
        self.progress = progress
        self.every = every
        self.purchases = 0
        self.records: Counter[Entity] = Counter()
        self.anomalies: dict[Entity, Counter[Anomaly]] = {e: Counter() for e in Entity}

    def add(self, item: Generated) -> None:
        self.records[item.entity] += 1
        if item.repeat:
            self.anomalies[item.entity][Anomaly.REPEATED] += 1
        elif item.anomaly is not None:
            self.anomalies[item.entity][item.anomaly] += 1
        if item.entity is Entity.PURCHASE:
            self.purchases += 1
            if self.progress is not None and self.purchases % self.every == 0:
                self.progress(self.purchases)

    def finish(self) -> None:
        if self.progress is not None and self.purchases % self.every:
            self.progress(self.purchases)

    def report(
        self, out: Path, layout: str, paths: Mapping[Entity, Path]
    ) -> GenerateReport:
        return GenerateReport(
            out_dir=out,
            layout=layout,
            records={entity: self.records[entity] for entity in Entity},
            anomalies={entity: dict(self.anomalies[entity]) for entity in Entity},
            paths=dict(paths),
        )


# Anomalies.

_Path = tuple[str | int, ...]
_ANY_ITEM = "*"
_ID_LEAVES = frozenset({"store_id", "id", "customer_id", "purchase_id", "product_id"})

_NULLABLE: Mapping[Entity, tuple[_Path, ...]] = {
    Entity.STORE: (("store_name",), ("location", "city")),
    Entity.PRODUCT: (("name",), ("group",), ("price",)),
    Entity.CUSTOMER: (("registration_date",),),
    Entity.PURCHASE: (
        ("store", "location", "city"),
        ("purchase_datetime",),
        ("payment_method",),
        ("total_amount",),
        ("items", _ANY_ITEM, "quantity"),
        ("items", _ANY_ITEM, "price_per_unit"),
        ("items", _ANY_ITEM, "total_price"),
        ("items", _ANY_ITEM, "category"),
    ),
}
_BLANKABLE: Mapping[Entity, tuple[_Path, ...]] = {
    Entity.STORE: (("store_id",), ("store_name",), ("location", "city")),
    Entity.PRODUCT: (("id",), ("name",), ("group",)),
    Entity.CUSTOMER: (("customer_id",),),
    Entity.PURCHASE: (
        ("purchase_id",),
        ("customer", "customer_id"),
        ("store", "store_id"),
        ("store", "location", "city"),
        ("payment_method",),
        ("items", _ANY_ITEM, "product_id"),
        ("items", _ANY_ITEM, "category"),
    ),
}


@dataclass
class _Marker:
    config: GeneratorConfig
    rng: Random = field(init=False)
    active: bool = field(init=False)

    def __post_init__(self) -> None:
        self.rng = Random(f"pikcha-anomalies-{self.config.seed}")
        self.active = any(self.config.share(kind) > 0 for kind in Anomaly)

    def emit(
        self, entity: Entity, doc: Doc, key: str, line: str | None = None
    ) -> Iterator[Generated]:
        if not self.active:
            yield Generated(entity, doc, key, line=line)
            return

        kind = self._pick(entity)
        item = Generated(entity, doc, key, line=line)
        if kind is not None:
            broken, path, rule = _corrupt(kind, entity, doc, self.rng, self.config.now)
            where = ".".join(str(part) for part in path)
            item = Generated(entity, broken, key, kind, where, rule)
        yield item
        if self.rng.random() < self.config.repeated:
            yield Generated(
                entity,
                copy.deepcopy(item.data),
                f"{key}~r1",
                item.anomaly,
                item.field,
                item.rule,
                repeat=1,
                line=item.line,
            )

    def _pick(self, entity: Entity) -> Anomaly | None:
        draw = self.rng.random()
        bound = 0.0
        for kind in APPLICABLE[entity]:
            bound += self.config.share(kind)
            if draw < bound:
                return kind

        return None


def _corrupt(
    kind: Anomaly, entity: Entity, doc: Doc, rng: Random, now: datetime
) -> tuple[Doc, _Path, Rule]:
    if kind is Anomaly.NULLS:
        path = _resolve(rng.choice(_NULLABLE[entity]), doc, rng)
        return _with(doc, path, None), path, Rule.REQUIRED_PRESENT

    if kind is Anomaly.EMPTY_STRINGS:
        path = _resolve(rng.choice(_BLANKABLE[entity]), doc, rng)
        rule = Rule.ID_PRESENT if path[-1] in _ID_LEAVES else Rule.REQUIRED_PRESENT
        return _with(doc, path, ""), path, rule

    if kind is Anomaly.FUTURE_DATES:
        return _future(entity, doc, rng, now)

    if kind is Anomaly.NEGATIVE_PRICES:
        if entity is Entity.PRODUCT:
            return _with(doc, ("price",), -doc["price"]), ("price",), Rule.NOT_NEGATIVE
        return _refund(doc), ("total_amount",), Rule.NOT_NEGATIVE

    total = round(doc["total_amount"] * 100)
    delta = rng.randint(2, 50_000)
    wrong = total - delta if total > delta and rng.random() < 0.5 else total + delta
    path = ("total_amount",)

    return _with(doc, path, wrong / 100), path, Rule.TOTAL_MATCHES_LINES


def _future(
    entity: Entity, doc: Doc, rng: Random, now: datetime
) -> tuple[Doc, _Path, Rule]:
    later = now + timedelta(microseconds=rng.randrange(60_000_000, 30 * _DAY_US))
    path: _Path = ("purchase_datetime",)
    value = _stamp(later)
    if entity is Entity.CUSTOMER and rng.random() < 0.5:
        path = ("birth_date",)
        value = (now.date() + timedelta(days=rng.randint(1, 3650))).isoformat()
    elif entity is Entity.CUSTOMER:
        path = ("registration_date",)

    return _with(doc, path, value), path, Rule.DATE_NOT_FUTURE


def _refund(doc: Doc) -> Doc:
    # A return booked as a sale: every price and total turns negative together,
    # so the record still adds up and only the sign rule is broken.
    items = [
        {
            **item,
            "price_per_unit": -item["price_per_unit"],
            "total_price": -item["total_price"],
        }
        for item in doc["items"]
    ]

    return {**doc, "items": items, "total_amount": -doc["total_amount"]}


def _resolve(path: _Path, doc: Doc, rng: Random) -> _Path:
    if _ANY_ITEM not in path:
        return path
    line = rng.randrange(len(doc["items"]))

    return tuple(line if part == _ANY_ITEM else part for part in path)


def _with(node: Any, path: _Path, value: Any) -> Any:
    # Copies only along the path, so the shared parts of other records stay intact.
    head, *rest = path
    changed: Any = list(node) if isinstance(node, list) else dict(node)
    changed[head] = _with(node[head], tuple(rest), value) if rest else value

    return changed


# Reference data.


class _City(NamedTuple):
    name: str
    latitude: float
    longitude: float
    postal_prefix: str


_CITIES: tuple[_City, ...] = (
    _City("г. Москва", 55.7558, 37.6173, "101"),
    _City("г. Санкт-Петербург", 59.9386, 30.3141, "190"),
    _City("г. Казань", 55.7963, 49.1088, "420"),
    _City("г. Екатеринбург", 56.8389, 60.6057, "620"),
    _City("г. Новосибирск", 55.0084, 82.9357, "630"),
    _City("г. Нижний Новгород", 56.3269, 44.0059, "603"),
    _City("г. Самара", 53.1959, 50.1002, "443"),
    _City("г. Ростов-на-Дону", 47.2357, 39.7015, "344"),
    _City("г. Краснодар", 45.0355, 38.9753, "350"),
    _City("г. Пермь", 58.0105, 56.2502, "614"),
    _City("г. Воронеж", 51.6720, 39.1843, "394"),
    _City("г. Уфа", 54.7388, 55.9721, "450"),
    _City("г. Челябинск", 55.1644, 61.4368, "454"),
    _City("г. Тюмень", 57.1530, 65.5343, "625"),
    _City("г. Ижевск", 56.8526, 53.2045, "426"),
)


class _Template(NamedTuple):
    name: str
    unit: str
    kbju: tuple[float, float, float, float]
    price: tuple[int, int]
    expiry: tuple[int, int]
    description: str
    origins: tuple[str, ...] = (_RUSSIA,)


class _Aisle(NamedTuple):
    maker: str
    slug: str
    templates: tuple[_Template, ...]


_T = _Template
_KG = "кг"
_PC = "шт"
# fmt: off
_CATALOGUE: tuple[_Aisle, ...] = (
    _Aisle("Пекарня", "pekarnya", (
        _T("Хлеб «Бородинский»", _PC, (208, 6.8, 1.3, 40.7), (55, 85), (3, 5),
           "Ржаной заварной хлеб с кориандром"),
        _T("Батон нарезной", _PC, (262, 7.5, 2.9, 51.4), (45, 70), (3, 4),
           "Пшеничный батон из муки высшего сорта"),
        _T("Багет французский", _PC, (262, 8.0, 1.5, 52.0), (60, 110), (1, 2),
           "Хрустящий багет на закваске"),
        _T("Лаваш армянский", _PC, (236, 7.9, 1.0, 47.6), (40, 75), (5, 7),
           "Тонкий пресный лаваш"),
        _T("Гречка ядрица, 900 г", _PC, (313, 12.6, 3.3, 62.1), (80, 140),
           (365, 540), "Крупа гречневая ядрица, первый сорт"),
        _T("Рис круглозёрный, 800 г", _PC, (330, 7.0, 1.0, 74.0), (90, 150),
           (365, 540), "Рис для каш и ризотто"),
        _T("Овсяные хлопья «Геркулес», 500 г", _PC, (352, 12.3, 6.2, 61.8),
           (60, 110), (270, 365), "Хлопья из цельного овса"),
        _T("Круассан с шоколадом", _PC, (406, 7.0, 21.0, 45.0), (50, 95), (2, 5),
           "Слоёный круассан с шоколадной начинкой"),
    )),
    _Aisle("Мясной двор", "myasnoy-dvor", (
        _T("Филе куриное охлаждённое", _KG, (113, 23.6, 1.9, 0.4), (320, 480),
           (5, 7), "Филе грудки цыплёнка-бройлера"),
        _T("Фарш говяжий", _KG, (254, 17.2, 20.0, 0.0), (520, 780), (2, 4),
           "Фарш из охлаждённой говядины"),
        _T("Свиная шейка", _KG, (343, 13.0, 32.0, 0.0), (480, 690), (4, 6),
           "Охлаждённая свинина для запекания"),
        _T("Сёмга слабосолёная, 200 г", _PC, (202, 22.5, 12.5, 0.0), (420, 690),
           (20, 30), "Филе-кусок в вакуумной упаковке"),
        _T("Минтай, филе мороженое", _KG, (72, 15.9, 0.9, 0.0), (280, 420),
           (180, 270), "Филе без кожи, глазурь не более 5%", (_RUSSIA,)),
        _T("Яйца куриные С1, 10 шт", _PC, (157, 12.7, 11.5, 0.7), (85, 140),
           (20, 25), "Столовые яйца первой категории"),
        _T("Фасоль красная, 400 г", _PC, (99, 6.7, 0.3, 15.5), (80, 130),
           (720, 1095), "Фасоль консервированная в собственном соку"),
        _T("Чечевица красная, 450 г", _PC, (314, 24.0, 1.5, 42.7), (110, 170),
           (365, 540), "Колотая чечевица, варится за 15 минут"),
    )),
    _Aisle("Молочная ферма", "ferma", (
        _T("Молоко 3,2%, 930 мл", _PC, (58, 2.9, 3.2, 4.7), (75, 110), (7, 14),
           "Пастеризованное коровье молоко"),
        _T("Кефир 2,5%, 900 г", _PC, (53, 2.9, 2.5, 4.0), (70, 105), (7, 24),
           "Кефир на живой закваске"),
        _T("Творог 9%, 200 г", _PC, (159, 16.7, 9.0, 2.0), (90, 150), (7, 14),
           "Рассыпчатый творог из нормализованного молока"),
        _T("Сметана 20%, 300 г", _PC, (206, 2.5, 20.0, 3.4), (85, 140), (14, 21),
           "Густая сметана без растительных жиров"),
        _T("Сыр «Российский», 200 г", _PC, (364, 23.2, 29.5, 0.0), (180, 290),
           (60, 120), "Полутвёрдый сыр, выдержка 60 дней"),
        _T("Йогурт питьевой клубничный", _PC, (77, 2.8, 1.5, 12.5), (45, 80),
           (14, 28), "Йогурт с кусочками клубники"),
        _T("Масло сливочное 82,5%, 180 г", _PC, (748, 0.6, 82.5, 0.8), (180, 260),
           (35, 60), "Сладкосливочное несолёное масло"),
        _T("Ряженка 4%, 450 г", _PC, (67, 2.9, 4.0, 4.2), (60, 95), (5, 10),
           "Топлёное молоко, сквашенное заквасками"),
    )),
    _Aisle("Фруктовый сад", "sad", (
        _T("Яблоки Гала", _KG, (57, 0.4, 0.4, 14.0), (120, 190), (30, 60),
           "Сладкие хрустящие яблоки", (_RUSSIA, "Сербия", "Молдова")),
        _T("Бананы", _KG, (96, 1.5, 0.5, 21.0), (110, 160), (5, 10),
           "Бананы спелые, зрелость 5", ("Эквадор", "Колумбия")),
        _T("Апельсины", _KG, (43, 0.9, 0.2, 8.1), (120, 200), (20, 40),
           "Сочные апельсины для сока", ("Египет", "Марокко", "Турция")),
        _T("Груши Конференция", _KG, (47, 0.4, 0.3, 10.3), (170, 260), (20, 40),
           "Груши с маслянистой мякотью", ("Бельгия", "Турция")),
        _T("Виноград кишмиш", _KG, (72, 0.6, 0.2, 15.4), (260, 420), (7, 14),
           "Виноград без косточек", ("Турция", "Узбекистан")),
        _T("Мандарины", _KG, (38, 0.8, 0.2, 7.5), (150, 260), (20, 40),
           "Ароматные мандарины", ("Турция", "Абхазия", "Марокко")),
        _T("Клубника, 250 г", _PC, (41, 0.8, 0.4, 7.5), (190, 350), (3, 5),
           "Свежая клубника в контейнере", (_RUSSIA, "Египет")),
        _T("Черника замороженная, 300 г", _PC, (44, 1.1, 0.4, 7.6), (220, 340),
           (365, 540), "Лесная черника шоковой заморозки"),
    )),
    _Aisle("Агрохозяйство", "agro", (
        _T("Картофель", _KG, (77, 2.0, 0.4, 16.3), (35, 70), (60, 120),
           "Картофель мытый, урожай этого года", (_RUSSIA, "Египет")),
        _T("Морковь", _KG, (35, 1.3, 0.1, 6.9), (40, 75), (30, 60),
           "Морковь мытая, сладкая"),
        _T("Лук репчатый", _KG, (41, 1.4, 0.2, 8.2), (35, 65), (60, 120),
           "Лук золотистый"),
        _T("Огурцы среднеплодные", _KG, (15, 0.8, 0.1, 2.8), (140, 260), (7, 10),
           "Тепличные огурцы"),
        _T("Томаты", _KG, (20, 1.1, 0.2, 3.7), (180, 320), (7, 10),
           "Томаты красные круглые", (_RUSSIA, "Турция", "Азербайджан")),
        _T("Капуста белокочанная", _KG, (27, 1.8, 0.1, 4.7), (30, 60), (30, 90),
           "Капуста для салатов и квашения"),
        _T("Укроп, пучок 50 г", _PC, (40, 2.5, 0.5, 6.3), (35, 70), (3, 5),
           "Свежая зелень укропа"),
        _T("Брокколи", _KG, (34, 2.8, 0.4, 6.6), (280, 420), (5, 10),
           "Капуста брокколи", (_RUSSIA, "Китай")),
    )),
)
# fmt: on

_PHONE_CODES: tuple[int, ...] = (
    *range(901, 930),
    *range(950, 954),
    958,
    *range(960, 970),
    *range(977, 1000),
)
_PHONE_STYLES: tuple[str, ...] = (
    "+7 ({0}) {1}-{2}-{3}",
    "8 {0} {1} {2} {3}",
    "+7{0}{1}{2}{3}",
    "8 ({0}) {1}-{2}-{3}",
    "8{0}{1}{2}{3}",
    "+7 {0} {1}-{2}-{3}",
)
_MAIL_DOMAINS: tuple[str, ...] = (
    "mail.ru",
    "yandex.ru",
    "gmail.com",
    "bk.ru",
    "inbox.ru",
    "list.ru",
    "rambler.ru",
    "ya.ru",
    "example.com",
)
_LATIN = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e",
        "ж": "zh", "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m",
        "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
        "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
        "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    }
)  # fmt: skip
_HOURS_BIG: tuple[tuple[str, str, str], ...] = (
    ("08:00-22:00", "08:00-22:00", "09:00-21:00"),
    ("07:00-23:00", "08:00-23:00", "08:00-22:00"),
    ("09:00-21:00", "10:00-20:00", "10:00-18:00"),
)
_HOURS_SMALL: tuple[tuple[str, str, str], ...] = (
    ("08:00-21:00", "09:00-21:00", "09:00-20:00"),
    ("09:00-21:00", "10:00-20:00", "10:00-18:00"),
    ("07:00-22:00", "08:00-22:00", "09:00-21:00"),
)
_INN_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_REGIONS = ("77", "78", "16", "66", "50", "52", "54", "63", "61", "23")
_ITEM_COUNTS = (1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8)
_PIECES = (1, 1, 1, 1, 1, 2, 2, 2, 3, 4, 6)


# Pools drawn once.


@dataclass(frozen=True, slots=True)
class _Pools:
    female_first: tuple[str, ...]
    female_last: tuple[str, ...]
    male_first: tuple[str, ...]
    male_last: tuple[str, ...]
    streets: tuple[str, ...]

    def person(self, rng: Random, female: bool) -> tuple[str, str]:
        if female:
            return rng.choice(self.female_first), rng.choice(self.female_last)

        return rng.choice(self.male_first), rng.choice(self.male_last)

    def makers(self) -> tuple[str, ...]:
        # "Ферма Жукова": the genitive of a surname in -ов is its feminine form.
        fit = tuple(n for n in self.female_last if n.endswith(("ова", "ева", "ина")))

        return fit or self.female_last


def _faker_pools(seed: int) -> _Pools:
    fake = Faker("ru_RU")
    fake.seed_instance(seed)

    def unique(draw: Callable[[], str], size: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(draw() for _ in range(size)))

    return _Pools(
        female_first=unique(fake.first_name_female, 80),
        female_last=unique(fake.last_name_female, 150),
        male_first=unique(fake.first_name_male, 80),
        male_last=unique(fake.last_name_male, 150),
        streets=unique(fake.street_name, 400),
    )


def _latin(word: str) -> str:
    return "".join(
        c for c in word.lower().translate(_LATIN) if c.isascii() and c.isalpha()
    )


def _phone(rng: Random, style: str | None = None) -> str:
    digits = f"{rng.randrange(10**7):07d}"
    spelling = style or rng.choice(_PHONE_STYLES)

    return spelling.format(
        rng.choice(_PHONE_CODES), digits[:3], digits[3:5], digits[5:]
    )


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _inn(rng: Random) -> str:
    digits = [int(c) for c in rng.choice(_INN_REGIONS)]
    digits += [rng.randrange(10) for _ in range(7)]
    check = sum(w * d for w, d in zip(_INN_WEIGHTS, digits, strict=True)) % 11 % 10

    return "".join(map(str, digits)) + str(check)


def _ean13(rng: Random) -> str:
    digits = [4, 6, rng.randrange(10)] + [rng.randrange(10) for _ in range(9)]
    weighted = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))

    return "".join(map(str, digits)) + str((10 - weighted % 10) % 10)


def _near(rng: Random, city: _City, spread: float) -> Doc:
    return {
        "latitude": round(city.latitude + rng.uniform(-spread, spread), 6),
        "longitude": round(city.longitude + rng.uniform(-spread, spread) * 1.6, 6),
    }


def _house(rng: Random) -> str:
    number = str(rng.randint(1, 180))

    return number + rng.choice(("", "", "", "", "", "А", "Б", "к1", "к2", "с1"))


def _shops_word(count: int) -> str:
    # "сеть из 21 магазина", but "из 30 магазинов" and "из 11 магазинов".
    return "магазина" if count % 10 == 1 and count % 100 != 11 else "магазинов"


# Stores, products, customers.


@dataclass(frozen=True, slots=True)
class _Shop:
    doc: Doc
    ref: Doc
    city: int
    delivers: bool


def _build_stores(config: GeneratorConfig, rng: Random, pools: _Pools) -> list[_Shop]:
    width = max(3, len(str(config.stores)))
    streets = list(pools.streets)
    rng.shuffle(streets)
    names: set[str] = set()
    shops = []

    for index in range(config.stores):
        big = index < config.big_stores
        network = BIG_NETWORK if big else SMALL_NETWORK
        city_no = index % len(_CITIES)
        city = _CITIES[city_no]
        street = streets[index % len(streets)]
        house = _house(rng)
        name = f"{network} — Магазин на {street}"
        if name in names:
            name = f"{name}, {house} ({city.name})"
        names.add(name)
        location = {
            "country": _RUSSIA,
            "city": city.name,
            "street": street,
            "house": house,
            "postal_code": f"{city.postal_prefix}{rng.randrange(200):03d}",
            "coordinates": _near(rng, city, 0.08),
        }
        first, last = pools.person(rng, rng.random() < 0.5)
        site = "bolshaya-pikcha.ru" if big else "malenkaya-pikcha.ru"
        weekdays, saturday, sunday = rng.choice(_HOURS_BIG if big else _HOURS_SMALL)
        if big:
            description = (
                f"Супермаркет более 200 кв.м. Входит в сеть из {config.big_stores} "
                f"{_shops_word(config.big_stores)}."
            )
        else:
            description = (
                f"Магазин у дома менее 100 кв.м. Входит в сеть из "
                f"{config.small_stores} {_shops_word(config.small_stores)}."
            )
        delivers = big or rng.random() < 0.5
        inventory = config.now.date() - timedelta(days=rng.randint(0, 60))
        doc = {
            "store_id": f"store-{index + 1:0{width}d}",
            "store_name": name,
            "store_network": network,
            "store_type_description": description,
            "type": "offline",
            "categories": list(CATEGORIES),
            "manager": {
                "name": f"{first} {last}",
                "phone": _phone(rng, _PHONE_STYLES[0]),
                "email": f"{_latin(first)[:1]}.{_latin(last)}@{site}",
            },
            "location": location,
            "opening_hours": {"mon_fri": weekdays, "sat": saturday, "sun": sunday},
            "accepts_online_orders": big or rng.random() < 0.3,
            "delivery_available": delivers,
            "warehouse_connected": rng.random() < (0.8 if big else 0.2),
            "last_inventory_date": inventory.isoformat(),
        }
        ref = {
            "store_id": doc["store_id"],
            "store_name": name,
            "store_network": network,
            "location": location,
        }
        shops.append(_Shop(doc, ref, city_no, delivers))

    return shops


@dataclass(frozen=True, slots=True)
class _Good:
    doc: Doc
    product_id: str
    name: str
    category: str
    unit: str
    price_kop: int
    weighed: bool
    kbju: Doc
    manufacturer: Doc


def _build_products(config: GeneratorConfig, rng: Random, pools: _Pools) -> list[_Good]:
    surnames = pools.makers()
    makers = [
        [_maker(rng, aisle, rng.choice(surnames)) for _ in range(4)]
        for aisle in _CATALOGUE
    ]
    goods = []

    for index in range(config.products):
        aisle_no = index % len(_CATALOGUE)
        aisle = _CATALOGUE[aisle_no]
        template = aisle.templates[(index // len(_CATALOGUE)) % len(aisle.templates)]
        low, high = template.price
        price_kop = rng.randint(low, high) * 100 + rng.choice((0, 0, 10, 49, 90, 99))
        kbju = dict(
            zip(
                ("calories", "protein", "fat", "carbohydrates"),
                (round(v * rng.uniform(0.95, 1.05), 1) for v in template.kbju),
                strict=True,
            )
        )
        manufacturer = rng.choice(makers[aisle_no])
        product_id = f"prd-{1000 + index}"
        doc = {
            "id": product_id,
            "name": template.name,
            "group": CATEGORIES[aisle_no],
            "description": template.description,
            "kbju": kbju,
            "price": price_kop / 100,
            "unit": template.unit,
            "origin_country": rng.choice(template.origins),
            "expiry_days": rng.randint(*template.expiry),
            "is_organic": rng.random() < 0.15,
            "barcode": _ean13(rng),
            "manufacturer": manufacturer,
        }
        goods.append(
            _Good(
                doc,
                product_id,
                template.name,
                CATEGORIES[aisle_no],
                template.unit,
                price_kop,
                template.unit == _KG,
                kbju,
                manufacturer,
            )
        )

    return goods


def _maker(rng: Random, aisle: _Aisle, surname: str) -> Doc:
    return {
        "name": f"{rng.choice(('ООО', 'АО'))} «{aisle.maker} {surname}»",
        "country": _RUSSIA,
        "website": f"https://{aisle.slug}-{_latin(surname)}.ru",
        "inn": _inn(rng),
    }


@dataclass(frozen=True, slots=True)
class _Shopper:
    ref: Doc
    home: int
    stores: tuple[int, ...]
    earliest: datetime
    address: Doc
    payment: str


def _build_customers(
    config: GeneratorConfig, rng: Random, pools: _Pools, shops: Sequence[_Shop]
) -> tuple[list[_Shopper], list[Doc]]:
    now = config.now
    window_start = now - timedelta(days=WINDOW_DAYS)
    by_city: dict[int, list[int]] = {}
    for number, shop in enumerate(shops):
        by_city.setdefault(shop.city, []).append(number)
    emails: set[str] = set()
    shoppers = []
    docs = []

    for index in range(config.customers):
        home = index % len(shops)
        city = _CITIES[shops[home].city]
        female = rng.random() < 0.55
        first, last = pools.person(rng, female)
        born = now.date() - timedelta(days=rng.randint(18 * 365 + 5, 80 * 365))
        registered = now - timedelta(
            microseconds=rng.randrange(_HOUR_US, 3 * 365 * _DAY_US)
        )
        email = _email(rng, first, last, born.year, emails)
        member = rng.random() < 0.6
        payment = rng.choice(PAYMENT_METHODS)
        address = {
            "country": _RUSSIA,
            "city": city.name,
            "street": rng.choice(pools.streets),
            "house": _house(rng),
            "apartment": str(rng.randint(1, 240)),
            "postal_code": f"{city.postal_prefix}{rng.randrange(200):03d}",
            "coordinates": _near(rng, city, 0.1),
        }
        customer_id = f"cus-{1000 + index}"
        docs.append(
            {
                "customer_id": customer_id,
                "first_name": first,
                "last_name": last,
                "email": email,
                "phone": _phone(rng),
                "birth_date": born.isoformat(),
                "gender": "female" if female else "male",
                "registration_date": _stamp(registered),
                "is_loyalty_member": member,
                "loyalty_card_number": (
                    f"LOYAL-{rng.getrandbits(40):010X}" if member else None
                ),
                "purchase_location": shops[home].ref["location"],
                "delivery_address": address,
                "preferences": {
                    "preferred_language": "ru" if rng.random() < 0.93 else "en",
                    "preferred_payment_method": payment,
                    "receive_promotions": rng.random() < 0.55,
                },
            }
        )
        ref = {"customer_id": customer_id, "first_name": first, "last_name": last}
        shoppers.append(
            _Shopper(
                ref,
                home,
                tuple(by_city[shops[home].city]),
                max(registered, window_start),
                address,
                payment,
            )
        )

    return shoppers, docs


def _email(rng: Random, first: str, last: str, year: int, taken: set[str]) -> str:
    given, family = _latin(first), _latin(last)
    local = rng.choice(
        (
            f"{given.capitalize()}.{family[:1].upper()}",
            f"{given}.{family}",
            f"{given}{family}{year % 100:02d}",
            f"{given[:1]}.{family}",
            f"{family}.{given}",
            f"{given}_{family}{rng.randint(1, 999)}",
            f"{family}{year}",
        )
    )
    domain = rng.choice(_MAIL_DOMAINS)
    if rng.random() < 0.15:
        domain = domain.capitalize()
    email = f"{local}@{domain}"
    while email.lower() in taken:
        email = f"{local}{rng.randint(2, 9999)}@{domain}"
    taken.add(email.lower())

    return email


# Purchases.


class _Parts(NamedTuple):
    # A purchase's JSON line is these constant pieces around the drawn values.
    stores: list[str]
    customers: list[str]
    addresses: list[str]
    item_heads: list[str]
    item_middles: list[str]
    item_tails: list[str]

    @classmethod
    def encode(
        cls,
        shops: Sequence[_Shop],
        goods: Sequence[_Good],
        shoppers: Sequence[_Shopper],
    ) -> _Parts:
        text = encode_line
        return cls(
            stores=[text(shop.ref) for shop in shops],
            customers=[text(shopper.ref) for shopper in shoppers],
            addresses=[text(shopper.address) for shopper in shoppers],
            item_heads=[
                f'{{"product_id":{text(g.product_id)},"name":{text(g.name)},'
                f'"category":{text(g.category)},"quantity":'
                for g in goods
            ],
            item_middles=[
                f',"unit":{text(g.unit)},"price_per_unit":{g.price_kop / 100!r},'
                '"total_price":'
                for g in goods
            ],
            item_tails=[
                f',"kbju":{text(g.kbju)},"manufacturer":{text(g.manufacturer)}}}'
                for g in goods
            ],
        )


def _purchases(
    config: GeneratorConfig,
    rng: Random,
    shops: Sequence[_Shop],
    goods: Sequence[_Good],
    shoppers: Sequence[_Shopper],
    lines: bool,
) -> Iterator[tuple[Doc, str | None]]:
    parts = _Parts.encode(shops, goods, shoppers) if lines else None
    now = config.now
    today = datetime.combine(now.date(), time())
    width = max(5, len(str(config.purchases)))
    weights = [rng.uniform(0.2, 3.0) for _ in shoppers]
    cumulative = list(accumulate(weights))
    counts = [min(n, len(goods)) for n in _ITEM_COUNTS]
    random, randrange, choice, choices = (
        rng.random,
        rng.randrange,
        rng.choice,
        rng.choices,
    )
    sample = rng.sample
    indices = range(len(shoppers))
    stock = range(len(goods))
    opening, closing = 8 * _HOUR_US, 22 * _HOUR_US

    for number in range(1, config.purchases + 1):
        who = choices(indices, cum_weights=cumulative)[0]
        shopper = shoppers[who]
        where = shopper.home if random() < 0.8 else choice(shopper.stores)
        shop = shops[where]
        picks = sample(stock, choice(counts))
        items = []
        total = 0
        for good in map(goods.__getitem__, picks):
            if good.weighed:
                grams = randrange(200, 2505, 5)
                quantity: float = grams / 1000
                line = (good.price_kop * grams + 500) // 1000
            else:
                pieces = choice(_PIECES)
                quantity = pieces
                line = good.price_kop * pieces
            total += line
            items.append(
                {
                    "product_id": good.product_id,
                    "name": good.name,
                    "category": good.category,
                    "quantity": quantity,
                    "unit": good.unit,
                    "price_per_unit": good.price_kop / 100,
                    "total_price": line / 100,
                    "kbju": good.kbju,
                    "manufacturer": good.manufacturer,
                }
            )
        when = today - timedelta(
            microseconds=randrange(WINDOW_DAYS) * _DAY_US - randrange(opening, closing)
        )
        if not shopper.earliest <= when <= now:
            span = (now - shopper.earliest) // _US
            when = shopper.earliest + timedelta(microseconds=randrange(span + 1))
        delivery = shop.delivers and random() < 0.12
        payment = shopper.payment if random() < 0.7 else choice(PAYMENT_METHODS)
        purchase_id = f"ord-{number:0{width}d}"
        stamp = _stamp(when)
        doc = {
            "purchase_id": purchase_id,
            "customer": shopper.ref,
            "store": shop.ref,
            "items": items,
            "total_amount": total / 100,
            "payment_method": payment,
            "is_delivery": delivery,
            "delivery_address": shopper.address,
            "purchase_datetime": stamp,
        }
        if parts is None:
            yield doc, None
            continue

        texts = ",".join(
            f"{parts.item_heads[pick]}{item['quantity']!r}"
            f"{parts.item_middles[pick]}{item['total_price']!r}"
            f"{parts.item_tails[pick]}"
            for pick, item in zip(picks, items, strict=True)
        )
        yield (
            doc,
            (
                f'{{"purchase_id":"{purchase_id}","customer":{parts.customers[who]},'
                f'"store":{parts.stores[where]},"items":[{texts}],'
                f'"total_amount":{total / 100!r},"payment_method":"{payment}",'
                f'"is_delivery":{"true" if delivery else "false"},'
                f'"delivery_address":{parts.addresses[who]},'
                f'"purchase_datetime":"{stamp}"}}'
            ),
        )
