"""The composition root: adapters chosen by URL scheme and wired into a pipeline.

Only this module imports adapters, and only when a provider is called, so
importing it builds nothing and needs no optional extra.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dependency_injector import containers, providers

from pikcha.application.pipeline import Pipeline
from pikcha.application.project import ProjectorConfig
from pikcha.application.publish import AppendRetry
from pikcha.domain.errors import ConfigurationError
from pikcha.domain.masking import Masker
from pikcha.entrypoints.settings import (
    DEVELOPMENT_MASK_KEY,
    SCHEMES,
    Settings,
    local_path,
)
from pikcha.ports import (
    CrmStore,
    EventLog,
    FeatureEngine,
    Notifier,
    ObjectStore,
    Warehouse,
)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme


def make_event_log(settings: Settings) -> EventLog:
    url = settings.url("event_log")
    scheme = _scheme(url)
    if scheme == "memory":
        from pikcha.adapters.memory import InMemoryEventLog

        return InMemoryEventLog()
    if scheme == "sqlite":
        from pikcha.adapters.sqlite_event_log import SqliteEventLog

        return SqliteEventLog(local_path(url, "PIKCHA_EVENT_LOG"))
    if scheme == "kafka":
        from pikcha.adapters.kafka import KafkaEventLog, KafkaSecurity

        password = settings.kafka_sasl_password
        return KafkaEventLog(
            url,
            partitions=settings.kafka_partitions,
            replication=settings.kafka_replication,
            topic_prefix=settings.kafka_topic_prefix,
            session_timeout=settings.kafka_session_timeout_ms / 1000,
            delivery_timeout=settings.kafka_delivery_timeout_ms / 1000,
            idempotence=settings.kafka_idempotence,
            security=KafkaSecurity(
                protocol=settings.kafka_security_protocol,
                sasl_mechanism=settings.kafka_sasl_mechanism,
                sasl_username=settings.kafka_sasl_username,
                sasl_password=password.get_secret_value() if password else None,
                ssl_ca_location=settings.kafka_ssl_ca_location,
            ),
        )
    raise ConfigurationError(
        f"PIKCHA_EVENT_LOG={url}: the {scheme}:// event log is not available in this "
        "version; use sqlite:///var/events.db, kafka://host:9092 or memory://"
    )


def make_warehouse(settings: Settings) -> Warehouse:
    url = settings.url("warehouse")
    scheme = _scheme(url)
    if scheme == "memory":
        from pikcha.adapters.memory_warehouse import InMemoryWarehouse

        return InMemoryWarehouse()
    from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

    if scheme == "chdb":
        return ClickHouseWarehouse(f"chdb://{local_path(url, 'PIKCHA_WAREHOUSE')}")

    return ClickHouseWarehouse(url)


def make_crm(settings: Settings) -> CrmStore:
    url = settings.url("crm")
    scheme = _scheme(url)
    if scheme == "memory":
        from pikcha.adapters.memory import InMemoryCrmStore

        return InMemoryCrmStore()
    if scheme == "sqlite":
        from pikcha.adapters.sqlite_crm import SqliteCrmStore

        return SqliteCrmStore(local_path(url, "PIKCHA_CRM"))
    if scheme in ("mongodb", "mongodb+srv"):
        from pikcha.adapters.mongo_crm import MongoCrmStore

        return MongoCrmStore(url)
    raise ConfigurationError(
        f"PIKCHA_CRM={url}: the {scheme}:// CRM is not available in this version; "
        "use sqlite:///var/crm.db, mongodb://host:27017/pikcha or memory://"
    )


def make_objects(settings: Settings) -> ObjectStore:
    url = settings.url("objects")
    scheme = _scheme(url)
    if scheme == "memory":
        from pikcha.adapters.memory import InMemoryObjectStore

        return InMemoryObjectStore()
    if scheme == "file":
        from pikcha.adapters.local_objects import LocalObjectStore

        return LocalObjectStore(local_path(url, "PIKCHA_OBJECTS"))
    if scheme == "s3":
        from pikcha.adapters.s3_objects import S3ObjectStore

        return S3ObjectStore.from_url(url)
    raise ConfigurationError(
        f"PIKCHA_OBJECTS={url}: the {scheme}:// object store is not available in this "
        "version; use file:///var/objects, s3://BUCKET?endpoint=HOST:PORT or memory://"
    )


def make_notifier(settings: Settings) -> Notifier:
    url = settings.url("notifier")
    scheme = _scheme(url)
    if scheme == "memory":
        from pikcha.adapters.memory import InMemoryNotifier

        return InMemoryNotifier()
    if scheme == "log":
        from pikcha.adapters.log_notifier import LogNotifier

        return LogNotifier()
    if scheme == "telegram":
        from pikcha.adapters.telegram import TelegramNotifier

        token = settings.telegram_token
        secret = token.get_secret_value() if token else None
        return TelegramNotifier.from_url(url, secret)
    raise ConfigurationError(
        f"PIKCHA_NOTIFIER={url}: the {scheme}:// notifier is not available in this "
        "version; use log://, telegram://?chat_id=... or memory://"
    )


def make_features(settings: Settings, warehouse: Warehouse) -> FeatureEngine:
    choice = settings.features
    client: Any = None
    if choice != "reference":
        client = getattr(warehouse, "client", None)
    if choice == "auto":
        from pikcha.adapters.spark_features import spark_problem

        if client is None:
            choice = "reference"
        else:
            choice = "clickhouse" if spark_problem() else "spark"
    if choice == "reference":
        from pikcha.adapters.reference_features import ReferenceFeatureEngine

        return ReferenceFeatureEngine(warehouse)
    if client is None:
        raise ConfigurationError(
            f"PIKCHA_FEATURES={choice} needs a ClickHouse warehouse, but "
            f"PIKCHA_WAREHOUSE is {settings.url('warehouse')}; set "
            "PIKCHA_FEATURES=reference or PIKCHA_WAREHOUSE=chdb:///var/warehouse"
        )
    if choice == "clickhouse":
        from pikcha.adapters.clickhouse.features import ClickHouseFeatureEngine

        return ClickHouseFeatureEngine(client)
    from pikcha.adapters.spark_features import SparkFeatureEngine

    return SparkFeatureEngine(
        client, settings.spark_master, driver_memory=settings.spark_driver_memory
    )


def make_masker(settings: Settings) -> Masker:
    key = (
        settings.mask_key.get_secret_value()
        if settings.mask_key
        else DEVELOPMENT_MASK_KEY
    )

    return Masker(key.encode("utf-8"), settings.mask_key_id, settings.phone_region)


class Container(containers.DeclarativeContainer):
    """One provider per port; tests override them with in-memory adapters."""

    settings = providers.Singleton(Settings)
    event_log = providers.Singleton(make_event_log, settings)
    warehouse = providers.Singleton(make_warehouse, settings)
    crm = providers.Singleton(make_crm, settings)
    objects = providers.Singleton(make_objects, settings)
    notifier = providers.Singleton(make_notifier, settings)
    features = providers.Singleton(make_features, settings, warehouse)
    masker = providers.Singleton(make_masker, settings)
    pipeline = providers.Singleton(
        Pipeline,
        event_log=event_log,
        warehouse=warehouse,
        crm=crm,
        objects=objects,
        features=features,
        notifier=notifier,
        masker=masker,
        threshold=providers.Callable(lambda s: s.duplicate_threshold, settings),
        batch_size=providers.Callable(lambda s: s.batch_size, settings),
        projector=providers.Callable(
            lambda s: ProjectorConfig(batch_size=s.batch_size), settings
        ),
        retry=providers.Callable(
            lambda s: AppendRetry(max_wait=s.publish_max_wait), settings
        ),
    )


def build_pipeline(settings: Settings | None = None) -> Pipeline:
    """A pipeline wired from settings (the environment when none are given)."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    # Every URL is checked, and the ports that create nothing are built, before
    # any port that writes a file when built (the SQLite ones): a bad setting
    # leaves no trace behind. The warehouse opens only when first used.
    chosen: Settings = container.settings()
    for port in SCHEMES:
        chosen.url(port)
    container.masker()
    container.notifier()
    container.objects()
    container.features()
    for port in sorted(
        ("event_log", "crm"), key=lambda name: chosen.url(name).startswith("sqlite:")
    ):
        getattr(container, port)()
    pipeline: Pipeline = container.pipeline()

    return pipeline


def close_pipeline(pipeline: Pipeline) -> None:
    """Close every port that holds a connection or a lock."""
    for port in (pipeline.event_log, pipeline.warehouse, pipeline.crm):
        close = getattr(port, "close", None)
        if close is not None:
            close()
