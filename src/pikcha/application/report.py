"""The HTML report: the dashboard's panels and the latest quality, in one page.

The page stands alone: inline CSS, charts drawn as inline SVG, no script and
no request to anywhere (its Content-Security-Policy forbids them). Every text
that comes from data is escaped. :func:`render_report` is pure;
:func:`write_report` reads the warehouse and puts the page in the object store
as :data:`REPORT_KEY`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pikcha.domain.quality import DEFAULT_THRESHOLD, TableMetrics, as_fraction
from pikcha.ports.objects import ObjectInfo, ObjectStore
from pikcha.ports.warehouse import VIEWS, Warehouse

REPORT_KEY = "reports/pikcha-report.html"
CONTENT_TYPE = "text/html; charset=utf-8"
ACTIVITY_ORDER = ("new", "active", "inactive", "loyal")

Format = Callable[[float], str]

_WIDTH = 560
_LABEL_WIDTH = 380
_COLUMN = 330
_VALUE_WIDTH = 96
_HEAD = 18
_ROW = 22
_BAR = 14
_LINE_HEIGHT = 220
_MARGIN = 8


@dataclass(frozen=True)
class ReportData:
    """What the report shows: the rows of each view and the live quality."""

    generated_at: datetime
    views: Mapping[str, Sequence[Mapping[str, Any]]]
    quality: Sequence[TableMetrics] = ()
    threshold: float = float(DEFAULT_THRESHOLD)

    def rows(self, view: str) -> Sequence[Mapping[str, Any]]:
        return self.views.get(view, ())


def gather(
    warehouse: Warehouse, generated_at: datetime, threshold: Any = DEFAULT_THRESHOLD
) -> ReportData:
    """Read every view the report draws, and measure quality now."""
    views = {name: warehouse.query(name) for name in VIEWS}

    return ReportData(
        generated_at=generated_at,
        views=views,
        quality=warehouse.quality(),
        threshold=float(as_fraction(threshold)),
    )


def write_report(
    warehouse: Warehouse,
    objects: ObjectStore,
    generated_at: datetime,
    threshold: Any = DEFAULT_THRESHOLD,
) -> ObjectInfo:
    """Render the report from the warehouse and put it in the object store."""
    page = render_report(gather(warehouse, generated_at, threshold))

    return objects.put(REPORT_KEY, page.encode("utf-8"), CONTENT_TYPE)


@dataclass(frozen=True)
class Measure:
    """One column of bars in a bar chart: a value per label, on its own scale."""

    name: str
    column: str
    fmt: Format
    scale: float | None = None
    threshold: float | None = None


def render_report(data: ReportData) -> str:
    """The whole page, as a string."""
    stores = data.rows("v_store_sales")
    activity = sorted(data.rows("v_customer_activity"), key=_activity_rank)
    revenue = Measure("Revenue", "revenue", _money)
    sections = [
        _section(
            "Purchases and revenue by store",
            bar_chart(
                "store-sales",
                "Stores by revenue",
                stores,
                _store,
                [revenue, Measure("Purchases", "purchases", _count)],
            ),
        ),
        _section(
            "Top 10 products by sales",
            bar_chart(
                "top-products",
                "Products by revenue",
                data.rows("v_top_products"),
                _product,
                [revenue, Measure("Units sold", "units", _units)],
            ),
        ),
        _section(
            "Purchases and revenue by day",
            line_chart("daily-revenue", "Revenue", _series(data, "revenue"), _money),
            line_chart(
                "daily-purchases", "Purchases", _series(data, "purchases"), _count
            ),
        ),
        _section(
            "Customer activity",
            bar_chart(
                "customer-activity",
                "Customers by segment",
                activity,
                lambda row: str(row["segment"]),
                [Measure("Customers", "customers", _count)],
            ),
            _ACTIVITY_NOTE,
        ),
        _section(
            "Revenue and customers by city",
            bar_chart(
                "city-sales",
                "Cities by revenue",
                data.rows("v_city_sales"),
                _city,
                [revenue, Measure("Customers", "customers", _count)],
            ),
        ),
        _section(
            "Data quality",
            bar_chart(
                "duplicate-share",
                "Duplicate share at the latest check",
                data.rows("v_duplicate_share"),
                lambda row: str(row["table_name"]),
                [
                    Measure(
                        "Duplicate share",
                        "duplicate_share",
                        _share,
                        scale=1.0,
                        threshold=data.threshold,
                    )
                ],
            ),
            quality_table(data.quality, data.threshold),
        ),
    ]

    return _page(data, _summary(stores, activity), sections)


def bar_chart(
    chart_id: str,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    label: Callable[[Mapping[str, Any]], str],
    measures: Sequence[Measure],
) -> str:
    """Horizontal bars, a row per data row and a column of bars per measure,
    with the value written after each bar."""
    if not rows:
        return _empty(chart_id, title)
    width = _LABEL_WIDTH + len(measures) * _COLUMN
    height = _HEAD + 2 * _MARGIN + _ROW * len(rows)
    names = [label(row) for row in rows]
    parts = [
        f'<text class="label" x="{_LABEL_WIDTH - 6}" y="{_baseline(i)}" '
        f'text-anchor="end">{_e(_clip(name))}<title>{_e(name)}</title></text>'
        for i, name in enumerate(names)
    ]
    for index, measure in enumerate(measures):
        left = _LABEL_WIDTH + index * _COLUMN
        values = [_number(row[measure.column]) for row in rows]
        parts.append(_bars(measure, left, names, values, height))

    return _figure(chart_id, title, width, height, "".join(parts))


def _bars(
    measure: Measure, left: int, names: list[str], values: list[float], height: int
) -> str:
    room = _COLUMN - _VALUE_WIDTH
    top = measure.scale or max(values, default=0.0) or 1.0
    parts = [f'<text class="head" x="{left}" y="{_HEAD - 6}">{_e(measure.name)}</text>']
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        y = _HEAD + _MARGIN + i * _ROW
        width = max(0.0, min(value, top)) / top * room
        shown = measure.fmt(value)
        over = measure.threshold is not None and value > measure.threshold
        kind = "mark bar over" if over else "mark bar"
        parts.append(
            f'<rect class="{kind}" x="{left}" y="{y}" width="{width:.1f}" '
            f'height="{_BAR}"><title>{_e(f"{name}: {shown}")}</title></rect>'
            f'<text class="value" x="{left + width + 4:.1f}" y="{_baseline(i)}">'
            f"{_e(shown)}</text>"
        )
    if measure.threshold is not None:
        x = left + min(measure.threshold, top) / top * room
        note = "threshold " + measure.fmt(measure.threshold)
        parts.append(
            f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{_HEAD}" '
            f'y2="{height - 2}"><title>{_e(note)}</title></line>'
        )

    return "".join(parts)


def _baseline(row: int) -> int:
    return _HEAD + _MARGIN + row * _ROW + _BAR - 2


def line_chart(
    chart_id: str, title: str, points: Sequence[tuple[date, float]], fmt: Format
) -> str:
    """A line over days, with a dot per day and the axis at zero."""
    if not points:
        return _empty(chart_id, title)
    left, right, top, bottom = 84, 12, 10, 28
    plot_w = _WIDTH - left - right
    plot_h = _LINE_HEIGHT - top - bottom
    high = max(value for _, value in points) or 1.0
    step = plot_w / max(len(points) - 1, 1)

    def x(index: int) -> float:
        return left + index * step if len(points) > 1 else left + plot_w / 2

    def y(value: float) -> float:
        return top + plot_h - max(value, 0.0) / high * plot_h

    parts = []
    for fraction in (0.0, 0.5, 1.0):
        level = y(high * fraction)
        parts.append(
            f'<line class="rule" x1="{left}" x2="{left + plot_w}" '
            f'y1="{level:.1f}" y2="{level:.1f}"></line>'
            f'<text class="label" x="{left - 6}" y="{level + 4:.1f}" '
            f'text-anchor="end">{_e(fmt(high * fraction))}</text>'
        )
    ticks = sorted({0, len(points) // 2, len(points) - 1})
    for index in ticks:
        parts.append(
            f'<text class="label" x="{x(index):.1f}" y="{_LINE_HEIGHT - 8}" '
            f'text-anchor="middle">{_e(points[index][0].isoformat())}</text>'
        )
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts.append(f'<polyline class="mark line" points="{line}"></polyline>')
    for index, (day, value) in enumerate(points):
        parts.append(
            f'<circle class="mark dot" cx="{x(index):.1f}" cy="{y(value):.1f}" r="2.5">'
            f"<title>{_e(f'{day.isoformat()}: {fmt(value)}')}</title></circle>"
        )

    return _figure(chart_id, title, _WIDTH, _LINE_HEIGHT, "".join(parts))


def quality_table(metrics: Sequence[TableMetrics], threshold: float) -> str:
    """Every raw table's metrics measured now, tables over the threshold marked."""
    if not metrics:
        return '<p class="empty">No raw table measured yet.</p>'
    limit = as_fraction(threshold)
    rows = []
    for m in metrics:
        over = m.over(limit)
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(m.rejected.items()))
        flag = ' <span class="badge">above threshold</span>' if over else ""
        rows.append(
            f'<tr class="{"over" if over else "ok"}">'
            f'<th scope="row">{_e(m.table)}</th>'
            f"<td>{_e(_count(m.rows))}</td><td>{_e(_count(m.distinct))}</td>"
            f"<td>{_e(_count(m.duplicates))}</td>"
            f"<td>{_e(_share(m.duplicate_share))}{flag}</td>"
            f"<td>{_e(_count(m.rejected_total))}</td><td>{_e(rules or '—')}</td></tr>"
        )
    head = "".join(
        f'<th scope="col">{_e(name)}</th>'
        for name in (
            "table",
            "rows",
            "distinct",
            "duplicates",
            "duplicate share",
            "rejected",
            "rejected by rule",
        )
    )

    return (
        f'<div class="wide"><h3>Measured now (threshold {_e(_share(threshold))})</h3>'
        f'<table class="quality"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _page(data: ReportData, summary: str, sections: Iterable[str]) -> str:
    stamp = data.generated_at.isoformat(sep=" ", timespec="seconds")

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e('Pikcha report ' + stamp)}</title><style>{_STYLE}</style></head>"
        f"<body><header><h1>Pikcha</h1><p>Sales, customers and data quality of the "
        f"chain Пикча, as of {_e(stamp)}.</p>{summary}</header>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )


