"""No personal data leaves the CRM unmasked, and the masking key leaves nothing."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import phonenumbers

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse

MASK_KEY = "privacy-test-key-7f3a9c2e5b1d4a60"


def _personal_values(source: Path) -> set[str]:
    """Every email, phone (as written and as E.164 digits) and card in the source."""
    values: set[str] = set()
    for name in ("customers", "stores"):
        for line in (source / name / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            people = [record, record.get("manager") or {}]
            for person in people:
                for field in ("email", "phone", "loyalty_card_number"):
                    value = person.get(field)
                    if isinstance(value, str) and value.strip():
                        values.add(value.strip())
                        values.add(value.strip().lower())
                if isinstance(person.get("phone"), str):
                    number = phonenumbers.parse(person["phone"], "RU")
                    e164 = phonenumbers.format_number(
                        number, phonenumbers.PhoneNumberFormat.E164
                    )
                    values.add(e164)
                    values.add(e164.lstrip("+"))
                    values.add(e164[2:])  # the national significant number

    return values


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    env.update(
        PIKCHA_HOME=str(home),
        PIKCHA_MASK_KEY=MASK_KEY,
        PIKCHA_MASK_KEY_ID="k1",
        PIKCHA_FEATURES="clickhouse",
    )

    return subprocess.run(
        [sys.executable, "-m", "pikcha.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )


def _event_log_text(path: Path) -> str:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, value, headers FROM messages").fetchall()
    return "\n".join(
        f"{k} {bytes(v).decode('utf-8', 'replace')} {h}" for k, v, h in rows
    )


def test_no_personal_value_or_key_reaches_events_warehouse_exports_or_logs(
    tmp_path: Path,
) -> None:
    """After ``pikcha run``, scan every event, table, object and log line."""
    home = tmp_path / "var"
    source = tmp_path / "source"
    generated = _run(
        home,
        "generate",
        "--out",
        str(source),
        "--format",
        "jsonl",
        "--now",
        "2025-09-30T12:00:00",
        "--purchases",
        "500",
    )
    run = _run(home, "run", "--source", str(source), "--as-of", "2025-09-30")
    personal = _personal_values(source)
    assert len(personal) > 100

    warehouse = ClickHouseWarehouse(f"chdb://{(home / 'warehouse').resolve()}")
    try:
        tables = json.dumps(warehouse.dump(), default=str, ensure_ascii=False)
    finally:
        warehouse.close()
    objects = "\n".join(
        path.read_bytes().decode("utf-8", "replace")
        for path in (home / "objects").rglob("*")
        if path.is_file()
    )
    grafana = Path(__file__).parents[2] / "grafana"
    dashboards = (
        "\n".join(p.read_text() for p in grafana.rglob("*") if p.is_file())
        if grafana.is_dir()
        else ""
    )
    places = {
        "events": _event_log_text(home / "events.db"),
        "warehouse": tables,
        "objects": objects,
        "grafana": dashboards,
        "logs": generated.stdout + generated.stderr + run.stdout + run.stderr,
    }

    for place, text in places.items():
        leaks = sorted(value for value in personal if value in text)
        assert not leaks, f"{place} holds {leaks[:5]}"
        assert MASK_KEY not in text, place
    crm = (home / "crm.db").read_bytes().decode("utf-8", "replace")
    assert MASK_KEY not in crm
    assert re.search(r"email_[0-9a-f]{64}", places["events"])
