"""Settings: one URL per port, read from ``PIKCHA_*`` variables or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pikcha.domain.errors import ConfigurationError

# A development key, used only when PIKCHA_MASK_KEY is unset and the data is
# generated; tokens made with it are not secret. The CLI says so on stderr.
DEVELOPMENT_MASK_KEY = "pikcha-development-key-not-secret"

SCHEMES = {
    "event_log": ("sqlite", "memory", "kafka"),
    "warehouse": ("chdb", "http", "https", "memory"),
    "crm": ("sqlite", "memory", "mongodb", "mongodb+srv"),
    "objects": ("file", "memory", "s3"),
    "notifier": ("log", "memory", "telegram"),
}


class Settings(BaseSettings):
    """Where each port lives and how the pipeline behaves."""

    model_config = SettingsConfigDict(
        env_prefix="PIKCHA_", env_file=".env", extra="ignore", frozen=True
    )

    home: Path = Field(Path("var"), description="Folder of the embedded defaults.")
    event_log: str = ""
    warehouse: str = ""
    crm: str = ""
    objects: str = ""
    notifier: str = "log://"
    features: Literal["auto", "reference", "clickhouse", "spark"] = Field(
        "auto",
        description="Feature engine; auto is spark when Java and pyspark are "
        "present, else clickhouse (reference on a warehouse that is not ClickHouse).",
    )
    mask_key: SecretStr | None = None
    mask_key_id: str = "dev"
    phone_region: str = "RU"
    telegram_token: SecretStr | None = None
    duplicate_threshold: float = Field(0.5, ge=0, le=1)
    batch_size: int = Field(5000, ge=1)
    spark_master: str = Field(
        "local[*]", description="Spark master URL: local[*], spark://host:7077, ..."
    )
    spark_driver_memory: str | None = Field(
        None, description="spark.driver.memory, e.g. 2g; unset leaves Spark's own."
    )
    kafka_partitions: int = Field(
        6, ge=1, description="Partitions of each topic Pikcha creates on Kafka."
    )
    kafka_replication: int = Field(
        1, ge=1, description="Replication factor of each topic Pikcha creates."
    )
    kafka_topic_prefix: str = Field(
        "pikcha.", description="Prefix of Pikcha's topic and consumer group names."
    )
    kafka_session_timeout_ms: int = Field(
        6000,
        ge=500,
        description="Consumer session timeout; a dead member's "
        "partitions move after it, and a new member joins in about half of it.",
    )
    kafka_delivery_timeout_ms: int = Field(
        60_000,
        ge=1000,
        description="How long one append waits for the brokers to acknowledge it.",
    )
    kafka_idempotence: bool = Field(
        True,
        description="Idempotent producer (no duplicates on retry); turn it off "
        "only for a broker whose idempotence does not survive a crash.",
    )
    publish_max_wait: float = Field(
        60.0,
        ge=0,
        description="Seconds publishing keeps retrying an event log that is down "
        "before it gives up.",
    )
    kafka_security_protocol: (
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None
    ) = Field(None, description="Kafka security.protocol (PLAINTEXT when unset).")
    kafka_sasl_mechanism: str | None = Field(
        None, description="Kafka sasl.mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512."
    )
    kafka_sasl_username: str | None = Field(None, description="Kafka SASL user.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="Kafka SASL password (a secret: never logged)."
    )
    kafka_ssl_ca_location: str | None = Field(
        None, description="CA certificate file to verify the Kafka brokers with."
    )

    @field_validator("event_log", "warehouse", "crm", "objects", "notifier")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def url(self, port: str) -> str:
        """The URL of a port, the embedded default under ``home`` when unset."""
        value: str = getattr(self, port)
        if not value:
            home = self.home
            defaults = {
                "event_log": f"sqlite:///{home / 'events.db'}",
                "warehouse": f"chdb:///{home / 'warehouse'}",
                "crm": f"sqlite:///{home / 'crm.db'}",
                "objects": f"file:///{home / 'objects'}",
                "notifier": "log://",
            }
            value = defaults[port]
        scheme = urlsplit(value).scheme
        if scheme not in SCHEMES[port]:
            known = ", ".join(f"{s}://" for s in SCHEMES[port])
            raise ConfigurationError(
                f"PIKCHA_{port.upper()}={redact_url(value)!s} has an unknown scheme "
                f"{scheme + '://' if scheme else '(none)'}; use one of {known}"
            )

        return value


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")

    return parts._replace(netloc=netloc).geturl()


def local_path(url: str, setting: str) -> Path:
    """The absolute filesystem path of a local URL.

    As in SQLAlchemy, ``scheme:///var/x`` is the relative path ``var/x`` and
    ``scheme:////srv/x`` the absolute path ``/srv/x``.
    """
    parts = urlsplit(url)
    if parts.netloc or len(parts.path) < 2:
        raise ConfigurationError(
            f"{setting}={url} does not name a local path; write "
            "scheme:///relative/path or scheme:////absolute/path"
        )

    return Path(parts.path[1:]).resolve()
