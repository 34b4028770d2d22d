# Airflow with Pikcha installed, for infra/docker-compose.yml. The build context
# is the repository root; only the folders copied below are sent with BuildKit.
FROM apache/airflow:3.3.2

COPY --chown=airflow:0 pyproject.toml README.md /opt/pikcha/
COPY --chown=airflow:0 src /opt/pikcha/src
# The package finds its migrations through a link into this folder.
COPY --chown=airflow:0 infra/clickhouse /opt/pikcha/infra/clickhouse

# Asking for the image's own Airflow version keeps pip from replacing it.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
    -e "/opt/pikcha[airflow]"
