"""The files Airflow's scheduler parses; point its folder setting here."""
