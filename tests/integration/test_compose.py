"""The compose file of the real stack, validated offline by Compose itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"
SECRETS = {
    "PIKCHA_MASK_KEY": "mask-key-from-the-host",
    "PIKCHA_CLICKHOUSE_PASSWORD": "clickhouse-password-from-the-host",
    "PIKCHA_S3_ACCESS_KEY": "s3-access-key-from-the-host",
    "PIKCHA_S3_SECRET_KEY": "s3-secret-key-from-the-host",
    "PIKCHA_GRAFANA_PASSWORD": "grafana-password-from-the-host",
}
SERVICES = {"kafka", "clickhouse", "mongodb", "minio", "grafana", "airflow"}
MISSING = (
    "neither docker-compose nor the docker compose plugin is installed; "
    "apt-get install docker-compose"
)


def compose_command() -> list[str] | None:
    """``docker-compose``, else ``docker compose`` when the plugin answers."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30
        )
        if probe.returncode == 0:
            return ["docker", "compose"]

    return None


def compose_config(**secrets: str) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip(MISSING)
    # Only what Compose needs: a variable of the developer's shell must not
    # decide the outcome.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIKCHA_", "COMPOSE_", "GF_", "AIRFLOW"))
    }
    env |= secrets

    return subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The compose file as Compose resolves it, with the secrets exported."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is missing; pip install pyyaml")
    result = compose_config(**SECRETS)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)

    return resolved


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever form Compose printed."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)

    return {name: str(value) for name, value in env.items()}


def bind_mounts(service: dict[str, Any]) -> dict[Path, tuple[str, bool]]:
    """Host path to (container path, read-only) for each bind mount."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            if source.startswith("/"):
                found[Path(source)] = (target, mode == ["ro"])
        elif volume.get("type") == "bind":
            read_only = bool(volume.get("read_only"))
            found[Path(volume["source"])] = (volume["target"], read_only)

    return found


def test_the_file_is_valid_and_holds_the_whole_stack(config: dict[str, Any]) -> None:
    """Compose accepts the file, which defines the six services of the stack."""
    assert set(config["services"]) == SERVICES


def test_the_file_is_usable_by_docker_compose_1_29() -> None:
    """The file declares the format version "3.8" that docker-compose 1.29 reads."""
    assert 'version: "3.8"' in COMPOSE_FILE.read_text().splitlines()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_health_check(config: dict[str, Any], service: str) -> None:
    """Each service declares a health check command."""
    check = config["services"][service].get("healthcheck", {})

    assert check.get("test"), f"{service} has no health check"


def test_airflow_waits_for_healthy_servers(config: dict[str, Any]) -> None:
    """Airflow starts once Kafka, ClickHouse, MongoDB and MinIO are healthy."""
    depends = config["services"]["airflow"]["depends_on"]

    assert {name: d["condition"] for name, d in depends.items()} == {
        "kafka": "service_healthy",
        "clickhouse": "service_healthy",
        "mongodb": "service_healthy",
        "minio": "service_healthy",
    }


def test_airflow_reaches_every_port_by_service_name(config: dict[str, Any]) -> None:
    """Pikcha's URLs in Airflow name the services of the compose network."""
    env = environment(config["services"]["airflow"])
    password = SECRETS["PIKCHA_CLICKHOUSE_PASSWORD"]

    assert {name: env[name] for name in ("PIKCHA_EVENT_LOG", "PIKCHA_CRM")} == {
        "PIKCHA_EVENT_LOG": "kafka://kafka:9092",
        "PIKCHA_CRM": "mongodb://mongodb:27017/pikcha",
    }
    assert env["PIKCHA_WAREHOUSE"] == (
        f"http://pikcha:{password}@clickhouse:8123/pikcha"
    )
    assert env["PIKCHA_OBJECTS"] == "s3://pikcha?endpoint=minio:9000&secure=false"


def test_secrets_come_from_the_host_environment(config: dict[str, Any]) -> None:
    """Every secret in the resolved file is the value exported on the host."""
    airflow = environment(config["services"]["airflow"])
    minio = environment(config["services"]["minio"])
    grafana = environment(config["services"]["grafana"])
    clickhouse = environment(config["services"]["clickhouse"])

    assert airflow["PIKCHA_MASK_KEY"] == SECRETS["PIKCHA_MASK_KEY"]
    assert minio["MINIO_ROOT_USER"] == airflow["PIKCHA_S3_ACCESS_KEY"]
    assert minio["MINIO_ROOT_PASSWORD"] == SECRETS["PIKCHA_S3_SECRET_KEY"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["PIKCHA_GRAFANA_PASSWORD"]
    assert clickhouse["CLICKHOUSE_PASSWORD"] == SECRETS["PIKCHA_CLICKHOUSE_PASSWORD"]
    assert grafana["PIKCHA_CLICKHOUSE_PASSWORD"] == clickhouse["CLICKHOUSE_PASSWORD"]


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_a_missing_secret_stops_compose_naming_it(secret: str) -> None:
    """Without one of the secrets, Compose refuses the file and says which."""
    others = {name: value for name, value in SECRETS.items() if name != secret}

    result = compose_config(**others)

    assert result.returncode != 0
    assert f"set {secret}" in result.stderr


def test_grafana_mounts_the_provisioning_and_the_dashboards(
    config: dict[str, Any],
) -> None:
    """Grafana reads grafana/provisioning/ and grafana/dashboards/, read-only."""
    root = COMPOSE_FILE.parents[1]

    assert bind_mounts(config["services"]["grafana"]) == {
        root / "grafana/provisioning": ("/etc/grafana/provisioning", True),
        root / "grafana/dashboards": ("/var/lib/grafana/dashboards", True),
    }
    env = environment(config["services"]["grafana"])
    assert env["GF_INSTALL_PLUGINS"].startswith("grafana-clickhouse-datasource")


def test_airflow_reads_the_dags_of_the_mounted_source(config: dict[str, Any]) -> None:
    """The DAG folder is src/pikcha/entrypoints/airflow/dags of this checkout."""
    airflow = config["services"]["airflow"]
    root = COMPOSE_FILE.parents[1]
    dags = environment(airflow)["AIRFLOW__CORE__DAGS_FOLDER"]

    assert bind_mounts(airflow)[root / "src"] == ("/opt/pikcha/src", True)
    assert dags == "/opt/pikcha/src/pikcha/entrypoints/airflow/dags"
    assert (root / "src/pikcha/entrypoints/airflow/dags").is_dir()
    assert airflow["build"]["dockerfile"] == "infra/airflow.Dockerfile"
