"""The ``pikcha`` command line.

Every command reads its settings from ``PIKCHA_*`` variables (or ``.env``).
A :class:`PikchaError` ends the command with one line on stderr and exit
code 2; only a bug shows a traceback.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog
from dependency_injector import providers
from pydantic import ValidationError

from pikcha.application.pipeline import (
    Pipeline,
    RunSummary,
    end_of_day,
    new_event_id,
    timed,
    utc_now,
)
from pikcha.domain.errors import ConfigurationError, PikchaError
from pikcha.entrypoints.container import Container, build_pipeline, close_pipeline
from pikcha.entrypoints.logging import SECRET_WORDS, configure_logging
from pikcha.entrypoints.settings import SCHEMES, Settings

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger("pikcha.cli")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = f"PIKCHA_{field.upper()}" if field else "settings"
        secret = any(word in field for word in SECRET_WORDS)
        value = "" if secret or not field else f"={first['input']!r}"
        raise ConfigurationError(
            f"{name}{value}: {first['msg']}; fix it in the environment or .env"
        ) from None


def handle_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PikchaError as exc:
            click.echo(f"pikcha: error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def announce(settings: Settings) -> None:
    """Configure logging with the secrets to redact."""
    secrets = [
        s.get_secret_value()
        for s in (
            settings.mask_key,
            settings.telegram_token,
            settings.kafka_sasl_password,
        )
        if s
    ]
    # Keys read straight from the environment by the S3 adapter.
    secrets += [
        os.environ[name]
        for name in ("AWS_SECRET_ACCESS_KEY", "PIKCHA_S3_SECRET_KEY")
        if os.environ.get(name)
    ]
    configure_logging(secrets)


def warn_unsafe(settings: Settings) -> None:
    """Say what is unsafe, once the ports are built: an error stays one line."""
    if settings.mask_key is None:
        click.echo(
            "pikcha: note: PIKCHA_MASK_KEY is unset; masking with the development "
            "key, fit only for generated data",
            err=True,
        )


@contextmanager
def opened(settings: Settings) -> Iterator[Pipeline]:
    announce(settings)
    pipeline = build_pipeline(settings)
    warn_unsafe(settings)
    try:
        yield pipeline
    finally:
        close_pipeline(pipeline)


@contextmanager
def unwritable(flag: str, folder: Path) -> Iterator[None]:
    """Turn a failure to write under a folder given by a flag into one line."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ConfigurationError(
            f"cannot write under {flag} {folder}: {exc.strerror or exc}{where}; "
            f"give {flag} a folder that can be written"
        ) from exc


class Progress:
    """A progress bar on a terminal, periodic log events elsewhere."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.progress import Progress as Bar

            self._bar = Bar(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def __call__(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
        elif time.monotonic() - self.last > 5:
            self.last = time.monotonic()
            log.info("progress", step=self.label, done=done, total=self.total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def parse_day(value: str | None, flag: str = "--as-of") -> datetime | None:
    if value is None:
        return None
    try:
        return end_of_day(date.fromisoformat(value))
    except ValueError:
        raise ConfigurationError(
            f"{flag} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-08-01"
        ) from None


def print_summary(summary: RunSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pikcha run {summary.run_id}", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("counts")
    for stage in summary.stages:
        counts = ", ".join(f"{key} {value}" for key, value in stage.counts.items())
        table.add_row(stage.name, f"{stage.seconds:.2f}", counts)
    table.add_row("total", f"{summary.seconds:.2f}", "")
    console = Console(width=120)
    console.print(table)
    for name, where in summary.outputs.items():
        console.print(f"{name}: {where}", soft_wrap=True)


anomaly_options = [
    click.option(
        "--repeated",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of records sent twice.",
    ),
    click.option(
        "--nulls",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of records with a required field set to null.",
    ),
    click.option(
        "--empty-strings",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of records with an empty text or id.",
    ),
    click.option(
        "--future-dates",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of records dated in the future.",
    ),
    click.option(
        "--negative-prices",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of records with a negative price.",
    ),
    click.option(
        "--broken-totals",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Share of purchases whose total is wrong.",
    ),
]


def with_anomalies(command: F) -> F:
    for option in reversed(anomaly_options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pikcha")
def main() -> None:
    """Pikcha: the analytics pipeline of the shop chain Пикча.

    Settings come from PIKCHA_* variables or a .env file; with none set,
    everything runs embedded under ./var (SQLite, chDB, a local folder).
    """


def generator_config(
    seed: int, purchases: int | None, now: str | None, **shares: float
) -> Any:
    from pikcha.application.generate import GeneratorConfig

    # Midnight, not the current second: the same seed gives the same files all
    # day; --now makes them the same on any day.
    moment = datetime.combine(date.today(), datetime.min.time())
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            raise ConfigurationError(
                f"--now {now!r} is not a date-time; write it as 2025-08-01T12:00:00"
            ) from None
    options: dict[str, Any] = dict(shares)
    if purchases is not None:
        options["purchases"] = purchases

    return GeneratorConfig(seed=seed, now=moment, **options)


@main.command()
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Same seed, same files."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to write <entity>s/ into.",
)
@click.option(
    "--purchases",
    type=click.IntRange(0),
    default=None,
    help="Number of purchases (default: the shop's volumes).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["files", "jsonl"]),
    default=None,
    help="One file per record, or JSON Lines (default: files up to "
    "100,000 purchases, JSON Lines above).",
)
@click.option(
    "--now",
    default=None,
    help="The generator's 'now' (ISO date-time; default: today at 00:00).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Publish to the event log until interrupted instead of writing files.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --follow: records per second (default: as fast as possible).",
)
@with_anomalies
@handle_errors
def generate(
    seed: int,
    out: Path | None,
    purchases: int | None,
    fmt: str | None,
    now: str | None,
    follow: bool,
    rate: float | None,
    **shares: float,
) -> None:
    """Generate the shop's data in the source layout, or publish it live."""
    from pikcha.application.generate import write_files, write_jsonl

    if follow:
        generate_live(seed, purchases, now, rate, **shares)
        return
    if out is None:
        raise ConfigurationError("generate needs --out DIR, or --follow to publish")
    config = generator_config(seed, purchases, now, **shares)
    fmt = fmt or ("jsonl" if config.purchases > 100_000 else "files")
    writer = write_jsonl if fmt == "jsonl" else write_files
    with unwritable("--out", out), Progress("generate", config.purchases) as bar:
        report = writer(config, out, progress=bar)
    parts = ", ".join(f"{entity.value} {n}" for entity, n in report.records.items())
    click.echo(f"generated {report.total} records ({parts}) into {out}")


