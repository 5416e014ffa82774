"""``skipmodel ingest --engine spark``: input files and buckets as tasks of an engine.

The design rule of :mod:`skipmodel.engine`: Spark schedules skipmodel's own code. Each input
file is one task running the same parser and writer as the local engine
(:func:`skipmodel.ingest.staging.stage_file`), which stages its parts in the store; the driver
commits each staged source through the journal in the inputs' order (so the manifest lists them
as the local engine does). Then one task per bucket runs the local engine's merge and journaled
swap (:mod:`skipmodel.ingest.compact`) and checks the bucket's track ids against the track
table (the manifest's store-wide counts, summed on the driver). The store equals the local engine's on
the same inputs, recovery included: the driver alone writes commit journals, so a killed run
leaves staging folders without one, which the next run deletes, and compactions are journaled
per bucket as they are locally.

On a store under manifest commits (an object store) a task writes its file's parts in place,
named after its run, and the driver's commit is the manifest naming the run; a bucket's task
writes its compacted file and the driver names them all in the manifest. What a killed run's
tasks wrote is never named, so it is invisible, and the next run deletes it.

Spark reads whole files and cannot split a ``.tar.gz`` (a stream of members): archives are
refused with a one-line message saying to extract them or use the local engine.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.engine import EngineOptions, iter_tasks, run_tasks
from skipmodel.errors import SkipmodelError
from skipmodel.ingest.challenge import _column, known_tracks
from skipmodel.ingest.compact import CompactReport, _merge_bucket, _publish, record_compacted
from skipmodel.ingest.rules import RowLimits
from skipmodel.ingest.sources import ARCHIVE_SUFFIXES, CsvSource, SkippedInput
from skipmodel.ingest.staging import (
    FileTask,
    SourceReport,
    StagedSource,
    StoreTarget,
    commit_source,
    stage_file,
)
from skipmodel.load.tracks import TrackFeatures
from skipmodel.progress import Progress, forced_progress
from skipmodel.store.format import tracks_signature
from skipmodel.store.journal import recover_compactions
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import location_text, store_path
from skipmodel.store.user_columns import StoredColumn, log_schema, recorded_columns


def refuse_archives(paths: Sequence[Path]) -> None:
    """One line for an archive among the inputs (given, or inside a given folder)."""
    for path in paths:
        found = [path] if path.is_file() else []
        if path.is_dir():
            found = sorted(
                Path(root) / name
                for root, _, names in os.walk(path)
                for name in names
                if name.lower().endswith(ARCHIVE_SUFFIXES)
            )
        for candidate in found:
            if candidate.name.lower().endswith(ARCHIVE_SUFFIXES):
                raise SkipmodelError(
                    f"{candidate}: --engine spark reads .csv and .csv.gz files and folders of "
                    "them, not archives (Spark cannot split one); extract it (tar -xzf) and "
                    "give the folder, or use --engine local"
                )


def _nothing() -> Generator[StagedSource | SkippedInput]:
    yield from ()


def stage_on_engine(
    engine: EngineOptions,
    store: StoreTarget,
    inputs: Sequence[CsvSource | SkippedInput],
    bar: Progress,
    *,
    flush_rows: int,
    limits: RowLimits,
) -> Generator[SourceReport | SkippedInput]:
    """Stage every input file as a task and commit each on the driver, in the inputs' order.

    The store is opened (created, locked, recovered) before the first task, when any input is
    a CSV; skipped inputs pass through in their place.
    """
    csvs = [item for item in inputs if isinstance(item, CsvSource)]
    results: Generator[StagedSource | SkippedInput] = _nothing()
    if csvs:
        n_buckets = store.open()
        root = location_text(store.layout.root)
        tasks = [
            FileTask(
                root,
                str(Path(item.name).absolute()),
                item.name,
                n_buckets,
                store.user_columns,
                flush_rows,
                limits,
            )
            for item in csvs
        ]
        with forced_progress(False):  # the rows bar below says how far the ingest is
            results = iter_tasks(engine, stage_file, tasks, label="ingest")
    with closing(results):  # closed early (an error): the pending tasks are cancelled
        for item in inputs:
            if isinstance(item, SkippedInput):
                yield item
                continue
            with forced_progress(False):
                staged = next(results)
            if isinstance(staged, SkippedInput):
                yield staged
                continue
            report = commit_source(store.layout, staged)
            bar.advance(report.rows_read, note=report.name[-50:])
            yield report
        with forced_progress(False):
            next(results, None)  # let the tasks' generator finish


@dataclass(frozen=True)
class BucketTask:
    """One bucket folder to compact, with what the driver read once for all buckets."""

    store: str
    bucket: str
    signature: str
    user_columns: tuple[StoredColumn, ...]
    compact: bool = True


@functools.lru_cache(maxsize=2)
def _track_features(store: str, signature: str) -> TrackFeatures | None:
    """The store's track table, indexed once per executor process (Python workers are reused)."""
    if signature == "[]":
        return None
    tracks = TrackFeatures.from_store(StoreLayout(store_path(store)), [])
    tracks.build_index()
    return tracks


