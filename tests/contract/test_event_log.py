"""The EventLog contract, run against every adapter of the port."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pikcha.adapters.memory import InMemoryEventLog
from pikcha.adapters.sqlite_event_log import SqliteEventLog
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    NotFoundError,
    PikchaError,
)
from pikcha.ports.event_log import Consumer, EventLog, Message, OutgoingMessage

MakeLog = Callable[[], EventLog]
# Each adapter's class runs the inherited property with its own fresh logs.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

outgoing = st.builds(
    OutgoingMessage,
    key=st.text(max_size=12),
    value=st.binary(max_size=64),
    headers=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8)),
)


def messages(*keys: str, tag: str = "v") -> list[OutgoingMessage]:
    return [OutgoingMessage(key, f"{tag}{n}".encode()) for n, key in enumerate(keys)]


def drain(consumer: Consumer, count: int, wait: float = 10.0) -> list[Message]:
    received: list[Message] = []
    deadline = time.monotonic() + wait
    while len(received) < count and time.monotonic() < deadline:
        received += consumer.poll(count - len(received), timeout=0.2)

    return received


def values(received: list[Message]) -> list[bytes]:
    return [message.value for message in received]


class EventLogContract:
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeLog]:
        raise NotImplementedError

    @pytest.fixture
    def log(self, make: MakeLog) -> EventLog:
        return make()

    def test_append_returns_how_many_were_appended(self, log: EventLog) -> None:
        """append returns the number of messages, 0 for an empty batch."""
        assert log.append("orders", messages("a", "b", "c")) == 3
        assert log.append("orders", []) == 0

    def test_offsets_start_at_zero_and_grow_by_one(self, log: EventLog) -> None:
        """Each partition's offsets are 0, 1, 2, ... and end_offsets is next."""
        log.append("orders", messages(*"abcdefghij"))

        with log.consumer("g", ["orders"]) as consumer:
            received = drain(consumer, 10)

        partitions = {m.partition for m in received}
        for partition in partitions:
            offsets = [m.offset for m in received if m.partition == partition]
            assert offsets == list(range(len(offsets)))
            assert log.end_offsets("orders")[partition] == len(offsets)
        assert sum(log.end_offsets("orders").values()) == 10

    def test_messages_of_a_key_arrive_in_append_order(self, log: EventLog) -> None:
        """Messages sharing a key are polled in the order they were appended."""
        keys = [f"k{n % 3}" for n in range(30)]
        log.append("orders", messages(*keys[:15]))
        log.append("orders", messages(*keys[15:], tag="w"))

        with log.consumer("g", ["orders"]) as consumer:
            received = drain(consumer, 30)

        for key in {"k0", "k1", "k2"}:
            got = [m.value for m in received if m.key == key]
            sent = [f"v{n}" for n, k in enumerate(keys[:15]) if k == key]
            sent += [f"w{n}" for n, k in enumerate(keys[15:]) if k == key]
            assert got == [s.encode() for s in sent]

    def test_poll_returns_key_value_and_headers(self, log: EventLog) -> None:
        """A polled message carries the stream, key, value and headers appended."""
        sent = OutgoingMessage("c-1", b"\x00payload\xff", {"event_type": "created"})
        log.append("customers", [sent])

        with log.consumer("g", ["customers"]) as consumer:
            (message,) = drain(consumer, 1)

        assert (message.stream, message.key, message.value) == (
            "customers",
            "c-1",
            b"\x00payload\xff",
        )
        assert dict(message.headers) == {"event_type": "created"}

    def test_poll_returns_at_most_max_messages(self, log: EventLog) -> None:
        """poll never returns more than max_messages."""
        log.append("orders", messages(*"kkkkk"))

        with log.consumer("g", ["orders"]) as consumer:
            batches = [consumer.poll(2, timeout=0.2) for _ in range(6)]

        assert all(len(batch) <= 2 for batch in batches)
        assert sum(len(batch) for batch in batches) == 5

    def test_a_member_moves_forward_without_committing(self, log: EventLog) -> None:
        """A member does not see again what it polled, committed or not."""
        log.append("orders", messages(*"kkk"))

        with log.consumer("g", ["orders"]) as consumer:
            drain(consumer, 3)
            assert consumer.poll(10, timeout=0.3) == []

    def test_a_new_member_resumes_after_the_commit(self, log: EventLog) -> None:
        """A new member of the group starts right after the committed messages."""
        log.append("orders", messages(*"kkkk"))
        with log.consumer("g", ["orders"]) as first:
            received = drain(first, 4)
            first.commit(received[:2])

        with log.consumer("g", ["orders"]) as second:
            assert values(drain(second, 2)) == [b"v2", b"v3"]
            assert second.poll(10, timeout=0.3) == []

    def test_uncommitted_messages_are_redelivered(self, log: EventLog) -> None:
        """What a member polled without committing goes to the next member."""
        log.append("orders", messages(*"kkk"))
        with log.consumer("g", ["orders"]) as first:
            assert len(drain(first, 3)) == 3

        with log.consumer("g", ["orders"]) as second:
            assert values(drain(second, 3)) == [b"v0", b"v1", b"v2"]

    def test_groups_are_independent(self, log: EventLog) -> None:
        """A commit of one group does not move another group."""
        log.append("orders", messages(*"kk"))
        with log.consumer("one", ["orders"]) as first:
            first.commit(drain(first, 2))

        with log.consumer("two", ["orders"]) as second:
            assert values(drain(second, 2)) == [b"v0", b"v1"]
        assert set(log.committed("two", "orders").values()) == {0}

    def test_committed_is_the_next_offset_to_read(self, log: EventLog) -> None:
        """committed is 0 before any commit and highest offset + 1 after one."""
        log.append("orders", messages(*"abcdef"))
        assert set(log.committed("g", "orders").values()) == {0}

        with log.consumer("g", ["orders"]) as consumer:
            consumer.commit(drain(consumer, 6))

        assert log.committed("g", "orders") == log.end_offsets("orders")

    def test_the_highest_offset_commits_earlier_ones(self, log: EventLog) -> None:
        """Committing only the last message of a partition commits all before it."""
        log.append("orders", messages(*"kkkk"))
        with log.consumer("g", ["orders"]) as first:
            first.commit(drain(first, 4)[-1:])

        with log.consumer("g", ["orders"]) as second:
            assert second.poll(10, timeout=0.3) == []

    def test_a_commit_never_moves_back(self, log: EventLog) -> None:
        """Committing an earlier message after a later one keeps the later one."""
        log.append("orders", messages(*"kkk"))

        with log.consumer("g", ["orders"]) as consumer:
            received = drain(consumer, 3)
            consumer.commit(received)
            consumer.commit(received[:1])

        assert log.committed("g", "orders") == log.end_offsets("orders")

    def test_poll_timeout_returns_empty_promptly(self, log: EventLog) -> None:
        """poll on an empty stream returns [] within about its timeout."""
        with log.consumer("g", ["quiet"]) as consumer:
            consumer.poll(1, timeout=0.2)
            started = time.monotonic()
            assert consumer.poll(10, timeout=0.3) == []
            assert time.monotonic() - started < 1.5

    def test_poll_wakes_up_for_a_message_appended_while_waiting(
        self, log: EventLog
    ) -> None:
        """A waiting poll returns a message appended during its timeout."""
        with log.consumer("g", ["orders"]) as consumer:
            consumer.poll(1, timeout=0.2)
            timer = threading.Timer(0.3, log.append, ("orders", messages("k")))
            timer.start()
            started = time.monotonic()
            received = consumer.poll(10, timeout=8.0)
            timer.join()

        assert values(received) == [b"v0"]
        assert time.monotonic() - started < 6.0

    def test_a_member_reads_several_streams(self, log: EventLog) -> None:
        """A member of several streams receives each stream's messages in order."""
        log.append("stores", messages(*"sss", tag="s"))
        log.append("products", messages(*"pp", tag="p"))

        with log.consumer("g", ["stores", "products"]) as consumer:
            received = drain(consumer, 5)

        by_stream = {
            stream: values([m for m in received if m.stream == stream])
            for stream in ("stores", "products")
        }
        assert by_stream == {
            "stores": [b"s0", b"s1", b"s2"],
            "products": [b"p0", b"p1"],
        }

    def test_streams_lists_every_stream_sorted(self, log: EventLog) -> None:
        """streams names appended-to and consumed streams, sorted."""
        log.append("zeta", messages("k"))
        log.append("alpha", messages("k"))
        log.consumer("g", ["mid"]).close()

        assert [s for s in log.streams() if s in {"zeta", "alpha", "mid"}] == [
            "alpha",
            "mid",
            "zeta",
        ]

    def test_an_unknown_stream_is_not_found(self, log: EventLog) -> None:
        """end_offsets and committed of a stream that does not exist raise."""
        with pytest.raises(NotFoundError, match="never-made"):
            log.end_offsets("never-made")
        with pytest.raises(NotFoundError, match="never-made"):
            log.committed("g", "never-made")

    @pytest.mark.parametrize("name", ["", "has space", "slash/name", "é"])
    def test_a_bad_stream_name_is_refused(self, log: EventLog, name: str) -> None:
        """A stream name outside [A-Za-z0-9._-] raises a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="stream name"):
            log.append(name, messages("k"))

    def test_concurrent_appends_get_dense_offsets(self, log: EventLog) -> None:
        """Appends from several threads get distinct offsets with no gaps."""

        def append_25(thread: int) -> None:
            for n in range(25):
                log.append("orders", messages("k", tag=f"t{thread}-{n}-"))

        threads = [threading.Thread(target=append_25, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        with log.consumer("g", ["orders"]) as consumer:
            received = drain(consumer, 100)

        assert [m.offset for m in received] == list(range(100))
        assert len(set(values(received))) == 100

    def test_a_closed_consumer_refuses_to_poll(self, log: EventLog) -> None:
        """poll after close raises a PikchaError."""
        consumer = log.consumer("g", ["orders"])
        consumer.close()

        with pytest.raises(PikchaError, match="closed"):
            consumer.poll(1)

    @settings(max_examples=25, deadline=None, suppress_health_check=_SHARED)
    @given(batches=st.lists(st.lists(outgoing, max_size=5), max_size=4))
    def test_what_is_appended_is_read_back(
        self, make: MakeLog, batches: list[list[OutgoingMessage]]
    ) -> None:
        """Every appended message is polled back once with its content."""
        log = make()
        for batch in batches:
            log.append("orders", batch)
        sent = [message for batch in batches for message in batch]

        with log.consumer("g", ["orders"]) as consumer:
            received = drain(consumer, len(sent), wait=5.0) if sent else []

        def content(m: Message | OutgoingMessage) -> tuple[str, bytes, str]:
            return m.key, m.value, json.dumps(dict(m.headers), sort_keys=True)

        assert sorted(map(content, received)) == sorted(map(content, sent))


def _closing(factory: Callable[[], EventLog]) -> Iterator[MakeLog]:
    made: list[EventLog] = []

    def make() -> EventLog:
        made.append(factory())

        return made[-1]

    yield make
    for log in made:
        log.close()


class TestInMemoryEventLog(EventLogContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeLog]:
        yield from _closing(InMemoryEventLog)

    def test_messages_shows_what_was_appended(self) -> None:
        """messages lists a stream's messages for a test to inspect."""
        log = InMemoryEventLog()
        log.append("orders", messages("a", "b"))

        assert values(log.messages("orders")) == [b"v0", b"v1"]

    def test_zero_partitions_is_refused(self) -> None:
        """partitions below 1 raise a ConfigurationError naming the value."""
        with pytest.raises(ConfigurationError, match="got 0"):
            InMemoryEventLog(partitions=0)