def generate_live(
    seed: int,
    purchases: int | None,
    now: str | None,
    rate: float | None,
    **shares: float,
) -> None:
    from pikcha.application.generate import iter_records
    from pikcha.application.publish import (
        AppendRetry,
        EnvelopeFactory,
        publish_records,
    )

    config = generator_config(seed, purchases or 10**12, now, **shares)
    settings = load_settings()
    for port in SCHEMES:
        settings.url(port)
    announce(settings)
    # Only the event log is opened: the warehouse stays free for a projector.
    container = Container()
    container.settings.override(providers.Object(settings))
    masker = container.masker()
    log_port = container.event_log()
    warn_unsafe(settings)
    stop = stop_on_signals()
    try:
        factory = EnvelopeFactory(masker, new_event_id, utc_now, source="generator")
        with Progress("publish") as progress:
            report = publish_records(
                iter_records(config),
                log_port,
                factory,
                rate=rate,
                stop=stop.is_set,
                progress=progress,
                retry=AppendRetry(max_wait=settings.publish_max_wait),
            )
    finally:
        log_port.close()
    click.echo(f"published {report.total} events")


def stop_on_signals() -> Any:
    """An event set by SIGINT or SIGTERM, so long work ends cleanly."""
    import threading

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())

    return stop


@main.command()
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@handle_errors
def load(directory: Path) -> None:
    """Load source files (DIR/<entity>s/*.json or *.jsonl) into the CRM."""
    with opened(load_settings()) as pipeline, Progress("load") as progress:
        report = pipeline.load(directory, progress)
    for where, reason in report.problems:
        click.echo(f"skipped {where}: {reason}", err=True)
    click.echo(
        f"loaded {report.loaded} records from {report.files} files "
        f"({report.upserts.inserted} new, {report.upserts.updated} changed, "
        f"{report.upserts.unchanged} unchanged, {report.resent} re-sent); "
        f"{len(report.problems)} skipped"
    )


@main.command()
@click.option("--resend", is_flag=True, help="Publish every document again.")
@handle_errors
def publish(resend: bool) -> None:
    """Publish the CRM's changes as masked events."""
    with opened(load_settings()) as pipeline, Progress("publish") as progress:
        report = pipeline.publish(resend=resend, progress=progress)
    parts = ", ".join(f"{name} {count}" for name, count in report.published.items())
    click.echo(f"published {report.total} events ({parts})")


# A mart rebuild is followed by at least ten times its own duration of
# projection alone: a soak at 5,000 events a second fell behind at four.
MART_SPACING = 10.0


