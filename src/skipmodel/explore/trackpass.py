"""The track-table passes: feature ranges, then histograms and the feature-by-duration sums.

Bin edges must be fixed before a streaming histogram starts, so the tracks table (one row per
track, ~1/500 of the log's rows in MSSD; a track id stored twice counts once, see
:class:`skipmodel.load.tracks.TrackTable`) is read twice: first for each feature's
minimum, maximum and smallest positive value (:class:`~.accumulators.Extent`), then to count.
Heavy-tailed features (``skipmodel.store.schema.HEAVY_TAILED_FEATURES``) get log-spaced edges from the
smallest positive value to the maximum, when that range spans at least :data:`LOG_MIN_RATIO`
(a decade; release years, say, do not); values <= 0 are counted apart ("below"). Integer
features (key, time signature, release year) get one bin per integer value when they have at
most 200 distinct values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from skipmodel.explore.accumulators import Extent, GroupSums, Histogram, TopTracks, hash_tracks
from skipmodel.store.schema import HEAVY_TAILED_FEATURES, TRACK_SCHEMA

TrackBatches = Callable[[Sequence[str]], Iterable[pa.RecordBatch]]

MAX_INTEGER_BINS = 200
#: A heavy-tailed feature gets a log axis when max / smallest positive value is at least this.
LOG_MIN_RATIO = 10.0
DURATION_VALUES: tuple[str, ...] = ("n", "sum", "sum_sq")


def _column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    col = batch.column(name)
    if col.null_count:
        col = col.cast(pa.float64()).fill_null(np.nan)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def is_integer_feature(feature: str) -> bool:
    return pa.types.is_integer(TRACK_SCHEMA.field(feature).type)


@dataclass(frozen=True)
class FeatureScale:
    """How one feature is binned: edges in the feature's own units, log-spaced or not."""

    feature: str
    edges: np.ndarray
    log: bool

    @classmethod
    def build(cls, feature: str, extent: Extent, bins: int) -> FeatureScale:
        """Edges over the feature's observed range (a degenerate range is widened by 0.5)."""
        lo, hi = extent.lo, extent.hi
        if extent.n == 0:
            return cls(feature, np.linspace(0.0, 1.0, bins + 1), False)
        log = (
            feature in HEAVY_TAILED_FEATURES
            and np.isfinite(extent.min_positive)
            and hi >= LOG_MIN_RATIO * extent.min_positive
        )
        if log:
            edges = np.geomspace(extent.min_positive, hi, bins + 1)
        elif is_integer_feature(feature) and hi - lo + 1 <= MAX_INTEGER_BINS and not log:
            edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
        else:
            log = False
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, bins + 1)
        return cls(feature, edges, bool(log))


def feature_extents(
    batches: Iterable[pa.RecordBatch], features: Sequence[str]
) -> dict[str, Extent]:
    """First pass: the range of each feature over the tracks table."""
    extents = {f: Extent() for f in features}
    for batch in batches:
        for f in features:
            extents[f].update(_column(batch, f))
    return extents


@dataclass
class TrackPass:
    """Second pass: one histogram per feature and the duration-binned sums of one feature."""

    scales: dict[str, FeatureScale]
    duration_feature: str | None = None
    duration_step: float = 10.0
    top: TopTracks | None = None
    order_by: str | None = None
    histograms: dict[str, Histogram] = field(init=False)
    by_duration: GroupSums = field(default_factory=lambda: GroupSums(DURATION_VALUES))
    tracks: int = 0
    labels: list[str | None] = field(init=False)
    order_values: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.histograms = {f: Histogram(s.edges) for f, s in self.scales.items()}
        n = self.top.n if self.top is not None else 0
        self.labels = [None] * n
        self.order_values = np.full(n, np.nan)

    @property
    def columns(self) -> list[str]:
        """Track-table columns this pass reads."""
        cols = [*self.histograms]
        if self.duration_feature:
            cols += ["duration", self.duration_feature]
        if self.top is not None:
            cols += ["track_id", *([self.order_by] if self.order_by else [])]
        return list(dict.fromkeys(cols))

    def update(self, batch: pa.RecordBatch) -> None:
        self.tracks += batch.num_rows
        if self.top is not None and self.top.n:
            ranks = self.top.ranks(hash_tracks(batch.column("track_id"))[0])
            hits = np.flatnonzero(ranks >= 0)
            order = _column(batch, self.order_by) if self.order_by and len(hits) else None
            for row in hits:
                r = int(ranks[row])
                self.labels[r] = batch.column("track_id")[int(row)].as_py()
                if order is not None:
                    self.order_values[r] = order[row]
        for f, hist in self.histograms.items():
            hist.update(_column(batch, f))
        if self.duration_feature:
            duration = _column(batch, "duration")
            x = _column(batch, self.duration_feature)
            ok = np.isfinite(duration) & np.isfinite(x)
            keys = np.rint(duration[ok] / self.duration_step).astype(np.int64)
            self.by_duration.update(keys, np.column_stack([np.ones(ok.sum()), x[ok], x[ok] ** 2]))

    def merge(self, other: TrackPass) -> None:
        self.tracks += other.tracks
        for f, hist in self.histograms.items():
            hist.merge(other.histograms[f])
        self.by_duration.merge(other.by_duration)
        self.labels = [a or b for a, b in zip(self.labels, other.labels, strict=True)]
        fill = np.isnan(self.order_values)
        self.order_values[fill] = other.order_values[fill]