class TestPartitionedInMemoryEventLog(EventLogContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeLog]:
        yield from _closing(lambda: InMemoryEventLog(partitions=3))

    def test_a_key_always_lands_in_the_same_partition(self) -> None:
        """Messages of one key share a partition; keys spread over partitions."""
        log = InMemoryEventLog(partitions=3)
        keys = [f"customer-{n}" for n in range(30)]
        log.append("customers", messages(*keys, *keys))

        placed: dict[str, set[int]] = {}
        for message in log.messages("customers"):
            placed.setdefault(message.key, set()).add(message.partition)
        assert all(len(partitions) == 1 for partitions in placed.values())
        assert len(set().union(*placed.values())) == 3


class TestSqliteEventLog(EventLogContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Iterator[MakeLog]:
        counter = itertools.count()
        yield from _closing(
            lambda: SqliteEventLog(tmp_path / f"log-{next(counter)}" / "events.db")
        )

    def test_a_second_process_reads_while_this_one_writes(self, tmp_path: Path) -> None:
        """Reader processes receive every message while the writer appends."""
        path = tmp_path / "events.db"
        log = SqliteEventLog(path)
        log.append("orders", [])
        readers = [
            subprocess.Popen(
                [sys.executable, "-c", _READER, str(path), group, "60"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for group in ("one", "two")
        ]

        for batch in range(12):
            log.append("orders", messages(*"kkkkk", tag=f"b{batch}-"))
            time.sleep(0.03)
        outputs = [reader.communicate(timeout=60)[0] for reader in readers]
        log.close()

        expected = [[n, f"b{n // 5}-{n % 5}"] for n in range(60)]
        assert [json.loads(output) for output in outputs] == [expected, expected]

    def test_messages_survive_reopening(self, tmp_path: Path) -> None:
        """A reopened file holds the messages and commits written before."""
        path = tmp_path / "events.db"
        log = SqliteEventLog(path)
        log.append("orders", messages(*"kkk"))
        with log.consumer("g", ["orders"]) as consumer:
            consumer.commit(drain(consumer, 3)[:1])
        log.close()

        reopened = SqliteEventLog(path)
        assert reopened.end_offsets("orders") == {0: 3}
        assert reopened.committed("g", "orders") == {0: 1}
        reopened.close()

    def test_an_unusable_folder_names_the_path_and_setting(
        self, tmp_path: Path
    ) -> None:
        """A folder that cannot be made raises a ConfigurationError naming it."""
        (tmp_path / "file").write_text("not a folder")
        path = tmp_path / "file" / "sub" / "events.db"

        with pytest.raises(ConfigurationError, match="PIKCHA_EVENT_LOG") as caught:
            SqliteEventLog(path)

        assert str(path) in str(caught.value)

    def test_a_locked_database_raises_a_transient_error(self, tmp_path: Path) -> None:
        """A write lock held elsewhere past busy_timeout is a transient error."""
        path = tmp_path / "events.db"
        log = SqliteEventLog(path, busy_timeout=0.1)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        try:
            with pytest.raises(InfrastructureError) as caught:
                log.append("orders", messages("k"))
        finally:
            other.rollback()
            other.close()
            log.close()

        assert caught.value.transient
        assert isinstance(caught.value.__cause__, sqlite3.Error)

    def test_a_closed_log_refuses_to_append(self, tmp_path: Path) -> None:
        """append after close raises an InfrastructureError saying so."""
        log = SqliteEventLog(tmp_path / "events.db")
        log.close()

        with pytest.raises(InfrastructureError, match="closed"):
            log.append("orders", messages("k"))


_READER = textwrap.dedent(
    """
    import json, sys, time
    from pikcha.adapters.sqlite_event_log import SqliteEventLog

    path, group, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = SqliteEventLog(path)
    seen = []
    deadline = time.monotonic() + 30
    with log.consumer(group, ["orders"]) as consumer:
        while len(seen) < count and time.monotonic() < deadline:
            seen += consumer.poll(7, timeout=0.5)
    print(json.dumps([[m.offset, m.value.decode()] for m in seen]))
    """
)


class TestKafkaEventLog(EventLogContract):
    """The contract on a Kafka-protocol broker; each log has its own topics."""

    @pytest.fixture
    def make(self, tmp_path: Path, kafka_bootstrap: str) -> Iterator[MakeLog]:
        yield from _closing(lambda: _kafka_log(kafka_bootstrap))

    def test_header_names_with_nul_and_backslash_survive(self, log: EventLog) -> None:
        """Header names holding NUL or a backslash are read back unchanged."""
        headers = {"a\x00b": "1", "c\\0": "2", "\\": "3", "event_id": "e-1"}
        log.append("orders", [OutgoingMessage("k", b"v", headers)])

        with log.consumer("g", ["orders"]) as consumer:
            (message,) = drain(consumer, 1)

        assert dict(message.headers) == headers

    def test_streams_have_the_configured_partitions(self, log: EventLog) -> None:
        """A created stream has as many partitions as the log was given."""
        log.append("orders", [])

        assert sorted(log.end_offsets("orders")) == [0, 1, 2]
        assert log.committed("g", "orders") == {0: 0, 1: 0, 2: 0}

    def test_an_oversized_message_is_refused_for_good(self, log: EventLog) -> None:
        """A message over the client's size limit raises a non-transient error."""
        with pytest.raises(InfrastructureError) as caught:
            log.append("orders", [OutgoingMessage("k", b"x" * 2_000_000)])

        assert not caught.value.transient

    def test_an_unreachable_broker_is_a_transient_error(self) -> None:
        """Appending with no broker listening raises a transient error naming it."""
        from pikcha.adapters.kafka import KafkaEventLog
        from tests.services.ports import free_port

        servers = f"127.0.0.1:{free_port()}"
        log = KafkaEventLog(f"kafka://{servers}", request_timeout=1.0)
        try:
            with pytest.raises(InfrastructureError, match=servers) as caught:
                log.append("orders", messages("k"))
        finally:
            log.close()

        assert caught.value.transient

    @pytest.mark.parametrize(
        "url", ["kafka://", "kafka://host", "kafka://h:1,h:x", "kafka://u:p@h:1"]
    )
    def test_a_bad_url_names_the_setting(self, url: str) -> None:
        """A Kafka URL without host:port pairs raises naming PIKCHA_EVENT_LOG."""
        from pikcha.adapters.kafka import KafkaEventLog

        with pytest.raises(ConfigurationError, match="PIKCHA_EVENT_LOG") as caught:
            KafkaEventLog(url)

        assert ":p@" not in str(caught.value)


def _kafka_log(servers: str) -> EventLog:
    import uuid

    from pikcha.adapters.kafka import KafkaEventLog
    from tests.services.kafka import SESSION_TIMEOUT

    return KafkaEventLog(
        f"kafka://{servers}",
        partitions=3,
        topic_prefix=f"contract-{uuid.uuid4().hex[:12]}.",
        session_timeout=SESSION_TIMEOUT,
    )
