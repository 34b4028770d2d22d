"""The daily Airflow DAG, run with ``dag.test()`` in a throwaway Airflow.

Airflow runs in subprocesses only, with its own ``AIRFLOW_HOME`` and SQLite
metadata database, so none of its configuration reaches this process or the
user's own Airflow. The database is migrated once per session.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.domain.entities import Entity
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    LockedError,
    NotFoundError,
    PikchaError,
)
from pikcha.entrypoints.airflow import dags_folder, tasks
from pikcha.entrypoints.container import make_objects
from pikcha.entrypoints.settings import Settings

DAG_FILE = dags_folder() / "pikcha_etl_daily.py"
STEPS = ("publish", "project", "marts", "features", "export", "quality")
HEAVY = (
    "chdb",
    "clickhouse_connect",
    "pyspark",
    "confluent_kafka",
    "pymongo",
    "pyarrow",
)
# The projector judges dates by the wall clock, so the data is generated
# relative to it; each DAG run of the session has a logical date of its own.
NOW = datetime.now().replace(microsecond=0)
TODAY = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)

# Runs the DAG in a fresh interpreter: sets the Airflow Variables given, runs
# the DAG, removes the Variables again and writes each task's state, tries and
# XCom as JSON. dag.test() sleeps through a retry's delay, so retries are
# either off or immediate.
RUNNER = """
import importlib.util, json, sys
from datetime import datetime, timedelta

from airflow.models.variable import Variable

