"""The WSDM Cup 2019 test set as a model sees it: both halves of every challenge session, joined.

``skipmodel ingest`` stores the challenge's first halves (``log_prehistory_*``, every log column)
and second halves (``log_input_*``: session, track, position, length) under
``STORE/challenge/``, apart from the training sessions (:mod:`skipmodel.store.layout`).
:func:`load_challenge` puts them back together:

* ``plays``: every prehistory and input row, sorted by ``(session_id, session_position)``, with
  the session-log columns (an input row has only the four of its file: its outcomes, context,
  date... are null), ``weekday``, ``is_input`` (the row came from a ``log_input`` file), the track features
  joined as the training loaders join them (null for a track not in the tracks table) and the lag
  columns of :mod:`skipmodel.load.lags` computed over the union: the first input play's
  ``prev_skip_2`` is the last prehistory play's outcome and its ``prev_<feature>`` the previous
  track's features, while a lag *outcome* whose source is an input play is null (its outcome is
  unknown) and ``prev_track_id_clean`` / ``prev_<feature>`` of input plays come from the previous
  input play's track;
* ``order``: the session ids of the ``log_input`` files in the order a submission must follow:
  files by the day in their name (then by name; a file without a day last), sessions by first
  appearance within a file, rebuilt from the stored ``input_file``/``input_day``/``input_line``.

What is counted, not raised (a subset of the release's files gives all of these legitimately):
sessions with input but no prehistory (predicted from their tracks alone: in ``order`` and
``plays``), sessions with prehistory but no input (in ``plays``, not in ``order``: nothing to
predict), plays whose ``is_input`` disagrees with the split rule ``2 * position > length`` and
plays whose ``(session, position)`` occurs more than once (their successors' lags are null, the
lag rule for duplicates).

Memory: the store is read bucket by bucket (a session's two halves share a bucket), so the
Arrow work holds one bucket; :func:`iter_challenge` yields each bucket's plays as an Arrow table
for consumers that stream. ``load_challenge`` returns one pandas frame of everything, in the
dtypes of :func:`skipmodel.load.frames.as_pandas` (every column may be null here: booleans are
pandas' ``boolean``, integers ``Int8``...): measured at 1.1 GiB per million plays with the
default 91 columns (all features, two lags; object strings dominate) before those dtypes, which
need less; the call's peak resident memory is about 1.3 GiB per million plays (the frame and the
Arrow table it is converted from). The full
release (~60 M plays) therefore needs a subset:
``fraction=`` (the loaders' deterministic session sample by hash) or ``sessions=``.

Examples
--------
>>> challenge = load_challenge("data/store", fraction=0.01)  # doctest: +SKIP
>>> second = challenge.plays[challenge.plays["is_input"]]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.load.frames import as_pandas
from skipmodel.load.lags import append_lags, as_take_indices, lag_rows, session_codes, session_keys
from skipmodel.load.sampling import BucketSelection, keep_in_partial_bucket, select_buckets
from skipmodel.load.spec import WEEKDAY, SampleSpec, plan_schema, read_plan
from skipmodel.load.tracks import TrackFeatures
from skipmodel.store.arrays import bool_np, int_np
from skipmodel.store.hashing import session_bucket
from skipmodel.store.layout import DEFAULT_BUCKETS, StoreLayout, open_store
from skipmodel.store.parts import read_parts
from skipmodel.store.schema import INPUT_COLUMNS, INPUT_SCHEMA, LOG_COLUMNS, LOG_SCHEMA

if TYPE_CHECKING:  # pandas is imported by to_pandas only
    import pandas as pd

__all__ = [
    "IS_INPUT",
    "ChallengeSet",
    "challenge_schema",
    "iter_challenge",
    "iter_challenge_parts",
    "load_challenge",
    "submission_order",
]

#: Column of ``plays``: True for a row of a ``log_input`` file (a second-half play to predict).
IS_INPUT = "is_input"
#: From this many buckets on, the track ids are indexed once instead of probed per bucket.
_INDEX_MIN_BUCKETS = 2
_NULLABLE_LOG = pa.schema([f.with_nullable(True) for f in LOG_SCHEMA])
_NULLABLE_INPUT = pa.schema([f.with_nullable(True) for f in INPUT_SCHEMA])
#: ``input_day`` (days since 1970) of a file without a day in its name.
_NO_DAY = np.iinfo(np.int32).max
_ORDER_KEYS = [
    ("input_day", "ascending"),
    ("input_file", "ascending"),
    ("input_line", "ascending"),
]


@dataclass(frozen=True)
class ChallengeSet:
    """The challenge's test sessions, as :func:`load_challenge` returns them.

    Attributes
    ----------
    plays : pandas.DataFrame
        Every prehistory and input play, sorted by ``(session_id, session_position)``; columns of
        :func:`challenge_schema` (see the module doc).
    order : tuple of str
        Session ids of the ``log_input`` files in submission order (only the sessions loaded).
    sessions_without_prehistory : tuple of str
        Sessions with second-half plays but no first half (sorted).
    sessions_without_input : tuple of str
        Sessions with a first half but no second-half plays (sorted; not in ``order``).
    half_mismatch_plays : int
        Plays whose ``is_input`` disagrees with ``2 * session_position > session_length``.
    duplicate_plays : int
        Plays sharing their ``(session_id, session_position)`` with another play.
    """

    plays: pd.DataFrame
    order: tuple[str, ...]
    sessions_without_prehistory: tuple[str, ...] = ()
    sessions_without_input: tuple[str, ...] = ()
    half_mismatch_plays: int = 0
    duplicate_plays: int = 0


@dataclass(frozen=True)
class _Plan:
    """What to read: the validated feature and lag options and the output schema."""

    features: tuple[str, ...]
    lag_features: tuple[str, ...]
    track_read: tuple[str, ...]
    lags: int
    schema: pa.Schema


@dataclass(frozen=True)
class _BucketResult:
    plays: pa.Table
    #: one row per input session: its id and the order key of its first input row
    first_input: pa.Table
    without_prehistory: list[str]
    without_input: list[str]
    half_mismatch: int
    duplicates: int


def challenge_schema(
    *,
    lags: int = 2,
    features: Sequence[str] | bool = True,
    lag_features: Sequence[str] | bool = True,
) -> pa.Schema:
    """The Arrow schema of the challenge plays for these options (every column nullable).

    The session-log columns, ``weekday``, :data:`IS_INPUT`, the joined track features and the
    lag columns, in that order: the training loaders' columns (``skipmodel.load.output_schema``
    with all columns) plus ``is_input``.
    """
    return _plan(lags, features, lag_features).schema


def _plan(lags: int, features: Sequence[str] | bool, lag_features: Sequence[str] | bool) -> _Plan:
    plan = read_plan(SampleSpec(features=features, lags=lags, lag_features=lag_features))
    fields = [f.with_nullable(True) for f in plan_schema(plan)]
    at = [f.name for f in fields].index(WEEKDAY) + 1
    fields.insert(at, pa.field(IS_INPUT, pa.bool_(), nullable=False))
    return _Plan(plan.features, plan.lag_features, plan.track_read, plan.lags, pa.schema(fields))


def _check_sessions(sessions: Sequence[str] | None, fraction: float) -> pa.Array | None:
    if sessions is None:
        return None
    if isinstance(sessions, str):
        raise SkipmodelError("sessions must be a sequence of session ids, not one string")
    if fraction != 1.0:
        raise SkipmodelError("give either sessions= or fraction=, not both")
    ids = pc.unique(pa.array(list(sessions), type=pa.string()))
    if len(ids) == 0:
        raise SkipmodelError("sessions= is empty; give at least one session id")
    return ids


def _buckets(
    n_buckets: int, fraction: float, seed: int, sessions: pa.Array | None
) -> tuple[list[int], BucketSelection | None]:
    """The buckets to read and the sample's selection (None when ``sessions`` decides)."""
    if sessions is not None:
        return sorted({int(b) for b in session_bucket(sessions, n_buckets)}), None
    selection = select_buckets(n_buckets, fraction=fraction, seed=seed)
    return list(selection.buckets), selection


