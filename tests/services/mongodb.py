"""A MongoDB server: SecantusDB on loopback, or the one PIKCHA_TEST_MONGODB names.

``PIKCHA_TEST_MONGODB=mongodb://...`` (any connection string) uses that server
instead. Either way each test works in databases of its own, named
``pikcha_test_<random>`` and dropped when the test ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The connection string of the session's MongoDB server."""
    # This plugin loads before tests.services.ports; importing it at the top
    # would keep pytest from registering that module as a plugin of its own.
    from tests.services.ports import free_port, stop, wait_until

    external = os.environ.get("PIKCHA_TEST_MONGODB")
    if external:
        yield external
        return
    binary = Path(sys.executable).with_name("secantusd-py")
    if not binary.exists():
        pytest.skip(
            "SecantusDB's 'secantusd-py' is not installed: pip install "
            "secantusdb==0.7.0b3 (in the dev extra), or set PIKCHA_TEST_MONGODB "
            "to a MongoDB server"
        )
    folder = tmp_path_factory.mktemp("mongodb")
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}/"
    with (folder / "secantusd.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(folder / "data"),
                "--log-level",
                "WARNING",
                # configureFailPoint, for the tests of retries; loopback only.
                "--enable-test-commands",
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(
            lambda: process.poll() is not None or _ping(url),
            30,
            f"secantusd-py on 127.0.0.1:{port}",
        )
        if process.poll() is not None:
            tail = (folder / "secantusd.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"secantusd-py exited with {process.returncode}:\n{tail}")
        yield url
    finally:
        stop(process)


@pytest.fixture
def new_mongodb_url(mongodb_url: str) -> Iterator[Callable[[], str]]:
    """Makes URLs of fresh databases on the test server; drops them afterwards."""
    names: list[str] = []

    def new() -> str:
        names.append(f"pikcha_test_{uuid.uuid4().hex[:12]}")

        return with_database(mongodb_url, names[-1])

    yield new
    if names:
        with _client(mongodb_url) as client:
            for name in names:
                client.drop_database(name)


@pytest.fixture
def mongodb_crm_url(new_mongodb_url: Callable[[], str]) -> str:
    """The URL of a fresh database for one test."""
    return new_mongodb_url()


def with_database(url: str, name: str) -> str:
    """``url`` with its path naming the database ``name``, options kept."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def _client(url: str) -> MongoClient[dict[str, object]]:
    return MongoClient(url, serverSelectionTimeoutMS=2000)


def _ping(url: str) -> bool:
    with _client(url) as client:
        return bool(client.admin.command("ping").get("ok"))
