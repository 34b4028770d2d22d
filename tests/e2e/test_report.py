"""``pikcha report`` end to end: a warehouse with generated data, the command,
and the page opened in headless Chromium."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pikcha.adapters.clickhouse.warehouse import ClickHouseWarehouse
from pikcha.adapters.local_objects import LocalObjectStore
from pikcha.application.generate import GeneratorConfig, write_jsonl
from pikcha.application.report import REPORT_KEY, ReportData, render_report
from pikcha.domain.quality import TableMetrics
from pikcha.testing import memory_pipeline

NOW = datetime.now().replace(microsecond=0)
CHARTS = {
    "store-sales",
    "top-products",
    "daily-revenue",
    "daily-purchases",
    "customer-activity",
    "city-sales",
    "duplicate-share",
}
CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Report:
    home: Path
    page: Path
    html: str
    output: str


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """A home whose warehouse holds generated data, and ``pikcha report`` run on it."""
    root = tmp_path_factory.mktemp("report")
    home = root / "var"
    config = GeneratorConfig(seed=9, now=NOW, purchases=400, repeated=0.3)
    write_jsonl(config, root / "source")
    warehouse = ClickHouseWarehouse(f"chdb://{home / 'warehouse'}")
    try:
        pipeline = memory_pipeline(warehouse=warehouse)
        pipeline.load(root / "source")
        pipeline.publish()
        pipeline.publish(resend=True)
        pipeline.project()
        pipeline.build_marts()
        pipeline.check_quality()
    finally:
        warehouse.close()

    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIKCHA_")}
    environment["PIKCHA_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "pikcha.entrypoints.cli", "report"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page = home / "objects" / REPORT_KEY

    yield Report(home, page, page.read_text(encoding="utf-8"), result.stdout)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed; apt-get install chromium")

    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def screenshot(page: Path, folder: Path) -> bytes:
    shot = folder / f"{page.stem}.png"
    result = chromium(
        folder / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        page.as_uri(),
    )
    assert shot.is_file(), result.stderr

    return shot.read_bytes()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its image data inflates."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    position, image = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            image += data[position + 8 : position + 8 + length]
        position += 12 + length
    assert zlib.decompress(image)

    return width, height


class Marks(HTMLParser):
    """Counts, per chart's SVG, the elements drawn as marks (bars, lines, dots)."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, int] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.current = found.get("data-chart")
            if self.current is not None:
                self.charts[self.current] = 0
        elif self.current and "mark" in (found.get("class") or "").split():
            self.charts[self.current] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None


def test_the_command_puts_the_page_in_the_object_store(report: Report) -> None:
    """``pikcha report`` stores reports/pikcha-report.html as UTF-8 HTML, says where."""
    info = LocalObjectStore(report.home / "objects").stat(REPORT_KEY)

    assert info.content_type == "text/html; charset=utf-8"
    assert str(report.page) in report.output
    assert report.html.startswith("<!DOCTYPE html>")


def test_the_page_refers_to_nothing_outside_itself(report: Report) -> None:
    """No http:// or https:// reference, no script, no external stylesheet."""
    lowered = report.html.lower()

    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered and "<link" not in lowered
    assert "default-src 'none'" in report.html


def test_every_chart_renders_with_marks_in_chromium(
    report: Report, tmp_path: Path
) -> None:
    """Chromium's DOM holds every chart's SVG, each with at least one mark."""
    result = chromium(tmp_path / "profile", "--dump-dom", report.page.as_uri())
    marks = Marks()
    marks.feed(result.stdout)

    assert set(marks.charts) == CHARTS, result.stderr
    assert all(count > 0 for count in marks.charts.values()), marks.charts


def test_chromium_logs_no_console_error(report: Report, tmp_path: Path) -> None:
    """Loading the page logs no console error, CSP violation or uncaught error."""
    result = chromium(
        tmp_path / "profile",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        report.page.as_uri(),
    )
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]

    assert "</html>" in result.stdout
    assert console == []
    assert "Uncaught" not in result.stderr


def test_the_screenshot_is_not_blank(report: Report, tmp_path: Path) -> None:
    """The page's screenshot carries far more than a blank page's."""
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")

    shot = screenshot(report.page, tmp_path)
    empty = screenshot(blank, tmp_path)

    assert png_size(shot) == (1280, 2400)
    assert len(shot) > 10 * len(empty)


def test_data_text_is_escaped() -> None:
    """A store or table name with markup shows as text, never as markup."""
    hostile = "<script>alert('x')</script> & co"
    data = ReportData(
        generated_at=NOW,
        views={
            "v_store_sales": [
                {
                    "store_id": "s1",
                    "store_name": hostile,
                    "city": "<b>",
                    "purchases": 3,
                    "revenue": 10,
                }
            ],
        },
        quality=[TableMetrics(hostile, 4, 2, {"<rule>": 1})],
    )

    page = render_report(data)

    assert "<script>" not in page and "<b>" not in page and "<rule>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page


def test_an_empty_warehouse_gives_a_page_that_says_so() -> None:
    """With no rows anywhere, every chart says there is no data yet."""
    page = render_report(ReportData(generated_at=NOW, views={}))

    assert page.count("No data yet") == len(CHARTS)
    assert "<svg" not in page
