"""One self-contained ``index.html``: headings, a table of contents, figures with captions.

A report is a list of :class:`Section` objects holding blocks (:class:`Paragraph`,
:class:`Banner`, :class:`Figure`, :class:`Table`, nested sections). Images are embedded as
base64 ``data:`` URIs, styles are inline, and nothing is fetched from anywhere: the file can be
mailed, archived or opened offline. Wide tables scroll inside their own box so the page never
overflows horizontally; images scale down to the page width.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skipmodel.store.layout import atomic_write_text

__all__ = ["Banner", "Figure", "Paragraph", "Section", "Table", "render_html", "write_html"]


@dataclass(frozen=True)
class Paragraph:
    """Plain text (escaped); ``html_text`` is trusted markup we generated ourselves."""

    text: str = ""
    html_text: str = ""


@dataclass(frozen=True)
class Banner:
    """The trust banner at the top: green when ``ok``, red otherwise, with detail lines."""

    ok: bool
    headline: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Figure:
    """A PNG (file path or bytes) with a caption saying what it shows and on how much data."""

    image: Path | bytes
    caption: str
    alt: str = ""

    def png_bytes(self) -> bytes:
        return self.image if isinstance(self.image, bytes) else Path(self.image).read_bytes()


@dataclass(frozen=True)
class Table:
    """A data frame shown as an HTML table (first ``max_rows`` rows) with a caption."""

    frame: pd.DataFrame
    caption: str
    max_rows: int = 200
    float_format: str = "{:.4g}"


Block = Paragraph | Banner | Figure | Table


@dataclass(frozen=True)
class Section:
    """A heading with its blocks and optional subsections (one level of nesting in the TOC)."""

    title: str
    blocks: tuple[Block, ...] = ()
    subsections: tuple[Section, ...] = field(default_factory=tuple)


CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 1.5rem 4rem;line-height:1.45;color:#1d1d1f;overflow-wrap:anywhere}
h1{font-size:1.7rem;margin-top:.5rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}
nav.toc{background:#f6f7f9;border:1px solid #e1e4e8;border-radius:6px;padding:.6rem 1.2rem}
nav.toc ul{margin:.2rem 0;padding-left:1.2rem}nav.toc>ul{padding-left:.6rem}
.banner{border-radius:6px;padding:.8rem 1.1rem;margin:1rem 0;border:1px solid}
.banner.ok{background:#e8f6ec;border-color:#55a868;color:#114d22}
.banner.bad{background:#fdecea;border-color:#c44e52;color:#6b1014}
.banner strong{font-size:1.05rem}.banner ul{margin:.4rem 0 0;padding-left:1.2rem}
figure{margin:1.2rem 0;padding:0}figure img{max-width:100%;height:auto;display:block;border:1px solid #eee}
figcaption{font-size:.92rem;color:#444;margin-top:.35rem}
.tablewrap{overflow-x:auto;max-width:100%;margin:1rem 0}
table{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e5e5;padding:.2rem .55rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f6f7f9;position:sticky;top:0}
caption{caption-side:bottom;text-align:left;font-size:.88rem;color:#444;padding-top:.3rem;white-space:normal}
p.note{color:#555;font-size:.9rem}
"""


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def _table_html(table: Table) -> str:
    frame = table.frame.head(table.max_rows)

    def fmt(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else table.float_format.format(value)
        return html.escape(str(value))

    index_name = html.escape(str(frame.index.name or ""))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        f"<tr><td>{html.escape(str(idx))}</td>"
        + "".join(f"<td>{fmt(v)}</td>" for v in row)
        + "</tr>"
        for idx, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    )
    more = len(table.frame) - len(frame)
    caption = html.escape(table.caption) + (
        f" (first {len(frame)} of {len(table.frame)} rows)" if more > 0 else ""
    )
    return (
        f'<div class="tablewrap"><table><caption>{caption}</caption>'
        f"<thead><tr><th>{index_name}</th>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _block_html(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{block.html_text or html.escape(block.text)}</p>"
    if isinstance(block, Banner):
        kind = "ok" if block.ok else "bad"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in block.lines)
        return (
            f'<div class="banner {kind}" role="status"><strong>{html.escape(block.headline)}</strong>'
            + (f"<ul>{items}</ul>" if items else "")
            + "</div>"
        )
    if isinstance(block, Figure):
        data = base64.b64encode(block.png_bytes()).decode("ascii")
        alt = html.escape(block.alt or block.caption.split(".")[0])
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Table):
        return _table_html(block)
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(
    title: str,
    sections: Sequence[Section],
    *,
    preamble: Sequence[Block] = (),
    footer: str = "",
) -> str:
    """The whole page as a string: title, ``preamble`` blocks (banners), TOC, sections."""
    taken: set[str] = set()
    toc_items: list[str] = []
    body: list[str] = []
    for section in sections:
        anchor = _slug(section.title, taken)
        sub_toc: list[str] = []
        body.append(f'<section><h2 id="{anchor}">{html.escape(section.title)}</h2>')
        body.extend(_block_html(b) for b in section.blocks)
        for sub in section.subsections:
            sub_anchor = _slug(f"{section.title} {sub.title}", taken)
            sub_toc.append(f'<li><a href="#{sub_anchor}">{html.escape(sub.title)}</a></li>')
            body.append(f'<h3 id="{sub_anchor}">{html.escape(sub.title)}</h3>')
            body.extend(_block_html(b) for b in sub.blocks)
        body.append("</section>")
        nested = f"<ul>{''.join(sub_toc)}</ul>" if sub_toc else ""
        toc_items.append(f'<li><a href="#{anchor}">{html.escape(section.title)}</a>{nested}</li>')
    toc = f'<nav class="toc" aria-label="Contents"><strong>Contents</strong><ul>{"".join(toc_items)}</ul></nav>'
    head = "".join(_block_html(b) for b in preamble)
    foot = f'<p class="note">{html.escape(footer)}</p>' if footer else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{head}{toc}{''.join(body)}{foot}</body></html>\n"
    )


def write_html(path: str | Path, title: str, sections: Sequence[Section], **kwargs: object) -> Path:
    """Render and write atomically; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, render_html(title, sections, **kwargs))  # type: ignore[arg-type]
    return target
