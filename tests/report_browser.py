"""Render a report in headless Chromium: did every image load, does anything overflow?

Used by the report tests; skips (with the reason) when ``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

# Appended to a copy of the page: after load, write what we need to know into the DOM.
PROBE = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var result = {
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    overflow: document.documentElement.scrollWidth > window.innerWidth
  };
  var pre = document.createElement('pre');
  pre.id = 'render-probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


def chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip(
        "headless Chromium not installed (apt-get install -y chromium) — render test skipped"
    )


def _run(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def probe(index_html: Path, *, width: int = 1280, height: int = 900) -> dict[str, object]:
    """Load ``index_html`` (plus the probe script) and return the probe's measurements."""
    page = index_html.read_text()
    probed = index_html.with_name("_render_probe.html")
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    try:
        done = _run(
            [
                f"--window-size={width},{height}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probed.as_uri(),
            ]
        )
    finally:
        probed.unlink(missing_ok=True)
    match = re.search(r'<pre id="render-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"probe did not run; chromium said: {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


def screenshot(index_html: Path, out_png: Path, *, width: int = 1280, height: int = 2400) -> Path:
    """Save a screenshot of the top of the page."""
    done = _run([f"--window-size={width},{height}", f"--screenshot={out_png}", index_html.as_uri()])
    assert out_png.is_file(), f"no screenshot; chromium said: {done.stderr[-2000:]}"
    return out_png
