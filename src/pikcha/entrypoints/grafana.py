"""Grafana's files for Pikcha, generated in code: ``pikcha grafana`` writes them.

The dashboard, its panels and the alert rules are built with the
``grafana-foundation-sdk`` builders (the Grafana 11.6 build). The SDK has no
query type for the ClickHouse data source plugin, so :class:`ClickHouseQuery`
supplies one. The SDK models alerting the way Grafana's HTTP API does, while
file provisioning wants another envelope (``apiVersion``, ``groups`` with a
folder title, ``contactPoints`` with ``receivers``, ``policies``): the rules,
contact point and policy are built with the SDK and wrapped here.

Every panel and alert reads one of the views of ``infra/clickhouse``. Grafana
expands ``$VAR`` in provisioning files (not in dashboards, and not in alert
annotations), so ``$`` appears in the provisioning files only where an
environment variable is meant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from grafana_foundation_sdk.builders import alerting as alert_builders
from grafana_foundation_sdk.builders import barchart, common, expr, timeseries
from grafana_foundation_sdk.builders import dashboard as dash_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models.common import (
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    VisibilityMode,
    VizOrientation,
)

from pikcha.domain.entities import Entity
from pikcha.domain.quality import DEFAULT_THRESHOLD

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "pikcha-clickhouse"
DASHBOARD_UID = "pikcha"
FOLDER = "Pikcha"
CONTACT_POINT = "pikcha-telegram"
DASHBOARDS_PATH = "/var/lib/grafana/dashboards"
RAW_TABLES = tuple(f"raw_{entity.directory}" for entity in Entity)
"""The raw tables whose duplicate share is watched, one alert rule each."""

TABLE: Literal[1] = 1
TIME_SERIES: Literal[0] = 0
_QUERY_TYPES = {TABLE: "table", TIME_SERIES: "timeseries"}
_EXPRESSIONS = "__expr__"


class ClickHouseDataquery(cogvariants.Dataquery):
    """A raw-SQL query of the ClickHouse data source plugin (version 4).

    ``format`` is the plugin's: 1 for a table, 0 for a time series. The
    plugin's ``queryType`` follows from it; the older ``"sql"`` value is what
    version 3 wrote and version 4 rewrites when it loads a query.
    """

    def __init__(
        self,
        raw_sql: str = "",
        ref_id: str = "A",
        format_val: int = TABLE,
        datasource: dash_models.DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format_val = format_val
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "editorType": "sql",
            "format": self.format_val,
            "queryType": _QUERY_TYPES.get(self.format_val, "table"),
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide is not None:
            payload["hide"] = self.hide

        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        source = data.get("datasource")

        return cls(
            raw_sql=data.get("rawSql", ""),
            ref_id=data.get("refId", "A"),
            format_val=data.get("format", TABLE),
            datasource=None
            if source is None
            else dash_models.DataSourceRef.from_json(source),
            hide=data.get("hide"),
        )


class ClickHouseQuery(cogbuilder.Builder[ClickHouseDataquery]):
    """Builds a :class:`ClickHouseDataquery` against Pikcha's data source."""

    def __init__(self, sql: str) -> None:
        self._internal = ClickHouseDataquery(raw_sql=sql, datasource=datasource_ref())

    def build(self) -> ClickHouseDataquery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id

        return self

    def time_series(self) -> Self:
        self._internal.format_val = TIME_SERIES

        return self


def datasource_ref() -> dash_models.DataSourceRef:
    return dash_models.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


