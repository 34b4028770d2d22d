"""The steps of the daily DAG as plain functions, one per Airflow task.

Each function reads the settings, builds a pipeline, runs the same use case
as the CLI command of its step, closes the pipeline and returns a small
JSON-able summary (counts and locations) that Airflow keeps as the task's
XCom. Every task opens and closes its own pipeline because Airflow runs the
tasks one after another in separate processes, and a chDB path belongs to
one process at a time.

Settings come from ``PIKCHA_*`` environment variables (or ``.env``). Inside
a running Airflow task, an Airflow Variable of the same name, such as
``PIKCHA_WAREHOUSE``, wins over the environment; a Variable that is not set
leaves the environment's value in force.

``features`` computes the feature table and exports it in one call, as
:meth:`Pipeline.export_features` does: splitting the two would compute the
table twice or pass it through XCom. ``export`` then checks the export
independently: the manifest of the day is in the object store and every file
it names has the checksum the manifest records.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, ParamSpec, get_args

import structlog
from pydantic import SecretStr, ValidationError

from pikcha.application.features import PREFIX, export_name
from pikcha.application.pipeline import Pipeline, end_of_day, quality_json
from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    LockedError,
    NotFoundError,
    PikchaError,
)
from pikcha.entrypoints.container import build_pipeline, close_pipeline
from pikcha.entrypoints.settings import Settings

Summary = dict[str, Any]
P = ParamSpec("P")

log = structlog.get_logger("pikcha.airflow")


def variable_name(setting: str) -> str:
    """The Airflow Variable (and environment variable) of a setting."""
    return f"PIKCHA_{setting.upper()}"


def in_airflow_task() -> bool:
    """True while an Airflow task is running in this process."""
    # A task's process has loaded Airflow already; importing it anywhere else
    # would cost seconds and create an Airflow home folder.
    if "airflow.sdk" not in sys.modules:
        return False
    from airflow.sdk import get_current_context

    try:
        get_current_context()
    except RuntimeError:
        return False

    return True


def airflow_variables() -> dict[str, Any]:
    """The settings given as Airflow Variables ``PIKCHA_<SETTING>``.

    Works inside a running task only. Read each time a task starts, so a
    Variable edited in Airflow takes effect at the next run.
    """
    from airflow.sdk import Variable

    found: dict[str, Any] = {}
    for setting in Settings.model_fields:
        name = variable_name(setting)
        try:
            value = Variable.get(name, default=None)
        except Exception as exc:
            # Falling back to the environment here could point the task at
            # another warehouse than the one configured in Airflow; a retry
            # of the task is the safe answer.
            raise InfrastructureError(
                f"cannot read the Airflow Variable {name} ({type(exc).__name__}); "
                "check that the task can reach the Airflow API server",
                transient=True,
            ) from exc
        if value is not None:
            found[setting] = str(value)

    return found


def load_settings() -> Settings:
    """The environment's settings, overridden by Airflow Variables in a task."""
    inside = in_airflow_task()
    overrides = airflow_variables() if inside else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = str(first["loc"][0]) if first["loc"] else ""
        name = variable_name(setting) if setting else "settings"
        where = "Airflow Variable" if setting in overrides else "environment variable"
        value = "" if is_secret(setting) else f"={first['input']!r}"
        raise ConfigurationError(
            f"{where} {name}{value}: {first['msg']}; set it to a valid value"
        ) from None
    if inside:
        hide_secrets(settings)

    return settings


def is_secret(setting: str) -> bool:
    """Whether a setting holds a secret, whose value no message may show."""
    field = Settings.model_fields.get(setting)
    if field is None:
        return True

    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


def hide_secrets(settings: Settings) -> None:
    """Register every secret setting with Airflow's masker, which redacts logs."""
    from airflow.sdk.log import mask_secret

    for setting in Settings.model_fields:
        value = getattr(settings, setting)
        if isinstance(value, SecretStr):
            mask_secret(value.get_secret_value())


@contextmanager
def opened(step: str) -> Iterator[Pipeline]:
    """A pipeline built from the settings, closed however the step ends."""
    settings = load_settings()
    if step == "publish" and settings.mask_key is None:
        log.warning(
            "development_mask_key",
            note="PIKCHA_MASK_KEY is unset; masking with the development key, "
            "fit only for generated data",
        )
    pipeline = build_pipeline(settings)
    try:
        yield pipeline
    finally:
        close_pipeline(pipeline)


