"""Grafana's generated files: they parse, decode, match the generator, and their
SQL runs on chDB over generated data, the alert firing only above 50%."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from pikcha.adapters.clickhouse.tables import LAYOUTS
from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.application.generate import GeneratorConfig, write_jsonl
from pikcha.application.pipeline import Pipeline
from pikcha.entrypoints import grafana
from pikcha.entrypoints.cli import main
from pikcha.testing import memory_pipeline

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pikcha.json"
ALERTING = GRAFANA / "provisioning" / "alerting" / "pikcha.yaml"
YAML_FILES = sorted((GRAFANA / "provisioning").rglob("*.yaml"))
NOW = datetime.now().replace(microsecond=0)


def load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is not installed; pip install pyyaml"
    )

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dashboard_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    return loaded


def with_macros(sql: str, start: datetime, end: datetime) -> str:
    """The SQL as the ClickHouse plugin sends it for the range [start, end]."""
    first, last = int(start.timestamp()), int(end.timestamp())
    seconds = {"from": f"toDateTime({first})", "to": f"toDateTime({last})"}
    days = {"from": f"toDate('{start:%Y-%m-%d}')", "to": f"toDate('{end:%Y-%m-%d}')"}

    def between(bounds: dict[str, str]) -> Any:
        return lambda m: f"{m[1]} >= {bounds['from']} AND {m[1]} <= {bounds['to']}"

    sql = re.sub(r"\$__timeFilter\((\w+)\)", between(seconds), sql)
    sql = re.sub(r"\$__dateFilter\((\w+)\)", between(days), sql)
    sql = re.sub(
        r"\$__timeInterval\((\w+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL 3600 second)",
        sql,
    )
    sql = sql.replace("$__fromTime", seconds["from"]).replace(
        "$__toTime", seconds["to"]
    )
    sql = sql.replace("$__interval_s", "3600")
    assert "$__" not in sql, f"a macro the test does not know is left in {sql!r}"

    return sql


@dataclass
class AlertRun:
    """What each rule's query and threshold made of one data set."""

    shares: dict[str, float]
    firing: dict[str, bool]


def evaluate_rules(warehouse: ClickHouseWarehouse, group: dict[str, Any]) -> AlertRun:
    """Run each rule as Grafana would: query A, reduce B (last), threshold C."""
    shares, firing = {}, {}
    for rule in group["rules"]:
        steps = {step["refId"]: step["model"] for step in rule["data"]}
        rows = warehouse.client.query(steps["A"]["rawSql"]).result_rows
        assert steps["B"]["type"] == "reduce" and steps["B"]["reducer"] == "last"
        value = float(rows[-1][0])
        (condition,) = steps["C"]["conditions"]
        assert condition["evaluator"]["type"] == "gt"
        table = rule["labels"]["table"]
        shares[table] = value
        firing[table] = value > condition["evaluator"]["params"][0]

    return AlertRun(shares, firing)


@dataclass
class Fixture:
    warehouse: ClickHouseWarehouse
    quiet: AlertRun
    loud: AlertRun


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """One warehouse (chDB opens one path per process), two data sets in turn:
    about 30% repeated records, then every record sent once more (over 50%)."""
    root = tmp_path_factory.mktemp("grafana")
    config = GeneratorConfig(seed=5, now=NOW, purchases=400, repeated=0.43)
    write_jsonl(config, root / "source")
    group = load_yaml(ALERTING)["groups"][0]
    warehouse = ClickHouseWarehouse(f"chdb://{root / 'warehouse'}")
    try:
        pipeline: Pipeline = memory_pipeline(warehouse=warehouse)
        pipeline.load(root / "source")
        pipeline.publish()
        pipeline.project()
        pipeline.build_marts()
        pipeline.check_quality()
        quiet = evaluate_rules(warehouse, group)

        pipeline.publish(resend=True)
        pipeline.project()
        pipeline.build_marts()
        pipeline.check_quality()
        loud = evaluate_rules(warehouse, group)

        yield Fixture(warehouse, quiet, loud)
    finally:
        warehouse.close()


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = dashboard_json()["panels"]

    return found