dag_file, logical_date, variables, retries, out = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("pikcha_etl_daily", dag_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag_object
for task in dag.tasks:
    if retries == "none":
        task.retries = 0
    task.retry_delay = timedelta(0)
    task.retry_exponential_backoff = 0
variables = json.loads(variables)
for key, value in variables.items():
    Variable.set(key, value)
try:
    run = dag.test(logical_date=datetime.fromisoformat(logical_date))
finally:
    for key in variables:
        Variable.delete(key)
result = {"state": str(run.state), "tasks": {}}
for ti in run.get_task_instances():
    result["tasks"][ti.task_id] = {
        "state": str(ti.state),
        "tries": ti.try_number,
        "xcom": ti.xcom_pull(task_ids=ti.task_id),
    }
with open(out, "w") as file:
    json.dump(result, file, default=str)
"""

# Imports the DAG file as the scheduler would and reports what that loaded.
INSPECTOR = """
import importlib.util, json, sys

spec = importlib.util.spec_from_file_location("pikcha_etl_daily", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag_object
first = dag.tasks[0]
order, task = [], dag.get_task("publish")
while task is not None:
    order.append(task.task_id)
    task = next(iter(task.downstream_list), None)
print(json.dumps({
    "modules": sorted(name for name in sys.modules if "." not in name),
    "dag_id": dag.dag_id,
    "schedule": dag.timetable.expression,
    "catchup": dag.catchup,
    "retries": first.retries,
    "retry_delay": first.retry_delay.total_seconds(),
    "backoff": first.retry_exponential_backoff,
    "max_retry_delay": first.max_retry_delay.total_seconds(),
    "order": order,
    "multiple_outputs": sorted({task.multiple_outputs for task in dag.tasks}),
}))
"""


def clean_environ() -> dict[str, str]:
    """This process's environment without any Pikcha or Airflow setting."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIKCHA_", "AIRFLOW"))
    }


def pikcha_environ(**settings: str) -> dict[str, str]:
    """A clean environment with these ``PIKCHA_*`` settings.

    The features are computed on ClickHouse: a Spark session, which the
    default engine may start, is tested elsewhere and would only cost time.
    """
    return (
        clean_environ()
        | {"PIKCHA_FEATURES": "clickhouse"}
        | {f"PIKCHA_{name.upper()}": value for name, value in settings.items()}
    )


@dataclass(frozen=True)
class AirflowHome:
    path: Path
    environ: Mapping[str, str]


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow home with a SQLite database, shared by the session."""
    airflow = Path(sys.executable).with_name("airflow")
    if importlib.util.find_spec("airflow") is None or not airflow.exists():
        pytest.skip("Airflow is not installed: pip install -e '.[airflow]'")
    home = tmp_path_factory.mktemp("airflow")
    environ = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    result = subprocess.run(
        [str(airflow), "db", "migrate"],
        env=clean_environ() | environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stderr[-3000:]}")

    return AirflowHome(home, environ)


def pikcha(folder: Path, environ: Mapping[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pikcha.entrypoints.cli", *args],
        env=dict(environ),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def load_source(folder: Path, environ: Mapping[str, str]) -> None:
    """Generate a small, slightly repetitive data set and load it into the CRM."""
    source = folder / "source"
    generated = ("--out", str(source), "--now", NOW.isoformat(), "--seed", "5")
    pikcha(
        folder,
        environ,
        "generate",
        *generated,
        "--purchases",
        "300",
        "--repeated",
        "0.1",
    )
    pikcha(folder, environ, "load", str(source))


@dataclass(frozen=True)
class DagRun:
    state: str
    tasks: dict[str, dict[str, Any]]
    output: str
    day: date

    def xcom(self, step: str) -> Any:
        return self.tasks[step]["xcom"]


def run_dag(
    home: AirflowHome,
    folder: Path,
    environ: Mapping[str, str],
    logical_date: datetime,
    variables: Mapping[str, str] | None = None,
    retries: bool = False,
) -> DagRun:
    out = folder / "dag-run.json"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            str(DAG_FILE),
            logical_date.isoformat(),
            json.dumps(dict(variables or {})),
            "keep" if retries else "none",
            str(out),
        ],
        env=dict(environ) | dict(home.environ),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    found = json.loads(out.read_text())

    return DagRun(found["state"], found["tasks"], output, logical_date.date())


@pytest.fixture(scope="module")
def embedded(
    airflow_home: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DagRun, Path]:
    """One DAG run on the embedded adapters, and the Pikcha home it used.

    The environment sets a duplicate threshold of 90% and an Airflow Variable
    one of 1%, which the data's repeated records are above.
    """
    folder = tmp_path_factory.mktemp("airflow-embedded")
    home = folder / "var"
    environ = pikcha_environ(home=str(home), duplicate_threshold="0.9")
    load_source(folder, environ)
    run = run_dag(
        airflow_home,
        folder,
        environ,
        TODAY,
        variables={"PIKCHA_DUPLICATE_THRESHOLD": "0.01"},
    )

    return run, home


@pytest.fixture
def warehouse(embedded: tuple[DagRun, Path]) -> Iterator[ClickHouseWarehouse]:
    """The embedded run's warehouse, opened after the run, closed after the test.

    chDB opens one path at a time per process, and other tests open theirs.
    """
    _, home = embedded
    store = ClickHouseWarehouse(f"chdb://{(home / 'warehouse').resolve()}")
    try:
        yield store
    finally:
        store.close()


def features_of(day: date) -> str:
    return f"features/analytic_result_{day:%Y_%m_%d}"


def test_every_task_of_the_dag_succeeds_in_order(
    embedded: tuple[DagRun, Path],
) -> None:
    """dag.test() runs the six steps and each one succeeds."""
    run, _ = embedded

    assert run.state == "success"
    assert {step: run.tasks[step]["state"] for step in STEPS} == dict.fromkeys(
        STEPS, "success"
    )


def test_the_warehouse_holds_every_published_event_once(
    embedded: tuple[DagRun, Path], warehouse: ClickHouseWarehouse
) -> None:
    """The raw tables hold what publish sent, and each entity reconciles."""
    run, _ = embedded
    published = run.xcom("publish")["streams"]

    for entity in Entity:
        table = f"raw_{entity.value}s"
        rows = warehouse.client.query(
            f"SELECT count(), uniqExact(event_id) FROM {table}"
        )
        assert rows.result_rows[0] == (published[entity.value],) * 2, table
    assert run.xcom("project")["new"] == run.xcom("publish")["events"] > 0
    assert all(result.balanced for result in warehouse.reconcile().values())


def test_the_marts_task_reports_the_rows_each_mart_holds(
    embedded: tuple[DagRun, Path], warehouse: ClickHouseWarehouse
) -> None:
    """The marts task reports the rows each mart holds after the run."""
    run, _ = embedded
    marts = run.xcom("marts")

    for mart, rows in marts.items():
        count = warehouse.client.query(f"SELECT count() FROM {mart}")
        assert count.result_rows[0][0] == rows, mart
    assert marts["customer_aggregates"] > 0


def test_the_features_of_the_logical_date_are_exported_with_a_manifest(
    embedded: tuple[DagRun, Path],
) -> None:
    """CSV, Parquet and manifest of the run's day are in the object store."""
    run, home = embedded
    base = home / "objects" / features_of(run.day)
    manifest = json.loads(Path(f"{base}.manifest.json").read_text())
    csv_bytes = Path(f"{base}.csv").read_bytes()
    parquet_bytes = Path(f"{base}.parquet").read_bytes()

    assert manifest["as_of"] == f"{run.day.isoformat()}T23:59:59.999999"
    assert manifest["rows"] == run.xcom("features")["customers"] > 0
    assert (
        len(list(csv.reader(io.StringIO(csv_bytes.decode())))) == manifest["rows"] + 1
    )
    assert set(manifest["files"].values()) == {
        hashlib.sha256(csv_bytes).hexdigest(),
        hashlib.sha256(parquet_bytes).hexdigest(),
    }
    assert run.xcom("export")["rows"] == manifest["rows"]


def test_an_airflow_variable_wins_over_the_environment(
    embedded: tuple[DagRun, Path],
) -> None:
    """The quality report uses the Variable's threshold, not the environment's."""
    run, home = embedded
    summary = run.xcom("quality")
    report = json.loads(
        (home / "objects" / tasks.report_key(summary["load_id"])).read_text()
    )

    assert summary["threshold"] == report["threshold"] == "1/100"
    assert summary["alerted"] == report["alerted"]
    assert set(report["alerted"]) == {f"raw_{entity.value}s" for entity in Entity}


def test_quality_alerts_go_out_through_the_notifier(
    embedded: tuple[DagRun, Path],
) -> None:
    """The default notifier logs one alert per table over the threshold."""
    run, _ = embedded

    for entity in Entity:
        assert f"Pikcha: duplicate share above 1% in raw_{entity.value}s" in run.output


def test_a_wrong_setting_fails_its_task_without_retrying(
    airflow_home: AirflowHome, tmp_path: Path
) -> None:
    """A configuration error fails the task on its first try, despite retries."""
    environ = pikcha_environ(home=str(tmp_path / "var"), crm="ftp://crm.invalid")

    run = run_dag(
        airflow_home, tmp_path, environ, TODAY - timedelta(days=2), retries=True
    )

    assert run.state == "failed"
    assert run.tasks["publish"]["state"] == "failed"
    assert run.tasks["publish"]["tries"] == 1
    assert {run.tasks[step]["state"] for step in STEPS[1:]} == {"upstream_failed"}
    assert "PIKCHA_CRM=ftp://crm.invalid has an unknown scheme" in run.output


def inspect_dag(tmp_path: Path, **environ: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", INSPECTOR, str(DAG_FILE)],
        env=clean_environ() | {"AIRFLOW_HOME": str(tmp_path / "airflow"), **environ},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])

    return found


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG as a scheduler parses it, with no setting of ours in the environment."""
    return inspect_dag(tmp_path_factory.mktemp("parse"))


def test_parsing_the_dag_file_imports_no_heavy_client(parsed: dict[str, Any]) -> None:
    """The DAG file leaves chDB, Spark, Kafka, MongoDB and Arrow to the tasks."""
    assert "airflow" in parsed["modules"]
    assert sorted(set(HEAVY) & set(parsed["modules"])) == []


def test_the_dag_runs_daily_at_three_without_catching_up(
    parsed: dict[str, Any],
) -> None:
    """pikcha_etl_daily is scheduled at 03:00 by default and skips missed days."""
    assert parsed["dag_id"] == "pikcha_etl_daily"
    assert parsed["schedule"] == "0 3 * * *"
    assert parsed["catchup"] is False


def test_the_steps_retry_with_exponential_backoff(parsed: dict[str, Any]) -> None:
    """Three retries, one minute first, each delay doubled, capped."""
    assert parsed["retries"] == 3
    assert parsed["retry_delay"] == 60
    assert parsed["backoff"] == 2
    assert parsed["max_retry_delay"] > 60


def test_the_steps_are_chained_in_pipeline_order(parsed: dict[str, Any]) -> None:
    """publish >> project >> marts >> features >> export >> quality."""
    assert parsed["order"] == list(STEPS)


def test_each_task_keeps_its_summary_as_one_xcom(parsed: dict[str, Any]) -> None:
    """The dict a task returns is not split into one XCom per key."""
    assert parsed["multiple_outputs"] == [False]


def test_the_schedule_comes_from_pikcha_dag_schedule(tmp_path: Path) -> None:
    """PIKCHA_DAG_SCHEDULE replaces the default cron expression."""
    found = inspect_dag(tmp_path, PIKCHA_DAG_SCHEDULE="30 1 * * 1")

    assert found["schedule"] == "30 1 * * 1"


@pytest.fixture
def outside_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings from the environment only: embedded warehouse, the rest in memory.

    Returns the folder of the object store.
    """
    for key in list(os.environ):
        if key.startswith("PIKCHA_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIKCHA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("PIKCHA_EVENT_LOG", "memory://")
    monkeypatch.setenv("PIKCHA_CRM", "memory://")
    monkeypatch.setenv("PIKCHA_FEATURES", "clickhouse")

    return tmp_path / "var" / "objects"


def test_export_refuses_a_file_that_does_not_match_its_manifest(
    outside_airflow: Path,
) -> None:
    """A feature file changed after the export fails the check."""
    day = date(2025, 9, 30)
    tasks.project()
    tasks.features(day)
    csv_file = outside_airflow / f"{features_of(day)}.csv"
    csv_file.write_bytes(csv_file.read_bytes() + b"x\n")

    with pytest.raises(IntegrityError, match=r"analytic_result_2025_09_30\.csv"):
        tasks.export(day)


def test_export_of_a_day_without_features_names_the_missing_manifest(
    outside_airflow: Path,
) -> None:
    """Checking a day that was never exported says which manifest is missing."""
    with pytest.raises(NotFoundError, match=r"analytic_result_2025_09_29\.manifest"):
        tasks.export(date(2025, 9, 29))


def test_a_bad_setting_names_the_environment_variable(
    outside_airflow: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside Airflow, a wrong value is reported as the environment's."""
    monkeypatch.setenv("PIKCHA_BATCH_SIZE", "none")

    with pytest.raises(
        ConfigurationError, match="environment variable PIKCHA_BATCH_SIZE='none'"
    ):
        tasks.publish()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (LockedError("the warehouse is held"), True),
        (InfrastructureError("timed out", transient=True), True),
        (InfrastructureError("bad credentials"), False),
        (ConfigurationError("PIKCHA_CRM=ftp://x"), False),
        (IntegrityError("checksum"), False),
    ],
)
def test_only_errors_that_may_pass_are_retried(
    error: PikchaError, expected: bool
) -> None:
    """A held lock or a transient outage is retried; a wrong setting fails."""
    assert tasks.retryable(error) is expected


