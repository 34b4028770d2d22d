"""Soak: a live publisher and a following projector, side by side, for minutes.

Starts ``pikcha stream --follow`` and ``pikcha generate --follow --rate R`` as
two processes over the same settings (the embedded defaults under a fresh
home, or whatever ``PIKCHA_*`` variables name), and samples every second:
events appended, events committed by the projector, and the projector's
resident memory. After ``--minutes`` the generator is stopped, the projector
drains what is left and is stopped; then the run reports

- throughput: appended and projected events a second, per minute;
- the projector's memory at the start (after the first minute), its peak and
  at the end;
- freshness: from an event's time (set when it is published) to its clean row
  being written (``projected_at``), p50 and p99, in the ClickHouse warehouse;
- the reconciliation: every appended event is in the raw layer once, and each
  entity's raw events divide exactly into clean, rejected, repeated and
  superseded ones.

Run: ``make soak`` or ``python benchmarks/soak.py [--minutes M] [--rate R]``.
Figures go to ``benchmarks/results/soak.json``; the exit code is 1 when the
reconciliation does not hold or the projector never caught up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, write_figures

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "soak.json"
STREAMS = ("stores", "products", "customers", "purchases")
GROUP = "warehouse"


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process now, in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)

    return None


class Counter:
    """Appended and committed totals, read through the event log port."""

    def __init__(self, settings: Any) -> None:
        from pikcha.entrypoints.container import make_event_log

        self.log = make_event_log(settings)

    def appended(self) -> int:
        return sum(sum(self.log.end_offsets(name).values()) for name in STREAMS)

    def committed(self) -> int:
        return sum(sum(self.log.committed(GROUP, name).values()) for name in STREAMS)

    def close(self) -> None:
        self.log.close()


def start(command: list[str], env: dict[str, str], output: Path) -> Any:
    with output.open("wb") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


def stop(process: Any, timeout: float) -> int:
    """SIGTERM (the CLI finishes its batch and exits), then SIGKILL if it hangs."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    code: int = process.returncode

    return code


def per_minute(samples: list[dict[str, Any]], key: str) -> list[int]:
    """Events a second of ``key`` over each whole minute of samples."""
    rates = []
    first = samples[0]
    for sample in samples[1:]:
        if sample["t"] - first["t"] >= 60:
            rates.append(round((sample[key] - first[key]) / (sample["t"] - first["t"])))
            first = sample

    return rates


