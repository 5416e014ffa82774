"""One streaming pass over Arrow batches -> the correlation matrix the PC search needs.

Numerics: each batch is shifted by the running mean, centred on its own mean, and its co-moment
matrix ``M_b = (X - mean_b)^T (X - mean_b)`` is merged into the running one with Chan et al.'s
pairwise update (``M = M_a + M_b + delta delta^T n_a n_b / n``); no raw sums of squares, so
values like ``1e9 + noise`` keep full precision (as accurate as numpy's two-pass ``corrcoef``).

Missing values: a row is used only when every selected column is present and finite after the
transforms (complete cases, like R's ``cor(na.omit(X))``). Nulls and non-finite values (including
``log`` of a negative number) are counted per column, and the number of dropped rows is
reported, so nothing is lost silently.

Bootstrap: with ``bootstrap=B`` the same pass also accumulates B Poisson-bootstrap replicates:
every used row gets an independent Poisson(1) weight per replicate and the weighted moments are
merged the same way. This approximates resampling n rows with replacement without a second pass
or holding the data (Hanley & MacGibbon 2006; Oza 2005).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.csv as pacsv

from skipmodel.errors import SkipmodelError
from skipmodel.load.tracks import TrackTable, kept_batches
from skipmodel.progress import Progress
from skipmodel.store.layout import open_store
from skipmodel.store.location import location_text
from skipmodel.store.schema import HEAVY_TAILED_FEATURES

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

#: Offset of the usual ``log(x + 1e-10)`` transform of heavy-tailed features.
LOG_OFFSET = 1e-10
#: Columns the store path drops by default: the id and the categorical ``mode``.
STORE_DROP: tuple[str, ...] = ("track_id", "mode")
BATCH_ROWS = 1 << 17
#: Threads summarising batches (the merge stays sequential and ordered).
#: More threads than cores still helps on a busy machine (CPU is shared per thread).
_WORKERS = 4


@dataclass(frozen=True)
class Transforms:
    """Which columns to drop and which to log-transform (``log(x + offset)``)."""

    drop: tuple[str, ...] = ()
    log: tuple[str, ...] = ()
    log_offset: float = LOG_OFFSET


#: The usual workflow on the track-features table.
STORE_TRANSFORMS = Transforms(drop=STORE_DROP, log=HEAVY_TAILED_FEATURES)


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation matrix with the bookkeeping of the pass that produced it.

    Attributes
    ----------
    names, corr, n
        Column names, the ``p x p`` Pearson correlation matrix, the complete rows used.
    mean, std
        Column means and sample standard deviations (after transforms).
    rows_read, rows_dropped
        Rows seen and rows left out because some column was null or non-finite.
    null_counts, nonfinite_counts
        Per column: nulls in the input; finite-input values that became non-finite (or were
        NaN / inf already) after the transforms.
    replicates, replicate_n
        Bootstrap correlation matrices and their effective sample sizes (empty without
        bootstrap).
    transforms
        The transforms applied.
    """

    names: tuple[str, ...]
    corr: np.ndarray
    n: int
    mean: np.ndarray
    std: np.ndarray
    rows_read: int
    rows_dropped: int
    null_counts: dict[str, int]
    nonfinite_counts: dict[str, int]
    transforms: Transforms = Transforms()
    replicates: tuple[np.ndarray, ...] = field(default=())
    replicate_n: tuple[float, ...] = field(default=())

    def summary(self) -> dict:
        """JSON-ready bookkeeping (no matrices)."""
        return {
            "columns": list(self.names),
            "n": self.n,
            "rows_read": self.rows_read,
            "rows_dropped": self.rows_dropped,
            "null_counts": self.null_counts,
            "nonfinite_counts": self.nonfinite_counts,
            "log_transformed": list(self.transforms.log),
            "log_offset": self.transforms.log_offset,
            "dropped_columns": list(self.transforms.drop),
            "missing_rule": "complete cases: rows with any null or non-finite value are dropped",
            "bootstrap_replicates": len(self.replicates),
        }


@dataclass(frozen=True)
class Moments:
    """Centred moments of one block: total weight, an origin (its first row), the mean
    relative to that origin, and the co-moment matrix about the mean."""

    weight: float
    origin: np.ndarray
    mean_offset: np.ndarray
    comoment: np.ndarray

    @staticmethod
    def of(block: np.ndarray, weights: np.ndarray | None = None) -> Moments | None:
        """Moments of the rows of ``block`` (``k x p``, all finite); ``None`` when empty."""
        wb = float(block.shape[0]) if weights is None else float(weights.sum())
        if wb == 0:
            return None
        origin = block[0].copy()
        dev = block - origin  # small numbers; keeps the memory layout of ``block``
        if weights is None:
            mean = dev.mean(axis=0)
            dev -= mean
            m = dev.T @ dev
        else:
            mean = (weights @ dev) / wb
            dev -= mean
            m = (dev * weights[:, None]).T @ dev
        return Moments(wb, origin, mean, m)


