"""The event log on Kafka, through confluent-kafka (librdkafka).

A stream is the topic ``topic_prefix + stream``, created when missing with the
configured partitions and replication; a consumer group is ``topic_prefix +
group``, so that two installations sharing a cluster never meet. The producer
waits for every in-sync replica (``acks=all``), batches, and compresses with
lz4; a key goes to partition ``murmur2(key) % partitions``, as with the Java
client. While the brokers are unreachable it keeps each message and retries,
reconnecting within a second of a broker coming back, until
``delivery_timeout`` runs out.

What differs from the port:

- The first poll of a member also waits, up to ``join_timeout`` seconds and
  whatever its own timeout, until the member has joined its group and holds
  its partitions: about half the session timeout on the Tansu test broker,
  the broker's initial rebalance delay (3 s by default) on Kafka.
- Offsets polled but not committed may also come back to the same member
  after a rebalance, as Kafka restarts every reassigned partition at the
  group's committed position.
- :meth:`KafkaEventLog.end_offsets` reads each partition from its reported
  end to the end-of-partition mark, because some brokers (the Tansu test
  broker) report the start of the last batch as the end. It is as exact as
  the broker's fetch responses and a snapshot while others append.
- Header names travel with ``\\`` doubled and NUL written as ``\\0``: the C
  client cuts a name at NUL. Keys and header values are UTF-8.
- The producer is idempotent by default, so its retries store nothing twice.
  With ``idempotence=False`` a retry after a lost acknowledgement may store a
  message twice (same event id); it keeps one request in flight per broker
  so that a retried message never lands behind a later one of its key. That
  is for brokers whose idempotence is not crash-safe: the Tansu test broker
  on S3 storage records a producer's sequence before the batch, so a batch
  retried across its restart is acknowledged as a duplicate and never stored.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import Message as RawMessage
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from pikcha.domain.errors import ConfigurationError, InfrastructureError, NotFoundError
from pikcha.ports.event_log import Message, OutgoingMessage

_STREAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_PREFIX = re.compile(r"[A-Za-z0-9._-]*")
_ESCAPED = re.compile(r"\\([\\0])")
_EOF = KafkaError._PARTITION_EOF
# Events a poll passes over: the end of a partition, and a member that took
# too long between polls (it rejoins by itself; its uncommitted work returns).
_SKIPPED = {_EOF, KafkaError._MAX_POLL_EXCEEDED}
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
# Commits refused because the group is rebalancing: the revoke callback
# commits them before the partitions go, or the next owner reads them again.
_REBALANCING = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
}
_TRANSIENT = {
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach a secured cluster; ``None`` fields are left to librdkafka."""

    protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None

    def config(self) -> dict[str, str]:
        if self.sasl_mechanism and not (self.sasl_username and self.sasl_password):
            raise ConfigurationError(
                f"PIKCHA_KAFKA_SASL_MECHANISM={self.sasl_mechanism} needs "
                "PIKCHA_KAFKA_SASL_USERNAME and PIKCHA_KAFKA_SASL_PASSWORD"
            )
        pairs = {
            "security.protocol": self.protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
        }

        return {key: value for key, value in pairs.items() if value}


def bootstrap_servers(url: str) -> str:
    """``host:port[,host:port]`` from ``kafka://host:port[,host:port]``."""
    usage = "write PIKCHA_EVENT_LOG=kafka://host:9092[,host2:9092]"
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigurationError(
            "PIKCHA_EVENT_LOG carries credentials in the kafka:// URL; put them in "
            f"PIKCHA_KAFKA_SASL_USERNAME and PIKCHA_KAFKA_SASL_PASSWORD and {usage}"
        )
    if parts.scheme != "kafka" or parts.path not in ("", "/") or parts.query:
        raise ConfigurationError(f"PIKCHA_EVENT_LOG={url} is not a Kafka URL; {usage}")
    servers = parts.netloc.split(",")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"PIKCHA_EVENT_LOG={url}: {server!r} is not host:port; {usage}"
            )

    return ",".join(servers)