def _loaded(
    table: pa.Table, bucket: int, selection: BucketSelection | None, sessions: pa.Array | None
) -> pa.Table:
    """The rows of ``table`` whose session is loaded."""
    ids = table.column("session_id").combine_chunks()
    if sessions is not None:
        return table.filter(pc.is_in(ids, value_set=sessions))
    if selection is not None and bucket == selection.partial:
        return table.filter(pa.array(keep_in_partial_bucket(ids, selection)))
    return table


def _as_log_rows(given: pa.Table) -> pa.Table:
    """Input rows with every session-log column (null but for the four an input file has)."""
    n = given.num_rows
    columns = [
        given.column(f.name) if f.name in INPUT_COLUMNS else pa.nulls(n, f.type)
        for f in _NULLABLE_LOG
    ]
    return pa.Table.from_arrays(columns, schema=_NULLABLE_LOG)


def _first_input(given: pa.Table) -> pa.Table:
    """Each input session once, with the order key of its first row in the input files."""
    # a file without a day in its name sorts after every dated one (no null placement:
    # its spelling differs between pyarrow versions)
    days = pc.fill_null(given.column("input_day").cast(pa.int32()), _NO_DAY)
    keys = pa.table(
        {
            "session_id": given.column("session_id"),
            "input_day": days,
            "input_file": given.column("input_file").cast(pa.string()),
            "input_line": given.column("input_line"),
        }
    )
    if keys.num_rows == 0:
        return keys
    keys = keys.take(pc.sort_indices(keys, sort_keys=_ORDER_KEYS))
    codes = pc.dictionary_encode(keys.column("session_id")).combine_chunks().indices
    _, first = np.unique(codes.to_numpy(zero_copy_only=False), return_index=True)
    return keys.take(pa.array(np.sort(first)))


