"""Explore on several CPUs: the figures split by view and, from
:data:`~skipmodel.explore.passes.LOG_PASS_MIN_WORKERS` processes on, the log pass split by
bucket (below that, one process with its read-ahead threads is faster). :func:`warm_up` starts
the workers while the passes run, so their start-up does not delay the figures.

Every accumulator of the log pass merges (:meth:`LogPass.merge`) and a whole session lives in
one bucket, so this process and ``jobs - 1`` worker processes share the sample's buckets: each
walks the bucket list from its own starting point and reduces the buckets it *claims* (an
exclusive create of a file named after the bucket in a temporary directory), so a bucket is
read exactly once, this process starts at once and the workers join as soon as they are up,
and a slow participant simply claims fewer buckets. The workers' accumulators are merged in;
the transitions spill travels as its file's path. The counts are those of one process
whatever ``jobs``; sums of floats may differ in the last bits with the order of merging.

Figures are split the same way: views handed out by estimated drawing cost, slowest first, this
process drawing its share while the workers draw theirs.

Workers start from a fork server that has already imported the explore modules (no thread of
this process is forked). If worker processes cannot be started, the work runs here.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing as mp
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.explore.accumulators import TrackCounter
from skipmodel.explore.passes import (
    TRACK_VIEWS,
    ExploreOptions,
    Results,
    StoreSources,
    _log_plays,
    new_log_pass,
)
from skipmodel.explore.plays import LogPass
from skipmodel.progress import Progress
from skipmodel.store.layout import open_store

#: Rough relative drawing cost of each view (~0.1 s units, measured), to hand out the slow
#: ones first.
VIEW_COST = {
    "feature_histograms": 12,
    "seasonality": 6,
    "time_structure": 4,
    "feature_by_duration": 2,
    "transitions": 2,
    "memory_in_chains": 2,
    "previous_outcome": 2,
}
#: This process's first figure also loads what drawing needs (fonts, caches): counted as a
#: head start for the workers, which did that while the passes ran (:func:`warm_up`).
FIRST_FIGURE_COST = 3

_POOLS: dict[int, ProcessPoolExecutor] = {}


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["skipmodel.explore.parallel", "skipmodel.explore.views"])
        return ctx
    return mp.get_context("spawn")


def pool(workers: int) -> ProcessPoolExecutor:
    """The (cached) pool of ``workers`` processes (``jobs - 1``: one pool serves the log pass
    and the figures); shut down when the interpreter exits."""
    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    return _POOLS[workers]


def _warm() -> None:
    """In a worker: load what drawing needs (matplotlib's Agg canvas, the fonts) with a tiny
    figure, so the first real figure does not pay for it."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    ax = fig.subplots()
    ax.set_title("warm-up")
    ax.plot([0, 1], [0, 1])
    fig.savefig(io.BytesIO(), dpi=20, format="png")


def warm_up(options: ExploreOptions) -> None:
    """Start the worker processes now (in the background) when ``options`` uses any, so their
    start-up (~1 s: a fork server importing the explore modules, then the fonts) overlaps the
    passes instead of delaying the figures. Never fails: a pool that cannot start is dropped
    and the work runs here."""
    n = _participants(options)
    if n >= 2:
        _submit(options.workers - 1, [(_warm, ())] * (n - 1))


def _submit(
    size: int, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[Future[Any]] | None:
    """Hand ``calls`` (function, arguments) to the pool of ``size`` workers; None, with the
    pool dropped, when worker processes cannot be started (the caller works alone)."""
    try:
        executor = pool(size)
        return [executor.submit(function, *args) for function, args in calls]
    except (BrokenProcessPool, OSError):
        _drop_pool(size)
        return None


def _results(futures: Sequence[Future[Any]], size: int) -> list[Any]:
    """What the workers returned, in order; a worker that died is a one-line error."""
    try:
        return [future.result() for future in futures]
    except BrokenProcessPool as error:
        _drop_pool(size)
        raise SkipmodelError(
            f"an explore worker process died ({error}); re-run with --jobs 1"
        ) from error


def _drop_pool(workers: int) -> None:
    broken = _POOLS.pop(workers, None)
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown() -> None:
    for executor in _POOLS.values():
        executor.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


class Claims:
    """Buckets claimed by exclusive file creation in ``directory`` (shared across processes)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def claim(self, bucket: int) -> bool:
        try:
            os.close(os.open(os.path.join(self.directory, str(bucket)), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def schedule(self, start: int, of: int) -> Callable[[Sequence[int]], Iterator[int]]:
        """Participant ``start`` of ``of``: walk the buckets from its own offset, claiming."""

        def walk(buckets: Sequence[int]) -> Iterator[int]:
            first = start * len(buckets) // of
            for bucket in (*buckets[first:], *buckets[:first]):
                if self.claim(bucket):
                    yield bucket

        return walk


def _claimed_pass(
    root: str,
    fraction: float,
    seed: int,
    file_day_rule: bool,
    options: ExploreOptions,
    chains_edges: np.ndarray | None,
    claims: str,
    start: int,
    of: int,
) -> LogPass:
    """Worker: the log pass over the buckets it claims."""
    sources = StoreSources(open_store(root), fraction, seed, file_day_rule=file_day_rule)
    log = new_log_pass(options, chains_edges)
    schedule = Claims(claims).schedule(start, of)
    for plays in _log_plays(sources, options, chains_edges is not None, schedule):
        log.update(plays)
    return log


def log_pass(
    sources: StoreSources,
    options: ExploreOptions,
    chains_edges: np.ndarray | None,
    log: LogPass,
    bar: Progress,
) -> bool:
    """Fill ``log`` here and in worker processes; False (``log`` untouched) if that is not
    worth it (fewer than two buckets) or worker processes cannot be started."""
    n, size = min(options.workers, sources.n_buckets()), options.workers - 1
    if n < 2:
        return False
    # absolute: the workers keep the directory they started in
    args = (str(Path(sources.layout.root).resolve()), sources.fraction, sources.seed)
    with tempfile.TemporaryDirectory(prefix="skipmodel-explore-claims-") as claims:
        rest = (sources.file_day_rule, options, chains_edges, claims)
        futures = _submit(size, [(_claimed_pass, (*args, *rest, i, n)) for i in range(1, n)])
        if futures is None:
            return False
        schedule = Claims(claims).schedule(0, n)
        for plays in _log_plays(sources, options, chains_edges is not None, schedule):
            log.update(plays)
            bar.advance(plays.n)
        shards = _results(futures, size)
    for shard in shards:
        log.merge(shard)
        bar.advance(shard.overview.rows)
    return True


@dataclasses.dataclass(frozen=True)
class Drawn:
    """A view written by a worker: what the gallery needs to list it."""

    name: str
    title: str
    caption: str
    image: Path
    tables: tuple[Path, ...]


def draw_view(results: Results, name: str, out: Path) -> Drawn:
    """Render view ``name`` of ``results`` into ``out``: its PNG and CSVs, each atomically."""
    from skipmodel.explore import figures
    from skipmodel.explore.views import RENDERERS
    from skipmodel.store.layout import atomic_path

    view = RENDERERS[name](results)
    image = out / f"{name}.png"
    with atomic_path(image) as tmp:
        figures.save(view.figure, tmp)
    files = []
    for part, frame in view.tables.items():
        path = out / (f"{name}_{part}.csv" if part else f"{name}.csv")
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        files.append(path)
    return Drawn(name, view.title, view.caption, image, tuple(files))


def _draw_many(results: Results, names: Sequence[str], out: Path) -> list[Drawn]:
    return [draw_view(results, name, out) for name in names]


def _share(
    names: Sequence[str], participants: int, busy: dict[int, int] | None = None
) -> list[list[str]]:
    """Views per participant, slowest first, each to the least loaded (LPT scheduling);
    ``busy``: cost already queued at a participant."""
    shares: list[list[str]] = [[] for _ in range(participants)]
    load = [(busy or {}).get(k, 0) for k in range(participants)]
    for name in sorted(names, key=lambda v: -VIEW_COST.get(v, 1)):
        k = load.index(min(load))
        shares[k].append(name)
        load[k] += VIEW_COST.get(name, 1)
    return shares


def _participants(options: ExploreOptions) -> int:
    """Processes drawing figures: this one and ``n - 1`` workers (one pool for everything)."""
    return min(options.workers, len(options.views))


class EarlyViews:
    """The views of the tracks table (:data:`~skipmodel.explore.passes.TRACK_VIEWS`), drawn
    by a worker while this process reads the log: pass :meth:`start` as ``compute``'s
    ``on_tracks`` and the object to :func:`draw_views`. Does nothing without workers."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out).resolve()
        self.futures: list[Future[list[Drawn]]] = []
        self.names: list[str] = []

    def start(self, results: Results) -> None:
        names = [v for v in TRACK_VIEWS if results.options.wants(v)]
        if _participants(results.options) < 2 or not names:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        futures = _submit(results.options.workers - 1, [(_draw_many, (results, names, self.out))])
        if futures is not None:
            self.futures, self.names = futures, names

    def pending(self) -> bool:
        return not all(f.done() for f in self.futures)


def draw_views(results: Results, out: Path, early: EarlyViews | None = None) -> list[Drawn]:
    """Every requested view, in ``options.views`` order; drawn here and in worker processes
    when there are several CPUs (those of ``early`` already handed to a worker)."""
    out = out.resolve()  # the workers keep the directory they started in
    started = list(early.names) if early is not None else []
    futures: list[Future[list[Drawn]]] = list(early.futures) if early is not None else []
    names = [v for v in results.options.views if v not in started]
    n, size = _participants(results.options), results.options.workers - 1
    drawn: dict[str, Drawn] = {}
    mine = names
    if n > 1 and names:
        # The workers need the aggregated tables only: not the per-track play counts (the
        # summary, made here, uses them) nor the transitions spill (already counted).
        light = dataclasses.replace(
            results, log=dataclasses.replace(results.log, tracks=TrackCounter(), transitions=None)
        )
        busy = {0: FIRST_FIGURE_COST}
        if early is not None and early.pending():
            busy[1] = sum(VIEW_COST.get(v, 1) for v in started)
        mine, *theirs = _share(names, n, busy)
        handed = _submit(size, [(_draw_many, (light, share, out)) for share in theirs if share])
        if handed is None:
            mine = names
        else:
            futures += handed
    for view in _draw_many(results, mine, out):
        drawn[view.name] = view
    for done in _results(futures, size):
        drawn.update((view.name, view) for view in done)
    return [drawn[name] for name in results.options.views]
