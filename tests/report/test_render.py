"""Rendered HTML: snapshots of the recorded fixtures, escaping of hostile strings, self-containment."""

from __future__ import annotations

import re
from pathlib import Path

from harness.report import html as report
from harness.results.store import RunData
from tests.snapshot import check_snapshot

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"

XSS = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(2)>'
HOSTILE = XSS + XSS_ATTR


def test_run_report_snapshot(current_run: RunData, earlier_run: RunData, tmp_path: Path) -> None:
    path = report.render_run_report(current_run, tmp_path, [earlier_run])
    assert path == tmp_path / current_run.run_id / "index.html"
    html = path.read_text(encoding="utf-8")
    check_snapshot(SNAPSHOTS / "run_report.html", html)
    again = report.render_run_html(current_run, [earlier_run])
    assert again == html  # deterministic


def test_site_index_snapshot(current_run: RunData, earlier_run: RunData, tmp_path: Path) -> None:
    path = report.render_site_index(tmp_path, [earlier_run, current_run])
    html = path.read_text(encoding="utf-8")
    check_snapshot(SNAPSHOTS / "site_index.html", html)
    assert html.index(current_run.run_id) < html.index(earlier_run.run_id)  # newest first
    assert f'href="{current_run.run_id}/index.html"' in html


def test_report_content(current_run: RunData, earlier_run: RunData) -> None:
    html = report.render_run_html(current_run, [earlier_run])
    assert (
        "tf2.21-py3.11 is 1.09\u00d7 [1.03, 1.14] slower than tf2.15-py3.11 "
        "(step time; the whole 95% CI is beyond the \u00b13% margin)" in html
    )
    # cnn_fit: 3 windows per execution at warm-up 50 / window 100 over 2 epochs of 235 steps, as the payload
    assert "tf2.21-py3.11 is 1.07\u00d7 [1.04, 1.16] faster than tf2.15-py3.11" in html
    assert "0 slower, 0 faster, 0 same within \u00b13%, 2 inconclusive" in html
    assert "Unit of replication: the execution" in html and 'id="methods-summary"' in html
    assert "1 contended execution(s) in 1 cell(s), excluded from every statistic and verdict" in html
    assert "1 contended execution(s) excluded" in html and 'id="no-contended"' not in html
    assert "baseline tf1.15-gpu has no ok cells" in html  # fallback is stated
    assert "registry unreachable: " in html
    assert "ValueError: Unrecognized data type" in html  # failed cell log tail
    assert "timeout" in html and "timed out after 900 s (killed)" in html
    # the planner's reason for a TF 2.x-only mode, not the registry's
    assert "unsupported: mode &#39;eager&#39; needs TF 2.x" in html
    assert "TF 2.15.1 · tf1-graph API" in html
    # the public-record section quotes claims about real TF 1.15 (external figures, not this run's)
    start = html.index('<h2 id="public-record">')
    rest = html[:start] + html[html.index("<h2", start + 10) :]
    for declared in ("TF 1.15.5 (declared; not run)", "TF 1.15.5 ·", "has TF 1.15.5)"):  # never as measured
        rest = rest.replace(declared, "")
    assert "TF 1.15" not in rest
    assert "quality differs from baseline: speed comparison suspect" in html
    assert "not available" in html  # GPU peak
    assert "<details><summary>pip freeze" in html
    assert "harness run matrix.yaml --profile fixture --repeats 3" in html
    assert "baseline: tf1.15-gpu" in html  # matrix text
    assert html.count("<svg") >= 4  # 3 speed charts + phases (+ trends)
    assert 'class="ci"' in html  # CI error bars
    assert "regression" in html and 'id="history"' in html
    assert "⚠" in html and "outlier" in html


def test_self_contained(current_run: RunData, earlier_run: RunData) -> None:
    html = report.render_run_html(current_run, [earlier_run])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    assert "<script src" not in html


def _poison(run: RunData) -> RunData:
    run.manifest["matrix_text"] = "images: " + HOSTILE
    run.manifest["command"] = "harness run " + HOSTILE
    run.manifest["profile"] = HOSTILE
    for rec in run.records:
        cell = rec["cell"]
        if cell["image"] == "tf2.21-py3.11":
            cell["image"] = "tf2.21" + HOSTILE
        cell["params"]["note"] = HOSTILE
        if rec["status"] != "ok":
            rec["reason"] = "boom " + HOSTILE
            rec["log_tail"] = "Traceback\n" + HOSTILE
        else:
            payload = rec["payload"]
            payload["runtime"]["packages"][HOSTILE] = HOSTILE
            payload["runtime"]["cpu_model"] = HOSTILE
            payload["memory"]["gpu_peak_note"] = HOSTILE
    return run


def _assert_escaped(html: str) -> None:
    assert XSS not in html
    assert "<img" not in html
    assert "onerror=alert(2)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html or "&quot;&gt;&lt;img" in html
    scripts = re.findall(r"<script>", html)
    assert len(scripts) == 1  # only the sorting script of the template


def test_hostile_strings_are_escaped(fresh_current: RunData, earlier_run: RunData, tmp_path: Path) -> None:
    run = _poison(fresh_current)
    html = report.render_run_report(run, tmp_path, [earlier_run]).read_text(encoding="utf-8")
    _assert_escaped(html)
    # and inside SVG text (chart labels carry the image name)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert any("tf2.21&lt;script&gt;" in s for s in svgs)
    for svg in svgs:
        assert XSS not in svg and "<img" not in svg


def test_hostile_run_id_in_site_index(fresh_current: RunData, tmp_path: Path) -> None:
    run = _poison(fresh_current)
    run.manifest["run_id"] = "../../" + HOSTILE
    out = report.render_run_report(run, tmp_path)
    assert out.parent.parent == tmp_path  # no path traversal
    html = report.render_site_index(tmp_path, [run]).read_text(encoding="utf-8")
    _assert_escaped(html)


def test_no_safe_filter_in_templates() -> None:
    templates = Path(report.__file__).parent / "templates"
    for path in templates.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), path
        assert "autoescape false" not in text, path
    assert report.environment().autoescape is True
