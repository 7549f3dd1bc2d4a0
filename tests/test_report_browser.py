"""The reports as a reader sees them: loaded in headless Chromium (Debian's `chromium`), every figure
decodes, the rendered text carries no Markdown marks, and a screenshot is kept for a person to look at.

Screenshots land in tests/artifacts/ (git-ignored); each test prints the path.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.claims_report import build_claims_report
from analysis.report import build_report
from analysis_fixtures import write_claims_fixture, write_synthetic_results

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (tests/run_all.sh installs it)")]
# No network, no first-run work, no sandbox (root in a container), a throwaway profile.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000")
# Injected into a copy of the page: after load, writes what the reader got into the DOM.
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {figures: imgs.length,
             loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
             text: document.body.innerText};
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.documentElement.appendChild(pre);
});
</script>"""


def chromium(args, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def browse(page: Path, tmp_path: Path, screenshot: Path) -> dict:
    """Load `page` in headless Chromium: {figures, loaded, text} as rendered; a screenshot saved."""
    probe_page = page.with_name(page.stem + "_probe.html")
    probe_page.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(["--dump-dom", probe_page.as_uri()], tmp_path / "profile-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no probe in the DOM Chromium dumped: {dom.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = chromium([f"--screenshot={screenshot}", "--window-size=1280,2600", page.as_uri()],
                    tmp_path / "profile-shot")
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    print(f"screenshot: {screenshot}")
    return result


def assert_reads_clean(result: dict) -> None:
    assert result["figures"] >= 1 and result["loaded"] == result["figures"]  # every figure decodes
    text = result["text"]
    for mark in ("**", "`", "| ---", "|---", "![", "]("):
        assert mark not in text, f"Markdown mark {mark!r} in the rendered text"


def test_claims_report_in_a_browser(tmp_path):
    root = tmp_path / "results"
    write_claims_fixture(root)
    _, html_path = build_claims_report(root, tmp_path / "claims", n_boot=40)
    result = browse(html_path, tmp_path, ARTIFACTS / "claims_report.png")
    assert_reads_clean(result)
    assert "Summary" in result["text"] and "reproduced" in result["text"]


def test_quickstart_report_in_a_browser(tmp_path):
    write_synthetic_results(tmp_path / "results")
    _, html_path = build_report(tmp_path / "results", tmp_path / "report", xs=["n_params", "flops_forward"],
                                n_boot=40, progress=None)
    result = browse(html_path, tmp_path, ARTIFACTS / "quickstart_report.png")
    assert_reads_clean(result)
    text = result["text"]
    assert text.index("Summary") < text.index("Setup") < text.index("Budget per family")
    assert "outside the measured range" in text
