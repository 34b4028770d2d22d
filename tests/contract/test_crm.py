"""The CrmStore contract, run against every adapter of the port."""

from __future__ import annotations

import itertools
import sqlite3
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pikcha.adapters.memory import InMemoryCrmStore
from pikcha.adapters.sqlite_crm import SqliteCrmStore
from pikcha.domain.entities import Entity
from pikcha.domain.errors import ConfigurationError, InfrastructureError
from pikcha.ports.crm import CrmStore

MakeCrm = Callable[[], CrmStore]
# Each adapter's class runs the inherited properties with its own fresh stores.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(string.ascii_letters, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=8)


@st.composite
def stores(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(st.lists(ids, unique=True, max_size=6))
    bodies = st.dictionaries(st.text(string.ascii_lowercase, max_size=6), json_values)

    return [{**draw(bodies), "store_id": store_id} for store_id in chosen]


def store(store_id: str, **fields: Any) -> dict[str, Any]:
    return {"store_id": store_id, "store_name": "Пикча", **fields}


def last_seq(crm: CrmStore, entity: Entity = Entity.STORE) -> int:
    return max((c.seq for c in crm.changes(entity, 0, 100_000)), default=0)


class CrmContract:
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeCrm]:
        raise NotImplementedError

    @pytest.fixture
    def crm(self, make: MakeCrm) -> CrmStore:
        return make()

    def test_new_documents_are_inserted(self, crm: CrmStore) -> None:
        """Documents with new ids count as inserted and are stored."""
        report = crm.upsert(Entity.STORE, [store("s1"), store("s2"), store("s3")])

        assert (report.inserted, report.updated, report.unchanged) == (3, 0, 0)
        assert crm.count(Entity.STORE) == 3

    def test_loading_the_same_documents_twice_changes_nothing(
        self, crm: CrmStore
    ) -> None:
        """A second identical load counts unchanged and appends no change."""
        documents = [store("s1", city="Москва"), store("s2")]
        crm.upsert(Entity.STORE, documents)
        before = last_seq(crm)

        report = crm.upsert(Entity.STORE, documents)

        assert (report.inserted, report.updated, report.unchanged) == (0, 0, 2)
        assert crm.changes(Entity.STORE, before, 10) == []
        assert list(crm.scan(Entity.STORE)) == documents

    def test_key_order_does_not_make_a_document_new(self, crm: CrmStore) -> None:
        """The same fields in another order are the same document."""
        crm.upsert(Entity.STORE, [{"store_id": "s1", "a": 1, "b": {"x": 1, "y": 2}}])

        report = crm.upsert(
            Entity.STORE, [{"b": {"y": 2, "x": 1}, "a": 1, "store_id": "s1"}]
        )

        assert report.unchanged == 1

    def test_a_changed_document_is_updated(self, crm: CrmStore) -> None:
        """A different document under a stored id replaces it, with one change."""
        crm.upsert(Entity.STORE, [store("s1", city="Тверь")])
        before = last_seq(crm)

        report = crm.upsert(Entity.STORE, [store("s1", city="Москва")])

        assert (report.inserted, report.updated, report.unchanged) == (0, 1, 0)
        assert [c.entity_id for c in crm.changes(Entity.STORE, before, 10)] == ["s1"]
        assert list(crm.scan(Entity.STORE)) == [store("s1", city="Москва")]

    def test_change_seq_starts_at_one_and_grows_by_one(self, crm: CrmStore) -> None:
        """Each insert or update appends an entry with the next seq."""
        crm.upsert(Entity.STORE, [store("s1"), store("s2")])
        crm.upsert(Entity.STORE, [store("s1", city="Омск"), store("s3")])

        changes = crm.changes(Entity.STORE, 0, 10)

        assert [(c.seq, c.entity_id) for c in changes] == [
            (1, "s1"),
            (2, "s2"),
            (3, "s1"),
            (4, "s3"),
        ]

    def test_changes_hold_the_current_document(self, crm: CrmStore) -> None:
        """Every entry of an id carries the document as it is now."""
        crm.upsert(Entity.STORE, [store("s1", city="Тверь")])
        crm.upsert(Entity.STORE, [store("s1", city="Москва")])

        changes = crm.changes(Entity.STORE, 0, 10)

        assert [dict(c.document) for c in changes] == [store("s1", city="Москва")] * 2

    def test_changes_page_with_after_and_limit(self, crm: CrmStore) -> None:
        """changes returns up to limit entries with seq greater than after."""
        crm.upsert(Entity.STORE, [store(f"s{n}") for n in range(1, 6)])

        pages = [[c.seq for c in crm.changes(Entity.STORE, a, 2)] for a in (0, 2, 4, 5)]

        assert pages == [[1, 2], [3, 4], [5], []]
        assert crm.changes(Entity.STORE, 0, 0) == []

    def test_resend_appends_entries_for_stored_ids(self, crm: CrmStore) -> None:
        """resend appends one entry per stored id and skips unknown ids."""
        crm.upsert(Entity.STORE, [store("s1"), store("s2")])

        assert crm.resend(Entity.STORE, ["s1", "unknown", "s1"]) == 2

        resent = crm.changes(Entity.STORE, 2, 10)
        assert [(c.seq, c.entity_id) for c in resent] == [(3, "s1"), (4, "s1")]
        assert all(dict(c.document) == store("s1") for c in resent)
        assert crm.count(Entity.STORE) == 2

    def test_documents_without_a_string_id_fail_and_the_rest_are_stored(
        self, crm: CrmStore
    ) -> None:
        """Documents lacking a string id are reported and the others kept."""
        documents: list[Any] = [
            store("s1"),
            {"store_name": "no id"},
            {"store_id": 7},
            ["not", "an", "object"],
            store("s2"),
        ]

        report = crm.upsert(Entity.STORE, documents)

        assert (report.inserted, len(report.failed)) == (2, 3)
        assert all("store_id" in reason for _, reason in report.failed)
        assert [d["store_id"] for d in crm.scan(Entity.STORE)] == ["s1", "s2"]
        assert [c.entity_id for c in crm.changes(Entity.STORE, 0, 10)] == ["s1", "s2"]

    def test_a_document_that_is_not_plain_json_fails(self, crm: CrmStore) -> None:
        """A value JSON cannot hold (a set, NaN) fails that document only."""
        documents: list[Any] = [
            store("s1", tags={"a", "b"}),
            store("s2", price=float("nan")),
            store("s3"),
        ]

        report = crm.upsert(Entity.STORE, documents)

        assert [record for record, _ in report.failed] == [
            "store document #0",
            "store document #1",
        ]
        assert [d["store_id"] for d in crm.scan(Entity.STORE)] == ["s3"]

    def test_the_id_field_depends_on_the_entity(self, crm: CrmStore) -> None:
        """Each entity reads its own id field: products use 'id'."""
        report = crm.upsert(Entity.PRODUCT, [{"id": "p1"}, {"product_id": "p2"}])

        assert (report.inserted, len(report.failed)) == (1, 1)
        assert "'id'" in report.failed[0][1]

    def test_entities_keep_separate_documents_and_feeds(self, crm: CrmStore) -> None:
        """Each entity has its own documents, count and seq starting at 1."""
        crm.upsert(Entity.STORE, [store("x1"), store("x2")])
        crm.upsert(Entity.CUSTOMER, [{"customer_id": "x1"}])

        assert crm.count(Entity.CUSTOMER) == 1
        assert [c.seq for c in crm.changes(Entity.CUSTOMER, 0, 10)] == [1]
        assert list(crm.scan(Entity.PRODUCT)) == []

    def test_one_id_twice_in_a_batch_keeps_the_last(self, crm: CrmStore) -> None:
        """Within a batch, a later document of the same id updates the earlier."""
        report = crm.upsert(Entity.STORE, [store("s1", v=1), store("s1", v=2)])

        assert (report.inserted, report.updated) == (1, 1)
        assert list(crm.scan(Entity.STORE)) == [store("s1", v=2)]
        assert [c.seq for c in crm.changes(Entity.STORE, 0, 10)] == [1, 2]

    def test_a_large_batch_is_stored_whole(self, crm: CrmStore) -> None:
        """A batch of thousands of documents is stored and then unchanged."""
        documents = [store(f"s{n:05}") for n in range(2500)]

        first = crm.upsert(Entity.STORE, documents)
        second = crm.upsert(Entity.STORE, documents)

        assert (first.inserted, second.unchanged) == (2500, 2500)
        assert last_seq(crm) == 2500

    def test_scan_yields_documents_in_id_order(self, crm: CrmStore) -> None:
        """scan goes through ids in order, across batch boundaries."""
        chosen = ["b", "", "a10", "a2", "я", "Z"]
        crm.upsert(Entity.STORE, [store(i) for i in chosen])

        scanned = [d["store_id"] for d in crm.scan(Entity.STORE, batch_size=2)]

        assert scanned == sorted(chosen)

    def test_a_mark_is_zero_until_set(self, crm: CrmStore) -> None:
        """get_mark is 0 for a new name and the last value set afterwards."""
        assert crm.get_mark("published:store") == 0

        crm.set_mark("published:store", 5)
        crm.set_mark("published:store", 3)
        crm.set_mark("published:customer", 9)

        assert crm.get_mark("published:store") == 3
        assert crm.get_mark("published:customer") == 9

    def test_a_bad_limit_or_batch_size_is_refused(self, crm: CrmStore) -> None:
        """A negative limit or a batch size below 1 raises a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="-1"):
            crm.changes(Entity.STORE, 0, -1)
        with pytest.raises(ConfigurationError, match="batch_size"):
            list(crm.scan(Entity.STORE, batch_size=0))

    @settings(max_examples=40, deadline=None, suppress_health_check=_SHARED)
    @given(documents=stores(), batch_size=st.integers(1, 4))
    def test_documents_round_trip_in_id_order(
        self, make: MakeCrm, documents: list[dict[str, Any]], batch_size: int
    ) -> None:
        """scan returns exactly the documents given, sorted by id."""
        crm = make()
        crm.upsert(Entity.STORE, documents)

        scanned = list(crm.scan(Entity.STORE, batch_size=batch_size))

        assert scanned == sorted(documents, key=lambda d: str(d["store_id"]))

    @settings(max_examples=40, deadline=None, suppress_health_check=_SHARED)
    @given(documents=stores())
    def test_upsert_is_idempotent(
        self, make: MakeCrm, documents: list[dict[str, Any]]
    ) -> None:
        """Upserting the same documents again leaves documents and feed as they were."""
        crm = make()
        crm.upsert(Entity.STORE, documents)
        feed = crm.changes(Entity.STORE, 0, 1000)

        report = crm.upsert(Entity.STORE, documents)

        assert report.unchanged == len(documents) == report.accepted
        assert crm.changes(Entity.STORE, 0, 1000) == feed
        assert crm.count(Entity.STORE) == len(documents)


def _closing(factory: Callable[[], CrmStore]) -> Iterator[MakeCrm]:
    made: list[CrmStore] = []

    def make() -> CrmStore:
        made.append(factory())

        return made[-1]

    yield make
    for crm in made:
        crm.close()


class TestInMemoryCrmStore(CrmContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeCrm]:
        yield from _closing(InMemoryCrmStore)

    def test_state_is_open_to_inspection(self) -> None:
        """documents, feed and marks show what a use case stored."""
        crm = InMemoryCrmStore()
        crm.upsert(Entity.STORE, [store("s1")])
        crm.set_mark("m", 2)

        assert list(crm.documents[Entity.STORE]) == ["s1"]
        assert crm.feed[Entity.STORE] == ["s1"]
        assert crm.marks == {"m": 2}


class TestSqliteCrmStore(CrmContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeCrm]:
        counter = itertools.count()
        yield from _closing(
            lambda: SqliteCrmStore(tmp_path / f"crm-{next(counter)}" / "crm.db")
        )

    def test_documents_survive_reopening(self, tmp_path: Path) -> None:
        """A reopened file holds the documents, feed and marks written before."""
        path = tmp_path / "crm.db"
        crm = SqliteCrmStore(path)
        crm.upsert(Entity.STORE, [store("s1", city="Москва")])
        crm.set_mark("m", 4)
        crm.close()

        reopened = SqliteCrmStore(path)
        assert list(reopened.scan(Entity.STORE)) == [store("s1", city="Москва")]
        assert [c.seq for c in reopened.changes(Entity.STORE, 0, 10)] == [1]
        assert reopened.get_mark("m") == 4
        reopened.close()

    def test_documents_are_stored_as_canonical_json(self, tmp_path: Path) -> None:
        """The stored text has sorted keys and unescaped non-ASCII letters."""
        path = tmp_path / "crm.db"
        crm = SqliteCrmStore(path)
        crm.upsert(Entity.STORE, [{"store_name": "Пикча", "store_id": "s1"}])
        crm.close()

        with sqlite3.connect(path) as db:
            (text,) = db.execute("SELECT document FROM documents").fetchone()
        assert text == '{"store_id": "s1", "store_name": "Пикча"}'

    def test_an_unusable_folder_names_the_path_and_setting(
        self, tmp_path: Path
    ) -> None:
        """A folder that cannot be made raises a ConfigurationError naming it."""
        (tmp_path / "file").write_text("not a folder")
        path = tmp_path / "file" / "crm.db"

        with pytest.raises(ConfigurationError, match="PIKCHA_CRM") as caught:
            SqliteCrmStore(path)

        assert str(path) in str(caught.value)

    def test_a_closed_store_refuses_work(self, tmp_path: Path) -> None:
        """upsert after close raises an InfrastructureError saying so."""
        crm = SqliteCrmStore(tmp_path / "crm.db")
        crm.close()

        with pytest.raises(InfrastructureError, match="closed"):
            crm.upsert(Entity.STORE, [store("s1")])


class TestMongoCrmStore(CrmContract):
    """Runs against SecantusDB, or the server PIKCHA_TEST_MONGODB names."""

    @pytest.fixture
    def make(
        self, tmp_path: Path, new_mongodb_url: Callable[[], str]
    ) -> Iterator[MakeCrm]:
        from pikcha.adapters.mongo_crm import MongoCrmStore

        yield from _closing(lambda: MongoCrmStore(new_mongodb_url()))

    def test_keys_mongodb_forbids_and_huge_integers_round_trip(
        self, crm: CrmStore
    ) -> None:
        """Keys with a leading $ or a dot, empty keys and big integers come back."""
        documents = [
            store("s1", **{"$set": 1, "a.b": {"$ref": "x", "$id": 2}}),
            store("s2", big=2**70, nested={"": [1, {"x.y": None}]}),
            store("s3", deep=[[[[[{"k": "v"}]]]]] * 2),
        ]

        crm.upsert(Entity.STORE, documents)

        assert list(crm.scan(Entity.STORE)) == documents
        changed = [dict(c.document) for c in crm.changes(Entity.STORE, 0, 10)]
        assert changed == documents
        assert crm.upsert(Entity.STORE, documents).unchanged == 3

    def test_plain_documents_are_bson_and_the_rest_json_text(
        self, new_mongodb_url: Callable[[], str]
    ) -> None:
        """A plain document is kept as a BSON sub-document, any other as JSON."""
        from pymongo import MongoClient

        from pikcha.adapters.mongo_crm import MongoCrmStore

        url = new_mongodb_url()
        crm = MongoCrmStore(url)
        crm.upsert(Entity.STORE, [store("s1", n=1), store("s2", **{"$x": 1})])
        crm.close()

        with MongoClient(url) as client:
            stored = {
                r["_id"]: r for r in client.get_default_database()["stores"].find()
            }
        assert stored["s1"]["doc"] == store("s1", n=1)
        assert (
            stored["s2"]["json"] == '{"$x": 1, "store_id": "s2", "store_name": "Пикча"}'
        )
        assert stored["s1"]["batch"] == stored["s2"]["batch"]

    def test_a_document_the_server_refuses_fails_alone(
        self, new_mongodb_url: Callable[[], str]
    ) -> None:
        """A write the server rejects is reported with its reason; the rest land."""
        from pymongo import MongoClient

        from pikcha.adapters.mongo_crm import MongoCrmStore

        url = new_mongodb_url()
        with MongoClient(url) as client:
            client.get_default_database().create_collection(
                "stores", validator={"doc.city": {"$ne": "Нигде"}}
            )
        crm = MongoCrmStore(url)

        report = crm.upsert(
            Entity.STORE, [store("s1"), store("s2", city="Нигде"), store("s3")]
        )

        assert (report.inserted, [r for r, _ in report.failed]) == (
            2,
            ["store document #1"],
        )
        assert "refused by MongoDB" in report.failed[0][1]
        assert [c.entity_id for c in crm.changes(Entity.STORE, 0, 10)] == ["s1", "s3"]
        crm.close()

    def test_a_batch_cut_off_before_its_feed_entries_is_fed_again(
        self, new_mongodb_url: Callable[[], str]
    ) -> None:
        """Documents of a batch whose journal entry stayed open are fed again."""
        from pymongo import MongoClient

        from pikcha.adapters.mongo_crm import MongoCrmStore

        url = new_mongodb_url()
        crm = MongoCrmStore(url)
        crm.upsert(Entity.STORE, [store("s1"), store("s2")])
        crm.upsert(Entity.STORE, [store("s3")])
        with MongoClient(url) as client:
            database = client.get_default_database()
            first = database["stores"].find_one({"_id": "s1"})
            assert first is not None
            # As if the process had died before it closed the batch's entry.
            database["journal"].insert_one({"_id": first["batch"], "entity": "store"})

        report = crm.upsert(Entity.STORE, [store("s1"), store("s2"), store("s3")])

        assert (report.updated, report.unchanged) == (2, 1)
        assert [c.entity_id for c in crm.changes(Entity.STORE, 3, 10)] == ["s1", "s2"]
        assert crm.upsert(Entity.STORE, [store("s1"), store("s2")]).unchanged == 2
        crm.close()

    def test_an_insert_that_meets_a_stored_id_replaces_it(
        self, crm: CrmStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An id another writer stored after the read is written as an update."""
        crm.upsert(Entity.STORE, [store("s1", city="Тверь")])
        lookup = crm._lookup  # type: ignore[attr-defined]
        # The read sees nothing, as if the document arrived just after it.
        monkeypatch.setattr(crm, "_lookup", lambda c, ids, f=None: {})

        report = crm.upsert(Entity.STORE, [store("s1", city="Москва")])

        monkeypatch.setattr(crm, "_lookup", lookup)
        assert report.failed == ()
        assert list(crm.scan(Entity.STORE)) == [store("s1", city="Москва")]
        assert [c.seq for c in crm.changes(Entity.STORE, 0, 10)] == [1, 2]

    def test_the_feed_has_a_unique_index_on_seq(
        self, new_mongodb_url: Callable[[], str]
    ) -> None:
        """The first write to an entity's feed creates its unique seq index."""
        from pymongo import MongoClient

        from pikcha.adapters.mongo_crm import MongoCrmStore

        url = new_mongodb_url()
        crm = MongoCrmStore(url)
        crm.upsert(Entity.CUSTOMER, [{"customer_id": "c1"}])
        crm.close()

        with MongoClient(url) as client:
            feed = client.get_default_database()["customers.changes"]
            indexes = feed.index_information()
        assert [
            (spec["key"], spec.get("unique")) for name, spec in indexes.items()
        ] == [([("_id", 1)], None), ([("seq", 1)], True)]

    def test_documents_survive_reopening(
        self, new_mongodb_url: Callable[[], str]
    ) -> None:
        """A new store on the same database sees the documents, feed and marks."""
        from pikcha.adapters.mongo_crm import MongoCrmStore

        url = new_mongodb_url()
        crm = MongoCrmStore(url)
        crm.upsert(Entity.STORE, [store("s1", city="Москва")])
        crm.set_mark("m", 4)
        crm.close()

        reopened = MongoCrmStore(url)
        reopened.upsert(Entity.STORE, [store("s2")])
        assert list(reopened.scan(Entity.STORE)) == [
            store("s1", city="Москва"),
            store("s2"),
        ]
        assert [c.seq for c in reopened.changes(Entity.STORE, 0, 10)] == [1, 2]
        assert reopened.get_mark("m") == 4
        reopened.close()

    def test_a_closed_store_refuses_work(self, crm: CrmStore) -> None:
        """Any call after close raises an InfrastructureError saying so."""
        crm.close()

        with pytest.raises(InfrastructureError, match="closed"):
            crm.upsert(Entity.STORE, [store("s1")])
        with pytest.raises(InfrastructureError, match="closed"):
            list(crm.scan(Entity.STORE))