def _summary(
    stores: Sequence[Mapping[str, Any]], activity: Sequence[Mapping[str, Any]]
) -> str:
    revenue = sum(_number(row["revenue"]) for row in stores)
    purchases = sum(_number(row["purchases"]) for row in stores)
    customers = sum(
        _number(row["customers"])
        for row in activity
        if row["segment"] in ("active", "inactive")
    )
    tiles = (
        ("Revenue", _money(revenue)),
        ("Purchases", _count(purchases)),
        ("Customers", _count(customers)),
        ("Stores with sales", _count(len(stores))),
    )

    return (
        '<dl class="tiles">'
        + "".join(
            f"<div><dt>{_e(name)}</dt><dd>{_e(value)}</dd></div>"
            for name, value in tiles
        )
        + "</dl>"
    )


def _section(title: str, *blocks: str) -> str:
    body = "".join(blocks)

    return f'<section><h2>{_e(title)}</h2><div class="grid">{body}</div></section>'


def _figure(chart_id: str, title: str, width: int, height: int, body: str) -> str:
    return (
        f'<figure class="chart" id="{_e(chart_id)}">'
        f"<figcaption>{_e(title)}</figcaption>"
        f'<svg data-chart="{_e(chart_id)}" role="img" aria-label="{_e(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"{body}</svg></figure>"
    )