def _read_bucket(
    layout: StoreLayout,
    bucket: int,
    plan: _Plan,
    tracks: TrackFeatures | None,
    selection: BucketSelection | None,
    sessions: pa.Array | None,
) -> _BucketResult | None:
    pre_files = layout.parts(layout.challenge_bucket_dir("prehistory", bucket))
    input_files = layout.parts(layout.challenge_bucket_dir("input", bucket))
    if not pre_files and not input_files:
        return None
    pre = _loaded(read_parts(pre_files, LOG_COLUMNS, _NULLABLE_LOG), bucket, selection, sessions)
    given = _loaded(
        read_parts(input_files, INPUT_SCHEMA.names, _NULLABLE_INPUT), bucket, selection, sessions
    )
    if pre.num_rows + given.num_rows == 0:
        return None
    pre_ids, input_ids = pc.unique(pre.column("session_id")), pc.unique(given.column("session_id"))
    without_prehistory = input_ids.filter(pc.invert(pc.is_in(input_ids, value_set=pre_ids)))
    without_input = pre_ids.filter(pc.invert(pc.is_in(pre_ids, value_set=input_ids)))

    union = pa.concat_tables([pre, _as_log_rows(given)]).unify_dictionaries().combine_chunks()
    flags = np.concatenate([np.zeros(pre.num_rows, bool), np.ones(given.num_rows, bool)])
    union = union.append_column(pa.field(IS_INPUT, pa.bool_(), nullable=False), pa.array(flags))
    union = union.take(
        pc.sort_indices(
            union,
            sort_keys=[
                ("session_id", "ascending"),
                ("session_position", "ascending"),
                (IS_INPUT, "ascending"),
            ],
        )
    )
    positions = int_np(union.column("session_position"))
    lengths = int_np(union.column("session_length"))
    is_input = bool_np(union.column(IS_INPUT))
    keys = session_keys(session_codes(union.column("session_id")), positions)
    same = keys[1:] == keys[:-1]
    duplicated = np.zeros(len(keys), dtype=bool)
    duplicated[1:] |= same
    duplicated[:-1] |= same

    table = union
    if tracks is not None:
        rows = tracks.row_numbers(table.column("track_id_clean"))
        table = tracks.take(table, as_take_indices(rows), plan.track_read)
    weekday = pc.day_of_week(table.column("date"), count_from_zero=True, week_start=1)
    table = table.append_column(WEEKDAY, weekday.cast(pa.int8()))
    sources = [as_take_indices(lag_rows(keys, positions, k)) for k in range(1, plan.lags + 1)]
    table = append_lags(table, sources, plan.lag_features)
    table = table.select(plan.schema.names).cast(plan.schema)
    return _BucketResult(
        plays=table,
        first_input=_first_input(given),
        without_prehistory=without_prehistory.to_pylist(),
        without_input=without_input.to_pylist(),
        half_mismatch=int(np.count_nonzero(is_input != (2 * positions > lengths))),
        duplicates=int(np.count_nonzero(duplicated)),
    )