@main.command()
@click.option("--follow", is_flag=True, help="Keep projecting until interrupted.")
@click.option(
    "--marts-every",
    type=click.FloatRange(min=0),
    # The dashboard refreshes every minute: fresher marts would go unseen.
    default=60.0,
    show_default=True,
    help="With --follow: seconds between mart rebuilds, at least; a rebuild "
    "that takes long spaces the next so that marts take at most a tenth of the time.",
)
@handle_errors
def stream(follow: bool, marts_every: float) -> None:
    """Project events from the event log into the warehouse."""
    with opened(load_settings()) as pipeline:
        due = time.monotonic() + marts_every

        def on_batch(report: Any) -> None:
            nonlocal due
            log.info(
                "batch_projected",
                read=report.read,
                new=report.new,
                dead_letters=report.dead_lettered,
            )
            if follow and time.monotonic() >= due:
                started = time.monotonic()
                pipeline.build_marts()
                took = time.monotonic() - started
                # Marts are rebuilt whole, so a rebuild grows with the data;
                # spacing them by their cost keeps projection ahead of the log.
                wait = max(marts_every, MART_SPACING * took)
                due = time.monotonic() + wait
                log.info("marts_built", seconds=round(took, 3), next_in=round(wait, 1))

        projector = pipeline.make_projector(on_batch=on_batch)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: projector.stop.set())
        report = projector.run(follow=follow)
        pipeline.build_marts()
    click.echo(
        f"projected {report.projected} events ({report.new} new), "
        f"{report.dead_lettered} dead-lettered, in {report.batches} batches"
    )


@main.command()
@click.option(
    "--as-of", "as_of", default=None, help="Date of the features (YYYY-MM-DD)."
)
@click.option(
    "--engine",
    type=click.Choice(["reference", "clickhouse", "spark"]),
    default=None,
    help="Feature engine (default: PIKCHA_FEATURES).",
)
@handle_errors
def features(as_of: str | None, engine: str | None) -> None:
    """Compute the thirty customer features and export them."""
    moment = parse_day(as_of)
    settings = load_settings()
    if engine:
        settings = settings.model_copy(update={"features": engine})
    with opened(settings) as pipeline:
        export = pipeline.export_features(moment)
        where = pipeline.objects.location(export.csv_key)
    click.echo(f"{export.rows} customers by {export.engine} -> {where}")


@main.command()
@handle_errors
def check() -> None:
    """Check data quality and alert on tables over the duplicate threshold."""
    with opened(load_settings()) as pipeline:
        report = pipeline.check_quality()
    for metrics in report.metrics:
        click.echo(
            f"{metrics.table}: {metrics.rows} rows, {metrics.distinct} distinct, "
            f"duplicate share {metrics.duplicate_share:.1%}, "
            f"{metrics.rejected_total} rejected"
        )
    click.echo(f"{len(report.alerted)} alerts")


@main.command()
@handle_errors
def replay() -> None:
    """Drop the warehouse and rebuild it from the event log."""
    with opened(load_settings()) as pipeline:
        report = pipeline.replay()
    click.echo(f"replayed {report.read} events ({report.dead_lettered} dead-lettered)")


@main.command()
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Load this folder instead of generating data.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--purchases", type=click.IntRange(0), default=None)
@click.option("--now", default=None, help="The generator's 'now' (ISO date-time).")
@click.option(
    "--as-of", "as_of", default=None, help="Date of the features (YYYY-MM-DD)."
)
@with_anomalies
@handle_errors
def run(
    source: Path | None,
    seed: int,
    purchases: int | None,
    now: str | None,
    as_of: str | None,
    **shares: float,
) -> None:
    """Generate, load, publish, project, build marts, export features, check."""
    moment = parse_day(as_of)
    settings = load_settings()
    config = None if source else generator_config(seed, purchases, now, **shares)
    folder = source or settings.home / "source"

    def generate_step(summary: RunSummary) -> None:
        if config is None:
            return
        from pikcha.application.generate import write_jsonl

        with timed(summary, "generate") as stage:
            report = write_jsonl(config, folder)
            stage.counts = {"records": report.total}

    with opened(settings) as pipeline:
        summary = pipeline.run(folder, moment, before=generate_step)
    print_summary(summary)


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("grafana"),
    show_default=True,
    help="Folder to write provisioning/ and dashboards/ into.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Duplicate share above which the alert fires.",
)
@handle_errors
def grafana(out: Path, threshold: float) -> None:
    """Write Grafana's data source, dashboard and alert files, generated in code."""
    try:
        from pikcha.entrypoints import grafana as files
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("grafana_foundation_sdk"):
            raise
        raise ConfigurationError(
            "pikcha grafana needs grafana-foundation-sdk, which is not installed; "
            "install it with pip install 'pikcha[dev]'"
        ) from exc
    with unwritable("--out", out):
        written = files.write(out, threshold)
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@handle_errors
def report() -> None:
    """Write the HTML report (sales, customers, quality) to the object store."""
    from pikcha.application.report import REPORT_KEY, write_report

    with opened(load_settings()) as pipeline:
        pipeline.warehouse.migrate()
        write_report(
            pipeline.warehouse,
            pipeline.objects,
            pipeline.wall_clock(),
            pipeline.threshold,
        )
        where = pipeline.objects.location(REPORT_KEY)
    click.echo(f"report -> {where}")


if __name__ == "__main__":
    main()
