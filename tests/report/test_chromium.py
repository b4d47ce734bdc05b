"""The rendered fixture report in real headless Chromium: no console errors, JS initialised, content there."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import html as report
from harness.results.store import RunData
from tests.report.chromium import CHROMIUM, console_errors, run_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


@pytest.fixture(scope="module")
def rendered(current_run: RunData, earlier_run: RunData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    report.render_site_index(out, [earlier_run, current_run])
    return report.render_run_report(current_run, out, [earlier_run])


def test_dom_and_noconsole_errors(rendered: Path, tmp_path: Path) -> None:
    proc = run_chromium(["--dump-dom", rendered.as_uri()], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'data-ready="1"' in dom, "sorting script did not initialise"
    assert console_errors(proc.stderr) == []
    assert "slower than tf2.15-py3.11 (step time" in dom
    assert "<svg" in dom and 'class="ci"' in dom
    for table in ("speed-table", "comparison-table", "memory-table", "problem-table"):
        assert f'id="{table}"' in dom


def test_console_error_detection_works(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><body><script>undefinedFunction();</script></body>")
    proc = run_chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert console_errors(proc.stderr), "the harness would not notice a console error"


def test_screenshot(rendered: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = run_chromium([f"--screenshot={shot}", "--window-size=1280,2400", rendered.as_uri()], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    assert shot.stat().st_size > 50_000