def _open_challenge(store: str | Path) -> tuple[StoreLayout, int]:
    layout = open_store(store)
    if not layout.challenge.is_dir():
        raise SkipmodelError(
            f"{layout.root} holds no challenge data; ingest the test set's log_prehistory_* and "
            "log_input_* files (e.g. test_set/) with 'skipmodel ingest PATH... --store DIR'"
        )
    return layout, int(layout.read_manifest().get("n_buckets", DEFAULT_BUCKETS))


def _iter_buckets(
    store: str | Path,
    *,
    lags: int,
    features: Sequence[str] | bool,
    lag_features: Sequence[str] | bool,
    fraction: float,
    seed: int,
    sessions: Sequence[str] | None,
) -> Iterator[_BucketResult]:
    """Each bucket's result, the options checked and the store opened before the first."""
    plan = _plan(lags, features, lag_features)
    wanted = _check_sessions(sessions, fraction)
    layout, n_buckets = _open_challenge(store)
    buckets, selection = _buckets(n_buckets, fraction, seed, wanted)
    tracks = TrackFeatures.from_store(layout, plan.track_read) if plan.track_read else None
    if tracks is not None and len(buckets) >= _INDEX_MIN_BUCKETS:
        tracks.index_on_first_lookup = True
    return _bucket_results(layout, buckets, plan, tracks, selection, wanted)


def _bucket_results(
    layout: StoreLayout,
    buckets: list[int],
    plan: _Plan,
    tracks: TrackFeatures | None,
    selection: BucketSelection | None,
    wanted: pa.Array | None,
) -> Iterator[_BucketResult]:
    found = 0
    for bucket in buckets:
        result = _read_bucket(layout, bucket, plan, tracks, selection, wanted)
        if result is not None:
            found += len(pc.unique(result.plays.column("session_id")))
            yield result
    if wanted is not None and found < len(wanted):
        raise SkipmodelError(
            f"{len(wanted) - found} of the {len(wanted)} sessions asked for are not in the "
            f"challenge set of {layout.root}"
        )


def iter_challenge(
    store: str | Path,
    *,
    lags: int = 2,
    features: Sequence[str] | bool = True,
    lag_features: Sequence[str] | bool = True,
    fraction: float = 1.0,
    seed: int = 0,
    sessions: Sequence[str] | None = None,
) -> Iterator[pa.Table]:
    """The challenge plays bucket by bucket, as Arrow tables of whole sessions.

    The same rows, columns and options as :func:`load_challenge` (each table has
    :func:`challenge_schema`), without the pandas frame: memory holds one bucket. Buckets come
    in ascending order; rows within a table by ``(session_id, session_position, is_input)``
    (``load_challenge`` sorts across buckets too).
    """
    results = _iter_buckets(
        store,
        lags=lags,
        features=features,
        lag_features=lag_features,
        fraction=fraction,
        seed=seed,
        sessions=sessions,
    )
    return (result.plays for result in results)


