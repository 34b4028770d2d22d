"""Wrong input on the command line: one line that names the problem and the
fix, exit code 2, and nothing written anywhere.

Commands run in this process through click's runner; each case starts from an
empty ``PIKCHA_HOME`` and an empty working folder and checks they stay empty.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pikcha.entrypoints.cli import main


@dataclass(frozen=True)
class Place:
    cwd: Path
    home: Path
    source: Path
    file: Path

    def fill(self, args: list[str]) -> list[str]:
        return [arg.format(source=self.source, file=self.file) for arg in args]


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    """Empty folders to run in, and no setting or key from the environment."""
    for name in list(os.environ):
        if name.startswith(("PIKCHA_", "AWS_")):
            monkeypatch.delenv(name)
    folders = [tmp_path / name for name in ("cwd", "home", "source")]
    for folder in folders:
        folder.mkdir()
    file = tmp_path / "file"
    file.write_text("a file, not a folder\n")
    monkeypatch.chdir(folders[0])
    handlers = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    yield Place(*folders, file)
    for number, handler in handlers.items():
        signal.signal(number, handler)


def invoke(place: Place, args: list[str], **env: str) -> Result:
    return CliRunner().invoke(
        main, place.fill(args), env={"PIKCHA_HOME": str(place.home), **env}
    )


def assert_refused(result: Result, place: Place, *needles: str) -> str:
    """Exit code 2, nothing on stdout, nothing written; returns the error line."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert list(place.cwd.iterdir()) == []
    assert list(place.home.iterdir()) == []
    assert list(place.source.iterdir()) == []
    assert place.file.read_text() == "a file, not a folder\n"
    line = result.stderr.splitlines()[-1]
    for needle in needles:
        assert needle in line

    return line


COMMANDS = {
    "generate": ["generate", "--follow"],
    "load": ["load", "{source}"],
    "publish": ["publish"],
    "stream": ["stream"],
    "features": ["features"],
    "check": ["check"],
    "replay": ["replay"],
    "run": ["run"],
    "report": ["report"],
}

SETTINGS = {
    "a warehouse URL of no known scheme": (
        {"PIKCHA_WAREHOUSE": "bogus://x"},
        ["PIKCHA_WAREHOUSE=bogus://x", "chdb://"],
    ),
    "a Kafka URL without a host": (
        {"PIKCHA_EVENT_LOG": "kafka://"},
        ["PIKCHA_EVENT_LOG", "kafka://host:9092"],
    ),
    "an S3 bucket without keys": (
        {"PIKCHA_OBJECTS": "s3://bucket"},
        ["PIKCHA_OBJECTS=s3://bucket", "AWS_ACCESS_KEY_ID"],
    ),
    "a Telegram chat without the bot's token": (
        {"PIKCHA_NOTIFIER": "telegram://?chat_id=1"},
        ["PIKCHA_NOTIFIER", "set PIKCHA_TELEGRAM_TOKEN"],
    ),
    "an unknown feature engine": (
        {"PIKCHA_FEATURES": "nope"},
        ["PIKCHA_FEATURES='nope'", "'reference'"],
    ),
}

# generate --follow opens only the event log: object store and notifier
# settings do not concern it.
UNUSED = {("generate", "an S3 bucket without keys")} | {
    ("generate", "a Telegram chat without the bot's token")
}


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (command, problem)
        for command in COMMANDS
        for problem in SETTINGS
        if (command, problem) not in UNUSED
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_the_fix(
    place: Place, command: str, problem: str
) -> None:
    """Every command refuses a bad setting before it writes anything."""
    env, needles = SETTINGS[problem]

    result = invoke(place, COMMANDS[command], **env)

    line = assert_refused(result, place, *needles)
    assert result.stderr.splitlines() == [line]
    assert line.startswith("pikcha: error: ")


FLAGS = {
    "generate --now yesterday": (
        ["generate", "--out", "out", "--now", "yesterday"],
        ["--now 'yesterday'", "2025-08-01T12:00:00"],
    ),
    "generate --out below a file": (
        ["generate", "--out", "{file}/out", "--purchases", "1"],
        ["--out", "Not a directory", "give --out a folder"],
    ),
    "features --as-of 2025-13-01": (
        ["features", "--as-of", "2025-13-01"],
        ["--as-of '2025-13-01'", "YYYY-MM-DD"],
    ),
    "run --as-of 2025-13-01": (
        ["run", "--as-of", "2025-13-01"],
        ["--as-of '2025-13-01'", "YYYY-MM-DD"],
    ),
    "run --now yesterday": (
        ["run", "--now", "yesterday"],
        ["--now 'yesterday'", "2025-08-01T12:00:00"],
    ),
    "grafana --out below a file": (
        ["grafana", "--out", "{file}/grafana"],
        ["--out", "Not a directory", "give --out a folder"],
    ),
}


@pytest.mark.parametrize("case", FLAGS)
def test_a_bad_flag_value_is_one_line_naming_it_and_the_fix(
    place: Place, case: str
) -> None:
    """A date that is no date, or a folder that cannot be written, is refused."""
    args, needles = FLAGS[case]

    result = invoke(place, args)

    line = assert_refused(result, place, *needles)
    assert result.stderr.splitlines() == [line]
    assert line.startswith("pikcha: error: ")


USAGE = {
    "features --engine nope": (
        ["features", "--engine", "nope"],
        ["'--engine'", "'nope' is not one of 'reference'"],
    ),
    "load of a missing folder": (
        ["load", "{source}/missing"],
        ["'DIRECTORY'", "missing' does not exist"],
    ),
    "run --source of a missing folder": (
        ["run", "--source", "{source}/missing"],
        ["'--source'", "missing' does not exist"],
    ),
    "grafana --threshold 1.5": (
        ["grafana", "--threshold", "1.5"],
        ["'--threshold'", "0<=x<=1"],
    ),
}


@pytest.mark.parametrize("case", USAGE)
def test_a_usage_error_is_clicks_error_line(place: Place, case: str) -> None:
    """Values the options' types refuse end in click's one ``Error:`` line."""
    args, needles = USAGE[case]

    result = invoke(place, args)

    line = assert_refused(result, place, *needles)
    assert line.startswith("Error: Invalid value for ")


def test_a_setting_of_the_wrong_type_is_named_with_its_value(place: Place) -> None:
    """A value the settings refuse is shown with its variable and the fix."""
    result = invoke(place, ["publish"], PIKCHA_BATCH_SIZE="many")

    line = assert_refused(result, place, "PIKCHA_BATCH_SIZE='many'", "valid integer")
    assert result.stderr.splitlines() == [line]
