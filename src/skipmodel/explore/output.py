"""Write the views: PNG + CSV per view, the summary and the gallery, each file atomically."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skipmodel.explore import drawing, gallery
from skipmodel.explore.options import ExploreOptions
from skipmodel.explore.passes import Results, compute, store_sources
from skipmodel.explore.summary import Summary, build_summary
from skipmodel.explore.tables import CalendarTables
from skipmodel.store.layout import atomic_write_json, atomic_write_text, open_store


@dataclass(frozen=True)
class ExploreOutput:
    """What was written: the gallery, and per view its image and table files."""

    index: Path
    images: dict[str, Path]
    tables: dict[str, list[Path]]
    summary: Summary


def write_outputs(
    results: Results,
    out_dir: str | os.PathLike[str],
    manifest: dict[str, Any],
    early: drawing.EarlyViews | None = None,
) -> ExploreOutput:
    """Render every requested view of ``results`` into ``out_dir`` (those of ``early`` are
    being drawn by a worker already)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(results, manifest, CalendarTables.build(results.log.calendar))
    entries, images, table_files = [], {}, {}
    for drawn in drawing.draw_views(results, out, early):
        images[drawn.name], table_files[drawn.name] = drawn.image, list(drawn.tables)
        entries.append(
            gallery.Entry(
                drawn.name,
                drawn.title,
                drawn.caption,
                drawn.image.name,
                tuple(p.name for p in drawn.tables),
            )
        )
    lines = summary.lines()
    atomic_write_text(out / "summary.txt", "\n".join(lines) + "\n")
    atomic_write_json(
        out / "summary.json",
        {**dataclasses.asdict(summary), "options": dataclasses.asdict(results.options)},
    )
    index = out / "index.html"
    atomic_write_text(index, gallery.render(entries, lines))
    return ExploreOutput(index, images, table_files, summary)


def explore(
    store: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: ExploreOptions | None = None,
    *,
    progress: bool = False,
) -> ExploreOutput:
    """Compute the views from a store and write them to ``out_dir``.

    Parameters
    ----------
    store : path
        A store written by ``skipmodel ingest``.
    out_dir : path
        Directory for the PNGs, CSVs, ``summary.txt``/``summary.json`` and ``index.html``.
    options : ExploreOptions
        Views, skip definition, features and binning.

    Returns
    -------
    ExploreOutput
    """
    options = options or ExploreOptions()
    drawing.warm_up(options)  # worker start-up overlaps the passes
    layout = open_store(store)
    manifest = layout.read_manifest()
    early = drawing.EarlyViews(out_dir)  # the track views, drawn while the log is read
    results = compute(
        store_sources(layout.root, options), options, progress=progress, on_tracks=early.start
    )
    return write_outputs(results, out_dir, manifest, early)
