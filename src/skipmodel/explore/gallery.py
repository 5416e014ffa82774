"""``index.html``: the summary, then every view's figure, caption and table links, and a note
for each view the data could not draw.

Self-contained: images and tables sit beside the page and are linked by relative path;
no script, stylesheet or font is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
.summary { background: #f4f4f4; padding: 0.8em 1.2em; border-radius: 4px; }
.summary p { margin: 0.3em 0; }
figure { margin: 2.5em 0; border-top: 1px solid #ddd; padding-top: 1em; }
figure img { max-width: 100%; height: auto; }
figcaption { margin-top: 0.5em; }
.tables { font-size: 0.9em; color: #555; }
.skipped { margin: 2.5em 0; border-top: 1px solid #ddd; padding-top: 1em; color: #555; }
"""


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    caption: str
    image: str
    tables: tuple[str, ...]


def render(
    entries: Sequence[Entry],
    summary_lines: Sequence[str],
    *,
    title: str = "skipmodel explore",
    skipped: Mapping[str, str] | None = None,
) -> str:
    """The page; ``skipped``: views not drawn, with the reason."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        '<section class="summary">',
        *(f"<p>{esc(line)}</p>" for line in summary_lines),
        "</section>",
    ]
    for e in entries:
        links = ", ".join(f'<a href="{esc(t)}">{esc(t)}</a>' for t in e.tables)
        parts += [
            f'<figure id="{esc(e.name)}">',
            f"<h2>{esc(e.title)}</h2>",
            f'<img src="{esc(e.image)}" alt="{esc(e.title)}">',
            f"<figcaption>{esc(e.caption)}</figcaption>",
            f'<p class="tables">Tables: {links}</p>',
            "</figure>",
        ]
    for name, reason in (skipped or {}).items():
        parts += [
            f'<section class="skipped" id="{esc(name)}">',
            f"<h2>{esc(name)}: not drawn</h2>",
            f"<p>{esc(reason)}.</p>",
            "</section>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