def _empty(chart_id: str, title: str) -> str:
    return (
        f'<figure class="chart" id="{_e(chart_id)}">'
        f"<figcaption>{_e(title)}</figcaption>"
        '<p class="empty">No data yet: run the pipeline and build the marts.</p>'
        "</figure>"
    )


def _series(data: ReportData, column: str) -> list[tuple[date, float]]:
    rows = data.rows("v_daily_sales")

    return sorted((_day(row["day"]), _number(row[column])) for row in rows)


def _store(row: Mapping[str, Any]) -> str:
    name = str(row.get("store_name") or row["store_id"])
    city = row.get("city")

    return f"{name} ({city})" if city else name


def _product(row: Mapping[str, Any]) -> str:
    return str(row.get("name") or row["product_id"])


def _city(row: Mapping[str, Any]) -> str:
    return str(row["city"] or "unknown")


def _activity_rank(row: Mapping[str, Any]) -> int:
    segment = row["segment"]

    return ACTIVITY_ORDER.index(segment) if segment in ACTIVITY_ORDER else 99


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value

    return date.fromisoformat(str(value))


def _number(value: Any) -> float:
    if isinstance(value, Decimal | int | float):
        return float(value)

    return float(str(value))


def _grouped(value: float, decimals: int) -> str:
    # A narrow no-break space groups thousands, as Russian typography does.
    return f"{value:,.{decimals}f}".replace(",", "\u202f")


