"""The ``pikcha`` command end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PIKCHA = [sys.executable, "-m", "pikcha.entrypoints.cli"]


def pikcha(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PIKCHA_")
    }
    # ClickHouse SQL computes the features here: starting Spark's JVM for
    # every command would only add time (Spark is proven in its own tests).
    environment.setdefault("PIKCHA_FEATURES", "clickhouse")
    environment.update(env)

    return subprocess.run(
        [*PIKCHA, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "command",
    [
        "generate",
        "load",
        "publish",
        "stream",
        "features",
        "check",
        "replay",
        "run",
        "grafana",
        "report",
    ],
)
def test_every_command_has_help(tmp_path: Path, command: str) -> None:
    """``--help`` works on every command."""
    result = pikcha(tmp_path, command, "--help")

    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_run_on_embedded_defaults_prints_a_summary_and_leaves_outputs(
    tmp_path: Path,
) -> None:
    """``pikcha run`` goes through every stage and exports the features."""
    result = pikcha(
        tmp_path,
        "run",
        "--seed",
        "7",
        "--now",
        "2025-09-30T12:00:00",
        "--as-of",
        "2025-09-30",
        "--repeated",
        "0.05",
        "--nulls",
        "0.02",
        "--future-dates",
        "0.02",
        "--negative-prices",
        "0.02",
        "--broken-totals",
        "0.02",
    )

    assert result.returncode == 0, result.stderr
    for stage in (
        "generate",
        "load",
        "publish",
        "project",
        "marts",
        "features",
        "quality",
    ):
        assert stage in result.stdout
    objects = tmp_path / "var" / "objects" / "features"
    assert (objects / "analytic_result_2025_09_30.csv").is_file()
    assert (objects / "analytic_result_2025_09_30.parquet").is_file()
    manifest = json.loads(
        (objects / "analytic_result_2025_09_30.manifest.json").read_text()
    )
    assert manifest["rows"] > 0
    assert list((tmp_path / "var" / "objects" / "quality").glob("*.json"))


def test_a_wrong_url_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """A bad setting names the variable and the fix, with no traceback."""
    result = pikcha(tmp_path, "publish", PIKCHA_EVENT_LOG="nosuch://x")

    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("pikcha:")]
    assert any("PIKCHA_EVENT_LOG" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_a_bad_date_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """``--as-of`` that is not a date says how to write one."""
    result = pikcha(tmp_path, "features", "--as-of", "01.08.2025")

    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr
    assert not (tmp_path / "var").exists()


def test_load_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    """``pikcha load`` of a folder that is not there says so."""
    result = pikcha(tmp_path, "load", str(tmp_path / "nowhere"))

    assert result.returncode == 2
    assert "nowhere" in result.stderr


def test_live_generation_and_following_projection_stop_cleanly(tmp_path: Path) -> None:
    """``generate --follow`` publishes while ``stream --follow`` projects; on
    SIGINT both finish their batch and every published event is projected."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    env["PIKCHA_HOME"] = str(tmp_path / "var")
    options: dict[str, object] = {
        "cwd": tmp_path,
        "env": env,
        "text": True,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    producer = subprocess.Popen(
        [*PIKCHA, "generate", "--follow", "--rate", "400"],
        **options,  # type: ignore[call-overload]
    )
    time.sleep(3)
    consumer = subprocess.Popen(
        [*PIKCHA, "stream", "--follow", "--marts-every", "1"],
        **options,  # type: ignore[call-overload]
    )
    time.sleep(6)
    producer.send_signal(signal.SIGINT)
    produced, _ = producer.communicate(timeout=60)
    time.sleep(3)
    consumer.send_signal(signal.SIGINT)
    consumed, errors = consumer.communicate(timeout=120)

    assert producer.returncode == 0 and consumer.returncode == 0, errors
    published = int(produced.split()[1])
    assert published > 400
    assert f"projected {published} events" in consumed
    builds = [
        json.loads(line)
        for line in errors.splitlines()
        if line.startswith("{") and '"marts_built"' in line
    ]
    assert builds, errors
    # Each rebuild is followed by at least ten times its own duration.
    assert all(b["next_in"] >= max(1.0, 10 * b["seconds"]) - 0.1 for b in builds)


def test_generate_with_a_seed_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    """``pikcha generate --seed 7`` writes the shop's volumes, identically twice."""
    first = pikcha(tmp_path, "generate", "--seed", "7", "--out", "a")
    second = pikcha(tmp_path, "generate", "--seed", "7", "--out", "b")
    assert first.returncode == 0 and second.returncode == 0, second.stderr

    def tree(name: str) -> dict[str, bytes]:
        root = tmp_path / name
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*.json"))
        }

    a, b = tree("a"), tree("b")
    assert a == b
    counts = {
        folder: sum(1 for key in a if key.startswith(folder + "/"))
        for folder in ("stores", "products", "customers", "purchases")
    }
    assert counts["stores"] == 45
    assert counts["products"] >= 20
    assert counts["customers"] >= 45
    assert counts["purchases"] >= 200
