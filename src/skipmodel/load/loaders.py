"""Sampled loaders: the one entry point everything downstream reads the store through.

(Over 500 lines: reading a bucket, the batch and whole-bucket outputs and the read-ahead share
one plan and one bucket type; what to read is already apart, in :mod:`skipmodel.load.spec`.)

``iter_batches`` streams Arrow record batches of a deterministic session sample with the track
features joined and within-session lag columns; ``load_table`` / ``load_pandas`` materialise it.
Each chosen bucket is read whole (all its part files, only the needed columns, session and track
ids as dictionary codes) and sorted by ``(session_id, session_position)`` (a compacted bucket,
one file that declares its order, is not re-sorted); track features, lags and row filters are
then applied batch by batch, batches cut at session boundaries. A worker thread reads and sorts
the next bucket while the current one is emitted (``READ_AHEAD``), so memory is bounded by two
buckets' log columns plus one batch of output. :func:`iter_buckets` (whole buckets, for NumPy
consumers) reads ``READ_AHEAD_DEPTH`` = 2 ahead on two threads, three buckets in memory, unless
they are large. Full passes index the track ids once per call
(:meth:`skipmodel.load.tracks.TrackFeatures.build_index`); a one-bucket read probes instead.

Which sessions are read is decided in :mod:`skipmodel.load.sampling`; lag rules live in
:mod:`skipmodel.load.lags`; the track join in :mod:`skipmodel.load.tracks`; what a spec asks for
in :mod:`skipmodel.load.spec`. See ``DESIGN.md`` ("Sampled loaders") for the agreed output
columns. Rules worth knowing:

* lags are computed on the whole stored session before the split and date filters drop rows;
  a lag is null at position 1, when the previous position is absent, and when it is duplicated
  (duplicate ``(session_id, session_position)`` rows are all kept, each with its position's lags);
* a track id stored twice takes its first row (part files in name order, then row order);
* rows are ordered by ``(session_id, session_position)`` in Arrow's (byte-wise) string order
  within a bucket; buckets come in ascending bucket number.

Examples
--------
>>> from skipmodel.load.loaders import SampleSpec, load_table
>>> table = load_table("data/store", SampleSpec(fraction=0.02, seed=1, split="train"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.load.frames import as_pandas
from skipmodel.load.lags import (
    append_lags,
    as_take_indices,
    lag_rows,
    session_keys,
    split_keys,
)
from skipmodel.load.sampling import (
    SPLIT_SEED,
    BucketSelection,
    is_test_session,
    keep_in_partial_bucket,
    select_buckets,
)
from skipmodel.load.spec import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_SPEC,
    KEY_COLUMNS,
    TRACK_FEATURES,
    WEEKDAY,
    ReadPlan,
    SampleSpec,
    log_field,
    output_schema,
    plan_schema,
    read_plan,
    resolve_spec,
    store_user_fields,
)
from skipmodel.load.tracks import TrackFeatures, id_hash
from skipmodel.store.arrays import int_np
from skipmodel.store.format import (
    SORTED_KEY,
    SORTED_VALUE,
    SOURCE_COLUMN,
    TRACK_ROW_COLUMN,
    TRACKS_KEY,
    file_metadata,
    pending_compaction,
    tracks_signature,
)
from skipmodel.store.layout import DEFAULT_BUCKETS, StoreLayout, open_store
from skipmodel.store.parts import read_parts
from skipmodel.store.schema import LOG_COLUMNS

if TYPE_CHECKING:  # pandas is imported by as_pandas only: ingest never loads it
    import pandas as pd

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "KEY_COLUMNS",
    "SPLIT_SEED",
    "TRACK_FEATURES",
    "WEEKDAY",
    "SampleSpec",
    "as_pandas",
    "is_test_session",
    "iter_batches",
    "load_pandas",
    "sample_buckets",
    "BucketRows",
    "iter_buckets",
    "load_table",
    "output_schema",
]

#: From this many buckets on, the track ids are indexed once per call instead of probed per bucket.
INDEX_MIN_BUCKETS = 2
#: Read the next bucket on a worker thread while the current one is emitted.
READ_AHEAD = True
#: Buckets read ahead at once, each on its own thread (Parquet decoding and most NumPy work
#: release the GIL, so two threads keep two CPUs busy).
READ_AHEAD_DEPTH = 2
#: ... when the store's buckets hold at most this many plays on average (else one ahead).
READ_AHEAD_MAX_ROWS = 4_000_000


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Bucket:
    """One bucket read, filtered by session and sorted, with everything computed on it whole."""

    table: pa.Table
    #: row where each session starts, then the row count
    bounds: np.ndarray
    #: lag-k source row of each row (-1 when none), for k = 1 .. lags
    lag_rows: tuple[np.ndarray, ...]
    #: track-table row of each play, -1 when unknown
    track_rows: np.ndarray | None
    #: :func:`~skipmodel.load.tracks.id_hash` of the track-id dictionary (with ``track_rows``)
    track_id_hashes: np.ndarray | None = None


def _session_mask(
    sessions: pa.Array, plan: ReadPlan, partial: BucketSelection | None
) -> np.ndarray | None:
    """Which of the (distinct) ``sessions`` the sample keeps; None when it keeps them all."""
    if partial is None and plan.split is None:
        return None
    keep = np.ones(len(sessions), dtype=bool)
    if partial is not None:
        keep &= keep_in_partial_bucket(sessions, partial)
    if plan.split is not None:
        test = is_test_session(sessions, test_fraction=plan.test_fraction)
        keep &= test if plan.split == "test" else ~test
    return keep


def _row_mask(table: pa.Table, plan: ReadPlan) -> pa.Array | None:
    masks = []
    if plan.date_from is not None:
        masks.append(pc.greater_equal(table.column("date"), pa.scalar(plan.date_from, pa.date32())))
    if plan.date_to is not None:
        masks.append(pc.less_equal(table.column("date"), pa.scalar(plan.date_to, pa.date32())))
    if not masks:
        return None
    mask = masks[0]
    for extra in masks[1:]:
        mask = pc.and_(mask, extra)
    return mask


def _read_bucket(
    files: Sequence[Path], plan: ReadPlan, partial: BucketSelection | None
) -> tuple[pa.Table, np.ndarray]:
    """Read one bucket's log columns (all part files: a session may be split over them), keep
    the sampled sessions and sort by ``(session_id, session_position)``; also the sorted
    :func:`~skipmodel.load.lags.session_keys`.

    Session ids are ranked once per run of equal ids: the sample/split hashes run on those
    run heads, and the sort is an integer sort of ``(rank of session_id, position)`` keys (ranks
    in Arrow's byte-wise string order; stable, so duplicate rows keep file order) instead of a
    string sort.
    """
    read_schema = pa.schema(
        [*(log_field(c, True, reading=True) for c in plan.log_read), *plan.user]
    )
    # one compacted file declares its order (no ranking of session ids, no sort) and may hold
    # the track rows of compaction's join and each row's source: read all in one go
    meta = file_metadata(files[0]) if len(files) == 1 else {}
    presorted = meta.get(SORTED_KEY) == SORTED_VALUE
    extra = []
    if (
        presorted
        and plan.track_read
        and plan.tracks_signature is not None
        and meta.get(TRACKS_KEY) == plan.tracks_signature.encode()
    ):
        extra.append(TRACK_ROW_COLUMN)  # looked up against the same track files
    if plan.read_sources and presorted:
        extra.append(SOURCE_COLUMN)
    table = read_parts(
        files,
        [*plan.log_read, *plan.user_names],
        read_schema,
        combine=False,
        dictionary=(*_DICT_READ, SOURCE_COLUMN, *plan.user_names),
        extra=extra,
    )
    # session ids come as dictionary indices (unified over the files): equal ids, equal codes
    ids = table.column("session_id").combine_chunks()
    codes = ids.indices.to_numpy(zero_copy_only=False)
    # Each part file is sorted by session, so rows of a session come in runs: rank only the
    # first id of each run (dense ranks, byte-wise order) and the sample/split hashes too.
    n = len(ids)
    heads = np.zeros(n, dtype=bool)
    if n:
        heads[0] = True
        heads[1:] = codes[1:] != codes[:-1]
    head_rows = np.flatnonzero(heads)
    run_lengths = np.diff(np.append(head_rows, n))
    head_ids = ids.dictionary.take(pa.array(codes[head_rows]))
    if presorted:
        head_rank = np.arange(len(head_rows), dtype=np.int64)
    else:
        head_rank = pc.rank(head_ids, tiebreaker="dense").to_numpy(zero_copy_only=False)
    keys = session_keys(
        np.repeat(head_rank.astype(np.int64), run_lengths),
        table.column("session_position").to_numpy(),
    )
    # Session-level filters first: lags are within-session, so dropping whole sessions is safe.
    keep = _session_mask(head_ids, plan, partial)
    rows = None if keep is None else np.flatnonzero(np.repeat(keep, run_lengths))
    if rows is not None:
        keys = keys[rows]
    if not presorted and keys.size > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        rows = order if rows is None else rows[order]
    table = table.combine_chunks() if rows is None else table.take(pa.array(rows))
    return table, keys


_DICT_READ = ("session_id", "track_id_clean")


def _prepare_bucket(
    table: pa.Table, keys: np.ndarray, plan: ReadPlan, tracks: TrackFeatures | None
) -> _Bucket:
    """Session bounds, lag source rows and track rows of a read bucket, each computed once."""
    ranks, positions = split_keys(keys)
    starts = np.flatnonzero(np.diff(ranks, prepend=-1))
    track_rows = id_hashes = None
    if tracks is not None:
        if TRACK_ROW_COLUMN in table.column_names:  # compaction joined already: no hashing
            track_rows = int_np(table.column(TRACK_ROW_COLUMN))
            table = table.drop_columns([TRACK_ROW_COLUMN])
        else:
            ids = table.column("track_id_clean").combine_chunks()
            id_hashes = id_hash(ids.dictionary)  # each distinct id hashed once, kept for consumers
            track_rows = tracks.row_numbers(ids, dictionary_hashes=id_hashes)
    return _Bucket(
        table=table,
        bounds=np.append(starts, keys.size),
        lag_rows=tuple(lag_rows(keys, positions, k) for k in range(1, plan.lags + 1)),
        track_rows=track_rows,
        track_id_hashes=id_hashes,
    )


def _weekday(dates: pa.ChunkedArray) -> pa.Array:
    """Monday = 0 from date32: 1970-01-01 was a Thursday."""
    if dates.null_count:
        return pc.day_of_week(dates, count_from_zero=True, week_start=1).cast(pa.int8())
    days = dates.cast(pa.int32()).to_numpy().astype(np.int64)
    return pa.array(((days + 3) % 7).astype(np.int8))


def _bucket_batches(
    bucket: _Bucket, plan: ReadPlan, tracks: TrackFeatures | None
) -> Iterator[pa.Table]:
    """A prepared bucket as tables of whole sessions, joined, lagged and filtered, in output columns.

    Features, lags and row filters are applied per slice of about ``batch_rows`` rows cut at
    session boundaries, so beyond the bucket memory holds one slice of output.
    """
    table = bucket.table
    for start, stop in _session_slices(bucket.bounds, plan.batch_rows):
        part = table.slice(start, stop - start)
        if tracks is not None and bucket.track_rows is not None:
            rows = as_take_indices(bucket.track_rows[start:stop])
            part = tracks.take(part, rows, plan.track_read)
        if plan.weekday:
            part = part.append_column(WEEKDAY, _weekday(part.column("date")))
        sources = [as_take_indices(rows[start:stop] - start) for rows in bucket.lag_rows]
        part = append_lags(part, sources, plan.lag_features)
        # Row-level filters last, so the first kept row of a session still knows its previous play.
        mask = _row_mask(part, plan)
        if mask is not None:
            part = part.filter(mask)
        if part.num_rows:
            yield _id_types(part.select(plan.out_names), plan)


_ID_COLUMNS = ("session_id", "track_id_clean", "prev_track_id_clean")


def _id_types(part: pa.Table, plan: ReadPlan) -> pa.Table:
    """Id columns as the output schema says: session ids as strings, track ids as strings
    or (``track_ids="dictionary"``) the bucket's dictionary."""
    for name in _ID_COLUMNS[:1] if plan.dictionary_ids else _ID_COLUMNS:
        if name in part.column_names:
            i = part.schema.get_field_index(name)
            column = part.column(i)
            if pa.types.is_dictionary(column.type):
                part = part.set_column(
                    i, part.field(i).with_type(pa.string()), column.cast(pa.string())
                )
    return part


def _session_slices(bounds: np.ndarray, batch_rows: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges of about ``batch_rows`` rows, cut at session boundaries.

    ``bounds`` holds the first row of each session, then the row count. A range is longer than
    ``batch_rows`` only when a single session is.
    """
    n = int(bounds[-1])
    start = 0
    while start < n:
        # the last session start at or before start + batch_rows, but at least one whole session
        stop = int(bounds[np.searchsorted(bounds, start + batch_rows, side="right") - 1])
        if stop <= start:
            stop = int(bounds[np.searchsorted(bounds, start, side="right")])
        yield start, stop
        start = stop


def iter_batches(
    store: str | Path,
    spec: SampleSpec = DEFAULT_SPEC,
    *,
    buckets: Sequence[int] | None = None,
    **overrides: Any,
) -> Iterator[pa.RecordBatch]:
    """Stream a deterministic session sample of ``store`` as Arrow record batches.

    Parameters
    ----------
    store : str or Path
        A store directory written by ``skipmodel ingest``.
    spec : SampleSpec
        What to load; ``overrides`` replace single fields (``iter_batches(s, fraction=0.1)``).
    buckets : sequence of int, optional
        Read only these of the sample's buckets (in ascending order; see
        :func:`sample_buckets`): one task of a pass shared out by bucket. The batches of every
        bucket, concatenated in bucket order, are those of the whole sample.

    Yields
    ------
    pyarrow.RecordBatch
        All with :func:`output_schema`; rows sorted by ``(session_id, session_position)``
        within a batch; a session never spans two batches.

    Raises
    ------
    SkipmodelError
        When ``store`` is not a store or the spec is invalid (unknown names, bad fraction...).
    """
    spec = resolve_spec(spec, overrides)
    plan = read_plan(spec, store_user_fields(store))
    layout = open_store(store)
    n_buckets = int(layout.read_manifest().get("n_buckets", DEFAULT_BUCKETS))
    selection = select_buckets(n_buckets, fraction=spec.fraction, seed=spec.seed)
    schema = plan_schema(plan)
    return _generate(layout, plan, selection, schema, buckets)


def sample_buckets(store: str | Path, spec: SampleSpec = DEFAULT_SPEC) -> tuple[int, ...]:
    """The buckets a sample of ``store`` reads that hold data, ascending: the tasks of a pass
    shared out by bucket (:func:`iter_batches` with ``buckets=``, :func:`iter_buckets` with a
    ``schedule``)."""
    layout = open_store(store)
    n_buckets = int(layout.read_manifest().get("n_buckets", DEFAULT_BUCKETS))
    selection = select_buckets(n_buckets, fraction=spec.fraction, seed=spec.seed)
    return tuple(b for b in selection.buckets if layout.parts(layout.bucket_dir(b)))


def _generate(
    layout: StoreLayout,
    plan: ReadPlan,
    selection: BucketSelection,
    schema: pa.Schema,
    buckets: Sequence[int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the selected buckets, the next bucket read while the current one is emitted.

    One worker thread reads, filters and sorts bucket i+1 (Parquet decoding, Arrow takes and
    NumPy sorts release the GIL) while this thread joins, lags and slices bucket i, so at most
    two buckets are in memory at once: the one being turned into batches and the one read ahead.
    """
    tracks, jobs = _start(layout, plan, selection)
    chosen = jobs.values() if buckets is None else [jobs[b] for b in sorted(buckets) if b in jobs]
    for bucket in _read_ahead(chosen, tracks):
        for part in _bucket_batches(bucket, plan, tracks):
            yield pa.RecordBatch.from_arrays([_single(c) for c in part.columns], schema=schema)
        del bucket


_Job = tuple[list[Path], ReadPlan, BucketSelection | None]


def _start(
    layout: StoreLayout, plan: ReadPlan, selection: BucketSelection
) -> tuple[TrackFeatures | None, dict[int, _Job]]:
    """The track table (indexed for a pass over many buckets) and the read job of each
    non-empty bucket, by bucket number (ascending)."""
    tracks = TrackFeatures.from_store(layout, plan.track_read) if plan.track_read else None
    if tracks is not None and len(selection.buckets) >= INDEX_MIN_BUCKETS:
        tracks.index_on_first_lookup = True
    plan = dataclasses.replace(plan, tracks_signature=tracks_signature(layout))
    for bucket in selection.buckets:
        if pending_compaction(layout.bucket_dir(bucket)):
            raise SkipmodelError(
                f"{layout.bucket_dir(bucket)} is half compacted (an ingest was interrupted); "
                "re-run that ingest, or skipmodel.ingest.compact(STORE), to finish it"
            )
    jobs: dict[int, _Job] = {
        bucket: (files, plan, selection if bucket == selection.partial else None)
        for bucket in selection.buckets
        if (files := layout.parts(layout.bucket_dir(bucket)))
    }
    return tracks, jobs


def _read_and_prepare(job: _Job, tracks: TrackFeatures | None) -> _Bucket:
    return _prepare_bucket(*_read_bucket(*job), job[1], tracks)


def _read_ahead(
    jobs: Iterable[_Job], tracks: TrackFeatures | None, depth: int = 1
) -> Iterator[_Bucket]:
    """Buckets in order, read and prepared (lag rows, track rows) on ``depth`` worker threads
    while the caller uses the previous one. ``jobs`` is consumed ``depth`` buckets ahead of the
    caller."""
    todo = iter(jobs)
    first = next(todo, None)
    if first is None:
        return
    if not READ_AHEAD:
        yield _read_and_prepare(first, tracks)
        for job in todo:
            yield _read_and_prepare(job, tracks)
        return
    depth = max(1, depth)
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="skipmodel-read") as pool:
        ahead: deque[Future[_Bucket]] = deque([pool.submit(_read_and_prepare, first, tracks)])
        while len(ahead) < depth and (more := next(todo, None)) is not None:
            ahead.append(pool.submit(_read_and_prepare, more, tracks))
        while ahead:
            result = ahead.popleft().result()
            following = next(todo, None)
            if following is not None:
                ahead.append(pool.submit(_read_and_prepare, following, tracks))
            yield result
            del result


