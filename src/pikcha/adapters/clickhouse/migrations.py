"""Versioned SQL migrations: where they live, how they split, what they create."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pikcha.domain.errors import ConfigurationError

_CREATED = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?[`\"]?(\w+)[`\"]?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    checksum: str
    statements: tuple[str, ...]


def locate(explicit: Path | None = None) -> Path:
    """The given directory, else the repository's, else the packaged copy."""
    here = Path(__file__).resolve()
    candidates = (
        [explicit]
        if explicit is not None
        else [here.parents[4] / "infra" / "clickhouse", here.parent / "migrations"]
    )
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.sql")):
            return candidate
    tried = ", ".join(str(path) for path in candidates)
    raise ConfigurationError(
        f"no ClickHouse migrations (*.sql) found in {tried}; "
        "pass migrations_dir or reinstall pikcha"
    )


def load(directory: Path) -> list[Migration]:
    """Every ``*.sql`` file of the directory in name order."""
    migrations = []
    for path in sorted(directory.glob("*.sql"), key=lambda p: p.name):
        data = path.read_bytes()
        migrations.append(
            Migration(
                name=path.name,
                checksum=hashlib.sha256(data).hexdigest(),
                statements=tuple(split(data.decode("utf-8"))),
            )
        )

    return migrations


def created(migrations: list[Migration]) -> list[tuple[str, str]]:
    """``(kind, name)`` of each table or view the migrations create, in order."""
    objects = []
    for migration in migrations:
        for statement in migration.statements:
            match = _CREATED.match(statement)
            if match:
                kind = "VIEW" if "VIEW" in match.group(1).upper() else "TABLE"
                objects.append((kind, match.group(2)))

    return objects


def split(sql: str) -> list[str]:
    """Statements of a script: split on ``;`` outside comments, strings and
    quoted names; comments are dropped."""
    statements: list[str] = []
    current: list[str] = []
    i, size = 0, len(sql)
    while i < size:
        char = sql[i]
        pair = sql[i : i + 2]
        if pair == "--":
            end = sql.find("\n", i)
            i = size if end < 0 else end
            continue
        if pair == "/*":
            end = sql.find("*/", i + 2)
            i = size if end < 0 else end + 2
            current.append(" ")
            continue
        if char in "'\"`":
            end = _quoted_end(sql, i)
            current.append(sql[i:end])
            i = end
            continue
        if char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    statements.append("".join(current))

    return [text.strip() for text in statements if text.strip()]


def _quoted_end(sql: str, start: int) -> int:
    quote = sql[start]
    i = start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
            continue
        if sql[i] == quote:
            if sql[i + 1 : i + 2] == quote:
                i += 2
                continue
            return i + 1
        i += 1

    return len(sql)