def publish() -> Summary:
    """Publish the CRM's changes as masked events, as ``pikcha publish`` does."""
    with opened("publish") as pipeline:
        report = pipeline.publish()
    summary = {
        "events": report.total,
        "streams": dict(report.published),
        "skipped": len(report.skipped),
    }
    log.info("step_done", step="publish", **summary)

    return summary


def project() -> Summary:
    """Project the event log into the warehouse until caught up."""
    with opened("project") as pipeline:
        report = pipeline.project()
    summary = {
        "read": report.read,
        "projected": report.projected,
        "new": report.new,
        "dead_letters": report.dead_lettered,
        "batches": report.batches,
    }
    log.info("step_done", step="project", **summary)

    return summary


def marts() -> Summary:
    """Rebuild every mart; the summary holds the rows of each."""
    with opened("marts") as pipeline:
        rows = pipeline.build_marts()
    summary: Summary = dict(rows)
    log.info("step_done", step="marts", **summary)

    return summary


def features(day: date) -> Summary:
    """Compute the customer features as of the end of ``day`` and export them."""
    as_of = end_of_day(day)
    with opened("features") as pipeline:
        export = pipeline.export_features(as_of)
        manifest = pipeline.objects.location(export.manifest_key)
    summary = {
        "as_of": as_of.isoformat(),
        "engine": export.engine,
        "customers": export.rows,
        "manifest": manifest,
    }
    log.info("step_done", step="features", **summary)

    return summary


def manifest_key(day: date) -> str:
    """The key of the manifest of the features exported for ``day``."""
    return f"{PREFIX}/{export_name(end_of_day(day))}.manifest.json"


def export(day: date) -> Summary:
    """Check the export of ``day``: its manifest, and each file's checksum.

    Reads every file back whole, as the object store port hands objects out;
    a feature table of tens of millions of customers needs that much memory
    here, as it did when it was exported.
    """
    key = manifest_key(day)
    with opened("export") as pipeline:
        objects = pipeline.objects
        try:
            manifest = json.loads(objects.get(key))
        except NotFoundError as exc:
            raise NotFoundError(
                f"no feature export for {day}: {objects.location(key)} is missing; "
                "run the features task for that date"
            ) from exc
        files: dict[str, str] = manifest["files"]
        for name, expected in files.items():
            try:
                actual = hashlib.sha256(objects.get(name)).hexdigest()
            except NotFoundError as exc:
                raise NotFoundError(
                    f"{objects.location(name)}, named by the manifest {key}, is "
                    "missing; run the features task for that date again"
                ) from exc
            if actual != expected:
                raise IntegrityError(
                    f"{objects.location(name)} has sha256 {actual}, but the "
                    f"manifest {key} records {expected}; run the features task "
                    "for that date again"
                )
        summary = {
            "as_of": manifest["as_of"],
            "rows": manifest["rows"],
            "files": sorted(objects.location(name) for name in files),
            "manifest": objects.location(key),
        }
    log.info("step_done", step="export", **summary)

    return summary


def report_key(load_id: str) -> str:
    """The object key of a quality report; Airflow's run ids hold ``:`` and ``+``."""
    return f"quality/{re.sub(r'[^A-Za-z0-9._-]+', '_', load_id)}.json"


def quality(load_id: str) -> Summary:
    """Check data quality, alert on tables over the threshold, store the report."""
    with opened("quality") as pipeline:
        report = pipeline.check_quality(load_id)
        key = report_key(load_id)
        pipeline.objects.put(key, quality_json(report), "application/json")
        where = pipeline.objects.location(key)
    summary = {
        "load_id": load_id,
        "threshold": str(report.threshold),
        "tables": len(report.metrics),
        "alerted": list(report.alerted),
        "report": where,
    }
    log.info("step_done", step="quality", **summary)

    return summary


def run_day(logical_date: datetime | None, run_after: datetime) -> date:
    """The day a DAG run works on: its logical date, else when it was due.

    Airflow 3 lets a manual run have no logical date.
    """
    return (logical_date or run_after).date()


def retryable(error: PikchaError) -> bool:
    """Whether running the task again later may succeed.

    A held lock is freed when its owner ends, and a transient outage passes;
    a wrong setting, a broken export or a missing object stay as they are.
    """
    return isinstance(error, LockedError) or (
        isinstance(error, InfrastructureError) and error.transient
    )


def in_airflow(
    step: Callable[P, Summary], *args: P.args, **kwargs: P.kwargs
) -> Summary:
    """Run a step in a task; an error a retry cannot fix fails it at once."""
    try:
        return step(*args, **kwargs)
    except PikchaError as exc:
        if retryable(exc):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