@dataclass(frozen=True)
class BucketRows:
    """One bucket of a sample, whole, for consumers that reduce entire buckets with NumPy.

    Attributes
    ----------
    table : pyarrow.Table
        The session-log columns read, rows sorted by ``(session_id, session_position)``;
        ``track_id_clean`` is ``dictionary<int32, string>`` with one dictionary.
    bounds : numpy.ndarray
        Row where each session starts, then the row count.
    lag_rows : tuple of numpy.ndarray
        For k = 1 .. lags, the row of the play k positions earlier in the same session, -1
        when there is none (the rules of :mod:`skipmodel.load.lags`).
    track_rows : numpy.ndarray or None
        Row of each play's track in ``tracks``, -1 when the track has no features.
    track_id_hashes : numpy.ndarray or None
        :func:`skipmodel.load.tracks.id_hash` of each entry of ``track_id_clean``'s
        dictionary, when the join computed it (``track_rows`` of a compacted bucket come
        from the file, and no id is hashed).
    tracks : pyarrow.Table or None
        The store's track table (``track_id`` and the spec's features), as joined.
    """

    table: pa.Table
    bounds: np.ndarray
    lag_rows: tuple[np.ndarray, ...]
    track_rows: np.ndarray | None
    tracks: pa.Table | None
    track_id_hashes: np.ndarray | None = None


