"""Settings, the composition root, the CLI and the Airflow tasks."""
