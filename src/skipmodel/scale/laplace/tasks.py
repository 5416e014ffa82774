"""The passes of a Laplace fit as engine tasks: one per bucket of the sample.

On Spark (``fit --method laplace --engine spark``) each pass is one task per bucket
(:func:`sums_of_bucket`): the task reads its bucket's rows from the store, designs them with the
driver's encoders (pickled into the task with the latent model, the expansion point and the
quadrature nodes of the bucket's levels), encodes them (:func:`~.structure.encode_rows`) and
sums them with the pass kernel (:meth:`~.kernel.PassSums.add_batch`), the same functions the
local passes run. Its per-level sums cover only the levels the bucket touches
(:class:`BucketSums`); the driver adds the buckets' sums in bucket order
(:meth:`BucketPasses.run_pass`) and takes the hyper and Newton steps in memory as ever.

With a session term, a task numbers its bucket's sessions from 0 and sums them at the nodes
of the bucket's window of the sessions (:class:`~.sessions.SessionNodes`); the driver places
each bucket's sessions after the previous buckets' (:meth:`~.sessions.SessionSums.shift`).

The row cache of the local path lives on the driver's disk, out of the executors' reach, so on
Spark every pass re-reads its buckets from the store (the store is where every executor can
read). What the first pass learns of each bucket, its levels, is kept, so the later passes ship
each task only its own levels' nodes. Sums of floats are added in another order than the local
path's (bucket by bucket instead of level-sorted cache chunks), so a fit on Spark equals the
local one to rounding, not to the bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import SampleSpec, iter_batches, sample_buckets
from skipmodel.model.design import build_design
from skipmodel.model.spec import ModelSpec
from skipmodel.progress import Progress
from skipmodel.scale.laplace.gaussian import normalised_weights
from skipmodel.scale.laplace.kernel import PassSums
from skipmodel.scale.laplace.sessions import SessionNodes
from skipmodel.scale.laplace.structure import LatentModel, RowBatch, encode_rows
from skipmodel.store.location import location_text

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

#: The per-level arrays of :class:`PassSums` (first axis: the eliminated pool's levels).
LEVEL_ARRAYS = ("g_t", "w_t", "H", "S")
#: The arrays over the dense part, summed whole.
DENSE_ARRAYS = ("g", "A")


@dataclass(frozen=True)
class PassShared:
    """What every bucket's task of a pass needs, broadcast once per pass (not per task)."""

    encoders: Any
    model: LatentModel
    #: each code's share of the logit at the expansion point (``Q @ c``)
    tab: np.ndarray
    #: every level's quadrature nodes, for buckets whose levels are not known yet (first pass)
    nodes: np.ndarray | None


@dataclass(frozen=True)
class PassTask:
    """One bucket's share of a pass: where its rows are, and its levels' nodes."""

    store: str
    sample: SampleSpec
    spec: ModelSpec
    #: the quadrature nodes of ``levels`` (None: every level's, from :class:`PassShared`)
    nodes: np.ndarray | None
    #: the bucket's levels, once a pass has found them
    levels: np.ndarray | None
    bucket: int
    #: with a session term: the bucket's sessions' nodes (numbered in the bucket from 0), the
    #: grid of scales, and its levels' moments that eliminate the tracks first (or None)
    sessions: tuple[SessionNodes, np.ndarray] | None = None
    track_moments: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class BucketSums:
    """A bucket's pass sums, the per-level ones for its ``levels`` only (ascending)."""

    levels: np.ndarray
    sums: PassSums


def bucket_rows(
    store: str, sample: SampleSpec, spec: ModelSpec, encoders: Any, model: LatentModel, bucket: int
) -> Iterator[RowBatch]:
    """The rows of one bucket of the sample, designed and encoded as the local passes do."""
    first = 0  # sessions numbered in the bucket (the loader cuts batches between sessions)
    for batch in iter_batches(store, sample, buckets=[bucket]):
        if batch.num_rows:
            rows = encode_rows(model, build_design(spec, batch, encoders=encoders))
            if rows.session is not None:
                numbered = rows.session + first
                rows = dataclasses.replace(rows, session=numbered)
                first = int(numbered.max()) + 1
            yield rows


def sums_of_bucket(task: PassTask, shared: PassShared) -> BucketSums:
    """Task: one pass's sums over one bucket (its encoded rows held for the pass)."""
    model = shared.model
    rows = list(
        bucket_rows(task.store, task.sample, task.spec, shared.encoders, model, task.bucket)
    )
    if task.levels is None or task.nodes is None:
        assert shared.nodes is not None
        seen = [r.level[r.level >= 0] for r in rows]
        levels = np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.int64)
        nodes = shared.nodes[levels]
    else:
        levels, nodes = task.levels, task.nodes
    n_nodes = nodes.shape[1]
    session_nodes, grid = task.sessions if task.sessions is not None else (None, None)
    sums = PassSums.for_pass(model, len(levels), n_nodes, grid, task.track_moments)
    weights = normalised_weights(n_nodes)
    centre = nodes @ weights if len(levels) else None
    for batch in rows:
        # the bucket's levels numbered 0..k-1: its per-level sums are k rows, not every level's
        local = np.where(batch.level >= 0, np.searchsorted(levels, batch.level), -1)
        batch = dataclasses.replace(batch, level=local.astype(batch.level.dtype))
        sums.add_batch(
            batch, model.format, shared.tab, nodes, weights, session_nodes, centre,
            task.track_moments,
        )  # fmt: skip
    return BucketSums(levels, sums)