class MomentAccumulator:
    """Merged centred co-moments of a stream of row blocks (optionally weighted).

    Means are kept as an origin (the first row seen) plus an offset, and each block's mean as
    its own first row plus an offset, so the difference of means (``delta``) in Chan et al.'s
    update is computed from small numbers without cancellation: with values near ``1e9`` a
    plain running mean would carry rounding errors of ``~1e-7`` into every ``delta``.
    """

    def __init__(self, p: int) -> None:
        self.weight = 0.0
        self.origin: np.ndarray | None = None
        self.offset = np.zeros(p)  # running mean - origin
        self.comoment = np.zeros((p, p))

    @property
    def mean(self) -> np.ndarray:
        return self.offset + (self.origin if self.origin is not None else 0.0)

    def add(self, block: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Merge the rows of ``block`` (``k x p``, all finite), with optional row weights."""
        self.merge(Moments.of(block, weights))

    def merge(self, m: Moments | None) -> None:
        """Merge one block's moments (blocks must be merged in a fixed order to be reproducible)."""
        if m is None:
            return
        if self.origin is None:
            self.origin = m.origin
            self.offset = m.mean_offset.copy()
            self.comoment = m.comoment.copy()
            self.weight = m.weight
            return
        # block mean - running mean, from small numbers only
        delta = (m.origin - self.origin) + (m.mean_offset - self.offset)
        wa, wb = self.weight, m.weight
        total = wa + wb
        self.comoment += m.comoment + np.outer(delta, delta) * (wa * wb / total)
        self.offset = self.offset + delta * (wb / total)
        self.weight = total

    def moments(self) -> Moments | None:
        """What was merged, as one block's moments (to merge into another accumulator)."""
        if self.origin is None:
            return None
        return Moments(self.weight, self.origin, self.offset, self.comoment)

    def correlation(self) -> np.ndarray:
        """The Pearson correlation matrix (unit diagonal, exactly symmetric)."""
        d = np.sqrt(np.diag(self.comoment))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.comoment / np.outer(d, d)
        corr = (corr + corr.T) / 2.0
        np.fill_diagonal(corr, 1.0)
        return corr


def _select_columns(available: Sequence[str], transforms: Transforms) -> list[str]:
    unknown = [c for c in (*transforms.drop, *transforms.log) if c not in available]
    if unknown:
        raise SkipmodelError(
            f"unknown column(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    return [c for c in available if c not in transforms.drop]


def _block_from_batch(
    batch: pa.RecordBatch,
    names: Sequence[str],
    log_cols: frozenset[str],
    offset: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The batch as a ``p x k`` array (one contiguous row per column), transforms applied,
    the mask of complete rows, and per column the null and non-finite counts."""
    nulls = np.array([batch.column(n).null_count for n in names], dtype=np.int64)
    nonfinite = np.zeros(len(names), dtype=np.int64)
    block = np.empty((len(names), batch.num_rows))
    for j, name in enumerate(names):
        col = batch.column(name)
        numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        try:
            if numeric and col.null_count == 0:
                values = col.to_numpy()  # zero-copy; converted while copied into the block
            else:
                values = pac.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise SkipmodelError(
                f"column {name} is not numeric ({col.type}); drop it with --drop {name}"
            ) from None
        if name in log_cols:
            np.add(values, offset, out=block[j])
            with np.errstate(invalid="ignore", divide="ignore"):
                np.log(block[j], out=block[j])
        else:
            block[j] = values
    finite = np.isfinite(block)
    keep = finite.all(axis=0)
    if not keep.all():
        nonfinite = (~finite).sum(axis=1) - nulls
    return block, keep, nulls, nonfinite


@dataclass(frozen=True)
class BatchSummary:
    rows: int
    nulls: np.ndarray
    nonfinite: np.ndarray
    moments: Moments | None
    bootstrap: list[Moments | None]


def _ordered_map[T, R](
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, window: int = 4
) -> Iterator[R]:
    """``map(fn, items)`` on a small thread pool, in order, with at most ``window`` pending."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class PartialMoments:
    """What a pass over some batches (one track file, say) accumulated: rows read, nulls and
    non-finite values per column, the co-moments and those of each bootstrap replicate.
    Partials of disjoint row sets merge (:meth:`merge`) in a fixed order."""

    rows: int
    nulls: np.ndarray
    nonfinite: np.ndarray
    main: MomentAccumulator
    bootstrap: list[MomentAccumulator]

    @classmethod
    def empty(cls, p: int, bootstrap: int) -> PartialMoments:
        return cls(
            0,
            np.zeros(p, dtype=np.int64),
            np.zeros(p, dtype=np.int64),
            MomentAccumulator(p),
            [MomentAccumulator(p) for _ in range(bootstrap)],
        )

    def merge(self, other: PartialMoments) -> None:
        self.rows += other.rows
        self.nulls += other.nulls
        self.nonfinite += other.nonfinite
        self.main.merge(other.main.moments())
        for acc, theirs in zip(self.bootstrap, other.bootstrap, strict=True):
            acc.merge(theirs.moments())


def accumulate_batches(
    batches: Iterable[pa.RecordBatch],
    names: Sequence[str],
    *,
    transforms: Transforms = Transforms(),
    bootstrap: int = 0,
    seed: int = 0,
    stream: tuple[int, ...] = (),
    progress: Progress | None = None,
) -> PartialMoments:
    """The co-moment pass over ``batches`` (see :func:`correlation_from_batches`), unfinished.

    ``stream`` tells the bootstrap weights of these batches from another call's: batch ``i``
    draws its weights from ``default_rng([seed, *stream, i])`` (the track file's number, for
    the store's per-file partials).
    """
    names = list(names)
    p = len(names)
    log_cols = frozenset(transforms.log)

    def summarise(item: tuple[int, pa.RecordBatch]) -> BatchSummary:
        index, batch = item
        columns, keep, nulls, nonfinite = _block_from_batch(
            batch, names, log_cols, transforms.log_offset
        )
        if not keep.all():
            columns = columns[:, keep]
        block = columns.T  # rows x variables, column-major: reductions run along memory
        boots: list[Moments | None] = []
        if bootstrap:
            # weights depend only on (seed, stream, batch index): the same whatever the threading
            rng = np.random.default_rng([seed, *stream, index])
            weights = rng.poisson(1.0, size=(bootstrap, block.shape[0])).astype(np.float64)
            boots = [Moments.of(block, w) for w in weights]
        return BatchSummary(batch.num_rows, nulls, nonfinite, Moments.of(block), boots)

    out = PartialMoments.empty(p, bootstrap)
    # Batches are summarised in worker threads (numpy and BLAS release the GIL) while the
    # reader decodes ahead; summaries are merged in batch order, so results are reproducible.
    for summary in _ordered_map(summarise, enumerate(batches), workers=_WORKERS):
        out.rows += summary.rows
        out.nulls += summary.nulls
        out.nonfinite += summary.nonfinite
        out.main.merge(summary.moments)
        for acc, m in zip(out.bootstrap, summary.bootstrap, strict=True):
            acc.merge(m)
        if progress is not None:
            progress.advance(summary.rows)
    return out


def finish_correlation(
    partial: PartialMoments, names: Sequence[str], transforms: Transforms = Transforms()
) -> CorrelationResult:
    """The correlation result of a finished pass (checks the rows and the variances)."""
    names = list(names)
    p = len(names)
    main = partial.main
    n = int(main.weight)
    rows_read = partial.rows
    if n < 4:
        raise SkipmodelError(
            f"only {n} complete rows (of {rows_read}) to correlate; need at least 4 "
            "(check nulls / non-finite values, or the --log columns)"
        )
    corr = main.correlation()
    zero_var = [names[j] for j in range(p) if not main.comoment[j, j] > 0]
    if zero_var:
        raise SkipmodelError(f"column(s) {', '.join(zero_var)} are constant; drop them with --drop")
    return CorrelationResult(
        names=tuple(names),
        corr=corr,
        n=n,
        mean=main.mean,
        std=np.sqrt(np.diag(main.comoment) / max(n - 1, 1)),
        rows_read=rows_read,
        rows_dropped=rows_read - n,
        null_counts={c: int(v) for c, v in zip(names, partial.nulls, strict=True)},
        nonfinite_counts={c: int(v) for c, v in zip(names, partial.nonfinite, strict=True)},
        transforms=transforms,
        replicates=tuple(acc.correlation() for acc in partial.bootstrap),
        replicate_n=tuple(float(acc.weight) for acc in partial.bootstrap),
    )


def correlation_from_batches(
    batches: Iterable[pa.RecordBatch],
    names: Sequence[str],
    *,
    transforms: Transforms = Transforms(),
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress | None = None,
) -> CorrelationResult:
    """Accumulate the correlation of ``names`` over Arrow record batches in one pass.

    Parameters
    ----------
    batches
        Record batches holding (at least) the columns ``names``.
    names
        Columns to correlate, in output order.
    transforms
        ``log`` columns get ``log(x + log_offset)``.
    bootstrap, seed
        Number of Poisson-bootstrap replicates accumulated in the same pass, and their seed.
    """
    names = list(names)
    if len(names) < 2:
        raise SkipmodelError(f"need at least 2 numeric columns, got {len(names)}: {names}")
    partial = accumulate_batches(
        batches, names, transforms=transforms, bootstrap=bootstrap, seed=seed, progress=progress
    )
    return finish_correlation(partial, names, transforms)


@dataclass(frozen=True)
class TrackFileTask:
    """One track file's share of the co-moment pass: its path, which of its rows count (the
    duplicate rule, found once by the driver), and the pass's settings."""

    path: str
    keep: np.ndarray
    names: tuple[str, ...]
    transforms: Transforms
    bootstrap: int
    seed: int
    number: int


def moments_of_file(task: TrackFileTask) -> PartialMoments:
    """Task: the co-moment pass over one track file (bootstrap stream: the file's number)."""
    batches = kept_batches(task.path, task.keep, task.names, batch_rows=BATCH_ROWS)
    return accumulate_batches(
        batches,
        task.names,
        transforms=task.transforms,
        bootstrap=task.bootstrap,
        seed=task.seed,
        stream=(task.number,),
    )


def correlation_from_store(
    store: str | os.PathLike[str],
    *,
    transforms: Transforms = STORE_TRANSFORMS,
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress | None = None,
    engine: EngineOptions | None = None,
) -> CorrelationResult:
    """Correlation of the track features in a store, one row per track id.

    The tracks are read through :class:`skipmodel.load.tracks.TrackTable`, so a track id stored
    twice counts once (its first row). By default ``track_id`` and ``mode`` are dropped and the
    heavy-tailed features (:data:`skipmodel.store.schema.HEAVY_TAILED_FEATURES`) are
    log-transformed.

    The pass runs one task per track file (:func:`moments_of_file`) on ``engine`` (default:
    here, one file after another) and merges their co-moments in file order, so every engine
    gives the same numbers. Bootstrap weights are drawn per (seed, file, batch).
    """
    from skipmodel.engine import EngineOptions, run_tasks

    layout = open_store(store)
    tracks = TrackTable(layout)
    if not tracks.files:
        raise SkipmodelError(f"{layout.tracks} holds no track features; ingest track_features")
    names = _select_columns(tracks.column_names, transforms)
    if len(names) < 2:
        raise SkipmodelError(f"need at least 2 numeric columns, got {len(names)}: {names}")
    tasks = [
        TrackFileTask(
            location_text(path),
            keep,
            tuple(names),
            transforms,
            bootstrap,
            seed,
            number,
        )
        for number, (path, keep) in enumerate(zip(tracks.files, tracks.keep(), strict=True))
    ]
    total = PartialMoments.empty(len(names), bootstrap)
    engine = engine or EngineOptions()
    for part in run_tasks(engine, moments_of_file, tasks, label="cpdag: co-moments"):
        total.merge(part)  # in file order, whatever the engine
        if progress is not None:
            progress.advance(part.rows)
    return finish_correlation(total, names, transforms)


def _csv_batches(reader: pacsv.CSVStreamingReader, path: Path) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise SkipmodelError(f"{path}: {str(exc).splitlines()[0]}") from None
        yield batch


def correlation_from_csv(
    path: str | os.PathLike[str],
    *,
    transforms: Transforms = Transforms(),
    delimiter: str = ",",
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress | None = None,
) -> CorrelationResult:
    """Correlation of the numeric columns of a CSV file with a header row, streamed.

    Every column not in ``transforms.drop`` must be numeric (empty, ``NA`` and ``NaN`` cells
    count as nulls).
    """
    path = Path(path)
    if not path.is_file():
        raise SkipmodelError(f"{path} does not exist")
    parse = pacsv.ParseOptions(delimiter=delimiter)
    read = pacsv.ReadOptions(block_size=1 << 22)
    try:
        with pacsv.open_csv(path, read_options=read, parse_options=parse) as probe:
            header = probe.schema.names
    except (pa.ArrowInvalid, StopIteration) as exc:
        raise SkipmodelError(f"{path} is not a readable CSV with a header row: {exc}") from None
    names = _select_columns(header, transforms)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.float64() for c in names}, include_columns=names
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        raise SkipmodelError(
            f"{path}: {str(exc).splitlines()[0]} (non-numeric columns can be dropped with --drop)"
        ) from None
    with reader:
        return correlation_from_batches(
            _csv_batches(reader, path),
            names,
            transforms=transforms,
            bootstrap=bootstrap,
            seed=seed,
            progress=progress,
        )