def peak_per_minute(samples: list[dict[str, Any]]) -> list[float]:
    """The projector's highest resident memory in each minute of samples."""
    peaks: dict[int, float] = {}
    for sample in samples:
        if sample["rss_mib"]:
            minute = int(sample["t"] // 60)
            peaks[minute] = max(peaks.get(minute, 0.0), sample["rss_mib"])

    return [peaks[minute] for minute in sorted(peaks)]


def freshness(settings: Any) -> dict[str, Any] | None:
    """p50 and p99 seconds from an event's time to its clean row, per entity."""
    from pikcha.entrypoints.container import make_warehouse

    warehouse = make_warehouse(settings)
    client = getattr(warehouse, "client", None)
    if client is None:
        warehouse.close()
        return None
    result = {}
    try:
        for entity in STREAMS:
            row = client.query(
                "SELECT count(), quantiles(0.5, 0.99)("
                "dateDiff('millisecond', r.occurred_at, c.projected_at)) / 1000 "
                f"FROM clean_{entity} AS c FINAL "
                f"INNER JOIN raw_{entity} AS r FINAL ON r.event_id = c.event_id"
            ).result_rows[0]
            count, (p50, p99) = row
            result[entity] = {
                "rows": count,
                "p50_seconds": round(p50, 3),
                "p99_seconds": round(p99, 3),
            }
    finally:
        warehouse.close()

    return result


def reconcile(settings: Any, appended: int) -> dict[str, Any]:
    from pikcha.entrypoints.container import make_warehouse

    warehouse = make_warehouse(settings)
    try:
        layers = warehouse.reconcile()
    finally:
        warehouse.close()
    raw = sum(part.raw for part in layers.values())
    entities = {
        entity.value: {
            "raw": part.raw,
            "clean": part.clean,
            "rejected": part.rejected,
            "repeated": part.repeated,
            "superseded": part.superseded,
            "balanced": part.balanced,
        }
        for entity, part in layers.items()
    }

    return {
        "appended": appended,
        "raw": raw,
        "every_event_once": raw == appended,
        "entities": entities,
        "holds": raw == appended and all(part.balanced for part in layers.values()),
    }


def soak(options: argparse.Namespace, home: Path) -> dict[str, Any]:
    from pikcha.entrypoints.settings import Settings

    env = os.environ | {"PIKCHA_HOME": str(home)}
    settings = Settings(home=home)
    pikcha = str(Path(sys.executable).with_name("pikcha"))
    streaming = start(
        [pikcha, "stream", "--follow"],
        env,
        home / "stream.log",
    )
    time.sleep(2)  # the projector opens the warehouse first
    generating = start(
        [
            *(pikcha, "generate", "--follow", "--seed", str(options.seed)),
            *("--rate", str(options.rate)),
        ],
        env,
        home / "generate.log",
    )
    counter = Counter(settings)
    samples: list[dict[str, Any]] = []
    began = time.monotonic()
    deadline = began + options.minutes * 60
    try:
        while time.monotonic() < deadline:
            if streaming.poll() is not None or generating.poll() is not None:
                raise SystemExit(f"a process ended early; see the logs in {home}")
            samples.append(
                {
                    "t": round(time.monotonic() - began, 2),
                    "appended": counter.appended(),
                    "committed": counter.committed(),
                    "rss_mib": rss_mib(streaming.pid),
                }
            )
            time.sleep(1)
        generator_code = stop(generating, 30)
        appended = counter.appended()
        caught_up = False
        drain_deadline = time.monotonic() + options.drain_minutes * 60
        while time.monotonic() < drain_deadline:
            committed = counter.committed()
            if committed >= appended:
                caught_up = True
                break
            time.sleep(1)
        drained_after = round(time.monotonic() - deadline, 1)
    finally:
        stop(generating, 30)
        stream_code = stop(streaming, 120)
        counter.close()

    memory = [sample["rss_mib"] for sample in samples if sample["rss_mib"]]
    warm = [sample["rss_mib"] for sample in samples if sample["t"] >= 60] or memory
    lags = [sample["appended"] - sample["committed"] for sample in samples]
    figures: dict[str, Any] = {
        "minutes": options.minutes,
        "rate_asked": options.rate,
        "appended": appended,
        "appended_per_second": per_minute(samples, "appended"),
        "projected_per_second": per_minute(samples, "committed"),
        "lag_events": {
            "max": max(lags, default=0),
            "last_minute_max": max(lags[-60:], default=0),
        },
        "caught_up": caught_up,
        "drain_seconds": drained_after,
        "projector_rss_mib": {
            "start": warm[0] if warm else None,
            "peak": max(memory, default=None),
            "end": memory[-1] if memory else None,
            "peak_per_minute": peak_per_minute(samples),
        },
        "exit_codes": {"generate": generator_code, "stream": stream_code},
    }
    (home / "samples.json").write_text(json.dumps(samples), encoding="utf-8")
    figures["freshness"] = freshness(settings)
    figures["reconciliation"] = reconcile(settings, appended)

    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--drain-minutes",
        type=float,
        default=10.0,
        help="How long the projector may take to catch up after the generator.",
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="Keep the run here (default: temp)."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    options = parser.parse_args()

    figures: dict[str, Any] = machine()
    if options.home:
        options.home.mkdir(parents=True, exist_ok=True)
        figures |= soak(options, options.home.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="pikcha-soak-") as name:
            figures |= soak(options, Path(name))
    write_figures(figures, options.out)

    return 0 if figures["caught_up"] and figures["reconciliation"]["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