def compact_bucket(task: BucketTask) -> tuple[int, int, int, tuple[str, int] | None] | None:
    """Merge one bucket on an executor: (parts replaced, duplicates, incomplete sessions, and
    under manifest commits the file written and the last commit it merged, for the driver to
    record), or None when it is compact already."""
    layout = StoreLayout(store_path(task.store))
    bucket_dir = layout.sessions / task.bucket
    if not bucket_dir.is_dir():
        return None
    tracks = _track_features(task.store, task.signature)
    schema = log_schema(task.user_columns)
    merged = _merge_bucket(layout, bucket_dir, tracks, task.signature, schema)
    if merged is None:
        return None
    published = _publish(merged)
    return len(merged.members), merged.duplicates, merged.incomplete, published


@functools.lru_cache(maxsize=2)
def _known_tracks(store: str, signature: str) -> pa.Array | None:
    """The track table's distinct ids, read once per executor process."""
    return known_tracks(StoreLayout(store_path(store)))


def absent_in_bucket(task: BucketTask, compacted: str | None = None) -> tuple[int, list[str]]:
    """Rows of one bucket whose track is not in the track table, and those distinct ids (the
    local engine's store-wide check, :func:`skipmodel.ingest.challenge.absent_tracks`, per
    bucket); ``compacted``: the file just merged from all of them (not yet committed)."""
    known = _known_tracks(task.store, task.signature)
    layout = StoreLayout(store_path(task.store))
    bucket_dir = layout.sessions / task.bucket
    files = [bucket_dir / compacted] if compacted is not None else layout.parts(bucket_dir)
    if known is None or not files:
        return 0, []
    ids = pa.chunked_array([_column(path, "track_id_clean") for path in files])
    absent = ids.filter(pc.invert(pc.is_in(ids, value_set=known)))
    return len(absent), pc.unique(absent).to_pylist()


def finish_bucket(task: BucketTask) -> tuple[Any, int, list[str]]:
    """A bucket's closing task: compacted (when ``task.compact``; see :func:`compact_bucket`),
    then its plays' track ids checked against the track table (:func:`absent_in_bucket`)."""
    compacted = compact_bucket(task) if task.compact else None
    written = compacted[3] if compacted is not None else None
    return (compacted, *absent_in_bucket(task, written[0] if written is not None else None))


def finish_buckets_on_engine(
    layout: StoreLayout, engine: EngineOptions, *, compact: bool
) -> tuple[CompactReport, dict[str, Any]]:
    """The local engine's closing passes over the buckets, one task per bucket: the compaction
    (:func:`skipmodel.ingest.compact.compact_store`, when ``compact``) and the store-wide track
    check (log rows, distinct tracks absent from the track table), merged on the driver."""
    recover_compactions(layout)
    root = location_text(layout.root)
    signature = tracks_signature(layout)
    columns = recorded_columns(layout.read_manifest())
    tasks = [BucketTask(root, d.name, signature, columns, compact) for d in layout.bucket_dirs()]
    with forced_progress(False):
        results = run_tasks(engine, finish_bucket, tasks, label="buckets")
    done = [r for r, _, _ in results if r is not None]
    published = {t.bucket: r[3] for t, (r, _, _) in zip(tasks, results, strict=True) if r and r[3]}
    record_compacted(layout, published)
    report = CompactReport(
        layout.root,
        buckets_compacted=len(done),
        parts_replaced=sum(r[0] for r in done),
        buckets_unchanged=len(results) - len(done),
        duplicate_session_positions=sum(r[1] for r in done),
        incomplete_sessions=sum(r[2] for r in done),
    )
    if not layout.parts(layout.tracks):
        missing = None
    else:
        missing = {
            "tracks": len(set().union(*(ids for _, _, ids in results))),
            "rows": sum(rows for _, rows, _ in results),
        }
    return report, {
        "log_tracks_missing_from_features": None if missing is None else missing["tracks"],
        "log_rows_with_missing_track": None if missing is None else missing["rows"],
    }