def iter_buckets(
    store: str | Path,
    spec: SampleSpec = DEFAULT_SPEC,
    *,
    sources: bool = False,
    schedule: Callable[[Sequence[int]], Iterable[int]] | None = None,
    **overrides: Any,
) -> Iterator[BucketRows]:
    """The sample's buckets, whole, in ascending bucket order (see :class:`BucketRows`).

    The same sessions, lags and track rows as :func:`iter_batches`, before any per-row work:
    no feature or lag columns are materialised, so a consumer that reduces with NumPy gathers
    only what it needs. A ``date_range`` is not applied (it is a per-row filter); asking for
    one is an error. Memory: three buckets' log columns (:data:`READ_AHEAD_DEPTH` = 2 read
    ahead, on two threads); two (one ahead) with a ``schedule`` or when the store's buckets
    average more than :data:`READ_AHEAD_MAX_ROWS` plays.

    With ``sources``, the table of a compacted bucket also holds
    :data:`skipmodel.store.format.SOURCE_COLUMN` (the fingerprint of the input each row came
    from, dictionary-encoded); buckets that are not compacted lack it.

    ``schedule``, given the sample's bucket numbers (ascending), yields the ones to read, in
    the order to read them; it is consumed lazily, one bucket ahead of the caller, so several
    processes can share a sample by claiming buckets as they go (each whole session is in
    exactly one bucket). For example ``lambda b: b[0::2]`` reads every other bucket.
    """
    spec = resolve_spec(spec, overrides)
    if spec.date_range is not None:
        raise SkipmodelError("iter_buckets does not filter by date; use iter_batches")
    plan = read_plan(spec, store_user_fields(store))
    # no lag columns are copied here: read only the projected columns (user columns only
    # when named: a NumPy pass over MSSD's columns need not read them)
    wanted = {*plan.log_out, *(["date"] if plan.weekday else [])}
    plan = dataclasses.replace(
        plan,
        log_read=tuple(c for c in LOG_COLUMNS if c in wanted),
        read_sources=sources,
        user=plan.user if spec.columns is not None else (),
    )
    layout = open_store(store)
    manifest = layout.read_manifest()
    n_buckets = int(manifest.get("n_buckets", DEFAULT_BUCKETS))
    selection = select_buckets(n_buckets, fraction=spec.fraction, seed=spec.seed)
    tracks, jobs = _start(layout, plan, selection)
    chosen = (
        jobs.values() if schedule is None else (jobs[b] for b in schedule(tuple(jobs)) if b in jobs)
    )
    # claimed buckets (processes sharing a sample) are read one ahead: claim no more than
    # needed; so are large buckets (a third one in memory would cost more than it saves)
    rows = int(manifest.get("totals", {}).get("log_rows_written", 0))
    large = rows > READ_AHEAD_MAX_ROWS * max(n_buckets, 1)
    depth = 1 if schedule is not None or large else READ_AHEAD_DEPTH
    for bucket in _read_ahead(chosen, tracks, depth):
        yield BucketRows(
            table=bucket.table,
            bounds=bucket.bounds,
            lag_rows=bucket.lag_rows,
            track_rows=bucket.track_rows,
            track_id_hashes=bucket.track_id_hashes,
            tracks=None if tracks is None else tracks.tracks,
        )


def _single(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array, without a copy when it already is one chunk."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def load_table(store: str | Path, spec: SampleSpec = DEFAULT_SPEC, **overrides: Any) -> pa.Table:
    """The whole sample as one Arrow table (see :func:`iter_batches`)."""
    spec = resolve_spec(spec, overrides)
    batches = list(iter_batches(store, spec))
    return pa.Table.from_batches(batches, schema=output_schema(spec, store=store))


def load_pandas(
    store: str | Path, spec: SampleSpec = DEFAULT_SPEC, **overrides: Any
) -> pd.DataFrame:
    """The whole sample as a pandas DataFrame, with dtypes decided by the schema (see
    :func:`as_pandas`), not by whether this sample happens to hold a null.

    Examples
    --------
    >>> plays = load_pandas("data/store", lags=2)  # doctest: +SKIP
    >>> plays["prev_skip_2"].dtype, plays["date"].dtype  # doctest: +SKIP
    (BooleanDtype, dtype('<M8[ms]'))
    """
    return as_pandas(load_table(store, spec, **overrides))