def test_the_committed_files_are_what_pikcha_grafana_writes_now(tmp_path: Path) -> None:
    """``pikcha grafana`` reproduces grafana/ byte for byte: nothing drifts."""
    result = CliRunner().invoke(main, ["grafana", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    written = sorted(
        p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
    )
    assert written == sorted(Path(name) for name in grafana.render())
    for relative in written:
        assert (GRAFANA / relative).read_bytes() == (tmp_path / relative).read_bytes()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_provisioning_file_parses_as_yaml_to_what_was_meant(path: Path) -> None:
    """The hand-rolled YAML writer round-trips through a YAML parser."""
    meant = {
        "clickhouse.yaml": grafana.datasource_provisioning(),
        "pikcha.yaml": (
            grafana.alerting_provisioning()
            if path.parent.name == "alerting"
            else grafana.dashboards_provisioning()
        ),
    }[path.name]

    assert load_yaml(path) == meant


def test_the_yaml_writer_quotes_what_yaml_would_misread() -> None:
    """Strings that look like numbers, booleans or nulls stay strings."""
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is not installed; pip install pyyaml"
    )
    tricky = {"a": ["yes", "0x10", "null", "1e3", "- x", "#c"], "b: c": {}, "d": []}

    assert yaml.safe_load(grafana.to_yaml(tricky)) == tricky


def test_the_data_source_reads_its_connection_from_the_environment() -> None:
    """Host, port, user, password and database are ${PIKCHA_CLICKHOUSE_*}."""
    (source,) = grafana.datasource_provisioning()["datasources"]
    settings = {**source["jsonData"], **source["secureJsonData"]}

    assert source["type"] == "grafana-clickhouse-datasource"
    assert {key: settings[key] for key in ("host", "port", "username")} == {
        "host": "${PIKCHA_CLICKHOUSE_HOST}",
        "port": "${PIKCHA_CLICKHOUSE_PORT}",
        "username": "${PIKCHA_CLICKHOUSE_USER}",
    }
    assert settings["password"] == "${PIKCHA_CLICKHOUSE_PASSWORD}"
    assert settings["defaultDatabase"] == "${PIKCHA_CLICKHOUSE_DATABASE}"


def test_the_dashboard_decodes_through_the_sdk_model_losslessly() -> None:
    """Dashboard.from_json reads the file back, and encodes to the same JSON."""
    register_default_plugins()
    grafana.register_variants()
    raw = dashboard_json()

    decoded = Dashboard.from_json(raw)

    assert decoded.uid == "pikcha" and decoded.title == "Pikcha"
    assert json.loads(JSONEncoder().encode(decoded)) == raw
    for panel in decoded.panels or []:
        for target in getattr(panel, "targets", None) or []:
            assert isinstance(target, grafana.ClickHouseDataquery)


def test_every_panel_queries_the_clickhouse_data_source() -> None:
    """Panel and target data sources are the provisioned ClickHouse one."""
    expected = {"type": "grafana-clickhouse-datasource", "uid": "pikcha-clickhouse"}

    for panel in panels():
        assert panel["datasource"] == expected, panel["title"]
        assert [t["datasource"] for t in panel["targets"]] == [expected]
        assert panel["targets"][0]["editorType"] == "sql"
        assert panel["targets"][0]["format"] in (0, 1)


def test_panels_have_unique_ids_and_places_on_the_grid() -> None:
    """Ids are unique and the panels tile the 24-column grid without overlap."""
    cells: set[tuple[int, int]] = set()
    ids = [panel["id"] for panel in panels()]

    assert len(ids) == len(set(ids)) == len(grafana.PANELS)
    for panel in panels():
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24 and place["h"] > 0, panel["title"]
        covered = {
            (place["x"] + dx, place["y"] + dy)
            for dx in range(place["w"])
            for dy in range(place["h"])
        }
        assert not covered & cells, panel["title"]
        cells |= covered


def test_the_dashboard_shows_each_asked_panel_reading_a_view() -> None:
    """Stores, top products, days, activity, cities and duplicates, each on a view."""
    by_title = {panel["title"]: panel for panel in panels()}

    assert sorted(by_title) == sorted(spec.title for spec in grafana.PANELS)
    for spec in grafana.PANELS:
        sql = by_title[spec.title]["targets"][0]["rawSql"]
        assert re.search(rf"\bFROM {spec.view}\b", sql), spec.title


@pytest.mark.parametrize("spec", grafana.PANELS, ids=lambda spec: spec.view)
def test_each_panel_sql_runs_on_chdb_and_returns_the_columns_it_shows(
    built: Fixture, spec: grafana.PanelSpec
) -> None:
    """With Grafana's macros expanded, the query returns rows and the panel's fields."""
    (panel,) = [p for p in panels() if p["title"] == spec.title]
    # Up to now: rows written while the fixture was built are in the range.
    end = datetime.now().replace(microsecond=0) + timedelta(minutes=1)
    sql = with_macros(panel["targets"][0]["rawSql"], NOW - timedelta(days=90), end)

    result = built.warehouse.client.query(sql)

    assert tuple(result.column_names) == spec.columns
    assert result.result_rows, spec.title
    used = [panel["options"].get("xField")] + [
        override["matcher"]["options"] for override in panel["fieldConfig"]["overrides"]
    ]
    assert {name for name in used if name} <= set(spec.columns)


def test_the_daily_panel_is_a_time_series_filtered_by_the_time_picker() -> None:
    """The by-day panel uses the time-series format and the date-range macro."""
    (daily,) = [p for p in panels() if p["title"] == grafana.DAILY.title]
    target = daily["targets"][0]

    assert daily["type"] == "timeseries"
    assert target["format"] == 0 and target["queryType"] == "timeseries"
    assert "$__dateFilter(day)" in target["rawSql"]


def test_the_alert_group_has_one_rule_per_raw_table() -> None:
    """A rule each for raw_stores, raw_products, raw_customers, raw_purchases."""
    (group,) = load_yaml(ALERTING)["groups"]
    tables = [rule["labels"]["table"] for rule in group["rules"]]

    assert sorted(tables) == sorted(layout.raw for layout in LAYOUTS.values())
    assert len({rule["uid"] for rule in group["rules"]}) == len(tables)
    for rule in group["rules"]:
        assert rule["condition"] == "C"
        assert [step["refId"] for step in rule["data"]] == ["A", "B", "C"]
        assert "FROM v_duplicate_share" in rule["data"][0]["model"]["rawSql"]


def test_only_the_secrets_use_dollar_signs_in_the_provisioning_files() -> None:
    """Grafana expands $VAR in these files: only the intended variables carry one."""
    allowed = {
        "${PIKCHA_CLICKHOUSE_HOST}",
        "${PIKCHA_CLICKHOUSE_PORT}",
        "${PIKCHA_CLICKHOUSE_USER}",
        "${PIKCHA_CLICKHOUSE_PASSWORD}",
        "${PIKCHA_CLICKHOUSE_DATABASE}",
        "$PIKCHA_TELEGRAM_TOKEN",
        "$PIKCHA_TELEGRAM_CHAT_ID",
    }
    document = load_yaml(ALERTING)
    for group in document["groups"]:
        for rule in group["rules"]:
            # Grafana leaves annotations alone; they hold alert templates.
            rule.pop("annotations")
    texts = [json.dumps(document), json.dumps(grafana.datasource_provisioning())]

    found = {m for text in texts for m in re.findall(r"\$\{?\w+\}?", text)}

    assert found <= allowed
    assert "$PIKCHA_TELEGRAM_TOKEN" in found


def test_alerts_go_to_telegram_with_the_token_and_chat_from_the_environment() -> None:
    """The contact point is Telegram; the policy routes everything to it."""
    document = load_yaml(ALERTING)
    (point,) = document["contactPoints"]
    (receiver,) = point["receivers"]
    (policy,) = document["policies"]

    assert receiver["type"] == "telegram"
    assert receiver["settings"] == {
        "bottoken": "$PIKCHA_TELEGRAM_TOKEN",
        "chatid": "$PIKCHA_TELEGRAM_CHAT_ID",
    }
    assert policy["receiver"] == point["name"]
    assert "table" in policy["group_by"]


def test_the_alert_stays_quiet_at_about_thirty_percent_repeated(built: Fixture) -> None:
    """Every table near 30% duplicates: no rule's condition holds."""
    assert all(0.15 < share < 0.5 for share in built.quiet.shares.values())
    assert not any(built.quiet.firing.values()), built.quiet.shares


def test_the_alert_fires_for_every_table_above_fifty_percent(built: Fixture) -> None:
    """Every record sent once more: each table is over 50% and its rule fires."""
    assert all(share > 0.5 for share in built.loud.shares.values())
    assert all(built.loud.firing.values()), built.loud.shares
    assert built.loud.firing.keys() == {layout.raw for layout in LAYOUTS.values()}
