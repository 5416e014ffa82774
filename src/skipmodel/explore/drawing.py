"""Draw the figures on several CPUs: views handed out by estimated drawing cost, slowest first,
this process drawing its share while the workers (:mod:`.parallel`) draw theirs. The views of
the tracks table are handed to a worker while this process still reads the log
(:class:`EarlyViews`), and :func:`warm_up` starts the workers while the passes run, so their
start-up does not delay the figures.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from skipmodel.explore import parallel
from skipmodel.explore.accumulators import TrackCounter
from skipmodel.explore.availability import unavailable
from skipmodel.explore.options import ExploreOptions
from skipmodel.explore.passes import TRACK_VIEWS, Results
from skipmodel.store.layout import atomic_path

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
        parallel.submit(options.workers - 1, [(_warm, ())] * (n - 1))


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
    # matplotlib loads with the first figure, not with ``import skipmodel.explore``
    from skipmodel.explore import figures
    from skipmodel.explore.views import RENDERERS

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
        names = [
            v for v in TRACK_VIEWS if results.options.wants(v) and unavailable(results, v) is None
        ]
        if _participants(results.options) < 2 or not names:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        futures = parallel.submit(
            results.options.workers - 1, [(_draw_many, (results, names, self.out))]
        )
        if futures is not None:
            self.futures, self.names = futures, names

    def pending(self) -> bool:
        return not all(f.done() for f in self.futures)

    def wait(self) -> None:
        """Until the worker is done with these views, whatever the outcome (its errors are
        :func:`draw_views`' to report)."""
        concurrent.futures.wait(self.futures)


def draw_views(results: Results, out: Path, early: EarlyViews | None = None) -> list[Drawn]:
    """Every requested view the data can draw (:func:`.availability.unavailable`), in
    ``options.views`` order; drawn here and in worker processes when there are several CPUs
    (those of ``early`` already handed to a worker)."""
    out = out.resolve()  # the workers keep the directory they started in
    started = list(early.names) if early is not None else []
    futures: list[Future[list[Drawn]]] = list(early.futures) if early is not None else []
    names = [
        v for v in results.options.views if v not in started and unavailable(results, v) is None
    ]
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
        handed = parallel.submit(
            size, [(_draw_many, (light, share, out)) for share in theirs if share]
        )
        if handed is None:
            mine = names
        else:
            futures += handed
    for view in _draw_many(results, mine, out):
        drawn[view.name] = view
    for done in parallel.results(futures, size):
        drawn.update((view.name, view) for view in done)
    return [drawn[name] for name in results.options.views if name in drawn]
