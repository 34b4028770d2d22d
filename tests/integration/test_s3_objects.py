"""The S3 object store against a real S3 server, and the pipeline exporting to it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pikcha.adapters.s3_objects import MIN_PART_SIZE, PART_SIZE, S3ObjectStore
from pikcha.domain.errors import ConfigurationError, InfrastructureError
from tests.services.ports import free_port
from tests.services.s3 import KEY_VARIABLES, S3Service


def open_store(service: S3Service, part_size: int = PART_SIZE) -> S3ObjectStore:
    return S3ObjectStore(
        service.new_bucket(),
        endpoint=service.endpoint,
        access_key=service.access_key,
        secret_key=service.secret_key,
        secure=service.secure,
        region=service.region,
        part_size=part_size,
    )


def test_an_object_larger_than_a_part_round_trips(s3_service: S3Service) -> None:
    """An object of three parts is uploaded in parts and read back whole."""
    store = open_store(s3_service, part_size=MIN_PART_SIZE)
    data = random.Random(5).randbytes(2 * MIN_PART_SIZE + 12_345)

    info = store.put("big/blob.bin", data)

    assert store.get("big/blob.bin") == data
    assert store.stat("big/blob.bin") == info
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    etag = s3_service.client().stat_object(store.bucket, "big/blob.bin").etag
    assert etag is not None and etag.endswith("-3")


def test_bytes_replaced_behind_the_store_fail_verification(
    s3_service: S3Service,
) -> None:
    """get refuses bytes that do not match the sha256 recorded by put."""
    store = open_store(s3_service)
    info = store.put("features/a.csv", b"a,b\n1,2\n", "text/csv")
    s3_service.client().put_object(
        store.bucket,
        "features/a.csv",
        io.BytesIO(b"a,b\n1,3\n"),
        8,
        content_type="text/csv",
        metadata={"sha256": info.sha256},
    )

    with pytest.raises(InfrastructureError, match=r"'features/a\.csv'.*corrupt"):
        store.get("features/a.csv")


def test_an_object_from_another_tool_is_hashed_when_described(
    s3_service: S3Service,
) -> None:
    """An object without a recorded sha256 is read and hashed by stat and list."""
    store = open_store(s3_service)
    store.put("mine", b"x")
    s3_service.client().put_object(
        store.bucket, "theirs.json", io.BytesIO(b"{}"), 2, "application/json"
    )

    info = store.stat("theirs.json")

    assert info.sha256 == hashlib.sha256(b"{}").hexdigest()
    assert (info.size, info.content_type) == (2, "application/json")
    assert store.get("theirs.json") == b"{}"
    assert store.list("theirs") == [info]


def test_location_is_an_s3_url(s3_service: S3Service) -> None:
    """location names the bucket and the key in an s3:// URL."""
    store = open_store(s3_service)

    assert store.location("features/f.csv") == f"s3://{store.bucket}/features/f.csv"


@pytest.mark.timeout(30)
def test_wrong_keys_are_a_configuration_error(s3_service: S3Service) -> None:
    """A wrong secret key gives a ConfigurationError naming the key variables."""
    wrong = "not-the-secret-" + "x" * 20
    environ = s3_service.environ() | {"AWS_SECRET_ACCESS_KEY": wrong}
    store = S3ObjectStore.from_url(s3_service.url(s3_service.new_bucket()), environ)

    with pytest.raises(ConfigurationError, match="AWS_SECRET_ACCESS_KEY") as caught:
        store.put("a", b"x")

    assert wrong not in str(caught.value)
    assert s3_service.secret_key not in str(caught.value)


def test_missing_keys_name_both_variables() -> None:
    """Without keys in the environment the error names both ways to give them."""
    with pytest.raises(ConfigurationError) as caught:
        S3ObjectStore.from_url("s3://exports?endpoint=127.0.0.1:9&secure=false", {})

    message = str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in message and "PIKCHA_S3_ACCESS_KEY" in message


def test_pikcha_keys_take_precedence_over_aws_keys(s3_service: S3Service) -> None:
    """PIKCHA_S3_ACCESS_KEY and PIKCHA_S3_SECRET_KEY win over the AWS variables."""
    environ = {
        "AWS_ACCESS_KEY_ID": "someone-else",
        "AWS_SECRET_ACCESS_KEY": "not-theirs-either",
        "PIKCHA_S3_ACCESS_KEY": s3_service.access_key,
        "PIKCHA_S3_SECRET_KEY": s3_service.secret_key,
    }
    store = S3ObjectStore.from_url(s3_service.url(s3_service.new_bucket()), environ)

    assert store.put("k", b"v").size == 1


