"""Lag columns against a brute-force computation: missing and duplicate positions, sessions split
over part files, tiny batches, and the real excerpt with its incomplete sessions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skipmodel.ingest.compact import compact_store
from skipmodel.load.lags import add_lags
from skipmodel.load.loaders import TRACK_FEATURES, iter_batches, load_table
from skipmodel.store.format import is_sorted_file
from skipmodel.store.schema import LOG_COLUMNS
from store_factory import (
    logs_from_csv,
    random_logs,
    random_tracks,
    tracks_from_csv,
    write_store,
)

LAG_FEATURES = ("danceability", "duration", "mode")


def _first_tracks(tracks: pa.Table | None) -> dict[str, dict]:
    """track_id -> its first row (the documented dedup rule), brute force."""
    first: dict[str, dict] = {}
    for row in tracks.to_pylist() if tracks is not None else []:
        first.setdefault(row["track_id"], row)
    return first


def expected_rows(logs: pa.Table, tracks: pa.Table | None, *, lags: int, features, lag_features):
    """Every output row, computed the slow obvious way (Python dicts over rows)."""
    rows = logs.to_pylist()
    feats = _first_tracks(tracks)
    by_key: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        by_key.setdefault((row["session_id"], row["session_position"]), []).append(row)
    out = []
    for row in rows:
        full = dict(row)
        full["weekday"] = row["date"].weekday()
        track = feats.get(row["track_id_clean"], {})
        for f in features:
            full[f] = track.get(f)
        for k in range(1, lags + 1):
            prefix = "prev_" if k == 1 else f"prev{k}_"
            earlier = by_key.get((row["session_id"], row["session_position"] - k), [])
            source = earlier[0] if len(earlier) == 1 and row["session_position"] > k else None
            names = ["skip_1", "skip_2", "skip_3", "not_skipped"]
            if k == 1:
                names += ["hist_user_behavior_reason_end", "track_id_clean", *lag_features]
            for name in names:
                if source is None:
                    full[prefix + name] = None
                elif name in LOG_COLUMNS:
                    full[prefix + name] = source[name]
                else:
                    full[prefix + name] = feats.get(source["track_id_clean"], {}).get(name)
        out.append(full)
    return out


def as_counter(rows: list[dict], names: list[str]) -> Counter:
    return Counter(tuple(row[n] for n in names) for row in rows)


def assert_batches_well_formed(batches: list[pa.RecordBatch], batch_rows: int) -> None:
    seen: set[str] = set()
    for batch in batches:
        ids = batch.column("session_id").to_pylist()
        pos = batch.column("session_position").to_pylist()
        keys = list(zip(ids, pos, strict=True))
        assert keys == sorted(keys), "rows not sorted by (session_id, session_position)"
        sessions = set(ids)
        assert not sessions & seen, "a session spans two batches"
        seen |= sessions
        if batch.num_rows > batch_rows:
            assert len(sessions) == 1, "an oversized batch must hold a single session"


@pytest.mark.parametrize(
    ("seed", "n_parts", "batch_rows", "lags", "compact", "track_ids"),
    [
        (1, 1, 65_536, 1, False, "string"),
        (2, 3, 7, 2, False, "string"),
        (3, 4, 1, 2, False, "dictionary"),
        (4, 2, 50, 1, False, "string"),
        (2, 3, 7, 2, True, "string"),
        (5, 4, 30, 2, True, "dictionary"),
    ],
)
def test_lags_match_bruteforce_on_random_store(
    tmp_path, seed, n_parts, batch_rows, lags, compact, track_ids
):
    rng = np.random.default_rng(seed)
    logs = random_logs(rng, 120, n_tracks=40, missing=0.15, duplicate=0.05)
    tracks = random_tracks(rng, 40, coverage=0.7, duplicates=6)
    layout = write_store(
        tmp_path, logs, tracks, n_buckets=5, n_parts=n_parts, rng=rng, track_parts=2
    )
    parts = list(tmp_path.glob("sessions/*/part-*.parquet"))
    assert len(parts) > 5 or n_parts == 1  # sessions really are spread over several parts
    if compact:  # one sorted file per bucket: the loaders skip ranking and sorting
        assert compact_store(layout).buckets_compacted == 5
        files = list(tmp_path.glob("sessions/*/part-*.parquet"))
        assert len(files) == 5 and all(is_sorted_file(f) for f in files)

    batches = list(
        iter_batches(
            tmp_path,
            lags=lags,
            lag_features=LAG_FEATURES,
            batch_rows=batch_rows,
            track_ids=track_ids,
        )
    )
    assert_batches_well_formed(batches, batch_rows)
    got = pa.Table.from_batches(batches)
    if track_ids == "dictionary":
        assert pa.types.is_dictionary(got.schema.field("prev_track_id_clean").type)
        got = pa.table(
            {
                n: c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c
                for n, c in zip(got.column_names, got.columns, strict=True)
            }
        )
    want = expected_rows(
        logs, tracks, lags=lags, features=TRACK_FEATURES, lag_features=LAG_FEATURES
    )
    assert got.num_rows == logs.num_rows
    names = got.column_names
    assert as_counter(got.to_pylist(), names) == as_counter(want, names)
    # the store really has what the test claims to cover
    frame = logs.to_pandas()
    assert frame.duplicated(["session_id", "session_position"]).any()
    assert (frame.groupby("session_id").session_position.min() > 1).any()


def test_lag_is_null_when_previous_position_missing_or_duplicated(tmp_path):
    rng = np.random.default_rng(7)
    frame = random_logs(rng, 40).to_pandas()
    longest = frame.groupby("session_id").session_position.max().idxmax()
    frame = frame[frame.session_id == longest].sort_values("session_position")
    # positions 1, 2, 2 (duplicate), 3, 5, 6: 4 is missing
    by_pos = frame.set_index("session_position")
    frame = by_pos.loc[[1, 2, 2, 3, 5, 6]].reset_index()[list(LOG_COLUMNS)]
    frame.loc[2, "skip_2"] = not frame.loc[1, "skip_2"]  # the two copies of 2 differ
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(random_logs(rng, 1).schema)
    write_store(tmp_path, table, None, n_buckets=2)
    out = load_table(tmp_path, features=False, lags=2).to_pydict()
    assert out["session_position"] == [1, 2, 2, 3, 5, 6]
    prev = out["prev_skip_2"]
    prev2 = out["prev2_skip_2"]
    skip = {p: s for p, s in zip(out["session_position"], out["skip_2"], strict=True) if p != 2}
    assert prev[0] is None  # position 1
    assert prev[1] == prev[2] == out["skip_2"][0]  # both copies of 2 see position 1
    assert prev[3] is None  # position 2 is duplicated: ambiguous
    assert prev[4] is None  # position 4 is missing: never position 3
    assert prev[5] == skip[5]
    assert prev2[3] == skip[1]  # 3 <- 1
    assert prev2[4] == skip[3]  # 5 <- 3, even though 4 is missing
    assert prev2[5] is None  # 6 <- 4 missing


@settings(max_examples=60, deadline=None)
@given(
    sessions=st.lists(
        st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=10),
        min_size=1,
        max_size=6,
    ),
    lags=st.integers(min_value=0, max_value=2),
)
def test_add_lags_matches_bruteforce_property(sessions, lags):
    ids, positions = [], []
    for s, plays in enumerate(sessions):
        for p in sorted(plays):
            ids.append(f"s{s}")
            positions.append(p)
    n = len(ids)
    values = np.arange(n) % 2 == 0
    table = pa.table(
        {
            "session_id": pa.array(ids),
            "session_position": pa.array(positions, type=pa.int8()),
            **{c: pa.array(values) for c in ("skip_1", "skip_2", "skip_3", "not_skipped")},
            "hist_user_behavior_reason_end": pa.array([f"r{i}" for i in range(n)]),
            "track_id_clean": pa.array([f"t{i}" for i in range(n)]),
        }
    )
    out = add_lags(table, lags=lags).to_pydict()
    for k in range(1, lags + 1):
        prefix = "prev_" if k == 1 else f"prev{k}_"
        for i in range(n):
            matches = [j for j in range(n) if ids[j] == ids[i] and positions[j] == positions[i] - k]
            want = f"t{matches[0]}" if len(matches) == 1 else None
            if k == 1:
                assert out["prev_track_id_clean"][i] == want
            want_skip = values[matches[0]] if len(matches) == 1 else None
            assert out[f"{prefix}skip_2"][i] == want_skip
    if lags == 0:
        assert not any(c.startswith("prev") for c in out)


def test_real_excerpt_with_missing_positions(tmp_path, mssd_dir):
    logs = logs_from_csv(mssd_dir / "mssd_trainset_partial_rows_1180.csv")
    assert logs.num_rows == 1180
    # split each bucket over two part files, so sessions cross file boundaries
    write_store(tmp_path, logs, None, n_buckets=7, n_parts=2, rng=np.random.default_rng(0))
    batches = list(iter_batches(tmp_path, features=False, lags=2, batch_rows=64))
    assert_batches_well_formed(batches, 64)
    got = pa.Table.from_batches(batches)
    want = expected_rows(logs, None, lags=2, features=(), lag_features=())
    names = got.column_names
    assert as_counter(got.to_pylist(), names) == as_counter(want, names)

    frame = got.to_pandas()
    assert frame.session_id.nunique() == 169
    # the excerpt has no position 1 and gaps: rows whose p-1 is absent must have null lags
    present = set(zip(frame.session_id, frame.session_position, strict=True))
    has_prev = [
        (s, p - 1) in present for s, p in zip(frame.session_id, frame.session_position, strict=True)
    ]
    assert not all(has_prev) and any(has_prev)
    assert (frame.prev_skip_2.notna().to_numpy() == np.array(has_prev)).all()


def test_real_log_mini_features_joined(tmp_path, mssd_dir):
    logs = logs_from_csv(mssd_dir / "log_mini_first11sessions.csv")
    tracks = tracks_from_csv(mssd_dir / "tf_mini_subset_for_first11sessions.csv")
    write_store(tmp_path, logs, tracks, n_buckets=3)
    got = load_table(tmp_path, lags=1, lag_features=("danceability", "duration"))
    assert got.num_rows == 201
    want = expected_rows(
        logs, tracks, lags=1, features=TRACK_FEATURES, lag_features=("danceability", "duration")
    )
    names = got.column_names
    assert as_counter(got.to_pylist(), names) == as_counter(want, names)
    frame = got.to_pandas()
    assert frame.danceability.notna().all()  # every track of these sessions has features
    assert frame.prev_danceability.isna().sum() == 11  # position 1 of the 11 sessions
