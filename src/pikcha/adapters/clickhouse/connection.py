"""Opening a ClickHouse client from a warehouse URL, and the chDB path lock."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pikcha.domain.errors import ConfigurationError, LockedError

SETTINGS: Mapping[str, Any] = {
    "session_timezone": "UTC",
    "join_use_nulls": 0,
    # Idempotence comes from the event_id check and the ReplacingMergeTree keys;
    # block deduplication on a replicated server would silently drop a mart
    # rebuilt with the same rows after TRUNCATE.
    "insert_deduplicate": 0,
    "final": 0,
    "data_type_default_nullable": 0,
    "decimal_check_overflow": 1,
}
"""Settings where chDB and a server's profile may differ, pinned per session."""

USAGE = "chdb:///abs/path or http(s)://user:password@host:8123/db"
_DATABASE = re.compile(r"^\w+$")


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]

    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def open_client(**target: Any) -> Client:
    return clickhouse_connect.get_client(
        **target, settings=dict(SETTINGS), tz_mode="naive_utc"
    )


def chdb_path(url: str) -> Path:
    """The absolute directory of a ``chdb:///abs/path`` URL."""
    parts = urlsplit(url)
    path = Path(unquote(parts.netloc + parts.path))
    if parts.netloc or not path.is_absolute() or path == Path("/"):
        raise ConfigurationError(
            f"warehouse URL {redact(url)} does not name an absolute directory; set "
            "PIKCHA_WAREHOUSE to chdb:///abs/path"
        )

    return path.resolve()


def server_target(url: str) -> tuple[dict[str, Any], str]:
    """``get_client`` arguments of an ``http(s)://`` URL, and its database."""
    parts = urlsplit(url)
    database = unquote(parts.path.strip("/")) or "default"
    if not _DATABASE.match(database):
        raise ConfigurationError(
            f"warehouse URL {redact(url)} names the database {database!r}; use "
            "letters, digits and underscores in PIKCHA_WAREHOUSE"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(
            f"warehouse URL {redact(url)} has a bad port; fix PIKCHA_WAREHOUSE"
        ) from exc
    secure = parts.scheme == "https"
    target = {
        "host": parts.hostname or "localhost",
        "port": port or (8443 if secure else 8123),
        "username": unquote(parts.username or "default"),
        "password": unquote(parts.password or ""),
        "secure": secure,
    }

    return target, database


def hold(path: Path) -> IO[str]:
    """Take ``<path>/.pikcha.lock`` for this process, or raise LockedError.

    The error is transient when another process holds the lock: it lets go when
    it ends.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = (path / ".pikcha.lock").open("a+", encoding="ascii")
    except OSError as exc:
        raise ConfigurationError(
            f"the warehouse directory {path} cannot be used ({exc.strerror}); "
            "set PIKCHA_WAREHOUSE to a writable path"
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        if owner == str(os.getpid()):
            # Waiting cannot free a lock that this very process holds.
            raise LockedError(
                f"the warehouse at {path} is already open in this process "
                f"(pid {owner}); close it first or set PIKCHA_WAREHOUSE to another "
                "path",
                transient=False,
            ) from exc
        raise LockedError(
            f"the warehouse at {path} is in use by another process (pid {owner}); "
            "stop it or set PIKCHA_WAREHOUSE to another path"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()

    return handle


def release(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
