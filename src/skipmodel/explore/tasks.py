"""The passes of explore as tasks of an engine: one per track file, one per log bucket.

:func:`~skipmodel.explore.passes.compute` runs its passes in this process (with worker
processes sharing the log, :mod:`.parallel`); given :class:`EngineTasks` it hands them to an
engine (:func:`skipmodel.engine.run_tasks`) instead: the track passes one task per track file,
the log pass one task per bucket of the sample. A task runs the same accumulators as the local
passes (``TrackPass.update``, ``LogPass.update`` over :class:`~.batches.BucketPlays`) and
returns them; this process merges them in file or bucket order. Counts are those of the local
engine exactly; sums of floats agree to rounding (they are added in another order).

A task opens the store by its path, so the store must be at the same path for every executor;
its result pickles whole (the transitions spill is carried in it,
:meth:`~.transitions.TransitionSpill.carry`), so nothing depends on the executor's disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from skipmodel.explore.accumulators import Extent
from skipmodel.explore.options import ExploreOptions
from skipmodel.explore.passes import StoreSources, log_plays, new_log_pass
from skipmodel.explore.plays import LogPass
from skipmodel.explore.trackpass import TrackPass, feature_extents
from skipmodel.load.tracks import TRACK_BATCH_ROWS, TrackTable, kept_batches
from skipmodel.progress import Progress
from skipmodel.store.layout import open_store
from skipmodel.store.location import location_text

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions


@dataclass(frozen=True)
class TrackFileTask:
    """One track file: its path, and which of its rows count (the duplicate rule, found once
    by the driver: :meth:`skipmodel.load.tracks.TrackTable.keep`)."""

    path: str
    keep: np.ndarray
    columns: tuple[str, ...]


def _file_rows(task: TrackFileTask) -> Iterator[pa.RecordBatch]:
    """The rows of the file that count, as :meth:`TrackTable.batches` gives them."""
    return kept_batches(task.path, task.keep, task.columns, batch_rows=TRACK_BATCH_ROWS)


def extents_of_file(task: TrackFileTask) -> dict[str, Extent]:
    """Task: the range of each feature over one track file."""
    return feature_extents(_file_rows(task), task.columns)


def track_pass_of_file(item: tuple[TrackFileTask, TrackPass]) -> TrackPass:
    """Task: a :class:`TrackPass` like the given (empty) one, filled from one track file."""
    task, like = item
    part = TrackPass(
        like.scales, like.duration_feature, like.duration_step, like.top, like.order_by
    )
    for batch in _file_rows(task):
        part.update(batch)
    return part


@dataclass(frozen=True)
class BucketTask:
    """One bucket of the log pass, and everything a task needs to redo it alone."""

    root: str
    fraction: float
    seed: int
    file_day_rule: bool
    options: ExploreOptions
    chains_edges: np.ndarray | None
    bucket: int


def log_pass_of_bucket(task: BucketTask) -> LogPass:
    """Task: the log pass over one bucket (its transitions spill carried in the result)."""
    sources = StoreSources(
        open_store(task.root), task.fraction, task.seed, file_day_rule=task.file_day_rule
    )
    log = new_log_pass(task.options, task.chains_edges)

    def schedule(buckets: Sequence[int]) -> Iterator[int]:
        return iter([task.bucket] if task.bucket in buckets else [])

    for plays in log_plays(sources, task.options, task.chains_edges is not None, schedule):
        log.update(plays)
    if log.transitions is not None:
        log.transitions.carry()
    return log


@dataclass(frozen=True)
class EngineTasks:
    """The passes of :func:`~skipmodel.explore.passes.compute` on an engine."""

    engine: EngineOptions
    sources: StoreSources

    def _files(self, columns: Sequence[str]) -> list[TrackFileTask]:
        tracks: TrackTable = self.sources.track_table
        return [
            TrackFileTask(location_text(path), keep, tuple(columns))
            for path, keep in zip(tracks.files, tracks.keep(), strict=True)
        ]

    def extents(self, features: Sequence[str]) -> dict[str, Extent]:
        from skipmodel.engine import run_tasks

        total = {f: Extent() for f in features}
        parts = run_tasks(
            self.engine, extents_of_file, self._files(features), label="explore: track ranges"
        )
        for part in parts:
            for feature, extent in part.items():
                total[feature].merge(extent)
        return total

    def track_pass(self, empty: TrackPass) -> TrackPass:
        """``empty`` filled from every track file (a copy per task, merged in file order)."""
        from skipmodel.engine import run_tasks

        items = [(task, empty) for task in self._files(empty.columns)]
        for part in run_tasks(self.engine, track_pass_of_file, items, label="explore: tracks"):
            empty.merge(part)
        return empty

    def log_pass(
        self, options: ExploreOptions, chains_edges: np.ndarray | None, bar: Progress
    ) -> LogPass:
        """The log pass, one task per bucket of the sample, merged in bucket order."""
        from skipmodel.engine import run_tasks

        sources = self.sources
        root = location_text(sources.layout.root)
        items = [
            BucketTask(
                root,
                sources.fraction,
                sources.seed,
                sources.file_day_rule,
                options,
                chains_edges,
                bucket,
            )
            for bucket in sources.bucket_numbers()
        ]
        log = new_log_pass(options, chains_edges)
        for part in run_tasks(self.engine, log_pass_of_bucket, items, label="explore: log pass"):
            log.merge(part)
            bar.advance(part.overview.rows)
        return log
