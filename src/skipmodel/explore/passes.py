"""Drive the streaming passes: the log once, the (small) tracks table up to three times.

Pass plan, for a store of R plays and T tracks:

1. tracks table: range of each feature (T rows), to fix histogram and grid bin edges;
2. tracks table: histograms and feature-by-duration sums (T rows), so those views can be drawn
   while the log is read (``compute(..., on_tracks=...)``);
3. log, the columns the views need: every log view at once, exact play counts per track, and
   the transitions: the first two million spilled to a temporary file as track-hash pairs,
   the others counted among the ~1000 most played tracks so far
   (:class:`~skipmodel.explore.transitions.TransitionSpill`);
4. tracks table: the ids (and ordering feature) of the N most played tracks, now known;
5. the transitions spill, replayed in 1 M-pair chunks, plus the candidates' counts, to count
   transitions among the top N (or, were a top track not a candidate, a second log pass
   counting those alone).

The log is read once (unless that happens); memory is bounded by the number of groups and
distinct tracks (see :mod:`.accumulators`), never by R. From :data:`LOG_PASS_MIN_WORKERS`
processes on, pass 3 is shared by bucket with worker processes (the pool of :mod:`.parallel`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.explore import parallel
from skipmodel.explore.accumulators import Extent, TopTracks, TrackCounter, hash_ids
from skipmodel.explore.batches import BucketPlays, PlayBatch, TrackArrays, session_slices
from skipmodel.explore.options import ExploreOptions
from skipmodel.explore.plays import Calendar, Chains, LogPass, Overview, PreviousOutcome
from skipmodel.explore.trackpass import FeatureScale, TrackPass, feature_extents
from skipmodel.explore.transitions import TransitionSpill
from skipmodel.load.loaders import BucketRows
from skipmodel.load.tracks import TrackTable
from skipmodel.progress import Progress
from skipmodel.store.layout import StoreLayout, open_store
from skipmodel.store.location import location_text
from skipmodel.store.schema import SKIP_OUTCOMES, TRACK_NUMERIC_FEATURES

HISTOGRAM_BINS = 50
#: A bucket is reduced in pieces of about this many plays (whole sessions), so the NumPy
#: temporaries stay bounded however large the store's buckets are.
SLICE_ROWS = 1 << 20
TRACK_BATCH_ROWS = 262_144
#: The tracks table (id + numeric features) is kept in memory between its two passes when
#: at most this large (the simulated and small stores); the full MSSD's is streamed twice.
TRACK_CACHE_BYTES = 256 * 2**20
#: Key of the memory-in-chains grid's scale in ``Results.scales``.
CHAINS_SCALE = "_chains"
#: The log pass is shared with worker processes from this many processes on. One process
#: already keeps two CPUs busy (two threads read ahead while the compiled loop reduces), so on
#: two CPUs a second process only adds its start-up and the merge (see ``benchmarks/bench_explore.py``);
#: the figures are still drawn by both.
LOG_PASS_MIN_WORKERS = 3
LOG_COLUMNS_NEEDED: tuple[str, ...] = (
    "session_id",
    "session_position",
    "track_id_clean",
    *SKIP_OUTCOMES,
    "hour_of_day",
    "date",
)


class Sources(Protocol):
    """Where batches come from: a store (:class:`StoreSources`) or, in tests, prepared batches."""

    def log_batches(
        self,
        *,
        columns: Sequence[str],
        features: Sequence[str],
        lag_features: Sequence[str],
        lags: int,
    ) -> Iterable[pa.RecordBatch]: ...

    def track_batches(self, columns: Sequence[str]) -> Iterable[pa.RecordBatch]: ...


class PassTasks(Protocol):
    """The passes handed to an engine instead (:class:`skipmodel.explore.tasks.EngineTasks`)."""

    def extents(self, features: Sequence[str]) -> dict[str, Extent]: ...

    def track_pass(self, empty: TrackPass) -> TrackPass: ...

    def log_pass(
        self, options: ExploreOptions, chains_edges: np.ndarray | None, bar: Progress
    ) -> LogPass: ...


@dataclass(frozen=True)
class StoreSources:
    """Batches of a store: the log through :func:`skipmodel.load.iter_batches`, tracks through
    :class:`skipmodel.load.tracks.TrackTable`."""

    layout: StoreLayout
    fraction: float = 1.0
    seed: int = 0
    #: Reduce whole buckets with NumPy (fast); False streams loader batches (same numbers).
    whole_buckets: bool = True
    #: Judge dates against each row's file day where the store knows it (compacted buckets;
    #: :mod:`.dates` rule 0, as ingest does); False uses the session rules everywhere.
    file_day_rule: bool = True
    _cache: dict[str, list[pa.Table] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def log_batches(
        self,
        *,
        columns: Sequence[str],
        features: Sequence[str],
        lag_features: Sequence[str],
        lags: int,
    ) -> Iterable[pa.RecordBatch]:
        from skipmodel.load.loaders import SampleSpec, iter_batches

        spec = SampleSpec(
            fraction=self.fraction,
            seed=self.seed,
            columns=list(columns),
            features=list(features) if features else False,
            lags=lags,
            lag_features=list(lag_features) if lag_features else False,
        )
        return iter_batches(self.layout.root, spec)

    def log_buckets(
        self,
        *,
        columns: Sequence[str],
        features: Sequence[str],
        schedule: Callable[[Sequence[int]], Iterable[int]] | None = None,
    ) -> Iterable[BucketRows]:
        """Whole buckets with lag-1 rows and track rows (see :class:`BucketPlays`): the fast
        path of the log pass, same numbers as :meth:`log_batches`."""
        from skipmodel.load.loaders import SampleSpec, iter_buckets

        spec = SampleSpec(
            fraction=self.fraction,
            seed=self.seed,
            columns=list(columns),
            features=list(features) if features else False,
            lags=1,
            lag_features=False,
        )
        return iter_buckets(self.layout.root, spec, sources=self.file_day_rule, schedule=schedule)

    def n_buckets(self) -> int:
        """Buckets the sample reads."""
        from skipmodel.load.sampling import select_buckets

        n = int(self.layout.read_manifest().get("n_buckets", 1))
        return len(select_buckets(n, fraction=self.fraction, seed=self.seed).buckets)

    def bucket_numbers(self) -> tuple[int, ...]:
        """The sample's buckets that hold plays, ascending (the log pass's tasks)."""
        from skipmodel.load.loaders import SampleSpec, sample_buckets

        return sample_buckets(self.layout.root, SampleSpec(fraction=self.fraction, seed=self.seed))

    def source_days(self) -> dict[str, int]:
        """Day (days since 1970-01-01) of each log source's file, from the manifest."""
        days: dict[str, int] = {}
        for fingerprint, entry in self.layout.read_manifest().get("sources", {}).items():
            day = entry.get("file_day") if entry.get("kind") == "log" else None
            if day:
                days[fingerprint] = (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days
        return days

    @cached_property
    def track_table(self) -> TrackTable:
        """The store's tracks, one row per track id (its duplicate rule applied once)."""
        return TrackTable(self.layout)

    def track_batches(self, columns: Sequence[str]) -> Iterable[pa.RecordBatch]:
        """The tracks table, one row per track id, streamed; read once and kept when small
        (it is read up to three times)."""
        tracks = self.track_table
        if "table" not in self._cache:
            every = ["track_id", *TRACK_NUMERIC_FEATURES]
            small = tracks.stored_rows * len(every) * 8 <= TRACK_CACHE_BYTES
            self._cache["table"] = [tracks.table(every)] if small else None
        tables = self._cache["table"]
        if tables is not None:
            for table in tables:
                yield from table.select(list(columns)).to_batches(max_chunksize=TRACK_BATCH_ROWS)
            return
        yield from tracks.batches(columns, batch_rows=TRACK_BATCH_ROWS)


@dataclass(frozen=True)
class TransitionCounts:
    """The transitions view's numbers: an (N, N) matrix over popularity ranks and its tracks."""

    counts: np.ndarray
    labels: list[str | None]
    plays: np.ndarray
    order_by: str | None
    order_values: np.ndarray
    total: int


@dataclass
class Results:
    """All accumulators after the passes, plus the bin scales they were built with."""

    options: ExploreOptions
    log: LogPass
    scales: dict[str, FeatureScale] = field(default_factory=dict)
    tracks: TrackPass | None = None
    transitions: TransitionCounts | None = None

    @property
    def track_counts(self) -> TrackCounter:
        return self.log.tracks


#: Views drawn from the tracks table alone (ready before the log pass).
TRACK_VIEWS: tuple[str, ...] = ("feature_histograms", "feature_by_duration")


def compute(
    sources: Sources,
    options: ExploreOptions,
    *,
    progress: bool = False,
    on_tracks: Callable[[Results], None] | None = None,
    tasks: PassTasks | None = None,
) -> Results:
    """Run the passes of the module docstring and return the filled accumulators.

    ``on_tracks``, if given, is called before the log pass with the results of the
    :data:`TRACK_VIEWS` (an empty log), so they can be drawn meanwhile. ``tasks``, if given,
    runs the track passes and the log pass (on an engine: :mod:`.tasks`); the rare rest (the
    top tracks' ids from the log when the tracks table lacks them, a second count of
    transitions) runs here.
    """
    want_hist = options.wants("feature_histograms")
    want_duration = options.wants("feature_by_duration")
    want_chains = options.wants("memory_in_chains")
    hist_features = list(TRACK_NUMERIC_FEATURES) if want_hist else []
    range_features = list(
        dict.fromkeys([*hist_features, *([options.feature] if want_chains else [])])
    )
    extents = (
        tasks.extents(range_features)
        if tasks is not None and range_features
        else feature_extents(sources.track_batches(range_features), range_features)
        if range_features
        else {}
    )
    scales = {f: FeatureScale.build(f, extents[f], HISTOGRAM_BINS) for f in hist_features}
    if want_chains:
        scales[CHAINS_SCALE] = FeatureScale.build(
            options.feature, extents[options.feature], options.bins
        )
    tracks = None
    if want_hist or want_duration:
        tracks = TrackPass(
            {f: scales[f] for f in hist_features},
            options.duration_feature if want_duration else None,
            options.duration_step,
        )
        if tasks is not None:
            tracks = tasks.track_pass(tracks)
        else:
            for batch in sources.track_batches(tracks.columns):
                tracks.update(batch)
        if on_tracks is not None:
            on_tracks(Results(options, LogPass(Overview(), Calendar()), scales, tracks))

    chains_edges = scales[CHAINS_SCALE].edges if want_chains else None
    log = new_log_pass(options, chains_edges)
    try:
        with Progress("explore: log pass", enabled=None if progress else False) as bar:
            if tasks is not None:
                if log.transitions is not None:
                    log.transitions.close()  # the tasks' spills replace it
                log = tasks.log_pass(options, chains_edges, bar)
            elif not _log_pass_in_workers(sources, options, chains_edges, log, bar):
                for plays in log_plays(sources, options, want_chains):
                    log.update(plays)
                    bar.advance(plays.n)
        if log.overview.rows == 0:
            raise SkipmodelError(
                "the store (or the --fraction sample of it) holds no plays; "
                "ingest some logs or raise --fraction"
            )
        transitions = None
        if log.transitions is not None:  # the transitions view is wanted
            top_hashes, top_plays = log.tracks.top(options.top_tracks)
            top = TopTracks(top_hashes)
            # the ids (and ordering feature) of the top N, from the tracks table
            ranked = TrackPass({}, None, options.duration_step, top, options.order_by)
            if tasks is not None:
                ranked = tasks.track_pass(ranked)
            else:
                for batch in sources.track_batches(ranked.columns):
                    ranked.update(batch)
            if any(label is None for label in ranked.labels):  # tracks without features
                _labels_from_log(sources, top, ranked.labels)
            counts = log.transitions.count(top)
            if counts is None:  # a top track was not among the candidates: count again
                counts = _count_transitions_again(sources, options, top)
            transitions = TransitionCounts(
                counts=counts,
                labels=ranked.labels,
                plays=top_plays,
                order_by=options.order_by,
                order_values=ranked.order_values,
                total=log.transitions.transitions,
            )
            if tracks is None:
                tracks = ranked
    finally:
        if log.transitions is not None:
            log.transitions.close()
    return Results(options, log, scales, tracks, transitions)


def _labels_from_log(sources: Sources, top: TopTracks, labels: list[str | None]) -> None:
    """Fill in the ids of the top tracks the tracks table lacks (none, in a store without track
    features) from the log's track ids, read until each is found: the most played tracks turn
    up in the first batches, so this stops early."""
    missing = sum(label is None for label in labels)
    batches = sources.log_batches(columns=["track_id_clean"], features=[], lag_features=[], lags=0)
    for batch in batches:
        ids = pc.unique(batch.column("track_id_clean").drop_null())
        ranks = top.ranks(hash_ids(ids))
        for row in np.flatnonzero(ranks >= 0):
            rank = int(ranks[row])
            if labels[rank] is None:
                labels[rank] = ids[int(row)].as_py()
                missing -= 1
        if missing == 0:
            break
    close = getattr(batches, "close", None)
    if close is not None:  # a generator stopped early: let it release its readers
        close()


def _count_transitions_again(
    sources: Sources, options: ExploreOptions, top: TopTracks
) -> np.ndarray:
    """A second log pass counting the transitions among ``top`` only (see
    :class:`~skipmodel.explore.transitions.TransitionSpill`)."""
    with TransitionSpill(candidates=top.hashes) as spill:
        for plays in log_plays(sources, options, want_chains=False):
            spill.update(plays, plays.track_hashes()[0])
        counts = spill.count(top)
    assert counts is not None  # the candidates are the top tracks
    return counts


def new_log_pass(options: ExploreOptions, chains_edges: np.ndarray | None) -> LogPass:
    """Empty accumulators for the views ``options`` asks for."""
    return LogPass(
        overview=Overview(feature_column=options.feature),
        calendar=Calendar(),
        previous=PreviousOutcome(options.skip) if options.wants("previous_outcome") else None,
        chains=Chains(options.feature, chains_edges) if chains_edges is not None else None,
        transitions=TransitionSpill(top_n=options.top_tracks)
        if options.wants("transitions")
        else None,
    )


def _log_pass_in_workers(
    sources: Sources,
    options: ExploreOptions,
    chains_edges: np.ndarray | None,
    log: LogPass,
    bar: Progress,
) -> bool:
    """Fill ``log`` here and in worker processes (:mod:`.parallel`: each participant reduces
    the buckets it claims, the workers' accumulators are merged in); False (``log``
    untouched) if that is not worth it (too few processes or buckets) or worker processes
    cannot be started."""
    if not (
        isinstance(sources, StoreSources)
        and sources.whole_buckets
        and options.workers >= LOG_PASS_MIN_WORKERS
    ):
        return False
    n, size = min(options.workers, sources.n_buckets()), options.workers - 1
    if n < 2:
        return False
    # absolute: the workers keep the directory they started in
    args = (location_text(sources.layout.root), sources.fraction, sources.seed)
    with tempfile.TemporaryDirectory(prefix="skipmodel-explore-claims-") as claims:
        rest = (sources.file_day_rule, options, chains_edges, claims)
        futures = parallel.submit(
            size, [(_claimed_pass, (*args, *rest, i, n)) for i in range(1, n)]
        )
        if futures is None:
            return False
        schedule = parallel.Claims(claims).schedule(0, n)
        for plays in log_plays(sources, options, chains_edges is not None, schedule):
            log.update(plays)
            bar.advance(plays.n)
        shards = parallel.results(futures, size)
    for shard in shards:
        log.merge(shard)
        bar.advance(shard.overview.rows)
    return True


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
    """Worker: the log pass over the buckets it claims (participant ``start`` of ``of``)."""
    sources = StoreSources(open_store(root), fraction, seed, file_day_rule=file_day_rule)
    log = new_log_pass(options, chains_edges)
    schedule = parallel.Claims(claims).schedule(start, of)
    for plays in log_plays(sources, options, chains_edges is not None, schedule):
        log.update(plays)
    return log


def log_plays(
    sources: Sources,
    options: ExploreOptions,
    want_chains: bool,
    schedule: Callable[[Sequence[int]], Iterable[int]] | None = None,
) -> Iterator[PlayBatch]:
    """The log as whole buckets when the source can give them, else as loader batches."""
    if isinstance(sources, StoreSources) and sources.whole_buckets:
        arrays: TrackArrays | None = None
        days = sources.source_days() if sources.file_day_rule else {}
        for bucket in sources.log_buckets(
            columns=LOG_COLUMNS_NEEDED, features=options.log_features, schedule=schedule
        ):
            if arrays is None:
                arrays = TrackArrays(bucket.tracks, tuple(options.log_features))
            for part in session_slices(bucket, SLICE_ROWS):
                yield BucketPlays(part, arrays, days)
        return
    for batch in sources.log_batches(
        columns=LOG_COLUMNS_NEEDED,
        features=options.log_features,
        lag_features=[options.feature] if want_chains else [],
        lags=1,
    ):
        yield PlayBatch(batch)


def store_sources(root: str | Path, options: ExploreOptions) -> StoreSources:
    return StoreSources(open_store(root), options.fraction, options.seed)
