"""The manifest's ``challenge`` entry: what the store holds of the WSDM Cup 2019 test set.

Written at the end of every ingest that finds ``STORE/challenge/`` (see
:mod:`skipmodel.store.layout`), from the stored rows, bucket by bucket (a session's two halves
share a bucket number), so memory holds one bucket's session ids at a time:

``prehistory_sessions`` / ``input_sessions``
    Distinct sessions with a first half (``log_prehistory_*``) / a second half (``log_input_*``).
``sessions_without_prehistory`` / ``sessions_without_input``
    Sessions with one half only (counted; the first :data:`LISTED` ids of each, in byte-wise
    order, under ``..._listed``). A session without prehistory is still predicted (from its
    tracks alone); one without input has nothing to predict. Neither is an error: a subset of
    the release's files (one day's input, say) gives such sessions legitimately.
``plays_with_missing_track`` / ``tracks_missing_from_features``
    Challenge plays (both halves) whose track is not in the track-features table, and those
    tracks (None while the store has no track table).

Per-source findings (duplicate positions, skip-nesting violations, plays on the wrong side of
the split ``position <= length // 2``...) are summed by the journal under ``integrity``, with
the kind as prefix (``input_plays_outside_half``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.store.fspath import parquet_file
from skipmodel.store.layout import StoreLayout

__all__ = ["LISTED", "absent_tracks", "challenge_summary", "known_tracks"]

#: Session ids listed per kind of one-half-only session (all are counted).
LISTED = 20


def known_tracks(layout: StoreLayout) -> pa.Array | None:
    """The distinct track ids of the store's track table (None when it has none)."""
    files = layout.parts(layout.tracks)
    if not files:
        return None
    ids = [_column(p, "track_id") for p in files]
    return pc.unique(pa.concat_arrays(ids))


def absent_tracks(known: pa.Array, files: Sequence[Path]) -> tuple[int, int]:
    """Rows of ``files`` whose ``track_id_clean`` is not in ``known``, and distinct such ids.

    Each file's distinct ids are counted first and the set of ``known`` ids is built once, for
    one lookup of the distinct ids of all files (not one per file: MSSD has 3.7 M tracks).
    """
    counts = []
    for path in files:
        found = pc.value_counts(_column(path, "track_id_clean"))
        counts.append(pa.table({"id": found.field(0), "rows": found.field(1)}))
    if not counts:
        return 0, 0
    per_id = pa.concat_tables(counts).group_by("id").aggregate([("rows", "sum")])
    absent = pc.invert(pc.is_in(per_id.column("id"), value_set=known))
    rows = pc.sum(per_id.column("rows_sum").filter(absent)).as_py() or 0
    return int(rows), int(pc.sum(absent).as_py() or 0)


def _column(path: Path, name: str) -> pa.Array:
    """One string column of a store file, as plain strings."""
    try:
        column = parquet_file(path).read(columns=[name])[name].combine_chunks()
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise SkipmodelError(f"cannot read store file {path}: {exc}") from None
    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


def _sessions(files: Sequence[Path]) -> pa.Array:
    if not files:
        return pa.array([], pa.string())
    return pc.unique(pa.concat_arrays([_column(p, "session_id") for p in files]))


def challenge_summary(
    layout: StoreLayout, n_buckets: int, known: pa.Array | None
) -> dict[str, Any] | None:
    """The manifest's ``challenge`` entry (see the module doc); None without challenge data."""
    if not layout.challenge.is_dir():
        return None
    counts = dict.fromkeys(
        (
            "prehistory_sessions",
            "input_sessions",
            "sessions_without_prehistory",
            "sessions_without_input",
        ),
        0,
    )
    listed: dict[str, list[str]] = {"without_prehistory": [], "without_input": []}
    files: list[Path] = []
    for bucket in range(n_buckets):
        pre_files = layout.parts(layout.challenge_bucket_dir("prehistory", bucket))
        input_files = layout.parts(layout.challenge_bucket_dir("input", bucket))
        files += pre_files + input_files
        pre, given = _sessions(pre_files), _sessions(input_files)
        counts["prehistory_sessions"] += len(pre)
        counts["input_sessions"] += len(given)
        for what, ids, other in (
            ("without_prehistory", given, pre),
            ("without_input", pre, given),
        ):
            alone = ids.filter(pc.invert(pc.is_in(ids, value_set=other)))
            counts[f"sessions_{what}"] += len(alone)
            head = alone.take(pc.array_sort_indices(alone)[:LISTED]).to_pylist()
            listed[what] = sorted([*listed[what], *head])[:LISTED]
    summary: dict[str, Any] = {
        **counts,
        "sessions_without_prehistory_listed": listed["without_prehistory"],
        "sessions_without_input_listed": listed["without_input"],
    }
    if known is None:
        summary.update(plays_with_missing_track=None, tracks_missing_from_features=None)
    else:
        rows, distinct = absent_tracks(known, files)
        summary.update(plays_with_missing_track=rows, tracks_missing_from_features=distinct)
    return summary