class KafkaEventLog:
    """Streams as Kafka topics on the cluster that ``url`` names.

    ``session_timeout`` is the consumers' (a dead member's partitions move
    after it); ``join_timeout`` bounds a member's wait to join its group;
    ``delivery_timeout`` bounds how long an append waits for acknowledgements,
    retrying while the brokers are down; ``request_timeout`` bounds each admin
    request and end-offset read; ``idempotence`` is described above.
    """

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 6,
        replication: int = 1,
        topic_prefix: str = "pikcha.",
        session_timeout: float = 6.0,
        join_timeout: float = 30.0,
        delivery_timeout: float = 60.0,
        request_timeout: float = 15.0,
        idempotence: bool = True,
        security: KafkaSecurity | None = None,
    ) -> None:
        for name, value in (("PARTITIONS", partitions), ("REPLICATION", replication)):
            if value < 1:
                raise ConfigurationError(f"PIKCHA_KAFKA_{name}={value}: give 1 or more")
        if not _PREFIX.fullmatch(topic_prefix) or len(topic_prefix) > 200:
            raise ConfigurationError(
                f"PIKCHA_KAFKA_TOPIC_PREFIX={topic_prefix!r} is not valid: use up "
                "to 200 letters, digits, '.', '_' or '-'"
            )
        self.servers = bootstrap_servers(url)
        self.partitions = partitions
        self.replication = replication
        self.prefix = topic_prefix
        self.session_timeout = session_timeout
        self.join_timeout = join_timeout
        self.request_timeout = request_timeout
        self._delivery_timeout = delivery_timeout
        self._idempotence = idempotence
        self._secret = security.sasl_password if security else None
        self._base: dict[str, Any] = {
            "bootstrap.servers": self.servers,
            # librdkafka's default backs off up to 10 s between reconnects, so a
            # broker back after a short outage would wait that long to be seen.
            "reconnect.backoff.max.ms": 1000,
        }
        self._base |= security.config() if security else {}
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._consumers: list[KafkaConsumer] = []
        self._producer: Producer | None = None
        self._fatal: KafkaError | None = None
        self._closed = False
        self._admin: AdminClient | None = self._client(AdminClient, {})

    def append(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        topic = self._topic(stream)
        self._ensure([topic])
        if not messages:
            return 0
        producer = self._producing()
        failures: list[KafkaError] = []
        delivered: list[None] = []

        def report(error: KafkaError | None, _: RawMessage) -> None:
            # Runs in whichever thread serves the producer's queue.
            if error is None:
                delivered.append(None)
            else:
                failures.append(error)

        for message in messages:
            headers: list[tuple[str, str | bytes | None]] = [
                (_escape(name), value.encode())
                for name, value in message.headers.items()
            ]
            while True:
                try:
                    producer.produce(
                        topic,
                        value=bytes(message.value),
                        key=message.key.encode(),
                        headers=headers,
                        on_delivery=report,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
                except KafkaException as exc:
                    raise self._failed(f"append to {topic!r}", exc) from exc
        deadline = time.monotonic() + self._delivery_timeout + 5
        while len(delivered) + len(failures) < len(messages):
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"Kafka at {self.servers}: {len(messages) - len(delivered)} "
                    f"messages to {topic!r} were not confirmed in time; "
                    f"{self._patience()}",
                    transient=True,
                )
            producer.flush(0.1)
        if failures:
            first = failures[0]
            if first.fatal():
                self._fatal = first
            hint = (
                self._patience()
                if first.code() == KafkaError._MSG_TIMED_OUT
                else _hint(first)
            )
            raise InfrastructureError(
                f"Kafka at {self.servers}: {len(failures)} of {len(messages)} "
                f"messages to {topic!r} were not appended: {first.str()}; {hint}",
                transient=all(_transient(error) for error in failures),
            )

        return len(messages)

    def consumer(self, group: str, streams: Sequence[str]) -> KafkaConsumer:
        topics = [self._topic(stream) for stream in dict.fromkeys(streams)]
        self._ensure(topics)
        member = KafkaConsumer(self, group, topics)
        with self._lock:
            self._consumers.append(member)

        return member

    def end_offsets(self, stream: str) -> dict[int, int]:
        topic = self._topic(stream)
        numbers = self._partitions(stream)
        hints = self._wait(
            self._administer().list_offsets(
                {TopicPartition(topic, n): _LATEST for n in numbers},
                request_timeout=self.request_timeout,
            ),
            f"read the end offsets of {topic!r}",
        )
        start = [
            TopicPartition(topic, place.partition, max(hint.offset - 1, 0))
            for place, hint in hints.items()
        ]
        ends: dict[int, int] = {}
        # A fresh reader each time: one reused across topics waits on its
        # metadata refresh schedule for every new topic.
        scanner = self._scanning()
        try:
            scanner.assign(start)
            deadline = time.monotonic() + self.request_timeout
            while len(ends) < len(start) and time.monotonic() < deadline:
                for record in scanner.consume(10_000, 0.05):
                    error = record.error()
                    if error is not None and error.code() == _EOF:
                        ends[record.partition() or 0] = record.offset() or 0
                    elif error is not None and not _transient(error):
                        raise self._failed(f"read to the end of {topic!r}", error)
        finally:
            scanner.close()
        if len(ends) < len(start):
            raise InfrastructureError(
                f"Kafka at {self.servers}: the end of {topic!r} was not reached "
                f"within {self.request_timeout:g} s",
                transient=True,
            )

        return dict(sorted(ends.items()))

    def committed(self, group: str, stream: str) -> dict[int, int]:
        topic = self._topic(stream)
        places = [TopicPartition(topic, n) for n in self._partitions(stream)]
        request = ConsumerGroupTopicPartitions(self.prefix + group, places)
        answers = self._wait(
            self._administer().list_consumer_group_offsets(
                [request], request_timeout=self.request_timeout
            ),
            f"read the offsets of group {group!r}",
        )
        offsets: dict[int, int] = {}
        for answer in answers.values():
            for place in answer.topic_partitions or []:
                offsets[place.partition] = max(place.offset, 0)

        return dict(sorted(offsets.items()))

    def streams(self) -> list[str]:
        return sorted(
            topic.removeprefix(self.prefix)
            for topic in self._topics()
            if topic.startswith(self.prefix)
            and not topic.startswith("__")
            and _STREAM_NAME.fullmatch(topic.removeprefix(self.prefix))
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            members, self._consumers = self._consumers, []
            producer, self._producer = self._producer, None
            self._admin = None
        for member in members:
            member.close()
        if producer is not None:
            left = producer.flush(self._delivery_timeout)
            if left:
                raise InfrastructureError(
                    f"Kafka at {self.servers}: {left} messages were still "
                    "unconfirmed when the event log closed",
                    transient=True,
                )

    def _release(self, member: KafkaConsumer) -> None:
        with self._lock:
            if member in self._consumers:
                self._consumers.remove(member)

    def _topic(self, stream: str) -> str:
        if not _STREAM_NAME.fullmatch(stream):
            raise ConfigurationError(
                f"stream name {stream!r} is not valid: use 1 to 249 letters, "
                "digits, '.', '_' or '-'"
            )
        if len(self.prefix + stream) > 249:
            raise ConfigurationError(
                f"stream name {stream!r} makes a topic name over 249 characters "
                "with PIKCHA_KAFKA_TOPIC_PREFIX; shorten one of them"
            )
        self._check_open()

        return self.prefix + stream

    def _ensure(self, topics: Sequence[str]) -> None:
        missing = [topic for topic in topics if topic not in self._known]
        if not missing:
            return
        futures = self._administer().create_topics(
            [NewTopic(t, self.partitions, self.replication) for t in missing],
            request_timeout=self.request_timeout,
            operation_timeout=self.request_timeout,
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=self.request_timeout + 5)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise self._failed(
                        f"create topic {topic!r} with PIKCHA_KAFKA_PARTITIONS="
                        f"{self.partitions} and PIKCHA_KAFKA_REPLICATION="
                        f"{self.replication}",
                        exc,
                    ) from exc
            except FutureTimeout as exc:
                raise self._late(f"create topic {topic!r}") from exc
            self._known.add(topic)

    def _partitions(self, stream: str) -> list[int]:
        topic = self._topic(stream)
        found = self._topics().get(topic)
        if found is None:
            raise NotFoundError(
                f"stream {stream!r} does not exist on Kafka at {self.servers} "
                f"(topic {topic!r}); append to it or open a consumer on it first"
            )

        return found

    def _topics(self) -> dict[str, list[int]]:
        try:
            metadata = self._administer().list_topics(timeout=self.request_timeout)
        except KafkaException as exc:
            raise self._failed("list the topics", exc) from exc

        return {
            name: sorted(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }

    def _producing(self) -> Producer:
        with self._lock:
            if self._producer is None or self._fatal is not None:
                self._fatal = None
                ordered = {} if self._idempotence else {"max.in.flight": 1}
                self._producer = self._client(
                    Producer,
                    ordered
                    | {
                        "enable.idempotence": self._idempotence,
                        "acks": "all",
                        "compression.type": "lz4",
                        "linger.ms": 20,
                        "batch.size": 1 << 20,
                        "partitioner": "murmur2_random",
                        "delivery.timeout.ms": int(self._delivery_timeout * 1000),
                        "error_cb": self._on_error,
                    },
                )

            return self._producer

    def _scanning(self) -> Consumer:
        # A group id is required but never joined: partitions are assigned.
        scanner: Consumer = self._client(
            Consumer,
            {
                "group.id": self.prefix + "end-offsets",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "latest",
                "fetch.wait.max.ms": 10,
            },
        )

        return scanner

    def _client(self, kind: Any, config: dict[str, Any]) -> Any:
        try:
            return kind(self._base | config)
        except (KafkaException, ValueError) as exc:
            raise ConfigurationError(
                f"the Kafka client for {self.servers} refused its configuration: "
                f"{self._scrub(str(exc))}; check PIKCHA_EVENT_LOG and PIKCHA_KAFKA_*"
            ) from exc

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error

    def _wait(self, futures: dict[Any, Future[Any]], what: str) -> dict[Any, Any]:
        try:
            return {
                key: future.result(timeout=self.request_timeout + 5)
                for key, future in futures.items()
            }
        except KafkaException as exc:
            raise self._failed(what, exc) from exc
        except FutureTimeout as exc:
            raise self._late(what) from exc

    def _failed(
        self, what: str, exc: KafkaException | KafkaError
    ) -> InfrastructureError:
        error = exc.args[0] if isinstance(exc, KafkaException) else exc
        if not isinstance(error, KafkaError):
            return InfrastructureError(
                f"Kafka at {self.servers}: cannot {what}: {self._scrub(str(exc))}"
            )

        return InfrastructureError(
            f"Kafka at {self.servers}: cannot {what}: {self._scrub(error.str())}; "
            f"{_hint(error)}",
            transient=_transient(error),
        )

    def _patience(self) -> str:
        return (
            "check that the brokers in PIKCHA_EVENT_LOG are up, or raise "
            f"PIKCHA_KAFKA_DELIVERY_TIMEOUT_MS (now {self._delivery_timeout * 1000:g})"
            " to wait longer for them"
        )

    def _late(self, what: str) -> InfrastructureError:
        return InfrastructureError(
            f"Kafka at {self.servers}: cannot {what}: no answer within "
            f"{self.request_timeout:g} s; check that the brokers in PIKCHA_EVENT_LOG "
            "are reachable",
            transient=True,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _administer(self) -> AdminClient:
        admin = self._admin
        if admin is None:
            self._check_open()
            raise AssertionError("an open log has an admin client")

        return admin

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                f"the Kafka event log for {self.servers} was closed; open a new one"
            )


class KafkaConsumer:
    """A member of a consumer group of :class:`KafkaEventLog`.

    A commit goes out synchronously, and only for partitions this member holds
    and offsets from the first one it polled since it got them: an older
    message could otherwise move the group's position back. A commit refused
    because the group is rebalancing is sent again when the partitions are
    revoked; should that fail too, their next owner reads them again.
    """

    def __init__(self, log: KafkaEventLog, group: str, topics: list[str]) -> None:
        self.group = group
        self._log = log
        self._closed = False
        self._joined = False
        self._buffer: list[Message] = []
        # Per (topic, partition): the first offset polled since assignment,
        # the highest next offset committed, and commits waiting on a rebalance.
        self._floors: dict[tuple[str, int], int] = {}
        self._done: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], int] = {}
        session = int(log.session_timeout * 1000)
        self._client: Consumer = log._client(
            Consumer,
            {
                "group.id": log.prefix + group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session,
                "heartbeat.interval.ms": max(session // 3, 100),
                "topic.metadata.refresh.interval.ms": 10_000,
            },
        )
        self._client.subscribe(
            topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def poll(self, max_messages: int, timeout: float = 0.0) -> list[Message]:
        if max_messages < 1:
            raise ConfigurationError(
                f"max_messages must be at least 1, got {max_messages}"
            )
        self._check_open()
        deadline = time.monotonic() + self._log.join_timeout
        while not self._joined and time.monotonic() < deadline:
            self._buffer += self._fetch(1, 0.1)
        if self._buffer:
            batch, self._buffer = (
                self._buffer[:max_messages],
                self._buffer[max_messages:],
            )
            return batch
        deadline = time.monotonic() + timeout
        batch = []
        while not batch:
            batch = self._fetch(1, max(deadline - time.monotonic(), 0))
            if time.monotonic() >= deadline:
                break
        while batch and len(batch) < max_messages:
            more = self._fetch(max_messages - len(batch), 0)
            if not more:
                break
            batch += more

        return batch

    def commit(self, messages: Sequence[Message]) -> None:
        self._check_open()
        prefix = self._log.prefix
        for message in messages:
            place = (prefix + message.stream, message.partition)
            floor = self._floors.get(place)
            if floor is None or message.offset < floor:
                continue
            following = message.offset + 1
            if following > max(self._done.get(place, 0), self._pending.get(place, 0)):
                self._pending[place] = following
        self._send(dict(self._pending), quiet=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._log._release(self)
        try:
            # Serves the revoke callback, which sends pending commits, and
            # leaves the group.
            self._client.close()
        except (KafkaException, RuntimeError) as exc:
            raise InfrastructureError(
                f"Kafka at {self._log.servers}: leaving group {self.group!r} "
                f"failed: {exc}",
                transient=True,
            ) from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _fetch(self, count: int, timeout: float) -> list[Message]:
        try:
            records = self._client.consume(count, timeout)
        except (KafkaException, RuntimeError) as exc:
            raise InfrastructureError(
                f"Kafka at {self._log.servers}: group {self.group!r} cannot poll: "
                f"{exc}",
                transient=True,
            ) from exc
        batch: list[Message] = []
        prefix = self._log.prefix
        for record in records:
            error = record.error()
            if error is not None:
                if error.code() in _SKIPPED or _transient(error):
                    continue
                raise self._log._failed(f"poll for group {self.group!r}", error)
            topic, number = record.topic() or "", record.partition() or 0
            offset = record.offset() or 0
            self._floors.setdefault((topic, number), offset)
            batch.append(
                Message(
                    stream=topic.removeprefix(prefix),
                    partition=number,
                    offset=offset,
                    key=(record.key() or b"").decode("utf-8", "replace"),
                    value=record.value() or b"",
                    headers=_headers(record),
                )
            )

        return batch

    def _send(self, offsets: dict[tuple[str, int], int], quiet: bool) -> None:
        if not offsets:
            return
        places = [TopicPartition(t, n, offset) for (t, n), offset in offsets.items()]
        try:
            answer = self._client.commit(offsets=places, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if quiet or error.code() in _REBALANCING:
                return
            raise self._log._failed(f"commit for group {self.group!r}", exc) from exc
        for place in answer or []:
            key = (place.topic, place.partition)
            if place.error is None:
                self._done[key] = max(self._done.get(key, 0), place.offset)
                if self._pending.get(key, 0) <= place.offset:
                    self._pending.pop(key, None)
            elif not quiet and place.error.code() not in _REBALANCING:
                raise self._log._failed(
                    f"commit {place.topic}[{place.partition}]", place.error
                )

    def _on_assign(self, _: Consumer, places: list[TopicPartition]) -> None:
        self._joined = True

    def _on_revoke(self, _: Consumer, places: list[TopicPartition]) -> None:
        revoked = {(place.topic, place.partition) for place in places}
        self._send(
            {key: value for key, value in self._pending.items() if key in revoked},
            quiet=True,
        )
        self._forget(revoked)

    def _on_lost(self, _: Consumer, places: list[TopicPartition]) -> None:
        self._forget({(place.topic, place.partition) for place in places})

    def _forget(self, places: set[tuple[str, int]]) -> None:
        for mapping in (self._floors, self._done, self._pending):
            for key in places & mapping.keys():
                del mapping[key]

    def _check_open(self) -> None:
        if self._closed:
            raise InfrastructureError(
                f"this consumer of group {self.group!r} was closed; "
                "open a new one with EventLog.consumer"
            )


def _transient(error: KafkaError) -> bool:
    return error.retriable() or error.code() in _TRANSIENT


def _headers(record: RawMessage) -> dict[str, str]:
    found = record.headers() or []
    pairs = found.items() if isinstance(found, dict) else found

    return {
        _unescape(name): value.decode("utf-8", "replace")
        if isinstance(value, bytes)
        else value or ""
        for name, value in pairs
    }


def _hint(error: KafkaError) -> str:
    code = error.code()
    if code in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE):
        return "keep messages under the broker's and topic's message size limits"
    if "AUTH" in error.name():
        return (
            "check PIKCHA_KAFKA_SECURITY_PROTOCOL, PIKCHA_KAFKA_SASL_* and the "
            "cluster's ACLs"
        )
    if _transient(error):
        return "check that the brokers in PIKCHA_EVENT_LOG are reachable"

    return "see the broker's error above"


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("\x00", "\\0")


def _unescape(name: str) -> str:
    return _ESCAPED.sub(lambda found: "\x00" if found[1] == "0" else "\\", name)