@pytest.mark.timeout(30)
def test_an_unreachable_endpoint_is_a_transient_error() -> None:
    """Nothing listening on the endpoint gives a transient InfrastructureError."""
    endpoint = f"127.0.0.1:{free_port()}"
    environ = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
    store = S3ObjectStore.from_url(
        f"s3://exports?endpoint={endpoint}&secure=false", environ
    )

    with pytest.raises(InfrastructureError, match=endpoint) as caught:
        store.get("a")

    assert caught.value.transient


def test_a_bucket_removed_behind_the_store_is_a_configuration_error(
    s3_service: S3Service,
) -> None:
    """A bucket that vanished is a ConfigurationError naming it and the setting."""
    store = open_store(s3_service)
    store.put("a", b"x")
    client = s3_service.client()
    client.remove_object(store.bucket, "a")
    client.remove_bucket(store.bucket)

    with pytest.raises(ConfigurationError, match="PIKCHA_OBJECTS") as caught:
        store.get("a")

    assert repr(store.bucket) in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://?endpoint=h:1", "does not name a bucket"),
        ("s3://Bad_Bucket?endpoint=h:1", "not a valid S3 bucket name"),
        ("s3://b1b?endpoint=h:1&colour=red", "unknown parameter 'colour'"),
        ("s3://b1b/prefix?endpoint=h:1", "path or fragment"),
        ("s3://b1b?endpoint=h:1&secure=maybe", "secure='maybe'"),
        ("s3://k:hidden@b1b?endpoint=h:1", "carries credentials"),
    ],
)
def test_a_bad_url_names_the_problem(url: str, problem: str) -> None:
    """A malformed PIKCHA_OBJECTS URL is a ConfigurationError saying what is wrong."""
    environ = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}

    with pytest.raises(ConfigurationError, match="PIKCHA_OBJECTS") as caught:
        S3ObjectStore.from_url(url, environ)

    assert problem in str(caught.value)
    assert "hidden" not in str(caught.value)


def test_the_cli_exports_features_to_the_bucket(
    s3_service: S3Service, s3_url: str, tmp_path: Path
) -> None:
    """run and features put the CSV, Parquet and a matching manifest in the bucket."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIKCHA_") and key not in KEY_VARIABLES
    }
    environment |= s3_service.environ() | {
        "PIKCHA_HOME": str(tmp_path / "var"),
        "PIKCHA_OBJECTS": s3_url,
        "PIKCHA_FEATURES": "clickhouse",
    }
    commands = [
        "run --now 2025-09-30T12:00:00 --as-of 2025-09-30 --purchases 300",
        "features --engine clickhouse --as-of 2025-09-30",
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "pikcha.entrypoints.cli", *command.split()],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    store = S3ObjectStore.from_url(s3_url, s3_service.environ())
    name = "features/analytic_result_2025_09_30"

    found = {info.key: info for info in store.list("features/")}

    assert set(found) == {f"{name}.csv", f"{name}.parquet", f"{name}.manifest.json"}
    manifest = json.loads(store.get(f"{name}.manifest.json"))
    assert manifest["files"] == {
        key: found[key].sha256 for key in (f"{name}.csv", f"{name}.parquet")
    }
    for key, digest in manifest["files"].items():
        assert hashlib.sha256(store.get(key)).hexdigest() == digest
    assert f"s3://{store.bucket}/{name}.csv" in result.stdout


def test_spark_features_land_in_the_bucket(
    s3_service: S3Service, s3_url: str, tmp_path: Path
) -> None:
    """With PIKCHA_FEATURES=spark, run and ``features --engine spark`` export to S3."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed; install Java 17 or later for Spark")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIKCHA_") and key not in KEY_VARIABLES
    }
    environment |= s3_service.environ() | {
        "PIKCHA_HOME": str(tmp_path / "var"),
        "PIKCHA_OBJECTS": s3_url,
        "PIKCHA_FEATURES": "spark",
    }
    commands = [
        "run --now 2025-08-01T12:00:00 --as-of 2025-08-01 --purchases 300",
        "features --engine spark --as-of 2025-08-01",
    ]
    outputs = []
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "pikcha.entrypoints.cli", *command.split()],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    store = S3ObjectStore.from_url(s3_url, s3_service.environ())
    name = "features/analytic_result_2025_08_01"

    found = {info.key for info in store.list("features/")}

    assert found == {f"{name}.csv", f"{name}.parquet", f"{name}.manifest.json"}
    assert json.loads(store.get(f"{name}.manifest.json"))["engine"] == "spark"
    assert "engine spark" in outputs[0]
    assert "by spark" in outputs[1]
