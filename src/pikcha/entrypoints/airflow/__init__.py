"""Airflow entrypoints: the daily DAG and the plain functions its tasks run.

Importing this package imports neither Airflow nor any adapter.
"""

from __future__ import annotations

from pathlib import Path


def dags_folder() -> Path:
    """The folder of Pikcha's DAG files, for ``AIRFLOW__CORE__DAGS_FOLDER``."""
    return Path(__file__).resolve().parent / "dags"