def iter_challenge_parts(
    store: str | Path,
    *,
    lags: int = 2,
    features: Sequence[str] | bool = True,
    lag_features: Sequence[str] | bool = True,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Every challenge session bucket by bucket, as :func:`iter_challenge`, each table with the
    order keys of its sessions' first input plays (pass them all to :func:`submission_order`)."""
    for result in _iter_buckets(
        store,
        lags=lags,
        features=features,
        lag_features=lag_features,
        fraction=1.0,
        seed=0,
        sessions=None,
    ):
        yield result.plays, result.first_input


def submission_order(firsts: Sequence[pa.Table]) -> tuple[str, ...]:
    """Session ids in the order of the ``log_input`` files (by file day, file, line) from the
    per-bucket order keys of :func:`iter_challenge_parts`."""
    firsts = [f for f in firsts if f.num_rows]
    if not firsts:
        return ()
    first = pa.concat_tables(firsts)
    ranked = first.take(pc.sort_indices(first, sort_keys=_ORDER_KEYS))
    return tuple(ranked.column("session_id").to_pylist())


def load_challenge(
    store: str | Path,
    *,
    lags: int = 2,
    features: Sequence[str] | bool = True,
    lag_features: Sequence[str] | bool = True,
    fraction: float = 1.0,
    seed: int = 0,
    sessions: Sequence[str] | None = None,
) -> ChallengeSet:
    """Both halves of the challenge's test sessions, with track features and lags, and their
    submission order (see the module doc).

    Parameters
    ----------
    store
        A store into which the challenge's ``log_prehistory_*`` and ``log_input_*`` files were
        ingested.
    lags
        0, 1 or 2 levels of lag columns, computed over both halves together.
    features
        Track features joined (True = all, False = none), as ``SampleSpec.features``.
    lag_features
        Features copied from the previous play as ``prev_<feature>`` (True = the joined ones).
    fraction, seed
        A deterministic share of the sessions, chosen by hash of the session id as the training
        loaders choose theirs (same seed, same sessions); 1.0 loads every session.
    sessions
        Only these session ids (instead of ``fraction``); an id not in the challenge set is an
        error.

    Returns
    -------
    ChallengeSet
        ``plays``, ``order`` and the counted problems.

    Raises
    ------
    SkipmodelError
        The store is not a store or holds no challenge data, or an option is invalid.
    """
    schema = challenge_schema(lags=lags, features=features, lag_features=lag_features)
    tables, firsts = [schema.empty_table()], []
    alone: dict[str, list[str]] = {"prehistory": [], "input": []}
    half_mismatch = duplicates = 0
    for result in _iter_buckets(
        store,
        lags=lags,
        features=features,
        lag_features=lag_features,
        fraction=fraction,
        seed=seed,
        sessions=sessions,
    ):
        tables.append(result.plays)
        if result.first_input.num_rows:
            firsts.append(result.first_input)
        alone["prehistory"] += result.without_prehistory
        alone["input"] += result.without_input
        half_mismatch += result.half_mismatch
        duplicates += result.duplicates
    order = submission_order(firsts)
    plays = pa.concat_tables(tables).unify_dictionaries()
    del tables
    if plays.num_rows > 1:  # buckets are sorted each; sort across them
        keys = plays.select(["session_id", "session_position", IS_INPUT])
        plays = plays.take(
            pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names])
        )
    return ChallengeSet(
        plays=as_pandas(plays),
        order=order,
        sessions_without_prehistory=tuple(sorted(alone["prehistory"])),
        sessions_without_input=tuple(sorted(alone["input"])),
        half_mismatch_plays=half_mismatch,
        duplicate_plays=duplicates,
    )