def register_variants() -> None:
    """Teach the SDK's decoder this module's query type (for ``from_json``)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(DATASOURCE_TYPE, ClickHouseDataquery.from_json)
    )


@dataclass(frozen=True)
class PanelSpec:
    """A dashboard panel: its SQL over one view and the columns it shows."""

    title: str
    view: str
    sql: str
    columns: tuple[str, ...]
    description: str = ""


STORES = PanelSpec(
    "Purchases and revenue by store",
    "v_store_sales",
    "SELECT if(store_name = '', store_id, store_name) AS store, purchases, revenue\n"
    "FROM v_store_sales\n"
    "ORDER BY revenue DESC, store",
    ("store", "purchases", "revenue"),
    "Every purchase since the data began, as of the last mart build.",
)
PRODUCTS = PanelSpec(
    "Top 10 products by sales",
    "v_top_products",
    "SELECT name AS product, revenue, units\n"
    "FROM v_top_products\n"
    "ORDER BY revenue DESC, product",
    ("product", "revenue", "units"),
)
DAILY = PanelSpec(
    "Purchases and revenue by day",
    "v_daily_sales",
    "SELECT toDateTime(day) AS time, purchases, revenue\n"
    "FROM v_daily_sales\n"
    "WHERE $__dateFilter(day)\n"
    "ORDER BY time",
    ("time", "purchases", "revenue"),
)
ACTIVITY = PanelSpec(
    "Customer activity",
    "v_customer_activity",
    "SELECT segment, customers\n"
    "FROM v_customer_activity\n"
    "ORDER BY indexOf(['new', 'active', 'inactive', 'loyal'], segment)",
    ("segment", "customers"),
    "Active and inactive split all customers (a purchase within 30 days of the "
    "latest one); new (registered within 30 days) and loyal (loyalty members) "
    "overlap them.",
)
CITIES = PanelSpec(
    "Revenue and customers by city",
    "v_city_sales",
    "SELECT city, revenue, customers\nFROM v_city_sales\nORDER BY revenue DESC, city",
    ("city", "revenue", "customers"),
)
DUPLICATES = PanelSpec(
    "Duplicate share per table",
    "v_duplicate_share",
    "SELECT table_name, duplicate_share\nFROM v_duplicate_share\nORDER BY table_name",
    ("table_name", "duplicate_share"),
    "Rows that repeat an earlier row (same entity and content), at the latest "
    "quality check; above the line an alert goes out.",
)
FRESHNESS = PanelSpec(
    "Freshness: purchase to warehouse",
    "v_freshness",
    "SELECT minute AS time, p50_seconds, p99_seconds\n"
    "FROM v_freshness\n"
    "WHERE $__timeFilter(minute)\n"
    "ORDER BY time",
    ("time", "p50_seconds", "p99_seconds"),
    "Seconds from a purchase event's time to its row in the warehouse, per "
    "minute of writing: the median and the 99th percentile.",
)
PANELS = (STORES, PRODUCTS, DAILY, ACTIVITY, CITIES, DUPLICATES, FRESHNESS)
DUPLICATES_PANEL_ID = 6


def _right_axis() -> list[dash_models.DynamicConfigValue]:
    return [dash_models.DynamicConfigValue("custom.axisPlacement", "right")]


def _legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .show_legend(True)
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
    )


def _bars(
    spec: PanelSpec,
    panel_id: int,
    width: int,
    height: int,
    x_field: str,
    right: str | None = None,
) -> barchart.Panel:
    panel = (
        barchart.Panel()
        .id(panel_id)
        .title(spec.title)
        .datasource(datasource_ref())
        .with_target(ClickHouseQuery(spec.sql))
        .span(width)
        .height(height)
        .x_field(x_field)
        .show_value(VisibilityMode.NEVER)
        .legend(_legend())
        .fill_opacity(80)
    )
    if spec.description:
        panel = panel.description(spec.description)
    if right is not None:
        panel = panel.override_by_name(right, _right_axis())

    return panel


def _slanted(panel: barchart.Panel) -> barchart.Panel:
    # Store and city names are long: tilted and cut, they do not collide.
    return panel.x_tick_label_rotation(-45).x_tick_label_max_length(24)


def _daily(panel_id: int) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(DAILY.title)
        .datasource(datasource_ref())
        .with_target(ClickHouseQuery(DAILY.sql).time_series())
        .span(24)
        .height(8)
        .legend(_legend())
        .line_width(2)
        .show_points(VisibilityMode.AUTO)
        .override_by_name("revenue", _right_axis())
    )


def _freshness(panel_id: int) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(FRESHNESS.title)
        .description(FRESHNESS.description)
        .datasource(datasource_ref())
        .with_target(ClickHouseQuery(FRESHNESS.sql).time_series())
        .span(24)
        .height(8)
        .legend(_legend())
        .unit("s")
        .min(0)
        .line_width(2)
        .show_points(VisibilityMode.AUTO)
    )


def _duplicates(panel_id: int, threshold: float) -> barchart.Panel:
    steps = [
        dash_models.Threshold(value=None, color="green"),
        dash_models.Threshold(value=threshold, color="red"),
    ]

    return (
        _bars(DUPLICATES, panel_id, 12, 8, "table_name")
        .unit("percentunit")
        .min(0)
        .max(1)
        .color_scheme(
            dash_builders.FieldColor().mode(dash_models.FieldColorModeId.THRESHOLDS)
        )
        .thresholds(
            dash_builders.ThresholdsConfig()
            .mode(dash_models.ThresholdsMode.ABSOLUTE)
            .steps(steps)
        )
        .thresholds_style(
            common.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE)
        )
    )


def build_dashboard(
    threshold: float = float(DEFAULT_THRESHOLD),
) -> dash_models.Dashboard:
    """The "Pikcha" dashboard: sales by store, product, day and city, customer
    activity, the duplicate share of each raw table and freshness."""
    builder = (
        dash_builders.Dashboard("Pikcha")
        .uid(DASHBOARD_UID)
        .description("Sales, customers and data quality of the chain Пикча.")
        .tags(["pikcha", "clickhouse"])
        .timezone("browser")
        .editable()
        .time("now-90d", "now")
        .refresh("1m")
        .with_panel(_slanted(_bars(STORES, 1, 24, 10, "store", right="revenue")))
        .with_panel(
            _bars(PRODUCTS, 2, 12, 9, "product", right="units").orientation(
                VizOrientation.HORIZONTAL
            )
        )
        .with_panel(_bars(ACTIVITY, 3, 12, 9, "segment"))
        .with_panel(_daily(4))
        .with_panel(_slanted(_bars(CITIES, 5, 12, 8, "city", right="customers")))
        .with_panel(_duplicates(DUPLICATES_PANEL_ID, threshold))
        .with_panel(_freshness(7))
    )

    return builder.build()


def _reduce() -> expr.TypeReduce:
    return (
        expr.TypeReduce()
        .ref_id("B")
        .expression("A")
        .reducer("last")
        .datasource(dash_models.DataSourceRef(type_val=_EXPRESSIONS, uid=_EXPRESSIONS))
    )


def _over(threshold: float) -> expr.TypeThreshold:
    condition = expr.ExprTypeThresholdConditions().evaluator(
        expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([threshold])
    )

    return (
        expr.TypeThreshold()
        .ref_id("C")
        .expression("B")
        .conditions([condition])
        .datasource(dash_models.DataSourceRef(type_val=_EXPRESSIONS, uid=_EXPRESSIONS))
    )


def alert_sql(table: str) -> str:
    """The alert's query for one raw table: its latest duplicate share."""
    return (
        f"SELECT duplicate_share\nFROM v_duplicate_share\nWHERE table_name = '{table}'"
    )


