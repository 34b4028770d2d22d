"""Load the shop's source files into the CRM.

The source layout is ``DIR/<entity>s/*.json`` (one record per file) or
``*.jsonl`` (one record per line), as the generator and the shop's own export
write it. A file or line that cannot be read or does not have the record's
shape is reported with its reason; everything else is loaded. The same id met
again within one load is a re-sent record: the CRM is told to send it again.

JSON Lines are split at line feeds only (a carriage return before one is
white space): other Unicode line breaks are text within a record, and a line of
JSON white space is no record. What is loaded must travel on as UTF-8 JSON, so
NaN, Infinity, numbers beyond the range of a double and lone surrogates
(escaped as backslash-u D800 to DFFF) are reported instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pikcha.domain.entities import Entity, parse_record, record_id
from pikcha.domain.errors import ConfigurationError, RecordError
from pikcha.ports.crm import CrmStore, UpsertReport

ENTITY_ORDER = (Entity.STORE, Entity.PRODUCT, Entity.CUSTOMER, Entity.PURCHASE)


@dataclass
class LoadReport:
    files: int = 0
    records: dict[str, int] = field(default_factory=dict)
    upserts: UpsertReport = field(default_factory=UpsertReport)
    resent: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    """``(where, reason)`` for every file or record that was not loaded."""

    @property
    def loaded(self) -> int:
        return self.upserts.accepted


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, decoded value)`` per record; raises on an unreadable file."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip(_JSON_SPACE):
                yield f"{path}:{number}", _decode(line)
    else:
        yield str(path), _decode(text)


_JSON_SPACE = " \t\r\n"


def _decode(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return _Unreadable(f"not valid JSON ({exc})")
    except RecursionError:
        return _Unreadable("not readable: JSON nested too deeply")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def source_files(directory: Path, entity: Entity) -> list[Path]:
    folder = directory / entity.directory
    if not folder.is_dir():
        return []

    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in {".json", ".jsonl"}
    )


def load_directory(
    directory: Path,
    crm: CrmStore,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load every entity folder found under ``directory`` into the CRM."""
    if not directory.is_dir():
        raise ConfigurationError(
            f"source directory {directory} does not exist; "
            "give the folder that holds stores/, products/, customers/, purchases/"
        )
    report = LoadReport()
    for entity in ENTITY_ORDER:
        _load_entity(directory, entity, crm, batch_size, report, progress)
    if report.files == 0:
        raise ConfigurationError(
            f"no source files under {directory}; expected "
            "<entity>s/*.json or <entity>s/*.jsonl (stores, products, customers, "
            "purchases)"
        )

    return report


def _fingerprint(value: Any) -> int:
    """The hash of the value's canonical UTF-8 form; raises ValueError when it
    has none (a number beyond a double's range, a lone surrogate)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)

    return hash(text.encode("utf-8"))


def _load_entity(
    directory: Path,
    entity: Entity,
    crm: CrmStore,
    batch_size: int,
    report: LoadReport,
    progress: Callable[[int], None] | None,
) -> None:
    # The same id met again in one load: identical content was sent twice and
    # the CRM is asked to send it on again; changed content is an update.
    # TODO: ``seen`` grows with the ids of one entity (about 150 bytes each);
    # a load of tens of millions of records wants an on-disk set.
    batch: dict[str, dict[str, Any]] = {}
    resend: list[str] = []
    seen: dict[str, int] = {}
    count = 0

    def flush() -> None:
        if batch:
            upserted = crm.upsert(entity, list(batch.values()))
            report.upserts = report.upserts + upserted
            report.problems.extend(upserted.failed)
            batch.clear()
        if resend:
            report.resent += crm.resend(entity, resend)
            resend.clear()

    for path in source_files(directory, entity):
        report.files += 1
        try:
            records = list(_records(path))
        except (OSError, UnicodeDecodeError) as exc:
            report.problems.append((str(path), f"cannot be read ({exc})"))
            continue
        for where, value in records:
            if isinstance(value, _Unreadable):
                report.problems.append((where, value.reason))
                continue
            try:
                parse_record(entity, value, where)
            except RecordError as exc:
                report.problems.append((where, f"{exc.field}: {exc.problem}"))
                continue
            try:
                fingerprint = _fingerprint(value)
            except (ValueError, RecursionError) as exc:
                report.problems.append((where, f"cannot be carried as JSON ({exc})"))
                continue
            rid = record_id(entity, value)
            assert rid is not None
            if rid in batch:
                flush()
            if seen.get(rid) == fingerprint:
                resend.append(rid)
            else:
                batch[rid] = value
            seen[rid] = fingerprint
            count += 1
            if len(batch) + len(resend) >= batch_size:
                flush()
                if progress:
                    progress(count)
    flush()
    report.records[entity.value] = count
