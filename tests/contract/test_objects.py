"""The ObjectStore contract, run against every adapter of the port."""

from __future__ import annotations

import hashlib
import itertools
import os
import string
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pikcha.adapters.local_objects import LocalObjectStore
from pikcha.adapters.memory import InMemoryObjectStore
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    NotFoundError,
)
from pikcha.ports.objects import ObjectInfo, ObjectStore

MakeStore = Callable[[], ObjectStore]
# Each adapter's class runs the inherited properties with its own fresh stores.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

segments = st.text(string.ascii_letters + string.digits + "_-.", min_size=1).filter(
    lambda s: s not in {".", "..", ".pikcha"}
)
keys = st.lists(segments.map(lambda s: s[:20]), min_size=1, max_size=3).map("/".join)
BAD_KEYS = ["", "/absolute", "a/../b", "..", "a\\b", "a//b", "a/", "./a", "a/./b"]


class ObjectStoreContract:
    @pytest.fixture
    def make(self, tmp_path: Path) -> MakeStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, make: MakeStore) -> ObjectStore:
        return make()

    def test_put_then_get_returns_the_bytes(self, store: ObjectStore) -> None:
        """get returns exactly the bytes put under the key."""
        store.put("features/2024-01-01.parquet", b"\x00PAR1\xff")

        assert store.get("features/2024-01-01.parquet") == b"\x00PAR1\xff"

    def test_put_and_stat_describe_the_object(self, store: ObjectStore) -> None:
        """put and stat give the key, size, sha256 and content type."""
        data = "имя,сумма\n".encode()
        expected = ObjectInfo(
            "reports/a.csv", len(data), hashlib.sha256(data).hexdigest(), "text/csv"
        )

        assert store.put("reports/a.csv", data, content_type="text/csv") == expected
        assert store.stat("reports/a.csv") == expected

    def test_the_default_content_type_is_octet_stream(self, store: ObjectStore) -> None:
        """Without a content type an object is application/octet-stream."""
        store.put("blob", b"x")

        assert store.stat("blob").content_type == "application/octet-stream"

    def test_a_put_replaces_the_object(self, store: ObjectStore) -> None:
        """A second put under a key replaces bytes, size, sha256 and type."""
        store.put("a.txt", b"first version", content_type="text/plain")

        store.put("a.txt", b"2nd", content_type="application/json")

        assert store.get("a.txt") == b"2nd"
        assert store.stat("a.txt") == ObjectInfo(
            "a.txt", 3, hashlib.sha256(b"2nd").hexdigest(), "application/json"
        )
        assert [info.key for info in store.list()] == ["a.txt"]

    def test_list_is_sorted_and_filtered_by_prefix(self, store: ObjectStore) -> None:
        """list gives the objects whose key starts with prefix, sorted by key."""
        for key in ["b/2", "a/1", "b/1", "ba", "c"]:
            store.put(key, key.encode())

        assert [i.key for i in store.list()] == ["a/1", "b/1", "b/2", "ba", "c"]
        assert [i.key for i in store.list("b")] == ["b/1", "b/2", "ba"]
        assert [i.key for i in store.list("b/")] == ["b/1", "b/2"]
        assert store.list("zzz") == []
        assert store.list("b/1")[0] == store.stat("b/1")

    def test_an_empty_object_is_an_object(self, store: ObjectStore) -> None:
        """Zero bytes are stored and listed like any object."""
        store.put("empty", b"")

        assert store.get("empty") == b""
        assert store.stat("empty").size == 0

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_a_bad_key_is_refused(self, store: ObjectStore, key: str) -> None:
        """Keys that are not clean relative paths raise a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="object key"):
            store.put(key, b"x")
        with pytest.raises(ConfigurationError, match="object key"):
            store.get(key)

    def test_a_missing_object_is_not_found(self, store: ObjectStore) -> None:
        """get and stat of a key never put raise a NotFoundError naming it."""
        store.put("present/x", b"x")

        with pytest.raises(NotFoundError, match="'missing/y'"):
            store.get("missing/y")
        with pytest.raises(NotFoundError, match="'missing/y'"):
            store.stat("missing/y")
        with pytest.raises(NotFoundError, match="'present'"):
            store.get("present")

    def test_location_names_the_key(self, store: ObjectStore) -> None:
        """location is a path or URL that ends with the key."""
        store.put("exports/f.parquet", b"x")

        assert store.location("exports/f.parquet").endswith("exports/f.parquet")

    def test_readers_see_whole_objects_during_puts(self, store: ObjectStore) -> None:
        """A get racing puts returns one of the versions, never a mix."""
        versions = {bytes([n]) * 200_000 for n in range(5)}
        store.put("hot", next(iter(versions)))
        done = threading.Event()

        def writer() -> None:
            for version in itertools.islice(itertools.cycle(versions), 40):
                store.put("hot", version)
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        seen = []
        while not done.is_set():
            seen.append(store.get("hot"))
        thread.join()

        assert seen and all(data in versions for data in seen)

    @settings(max_examples=30, deadline=None, suppress_health_check=_SHARED)
    @given(objects=st.dictionaries(keys, st.binary(max_size=256), max_size=5))
    def test_objects_round_trip(
        self, make: MakeStore, objects: dict[str, bytes]
    ) -> None:
        """Every object put is got back whole, and listed once with its sha256."""
        store = make()
        clean = {
            key: data
            for key, data in objects.items()
            if not any(other.startswith(f"{key}/") for other in objects)
        }
        for key, data in clean.items():
            store.put(key, data)

        assert {key: store.get(key) for key in clean} == clean
        assert [(i.key, i.sha256) for i in store.list()] == [
            (key, hashlib.sha256(data).hexdigest())
            for key, data in sorted(clean.items())
        ]


class TestInMemoryObjectStore(ObjectStoreContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> MakeStore:
        return InMemoryObjectStore

    def test_objects_are_open_to_inspection(self) -> None:
        """objects maps each key to its bytes and info."""
        store = InMemoryObjectStore()
        info = store.put("k", b"v")

        assert store.objects == {"k": (b"v", info)}


class TestLocalObjectStore(ObjectStoreContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> MakeStore:
        counter = itertools.count()

        return lambda: LocalObjectStore(tmp_path / f"objects-{next(counter)}")

    def test_an_object_is_a_plain_file_at_its_location(self, tmp_path: Path) -> None:
        """location is the absolute path of a file holding the bytes."""
        store = LocalObjectStore(tmp_path / "objects")
        store.put("exports/f.csv", b"a,b\n")

        location = Path(store.location("exports/f.csv"))

        assert location == tmp_path / "objects" / "exports" / "f.csv"
        assert location.is_absolute() and location.read_bytes() == b"a,b\n"

    def test_puts_leave_no_temporary_files(self, tmp_path: Path) -> None:
        """After puts and replaces only the objects remain outside .pikcha/."""
        store = LocalObjectStore(tmp_path)
        for n in range(5):
            store.put("a/b", bytes([n]) * n)
            store.put(f"c{n}", b"x")

        outside = {
            p.relative_to(tmp_path).as_posix()
            for p in tmp_path.rglob("*")
            if p.is_file() and ".pikcha" not in p.parts
        }
        assert outside == {"a/b", *(f"c{n}" for n in range(5))}
        assert list((tmp_path / ".pikcha" / "tmp").iterdir()) == []

    def test_a_failed_put_keeps_the_old_object(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A put that fails leaves the previous object and no temporary file."""
        store = LocalObjectStore(tmp_path)
        store.put("a.txt", b"old", content_type="text/plain")

        def broken(source: object, target: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", broken)
        with pytest.raises(InfrastructureError, match="PIKCHA_OBJECTS"):
            store.put("a.txt", b"new")
        monkeypatch.undo()

        assert store.get("a.txt") == b"old"
        assert store.stat("a.txt").content_type == "text/plain"
        assert list((tmp_path / ".pikcha" / "tmp").iterdir()) == []

    def test_an_unwritable_root_names_the_path_and_setting(
        self, tmp_path: Path
    ) -> None:
        """A root that cannot hold files raises an InfrastructureError naming it."""
        (tmp_path / "file").write_text("not a folder")
        root = tmp_path / "file" / "objects"
        store = LocalObjectStore(root)

        with pytest.raises(InfrastructureError, match="PIKCHA_OBJECTS") as caught:
            store.put("a", b"x")

        assert str(root) in str(caught.value)
        assert "writable directory" in str(caught.value)

    def test_a_missing_root_lists_nothing(self, tmp_path: Path) -> None:
        """A root that does not exist yet is an empty store."""
        store = LocalObjectStore(tmp_path / "not-yet")

        assert store.list() == []

    def test_the_internal_folder_is_not_a_key(self, tmp_path: Path) -> None:
        """Keys under .pikcha/ are refused and never listed."""
        store = LocalObjectStore(tmp_path)
        store.put("a", b"x")

        with pytest.raises(ConfigurationError, match=r"\.pikcha"):
            store.put(".pikcha/meta/x", b"x")
        assert [i.key for i in store.list()] == ["a"]
        assert store.list(".pikcha") == []

    def test_a_file_copied_in_is_an_object(self, tmp_path: Path) -> None:
        """A file placed under the root is listed with its real sha256."""
        store = LocalObjectStore(tmp_path)
        (tmp_path / "data" / "stores").mkdir(parents=True)
        (tmp_path / "data" / "stores" / "s.json").write_bytes(b"{}")

        (info,) = store.list("data/")

        assert info == ObjectInfo(
            "data/stores/s.json",
            2,
            hashlib.sha256(b"{}").hexdigest(),
            "application/json",
        )

    def test_a_file_changed_behind_the_store_gets_a_fresh_sha256(
        self, tmp_path: Path
    ) -> None:
        """stat recomputes sha256 when the file no longer matches its sidecar."""
        store = LocalObjectStore(tmp_path)
        store.put("a.txt", b"old", content_type="text/plain")
        (tmp_path / "a.txt").write_bytes(b"changed")

        info = store.stat("a.txt")

        assert info.sha256 == hashlib.sha256(b"changed").hexdigest()
        assert info.size == 7

    def test_a_key_cannot_be_an_object_and_a_folder(self, tmp_path: Path) -> None:
        """Under a local root a key is a file or a folder, never both."""
        store = LocalObjectStore(tmp_path)
        store.put("a", b"x")
        store.put("d/e", b"y")

        with pytest.raises(IntegrityError, match="'a' is an object"):
            store.put("a/b", b"z")
        with pytest.raises(IntegrityError, match="is a folder"):
            store.put("d", b"z")
        assert [i.key for i in store.list()] == ["a", "d/e"]


class TestS3ObjectStore(ObjectStoreContract):
    @pytest.fixture
    def make(self, tmp_path: Path, make_s3_store: MakeStore) -> MakeStore:
        return make_s3_store