def test_a_run_without_a_logical_date_works_on_the_day_it_was_due() -> None:
    """Airflow 3's manual runs may lack a logical date; run_after stands in."""
    due = datetime(2025, 9, 30, 23, 0, tzinfo=UTC)

    assert tasks.run_day(None, due) == date(2025, 9, 30)
    assert tasks.run_day(due - timedelta(days=2), due) == date(2025, 9, 28)


def service_fixtures(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """The Kafka bootstrap servers, a fresh MongoDB database and a fresh bucket."""
    values = []
    for name in ("kafka_bootstrap", "mongodb_crm_url", "s3_url"):
        try:
            values.append(request.getfixturevalue(name))
        except pytest.FixtureLookupError:
            pytest.skip(f"the test service fixture {name} is not available")

    return values[0], values[1], values[2]


def test_the_dag_runs_on_kafka_mongodb_and_s3(
    airflow_home: AirflowHome, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same DAG runs with the event log, CRM and objects on servers."""
    kafka, mongodb, s3 = service_fixtures(request)
    environ = pikcha_environ(
        home=str(tmp_path / "var"),
        event_log=f"kafka://{kafka}",
        # Every test of the session shares the broker: topics of our own.
        kafka_topic_prefix=f"pikcha-airflow-{uuid.uuid4().hex[:8]}.",
        # The test broker answers a group join after half the session timeout.
        kafka_session_timeout_ms="2000",
        crm=mongodb,
        objects=s3,
    )
    load_source(tmp_path, environ)

    run = run_dag(airflow_home, tmp_path, environ, TODAY - timedelta(days=1))

    assert run.state == "success", run.output[-5000:]
    assert run.xcom("project")["new"] == run.xcom("publish")["events"] > 0
    objects = make_objects(Settings(objects=s3))
    manifest = json.loads(objects.get(f"{features_of(run.day)}.manifest.json"))
    assert manifest["rows"] == run.xcom("features")["customers"] > 0
    assert run.xcom("quality")["alerted"] == []
