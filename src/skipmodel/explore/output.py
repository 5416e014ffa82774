"""Write the views: PNG + CSV per view, the summary and the gallery, each file atomically."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skipmodel.explore import drawing, gallery
from skipmodel.explore.availability import skipped_views
from skipmodel.explore.options import ExploreOptions
from skipmodel.explore.passes import Results, compute, store_sources
from skipmodel.explore.summary import Summary, build_summary
from skipmodel.explore.tables import CalendarTables
from skipmodel.explore.tasks import EngineTasks
from skipmodel.store.layout import atomic_write_json, atomic_write_text, open_store

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions


@dataclass(frozen=True)
class ExploreOutput:
    """What was written: the gallery, per view its image and table files, and the views not
    drawn with the reason (also in ``summary.skipped_views``)."""

    index: Path
    images: dict[str, Path]
    tables: dict[str, list[Path]]
    summary: Summary

    @property
    def skipped(self) -> dict[str, str]:
        return self.summary.skipped_views


def write_outputs(
    results: Results,
    out_dir: str | os.PathLike[str],
    manifest: dict[str, Any],
    early: drawing.EarlyViews | None = None,
) -> ExploreOutput:
    """Render every requested view of ``results`` into ``out_dir`` (those of ``early`` are
    being drawn by a worker already); a view the data cannot draw is listed, not drawn."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped = skipped_views(results)
    summary = build_summary(
        results, manifest, CalendarTables.build(results.log.calendar), skipped=skipped
    )
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
    atomic_write_text(index, gallery.render(entries, lines, skipped=skipped))
    return ExploreOutput(index, images, table_files, summary)


def explore(
    store: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: ExploreOptions | None = None,
    *,
    progress: bool = False,
    engine: EngineOptions | None = None,
) -> ExploreOutput:
    """Compute the views from a store and write them to ``out_dir``.

    Every file is written into a hidden folder inside ``out_dir`` and moved into place once all
    are written (the gallery last), so a run that fails leaves ``out_dir`` as it was. A view the
    data cannot draw (:mod:`.availability`) is listed, and files an earlier run wrote for it are
    removed.

    Parameters
    ----------
    store : path
        A store written by ``skipmodel ingest``.
    out_dir : path
        Directory for the PNGs, CSVs, ``summary.txt``/``summary.json`` and ``index.html``.
    options : ExploreOptions
        Views, skip definition, features and binning.
    engine : EngineOptions, optional
        Where the passes run: here (``local``, the default) or as tasks of a Spark cluster
        (one per track file and per bucket, :mod:`.tasks`); the figures are drawn here.

    Returns
    -------
    ExploreOutput
    """
    options = options or ExploreOptions()
    drawing.warm_up(options)  # worker start-up overlaps the passes
    layout = open_store(store)
    manifest = layout.read_manifest()
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".explore-", dir=out))
    early = drawing.EarlyViews(staging)  # the track views, drawn while the log is read
    try:
        sources = store_sources(layout.root, options)
        tasks = None
        if engine is not None and engine.name != "local":
            tasks = EngineTasks(engine, sources)
        results = compute(sources, options, progress=progress, on_tracks=early.start, tasks=tasks)
        return _publish(write_outputs(results, staging, manifest, early), staging, out)
    finally:
        early.wait()  # a worker still drawing must not write into a removed folder
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out.iterdir()):  # a failed run leaves no folder it made
            out.rmdir()


def _publish(written: ExploreOutput, staging: Path, out: Path) -> ExploreOutput:
    """Move the files of ``staging`` into ``out``, the gallery last, after removing the files
    an earlier run wrote for the views this one skipped."""
    for view in written.skipped:
        for pattern in (f"{view}.png", f"{view}.csv", f"{view}_*.csv"):
            for stale in out.glob(pattern):
                stale.unlink(missing_ok=True)
    files = sorted((p for p in staging.iterdir() if p.is_file()), key=lambda p: p == written.index)
    for path in files:
        os.replace(path, out / path.name)

    def moved(path: Path) -> Path:
        return out / path.name

    return ExploreOutput(
        moved(written.index),
        {view: moved(path) for view, path in written.images.items()},
        {view: [moved(path) for path in paths] for view, paths in written.tables.items()},
        written.summary,
    )