def _percent(threshold: float) -> str:
    return f"{threshold * 100:g}%"


def build_rules(
    threshold: float = float(DEFAULT_THRESHOLD),
) -> list[alert_builders.Rule]:
    """One rule per raw table: its duplicate share is above ``threshold``.

    The share is the one the latest ``pikcha check`` recorded; before any check
    there is no data, which counts as OK.
    """
    window = alerting_models.RelativeTimeRange(from_val=600, to=0)
    rules = []
    for table in RAW_TABLES:
        source = (
            alert_builders.Query("A")
            .datasource_uid(DATASOURCE_UID)
            .relative_time_range(window)
            .model(ClickHouseQuery(alert_sql(table)))
        )
        reduce = (
            alert_builders.Query("B")
            .datasource_uid(_EXPRESSIONS)
            .relative_time_range(window)
            .model(_reduce())
        )
        over = (
            alert_builders.Query("C")
            .datasource_uid(_EXPRESSIONS)
            .relative_time_range(window)
            .model(_over(threshold))
        )
        rule = (
            alert_builders.Rule(f"Duplicate share above {_percent(threshold)}: {table}")
            .uid(f"pikcha-duplicates-{table.removeprefix('raw_')}")
            .queries([source, reduce, over])
            .condition("C")
            .no_data_state("OK")
            .exec_err_state("Error")
            .for_val("0s")
            .labels({"table": table, "service": "pikcha"})
            .annotations(
                {
                    "summary": (
                        f"Duplicate share of {table} is "
                        "{{ humanizePercentage $values.B.Value }}, above "
                        f"{_percent(threshold)}."
                    ),
                    "description": (
                        "Rows of the table that repeat an earlier row (same "
                        "entity_id and content hash), as the latest quality "
                        "check measured them."
                    ),
                    "__dashboardUid__": DASHBOARD_UID,
                    "__panelId__": str(DUPLICATES_PANEL_ID),
                }
            )
        )
        rules.append(rule)

    return rules


def _contact_point() -> alert_builders.ContactPoint:
    return (
        alert_builders.ContactPoint()
        .uid(CONTACT_POINT)
        .name(CONTACT_POINT)
        .type("telegram")
        .settings(
            {"bottoken": "$PIKCHA_TELEGRAM_TOKEN", "chatid": "$PIKCHA_TELEGRAM_CHAT_ID"}
        )
        .disable_resolve_message(False)
    )


