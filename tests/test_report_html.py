"""The HTML report is self-contained, navigable, and renders in a real browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from report_browser import probe, screenshot  # noqa: E402
from skipmodel.report.html import Banner, Figure, Paragraph, Section, Table, write_html  # noqa: E402


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if a.get("href"):
            self.hrefs.append(str(a["href"]))
        if a.get("src"):
            self.srcs.append(str(a["src"]))


def check_self_contained(index: Path) -> _Links:
    """No http(s) anywhere in src/href, every in-page link has its anchor, images are data URIs."""
    text = index.read_text()
    links = _Links()
    links.feed(text)
    remote = [u for u in links.hrefs + links.srcs if re.match(r"^(https?:)?//", u)]
    assert not remote, f"remote resources: {remote[:5]}"
    assert not re.search(r"@import|url\(\s*['\"]?https?:", text)
    assert all(s.startswith("data:image/png;base64,") for s in links.srcs)
    internal = [h[1:] for h in links.hrefs if h.startswith("#")]
    assert internal, "no table of contents links"
    missing = [h for h in internal if h not in links.ids]
    assert not missing, f"TOC anchors without a target: {missing}"
    return links


def _png(tmp: Path, name: str, width: float = 8.0) -> Path:
    fig, ax = plt.subplots(figsize=(width, 3))
    ax.plot(np.arange(10), np.arange(10) ** 0.5)
    ax.set_title(name)
    path = tmp / f"{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@pytest.fixture
def demo_page(tmp_path: Path) -> Path:
    wide = pd.DataFrame(
        np.random.default_rng(0).normal(size=(30, 25)), columns=[f"column_{i}" for i in range(25)]
    )
    sections = [
        Section(
            "Diagnostics",
            (Table(wide, "A deliberately wide table: it must scroll in its own box."),),
            subsections=(
                Section(
                    "Trace plots", (Figure(_png(tmp_path, "trace", 16), "Trace of x; 4 chains."),)
                ),
            ),
        ),
        Section(
            "Effects",
            (
                Paragraph("Effects on the probability scale."),
                Figure(_png(tmp_path, "effect"), "An effect."),
            ),
        ),
        Section("Effects", (Paragraph("Same title twice gets a distinct anchor."),)),
    ]
    preamble = (Banner(False, "Do not trust this fit yet", ("R-hat: intercept 1.3",)),)
    return write_html(tmp_path / "out" / "index.html", "Test report", sections, preamble=preamble)


def test_html_is_self_contained_with_working_toc(demo_page: Path) -> None:
    links = check_self_contained(demo_page)
    assert len(links.srcs) == 2
    text = demo_page.read_text()
    assert text.index("Do not trust this fit yet") < text.index('<nav class="toc"')
    assert {"effects", "effects-2", "diagnostics-trace-plots"} <= links.ids


def test_html_escapes_text(tmp_path: Path) -> None:
    page = write_html(
        tmp_path / "i.html", "a <b> & c", [Section("<script>x</script>", (Paragraph("1 < 2"),))]
    )
    text = page.read_text()
    assert "<script>x" not in text and "&lt;script&gt;" in text and "1 &lt; 2" in text


def test_html_renders_in_chromium(demo_page: Path, tmp_path: Path) -> None:
    result = probe(demo_page, width=1000)
    assert result["images"] == 2
    assert result["broken"] == 0, result
    assert result["overflow"] is False, result
    shot = screenshot(demo_page, tmp_path / "shot.png", width=1000, height=1200)
    assert shot.stat().st_size > 10_000


def test_render_probe_catches_broken_images_and_overflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
        '<div style="width:3000px">too wide</div></body></html>'
    )
    result = probe(bad, width=1000)
    assert result["broken"] == 1
    assert result["overflow"] is True
