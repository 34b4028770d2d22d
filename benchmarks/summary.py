"""Gather one run's figures into ``benchmarks/results.json`` and a Markdown table.

Reads what the scripts wrote under ``benchmarks/results/`` and writes, side by
side: every rate with its volume, the machine's core count and the peak memory
of its step; the goals of the event path and whether this run met them.
Run: ``python benchmarks/summary.py`` (``make bench`` runs it last).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_JSON = HERE / "results.json"
DEFAULT_MARKDOWN = HERE.parent / "docs" / "performance.md"

# The goals the event path is held to (issue 8 of the project's tracker).
BASELINE_FACTOR = 100
CEILING_SHARE = 1 / 3


def _read(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    return data


def _row(
    stage: str,
    where: str,
    value: float | None,
    unit: str,
    volume: str,
    cores: int | None,
    peak_mib: float | None = None,
) -> dict[str, Any]:
    return {
        "stage": stage,
        "where": where,
        "value": value,
        "unit": unit,
        "volume": volume,
        "cores": cores,
        "peak_rss_mib": peak_mib,
    }


# Each step of the event path: its key in pipeline.json, its label, its volume.
PIPELINE_STAGES = (
    ("publish", "publish (generate, mask, envelope, append)", "all"),
    ("project", "project (decode, clean, insert, commit)", "all"),
    ("end_to_end", "end to end (publisher and projector at once)", "all"),
    ("baseline", "seed-style baseline (one message at a time)", "sample"),
)
# End to end runs two processes; its peak is the larger of theirs.
PEAK_KEYS = ("peak_rss_mib", "publisher_peak_rss_mib", "projector_peak_rss_mib")


def pipeline_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    cores = data["cpu_count"]
    events = f"{data['events']:,} events"
    sample = f"{data['baseline_sample']:,} events"
    rows = []
    for log, label in (("embedded", "SQLite → chDB"), ("kafka", "Kafka → chDB")):
        for step, stage, volume in PIPELINE_STAGES:
            figures = data[log][step]
            peaks = [figures.get(key) for key in PEAK_KEYS if figures.get(key)]
            rows.append(
                _row(
                    stage,
                    label,
                    figures["events_per_second"],
                    "events/s",
                    sample if volume == "sample" else events,
                    cores,
                    max(peaks, default=None),
                )
            )
    broker = data["ceiling_broker"]
    warehouse = data["ceiling_warehouse"]
    rows += [
        _row(
            "raw ceiling: pre-serialised envelopes produced and consumed at once",
            f"broker ({data['broker']})",
            broker["events_per_second"],
            "events/s",
            f"{broker['events']:,} messages",
            cores,
            max(broker["producer_peak_rss_mib"], broker["consumer_peak_rss_mib"]),
        ),
        _row(
            "raw ceiling: pre-built Arrow columns inserted into the layer tables",
            "chDB",
            warehouse["events_per_second"],
            "events/s",
            f"{warehouse['events']:,} events ({warehouse['rows']:,} rows)",
            cores,
            warehouse["peak_rss_mib"],
        ),
    ]
    return rows


def generate_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    cores = data["cpu_count"]
    generate, masking = data["generate"], data["masking"]
    return [
        _row(
            "generate (to JSON Lines, one core)",
            "local files",
            generate["purchases_per_second"],
            "purchases/s",
            f"{generate['purchases']:,} purchases",
            cores,
            generate["peak_rss_mib"],
        ),
        _row(
            "mask (customers, one core)",
            "in memory",
            masking["customers_per_second"],
            "customers/s",
            f"{masking['customers']:,} customers",
            cores,
        ),
    ]


def feature_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    cores = data["cpu_count"]
    rows = []
    for engine in ("clickhouse", "spark", "spark_rows_path", "reference"):
        figures = data.get(engine)
        if not figures:
            continue
        peak = figures.get("total_peak_rss_mib", figures["peak_rss_mib"])
        rows.append(
            _row(
                f"features ({engine.replace('_', ' ')} engine)",
                "chDB warehouse",
                figures["seconds"],
                "seconds",
                f"{data['purchases']:,} purchases, {figures['customers']:,} customers",
                cores,
                peak,
            )
        )
    return rows


def mongo_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    cores = data["cpu_count"]
    volume = f"{data['records']:,} documents"
    return [
        _row(
            f"CRM {step}",
            data["server"],
            data[step]["documents_per_second"],
            "documents/s",
            volume,
            cores,
            data[step].get("peak_rss_mib"),
        )
        for step in ("load", "reload", "scan", "changes")
    ]


def goals(data: dict[str, Any]) -> dict[str, Any]:
    ceilings = {
        "broker": data["ceiling_broker"]["events_per_second"],
        "warehouse": data["ceiling_warehouse"]["events_per_second"],
    }
    slower = min(ceilings, key=lambda name: ceilings[name])
    result: dict[str, Any] = {
        "slower_ceiling": {"name": slower, "events_per_second": ceilings[slower]},
        "baseline_factor": BASELINE_FACTOR,
        "ceiling_share": round(CEILING_SHARE, 3),
    }
    for log in ("embedded", "kafka"):
        end = data[log]["end_to_end"]["events_per_second"]
        base = data[log]["baseline"]["events_per_second"]
        over_base = end / base
        share = end / ceilings[slower]
        result[log] = {
            "end_to_end_events_per_second": end,
            "vs_baseline": round(over_base, 1),
            "vs_baseline_met": over_base >= BASELINE_FACTOR,
            "share_of_slower_ceiling": round(share, 3),
            "share_of_slower_ceiling_met": share >= CEILING_SHARE,
        }
    return result


def summarise() -> dict[str, Any]:
    parts = {
        name: _read(name) for name in ("generate", "pipeline", "features", "mongo")
    }
    soak = _read("soak")
    rows: list[dict[str, Any]] = []
    builders = {
        "generate": generate_rows,
        "pipeline": pipeline_rows,
        "features": feature_rows,
        "mongo": mongo_rows,
    }
    for name, build in builders.items():
        if parts[name] is not None:
            rows += build(parts[name])
    summary: dict[str, Any] = {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench",
        "missing": sorted(name for name, data in parts.items() if data is None),
        "figures": rows,
        "scripts": parts,
    }
    if soak is not None:
        summary["soak"] = soak
    if parts["pipeline"] is not None:
        summary["machine"] = {
            key: parts["pipeline"][key]
            for key in ("cpu_count", "python", "load_average")
        }
        summary["goals"] = goals(parts["pipeline"])

    return summary


def _number(value: float | None, places: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value < 100:
        return f"{value:,.{places}f}"
    return f"{round(value):,}"


def _mark(met: bool) -> str:
    return "met" if met else "not met"


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m benchmarks`), which runs every script",
        "under `benchmarks/` and then `benchmarks/summary.py`; the same figures are",
        "in `benchmarks/results.json`. Every step runs in a process of its own, so",
        "each peak memory (max RSS) is that step's alone. One run, one machine:",
        "compare the rows with each other, as ratios, rather than with another",
        "machine's figures.",
        "",
    ]
    machine = summary.get("machine")
    if machine:
        lines += [
            f"Gathered {summary['written_at']} from the last runs: "
            f"{machine['cpu_count']} cores, "
            f"Python {machine['python']}, load average at the start "
            f"{', '.join(str(value) for value in machine['load_average'])}.",
            "",
        ]
    if summary["missing"]:
        lines += [f"Not in this run: {', '.join(summary['missing'])}.", ""]
    lines += [
        "| Stage | Where | Figure | Unit | Volume | Cores | Peak MiB |",
        "|---|---|--:|---|---|--:|--:|",
    ]
    for row in summary["figures"]:
        lines.append(
            f"| {row['stage']} | {row['where']} | {_number(row['value'])} | "
            f"{row['unit']} | {row['volume']} | {row['cores']} | "
            f"{_number(row['peak_rss_mib'], 1)} |"
        )
    result = summary.get("goals")
    if result:
        slower = result["slower_ceiling"]
        lines += [
            "",
            "## Goals",
            "",
            "End to end means a publisher (generate, mask, envelope, append) and the",
            "projector (poll, decode, clean, insert, commit) running at the same",
            "time, timed from the first record generated to the last event written.",
            f"The slower raw ceiling of this run is the {slower['name']}'s, "
            f"{_number(slower['events_per_second'])} events/s.",
            "",
            f"| Event log | End to end, events/s | × baseline (goal "
            f"{result['baseline_factor']}) | share of slower ceiling (goal "
            f"{result['ceiling_share']:.2f}) |",
            "|---|--:|--:|--:|",
        ]
        for log, label in (("embedded", "SQLite"), ("kafka", "Kafka")):
            figures = result[log]
            lines.append(
                f"| {label} | {_number(figures['end_to_end_events_per_second'])} | "
                f"{figures['vs_baseline']:,} ({_mark(figures['vs_baseline_met'])}) | "
                f"{figures['share_of_slower_ceiling']:.3f} "
                f"({_mark(figures['share_of_slower_ceiling_met'])}) |"
            )
    if "soak" in summary:
        lines += ["", *soak_lines(summary["soak"])]
    lines += ["", *READING, ""]

    return "\n".join(lines)


def soak_lines(soak: dict[str, Any]) -> list[str]:
    """The last ``make soak`` run, if there is one: it is not part of make bench."""
    memory = soak["projector_rss_mib"]
    fresh = soak.get("freshness") or {}
    purchases = fresh.get("purchases", {})
    held = soak["projected_per_second"] or [0]
    asked = soak["appended_per_second"] or [0]
    reconciled = soak["reconciliation"]

    return [
        "## Soak",
        "",
        f"The last `make soak` ({soak['minutes']:g} minutes, "
        f"`pikcha generate --follow --rate {soak['rate_asked']:g}` and "
        f"`pikcha stream --follow` side by side, {soak['cpu_count']} cores; "
        "`benchmarks/results/soak.json`):",
        "",
        "| Measure | Value |",
        "|---|--:|",
        f"| events appended | {soak['appended']:,} |",
        f"| appended a second, per minute (min – max) | "
        f"{min(asked):,} – {max(asked):,} |",
        f"| projected a second, per minute (min – max) | "
        f"{min(held):,} – {max(held):,} |",
        f"| largest lag behind the log, events | {soak['lag_events']['max']:,} |",
        f"| projector memory, MiB: start, peak, end | {memory['start']}, "
        f"{memory['peak']}, {memory['end']} |",
        f"| freshness of purchases, p50 / p99 seconds | "
        f"{purchases.get('p50_seconds', '–')} / {purchases.get('p99_seconds', '–')} |",
        f"| caught up after the generator stopped, seconds | {soak['drain_seconds']} |",
        f"| every event in the raw layer once; each entity balanced | "
        f"{'yes' if reconciled['holds'] else 'no'} |",
    ]


READING = [
    "## Reading the figures",
    "",
    "- The seed-style baseline appends one message at a time, then polls,",
    "  decodes, inserts and commits one message at a time: each step pays its",
    "  full round trip per event. The projector batches all of them.",
    "- The raw ceilings carry no Pikcha code on the timed path: the broker's",
    "  moves envelopes serialised beforehand between a plain producer and a",
    "  plain consumer running at once; the warehouse's inserts again, as Arrow",
    "  columns read back beforehand, every row the projector wrote for the",
    "  embedded run (raw, clean, item and rejected rows) into empty copies of",
    "  the same tables.",
    "- The gap between a ceiling and the projector is the work per event in",
    "  Python: JSON decoding, the envelope and record checks, the cleaning",
    "  rules and building the columns. On two cores the publisher, the",
    "  projector and the broker share them during the end-to-end run.",
    "- Volumes are set by `make bench PURCHASES=N` (default 100,000 purchases",
    "  for the event path; generation and features take twice that, the CRM",
    "  a fifth). A script also runs alone: `python benchmarks/<script>.py -h`.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN)
    options = parser.parse_args()

    summary = summarise()
    options.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    options.markdown.write_text(markdown(summary), encoding="utf-8")
    print(f"wrote {options.json} and {options.markdown}")
    if summary["missing"]:
        print(f"missing: {', '.join(summary['missing'])}", file=sys.stderr)


if __name__ == "__main__":
    main()