def _policy() -> alert_builders.NotificationPolicy:
    return (
        alert_builders.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .group_by(["grafana_folder", "alertname", "table"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("4h")
    )


_RULE_FIELDS = (
    "uid",
    "title",
    "condition",
    "data",
    "noDataState",
    "execErrState",
    "for",
    "labels",
    "annotations",
    "isPaused",
)


def alerting_provisioning(
    threshold: float = float(DEFAULT_THRESHOLD),
) -> dict[str, Any]:
    """The alerting provisioning file: rule group, contact point, policy.

    Grafana's file format names the folder by title and leaves out the API's
    ``folderUID``, ``orgID`` and ``ruleGroup`` on each rule. The policy becomes
    the organisation's whole notification tree: everything goes to Telegram.
    """
    rules = [_plain(rule.build()) for rule in build_rules(threshold)]
    contact = _plain(_contact_point().build())
    receiver = {key: contact[key] for key in ("uid", "type", "settings")}
    receiver["disableResolveMessage"] = contact["disableResolveMessage"]

    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "pikcha-data-quality",
                "folder": FOLDER,
                "interval": "1m",
                "rules": [
                    {key: rule[key] for key in _RULE_FIELDS if key in rule}
                    for rule in rules
                ],
            }
        ],
        "contactPoints": [
            {"orgId": 1, "name": contact["name"], "receivers": [receiver]}
        ],
        "policies": [{"orgId": 1, **_plain(_policy().build())}],
    }


def datasource_provisioning() -> dict[str, Any]:
    """The ClickHouse data source, its connection read from the environment."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Pikcha ClickHouse",
                "type": DATASOURCE_TYPE,
                "uid": DATASOURCE_UID,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "host": "${PIKCHA_CLICKHOUSE_HOST}",
                    "port": "${PIKCHA_CLICKHOUSE_PORT}",
                    "protocol": "http",
                    "username": "${PIKCHA_CLICKHOUSE_USER}",
                    "defaultDatabase": "${PIKCHA_CLICKHOUSE_DATABASE}",
                },
                "secureJsonData": {"password": "${PIKCHA_CLICKHOUSE_PASSWORD}"},
            }
        ],
    }


def dashboards_provisioning() -> dict[str, Any]:
    """A provider that loads every dashboard file under :data:`DASHBOARDS_PATH`."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "pikcha",
                "orgId": 1,
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {
                    "path": DASHBOARDS_PATH,
                    "foldersFromFilesStructure": False,
                },
            }
        ],
    }


def _plain(model: object) -> Any:
    """A model as plain JSON values, through the SDK's encoder."""
    return json.loads(JSONEncoder().encode(model))


def render(threshold: float = float(DEFAULT_THRESHOLD)) -> dict[str, str]:
    """Every file, by path relative to the ``grafana/`` folder, as text."""
    dashboard = JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(
        build_dashboard(threshold)
    )
    header = (
        "# Generated by `pikcha grafana`; edit src/pikcha/entrypoints/grafana.py.\n"
    )

    return {
        "provisioning/datasources/clickhouse.yaml": header
        + to_yaml(datasource_provisioning()),
        "provisioning/dashboards/pikcha.yaml": header
        + to_yaml(dashboards_provisioning()),
        "provisioning/alerting/pikcha.yaml": header
        + to_yaml(alerting_provisioning(threshold)),
        "dashboards/pikcha.json": dashboard + "\n",
    }


def write(out: Path, threshold: float = float(DEFAULT_THRESHOLD)) -> list[Path]:
    """Write every file under ``out``; returns the paths written."""
    written = []
    for relative, text in render(threshold).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    return written


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_yaml(value: Any) -> str:
    """Block-style YAML of JSON values, strings always quoted.

    Quoting every string as JSON does keeps the output valid YAML without a
    YAML library: a JSON string is a YAML double-quoted scalar. Multi-line
    strings become literal blocks so that SQL stays readable.
    """
    return "\n".join(_yaml_lines(value, 0)) + "\n"


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
            lines.extend(_entry(f"{pad}{name}:", item, indent))
        return lines
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            nested = _yaml_lines(item, indent + 2)
            if isinstance(item, Mapping | list) and item:
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.extend(_entry(f"{pad}-", item, indent))
        return lines

    return [pad + _scalar(value)]


def _entry(prefix: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, Mapping | list) and item:
        return [prefix, *_yaml_lines(item, indent + 2)]
    if isinstance(item, str) and _literal(item):
        body = [" " * (indent + 2) + line if line else "" for line in item.split("\n")]
        return [f"{prefix} |-", *body]

    return [f"{prefix} {_scalar(item)}"]


def _literal(text: str) -> bool:
    lines = text.split("\n")

    return (
        len(lines) > 1
        and not text.endswith("\n")
        and not lines[0].startswith(" ")
        and all(line == line.rstrip() and line.isprintable() for line in lines)
    )


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