def _money(value: float) -> str:
    return f"{_grouped(value, 0)} ₽"


def _count(value: float) -> str:
    return _grouped(value, 0)


def _units(value: float) -> str:
    return _grouped(value, 1)


def _share(value: float) -> str:
    return f"{value:.1%}"


def _clip(text: str, limit: int = 62) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_ACTIVITY_NOTE = (
    '<p class="note">Active and inactive split all customers (a purchase within '
    "30 days of the latest one); new (registered within 30 days) and loyal "
    "(loyalty members) overlap them.</p>"
)

_STYLE = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --bar: #3e7cb1;
  --line: #d64545; --grid: #e4e7eb; --over: #fde8e8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: #fff; }
header, main { max-width: 1200px; margin: 0 auto; padding: 16px 24px; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin: 24px 0 8px; font-size: 20px; border-bottom: 1px solid var(--grid); }
h3 { margin: 8px 0; font-size: 15px; }
.tiles { display: flex; gap: 16px; margin: 16px 0 0; padding: 0; }
.tiles div { flex: 1; padding: 12px; border: 1px solid var(--grid);
  border-radius: 6px; }
.tiles dt { color: var(--muted); }
.tiles dd { margin: 4px 0 0; font-size: 22px; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 16px 32px; align-items: flex-start; }
.chart { margin: 0; }
.chart figcaption { font-weight: 600; margin-bottom: 4px; }
.chart svg { display: block; overflow: visible; }
.chart text { font-size: 11px; fill: var(--ink); }
.chart .value { fill: var(--muted); }
.chart .head { font-weight: 600; fill: var(--muted); }
.bar { fill: var(--bar); }
.bar.over { fill: var(--line); }
.line { fill: none; stroke: var(--line); stroke-width: 2; }
.dot { fill: var(--line); }
.rule { stroke: var(--grid); }
.threshold { stroke: var(--line); stroke-width: 2; stroke-dasharray: 4 3; }
.empty, .note { color: var(--muted); max-width: 560px; }
.wide { flex-basis: 100%; }
table.quality { border-collapse: collapse; width: 100%; }
.quality th, .quality td { padding: 4px 8px; border-bottom: 1px solid var(--grid);
  text-align: right; }
.quality th:first-child, .quality th:last-child, .quality td:last-child {
  text-align: left; }
.quality tr.over { background: var(--over); }
.badge { color: #fff; background: var(--line); border-radius: 4px; padding: 0 4px;
  font-size: 11px; }
"""