class BucketPasses:
    """A store sample's passes on an engine, one task per bucket (see the module notes).

    A row source for :func:`~skipmodel.scale.laplace.fit.fit_passes`: ``run_pass`` replaces
    the local pass over the rows.
    """

    def __init__(
        self,
        engine: EngineOptions,
        store: str,
        sample: SampleSpec,
        spec: ModelSpec,
        encoders: Any,
        model: LatentModel,
    ) -> None:
        self.engine = engine
        self.store = store
        self.sample = sample
        self.spec = spec
        self.encoders = encoders
        self.model = model
        self.buckets = sample_buckets(store, sample)
        self._levels: dict[int, np.ndarray] = {}
        #: each bucket's first session in the sample's numbering (after a first pass)
        self._first_session: dict[int, int] = {}
        self._n_sessions: dict[int, int] = {}

    def __call__(self) -> Iterator[RowBatch]:
        """The rows, read here (for a caller that walks them itself)."""
        for bucket in self.buckets:
            yield from bucket_rows(
                self.store, self.sample, self.spec, self.encoders, self.model, bucket
            )

    def tasks(
        self,
        c: np.ndarray,
        nodes: np.ndarray,
        sessions: tuple[SessionNodes, np.ndarray] | None = None,
        track_moments: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[PassTask]:
        out = []
        for bucket in self.buckets:
            levels = self._levels.get(bucket)
            mine = None if levels is None else nodes[levels]
            moments = None
            if track_moments is not None and levels is not None:
                moments = (track_moments[0][levels], track_moments[1][levels])
            task = PassTask(
                self.store,
                self.sample,
                self.spec,
                mine,
                levels,
                bucket,
                self._bucket_sessions(bucket, sessions),
                moments,
            )
            out.append(task)
        return out

    def _bucket_sessions(
        self, bucket: int, sessions: tuple[SessionNodes, np.ndarray] | None
    ) -> tuple[SessionNodes, np.ndarray] | None:
        """The bucket's window of the sessions' nodes, numbered from 0 (the prior's on a
        first pass, before the buckets' sessions are counted)."""
        if sessions is None:
            return None
        nodes, grid = sessions
        first = self._first_session.get(bucket)
        if first is None:
            return SessionNodes.prior(nodes.default_scale), grid
        n = self._n_sessions[bucket]
        window = SessionNodes(
            nodes.mean[first : first + n], nodes.scale[first : first + n], nodes.default_scale
        )
        return window, grid

    def run_pass(
        self,
        model: LatentModel,
        c: np.ndarray,
        nodes: np.ndarray,
        progress: Progress | None,
        sessions: tuple[SessionNodes, np.ndarray] | None = None,
        track_moments: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PassSums:
        """One pass at ``c`` (levels at ``nodes``, sessions at theirs): the buckets' sums,
        added in bucket order (each bucket's sessions after the previous buckets')."""
        from skipmodel.engine import run_tasks

        grid = sessions[1] if sessions is not None else None
        total = PassSums.for_pass(model, model.n_levels, nodes.shape[1], grid, track_moments)
        tasks = self.tasks(c, nodes, sessions, track_moments)
        first_pass = any(task.levels is None for task in tasks)
        shared = PassShared(
            self.encoders, self.model, self.model.Q @ c, nodes if first_pass else None
        )
        parts = run_tasks(self.engine, sums_of_bucket, tasks, label="laplace pass", shared=shared)
        first = 0
        for bucket, part in zip(self.buckets, parts, strict=True):
            self._levels.setdefault(bucket, part.levels)
            if part.sums.sessions is not None:
                n = part.sums.sessions.n_sessions
                self._first_session.setdefault(bucket, first)
                self._n_sessions.setdefault(bucket, n)
                part.sums.sessions.shift(first)
                first += n
            add_bucket(total, part)
            if progress is not None:
                progress.advance(part.sums.n_rows)
        return total


def engine_of(options: Any) -> EngineOptions | None:
    """The engine the fit options name, None for this process (the local passes)."""
    name = getattr(options, "engine", None)
    master = getattr(options, "spark_master", None)
    if master is not None and name != "spark":
        raise SkipmodelError("--spark-master needs --engine spark")
    if name in (None, "local"):
        return None
    from skipmodel.engine import EngineOptions

    return EngineOptions(name, master)


def engine_passes(
    options: Any,
    store: Any,
    sample: SampleSpec,
    spec: ModelSpec,
    encoders: Any,
    model: LatentModel,
) -> BucketPasses | None:
    """The passes on the engine the fit options name (:class:`BucketPasses`), or None for
    the local passes over the row cache."""
    engine = engine_of(options)
    if engine is None:
        return None
    return BucketPasses(engine, location_text(store), sample, spec, encoders, model)


def add_bucket(total: PassSums, part: BucketSums) -> None:
    """Add a bucket's sums into ``total`` (its per-level sums into its levels' rows)."""
    sums = part.sums
    total.ll += sums.ll
    total.n_rows += sums.n_rows
    for name in DENSE_ARRAYS:
        np.add(getattr(total, name), getattr(sums, name), out=getattr(total, name))
    for name in LEVEL_ARRAYS:
        getattr(total, name)[part.levels] += getattr(sums, name)
    if total.sessions is not None and sums.sessions is not None:
        total.sessions.add(sums.sessions)


__all__ = [
    "BucketPasses",
    "BucketSums",
    "PassTask",
    "add_bucket",
    "bucket_rows",
    "engine_of",
    "engine_passes",
    "sums_of_bucket",
]
