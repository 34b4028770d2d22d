"""The daily Pikcha pipeline: publish, project, marts, features, export, quality.

The scheduler parses this file often, so it imports Airflow and the standard
library only; each task imports Pikcha when it runs. The schedule is a cron
expression from ``PIKCHA_DAG_SCHEDULE`` (read when the file is parsed),
03:00 every day by default; the features are computed as of the end of the
run's logical date. The steps' settings are read when each task runs (see
:mod:`pikcha.entrypoints.airflow.tasks`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

SCHEDULE = os.environ.get("PIKCHA_DAG_SCHEDULE", "0 3 * * *")

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "pikcha",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    # A multiplier since Airflow 3: True would count as 1, a constant delay.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}


@dag(
    dag_id="pikcha_etl_daily",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    # The steps share the CRM's publish marks and, embedded, one chDB path.
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["pikcha"],
    doc_md=__doc__,
)
def pikcha_etl_daily() -> None:
    # Each task returns its summary as one XCom; Airflow would otherwise infer
    # one XCom per key from the dict return annotation.
    @task(task_id="publish", multiple_outputs=False)
    def publish() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        return tasks.in_airflow(tasks.publish)

    @task(task_id="project", multiple_outputs=False)
    def project() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        return tasks.in_airflow(tasks.project)

    @task(task_id="marts", multiple_outputs=False)
    def marts() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        return tasks.in_airflow(tasks.marts)

    @task(task_id="features", multiple_outputs=False)
    def features() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        context = get_current_context()
        day = tasks.run_day(context.get("logical_date"), context["dag_run"].run_after)

        return tasks.in_airflow(tasks.features, day)

    @task(task_id="export", multiple_outputs=False)
    def export() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        context = get_current_context()
        day = tasks.run_day(context.get("logical_date"), context["dag_run"].run_after)

        return tasks.in_airflow(tasks.export, day)

    @task(task_id="quality", multiple_outputs=False)
    def quality() -> dict[str, Any]:
        from pikcha.entrypoints.airflow import tasks

        return tasks.in_airflow(tasks.quality, get_current_context()["run_id"])

    publish() >> project() >> marts() >> features() >> export() >> quality()


dag_object = pikcha_etl_daily()
