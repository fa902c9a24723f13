"""report.html in a real headless browser (Debian's chromium): it loads with no console
messages, its charts are in the DOM as SVG paths, and a screenshot is not blank."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from harness.analysis.load import load_run
from harness.analysis.report import write_report
from tests.harness.analysis.rundirs import make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("browser") / "run"
    make_run(run_dir)
    return write_report(load_run(run_dir))["html"]


def _chromium(profile: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


class _SvgCounter(HTMLParser):
    """Counts <svg> elements and the <path> elements inside each."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[int] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self._depth += 1
            if self._depth == 1:
                self.paths.append(0)
        elif tag == "path" and self._depth:
            self.paths[-1] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._depth -= 1


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def test_loads_without_console_messages_and_charts_are_in_the_dom(
    report_html: Path, tmp_path: Path
) -> None:
    done = _chromium(tmp_path / "profile", ["--dump-dom", report_html.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    dom = done.stdout
    assert "Run report: run" in dom
    counter = _SvgCounter()
    counter.feed(dom)
    assert len(counter.paths) == 5, counter.paths
    assert all(n >= 10 for n in counter.paths), counter.paths  # lines, axes, bands, ticks


def test_screenshot_is_not_blank(report_html: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    done = _chromium(
        tmp_path / "profile",
        [f"--screenshot={png}", "--window-size=1280,3000", report_html.as_uri()],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_lines(done.stderr) == []
    pixels = image.imread(str(png))
    assert pixels.shape[0] >= 2900 and pixels.shape[1] >= 1200
    rgb = (pixels[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])
    assert len(colours) > 200, "too few colours: the page or its charts did not draw"
    non_white = (rgb < 245).any(axis=1).mean()
    assert non_white > 0.05, f"only {non_white:.1%} of the screenshot is not white"
    # The charts' area (below the tables at the top) holds coloured lines, not only greys.
    chart_band = (pixels[600:1800, :, :3] * 255).astype(np.int16)
    saturated = (chart_band.max(axis=2) - chart_band.min(axis=2)) > 60
    assert saturated.mean() > 0.002
