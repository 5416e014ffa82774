"""Which rows a sample holds: seeded session fraction, bytes read, split, dates, projection."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skipmodel.store.fspath as fspath_module
from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import (
    KEY_COLUMNS,
    SampleSpec,
    is_test_session,
    iter_batches,
    load_pandas,
    load_table,
    output_schema,
)
from skipmodel.load.sampling import SPLIT_SEED, bucket_ranking, select_buckets
from skipmodel.store.hashing import session_bucket, unit_uniform
from store_factory import random_logs, random_tracks, write_store

N_BUCKETS = 20


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("store")
    logs = random_logs(rng, 600, n_tracks=60, missing=0.05, duplicate=0.01)
    write_store(root, logs, random_tracks(rng, 60), n_buckets=N_BUCKETS, n_parts=2, rng=rng)
    return root


def sessions(store, **kw) -> set[str]:
    table = load_table(store, features=False, lags=0, columns=(), **kw)
    return set(table.column("session_id").to_pylist())


def test_fraction_one_is_everything(store):
    full = load_table(store)
    on_disk = pq.ParquetDataset(store / "sessions").read()
    assert full.num_rows == on_disk.num_rows
    assert sessions(store) == set(on_disk.column("session_id").to_pylist())


def test_same_seed_same_sessions_other_seed_other(store):
    a = sessions(store, fraction=0.3, seed=5)
    assert a == sessions(store, fraction=0.3, seed=5)
    assert a != sessions(store, fraction=0.3, seed=6)


def test_fractions_are_nested_and_sized(store):
    everything = sessions(store)
    previous: set[str] = set()
    for fraction in (0.05, 0.12, 0.3, 0.55, 0.8, 1.0):
        chosen = sessions(store, fraction=fraction, seed=3)
        assert previous <= chosen  # a larger fraction (same seed) only adds sessions
        share = len(chosen) / len(everything)
        assert abs(share - fraction) < 0.12, (fraction, share)
        previous = chosen
    assert previous == everything


def test_partial_bucket_rule_matches_contract(store):
    # 0.125 * 20 = 2.5: two whole buckets and half of the next ranked one
    sel = select_buckets(N_BUCKETS, fraction=0.125, seed=9)
    ranked = bucket_ranking(N_BUCKETS, seed=9)
    assert set(sel.whole) == set(ranked[:2].tolist()) and sel.partial == ranked[2]
    assert sel.remainder == pytest.approx(0.5)
    table = load_table(store, fraction=0.125, seed=9, features=False, lags=0)
    ids = table.column("session_id")
    buckets = session_bucket(ids, N_BUCKETS)
    assert set(np.unique(buckets)) <= {*sel.whole, sel.partial}
    in_partial = buckets == sel.partial
    assert (unit_uniform(ids, seed=9)[in_partial] < 0.5).all()
    # and nothing of the partial bucket that passes the draw was left out
    every = pq.ParquetDataset(store / "sessions").read(columns=["session_id"]).column(0)
    every_b = session_bucket(every, N_BUCKETS)
    want = (every_b == sel.partial) & (unit_uniform(every, seed=9) < 0.5)
    assert int(in_partial.sum()) == int(want.sum())


def test_reads_only_chosen_buckets_and_columns(store, monkeypatch):
    opened: list[tuple[str, tuple[str, ...]]] = []
    real = pq.ParquetFile

    class Spy(real):
        def __init__(self, source, **kw):
            self.spied_path = str(source)
            super().__init__(source, **kw)

        def read(self, columns=None, **kw):
            opened.append((self.spied_path, tuple(columns or ())))
            return super().read(columns=columns, **kw)

    monkeypatch.setattr(fspath_module.pq, "ParquetFile", Spy)
    table = load_table(store, fraction=0.1, seed=4, columns=("skip_2",), features=False, lags=0)
    sel = select_buckets(N_BUCKETS, fraction=0.1, seed=4)
    session_files = [p for p, _ in opened if "/sessions/" in p]
    expected = {
        str(p) for b in sel.buckets for p in (store / "sessions" / f"session_bucket={b}").glob("*")
    }
    assert set(session_files) == expected
    assert len(sel.buckets) == 2  # 10 % of 20 buckets
    all_bytes = sum(p.stat().st_size for p in (store / "sessions").rglob("*.parquet"))
    read_bytes = sum((store / p).stat().st_size for p in session_files)
    assert read_bytes < 0.2 * all_bytes
    # column projection: only what the output needs is read from the files
    assert {cols for p, cols in opened} == {
        ("session_id", "session_position", "session_length", "track_id_clean", "skip_2")
    }
    assert table.column_names == [*KEY_COLUMNS, "skip_2"]


def test_split_disjoint_stable_and_independent_of_sample_seed(store):
    train = sessions(store, split="train")
    test = sessions(store, split="test")
    assert train and test and not train & test
    assert train | test == sessions(store)
    assert 0.1 < len(test) / len(train | test) < 0.3
    # a session's side does not depend on the sample seed or fraction
    for seed in (0, 1):
        sub_test = sessions(store, fraction=0.5, seed=seed, split="test")
        assert sub_test <= test
    ids = sorted(train | test)
    flags = is_test_session(ids)
    assert set(np.array(ids)[flags]) == test
    assert (flags == is_test_session(pa.array(ids))).all()


def test_is_test_session_fraction_and_fixed_seed():
    ids = [f"1_{i:08x}-sess" for i in range(20_000)]
    for fraction in (0.1, 0.2, 0.5):
        assert abs(is_test_session(ids, test_fraction=fraction).mean() - fraction) < 0.015
    assert (is_test_session(ids) == (unit_uniform(pa.array(ids), seed=SPLIT_SEED) < 0.2)).all()
    # pinned values: a change of SPLIT_SEED or of the hash would silently re-split fitted runs
    assert is_test_session(ids[:12]).tolist() == PINNED_SPLIT
    # lists, NumPy arrays, pandas Series and Arrow arrays give the same answer
    assert (is_test_session(np.array(ids)) == is_test_session(ids)).all()
    assert (is_test_session(pd.Series(ids)) == is_test_session(pa.array(ids))).all()
    # a larger test fraction only moves sessions from train to test
    small = is_test_session(ids, test_fraction=0.1)
    assert (small <= is_test_session(ids, test_fraction=0.3)).all()


#: First 12 answers at SPLIT_SEED, pinned when the split was introduced (2026-11-22).
PINNED_SPLIT = [False, False, False, False, True, False, True, False, False, False, False, True]


def test_lags_are_computed_before_split_and_date_filters(store):
    full = load_pandas(store, features=False).set_index(["session_id", "session_position"])
    lag_cols = ["prev_skip_2", "prev_track_id_clean"]
    for kw in ({"split": "test"}, {"date_range": ("2018-07-16", "2018-07-16")}):
        part = load_pandas(store, features=False, **kw).set_index(
            ["session_id", "session_position"]
        )
        assert 0 < len(part) < len(full)
        dedup = full[~full.index.duplicated(keep=False)]
        common = part.index.intersection(dedup.index)
        assert len(common) > 0
        a = part.loc[common, lag_cols].astype(object)
        b = dedup.loc[common, lag_cols].astype(object)
        assert a.equals(b)
    # with a one-day range, some kept rows have a previous play on another day: still lagged
    one_day = load_pandas(store, features=False, date_range=("2018-07-16", "2018-07-16"))
    assert one_day.prev_skip_2.notna().sum() > one_day.session_position.gt(1).sum() * 0.5


def test_date_range_inclusive_and_open_ended(store):
    full = load_pandas(store, features=False, lags=0)
    for lo, hi in (("2018-07-16", "2018-07-16"), ("2018-07-16", None), (None, "2018-07-15")):
        part = load_pandas(store, features=False, lags=0, date_range=(lo, hi))
        dates = full["date"].astype(str)
        want = np.ones(len(full), bool)
        if lo:
            want &= dates >= lo
        if hi:
            want &= dates <= hi
        assert len(part) == want.sum() > 0
        assert part["date"].astype(str).between(lo or "0000", hi or "9999").all()
    # date and datetime objects work like ISO strings
    as_objects = load_table(store, features=False, lags=0, date_range=(date(2018, 7, 16), None))
    as_datetime = load_table(
        store, features=False, lags=0, date_range=(datetime(2018, 7, 16), None)
    )
    as_text = load_table(store, features=False, lags=0, date_range=("2018-07-16", None))
    assert as_objects.equals(as_text) and as_datetime.equals(as_text)


def test_projection_features_and_weekday(store):
    table = load_table(store, columns=("weekday", "hour_of_day"), features=("danceability",))
    assert table.column_names[:6] == [*KEY_COLUMNS, "hour_of_day", "weekday"]
    assert "date" not in table.column_names
    assert "danceability" in table.column_names and "energy" not in table.column_names
    assert "prev_danceability" in table.column_names
    assert table.schema == output_schema(
        columns=("weekday", "hour_of_day"), features=("danceability",)
    )
    frame = load_pandas(store, columns=("date",), features=False, lags=0)
    want = frame["date"].map(lambda d: d.weekday())
    assert (frame["weekday"].to_numpy() == want.to_numpy()).all()
    assert frame["weekday"].dtype == np.int8
    assert set(frame["weekday"]) <= set(range(7))


def test_missing_tracks_give_null_features_and_dedup_first_wins(tmp_path):
    rng = np.random.default_rng(2)
    logs = random_logs(rng, 30, n_tracks=10)
    tracks = random_tracks(rng, 10, coverage=0.6)
    first_ids = tracks.column("track_id").to_pylist()
    # the same ids again with other values, in a later part file: the first row must win
    again = tracks.set_column(
        tracks.schema.get_field_index("danceability"),
        "danceability",
        pa.array(np.full(tracks.num_rows, 99.0)),
    )
    write_store(tmp_path, logs, pa.concat_tables([tracks, again]), n_buckets=3, track_parts=2)
    frame = load_pandas(tmp_path, features=("danceability",), lags=0)
    known = frame.track_id_clean.isin(first_ids)
    assert known.any() and (~known).any()
    assert frame.loc[~known, "danceability"].isna().all()
    assert frame.loc[known, "danceability"].notna().all()
    assert (frame.danceability != 99.0).all()
    assert len(frame) == logs.num_rows  # the duplicate track rows do not duplicate plays


def test_store_without_tracks_gives_null_features(tmp_path):
    rng = np.random.default_rng(3)
    write_store(tmp_path, random_logs(rng, 10), None, n_buckets=2)
    table = load_table(tmp_path, features=("duration",))
    assert table.column("duration").null_count == table.num_rows > 0


def test_empty_sample_keeps_schema(store):
    table = load_table(store, date_range=("2030-01-01", None))
    assert table.num_rows == 0
    assert table.schema == output_schema()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fraction": 0}, "fraction must be in (0, 1]"),
        ({"fraction": 1.5}, "fraction must be in (0, 1]"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"seed": -1}, "seed"),
        ({"lags": 3}, "lags must be 0, 1 or 2"),
        ({"columns": ("skip_2", "bogus")}, "unknown column(s) 'bogus'; valid: session_id"),
        ({"features": ("loudnes",)}, "unknown track feature(s) 'loudnes'; valid: duration"),
        ({"split": "validation"}, "split must be"),
        ({"date_range": ("2018-07-32", None)}, "not a date"),
        ({"date_range": ("2018-07-20", "2018-07-10")}, "date range is empty"),
        ({"fractoin": 0.1}, "unknown SampleSpec option(s) 'fractoin'; valid: fraction"),
    ],
)
def test_bad_specs_fail_with_one_line(store, kwargs, needle):
    with pytest.raises(SkipmodelError) as err:
        iter_batches(store, **kwargs)  # fails on the call, before any batch is read
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_not_a_store(tmp_path):
    with pytest.raises(SkipmodelError, match="not a skipmodel store"):
        load_table(tmp_path)


def test_spec_is_frozen_and_hashable():
    spec = SampleSpec(columns=["skip_2"], features=["energy"])
    assert spec.columns == ("skip_2",) and hash(spec)
    with pytest.raises(AttributeError):
        spec.fraction = 0.5  # type: ignore[misc]


@settings(max_examples=100, deadline=None)
@given(
    n_buckets=st.integers(min_value=1, max_value=300),
    f1=st.floats(min_value=1e-6, max_value=1.0),
    f2=st.floats(min_value=1e-6, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_bucket_selection_sizes_and_nesting(n_buckets, f1, f2, seed):
    lo, hi = sorted((f1, f2))
    small = select_buckets(n_buckets, fraction=lo, seed=seed)
    large = select_buckets(n_buckets, fraction=hi, seed=seed)
    for fraction, sel in ((lo, small), (hi, large)):
        assert len(sel.whole) == math.floor(round(fraction * n_buckets, 9))
        assert 0.0 <= sel.remainder < 1.0
        assert (sel.partial is None) == (sel.remainder == 0.0)
        assert sel.partial not in sel.whole
        assert len(sel.whole) + sel.remainder == pytest.approx(fraction * n_buckets, abs=1e-8)
    # a larger fraction keeps every whole bucket and never thins one the smaller took whole
    assert set(small.whole) <= set(large.whole)
    if small.partial is not None:
        assert small.partial in large.whole or (
            small.partial == large.partial and small.remainder <= large.remainder
        )
    assert select_buckets(n_buckets, fraction=1.0, seed=seed).whole == tuple(range(n_buckets))


def test_pandas_frame_keeps_nulls_in_nullable_dtypes(store):
    frame = load_pandas(store, lags=2, features=("danceability", "release_year", "key"))
    schema = output_schema(lags=2, features=("danceability", "release_year", "key"))
    # lags and track features may be null: pandas' nullable dtypes, matching the Arrow width
    assert frame["prev_skip_2"].dtype == "boolean" and frame["prev2_skip_1"].dtype == "boolean"
    assert frame["prev_skip_2"].isna().any()  # not NaN or None in an object column
    assert frame["release_year"].dtype == "Int16" and frame["key"].dtype == "Int8"
    assert frame["prev_release_year"].dtype == "Int16"
    assert frame["release_year"].isna().any()
    assert frame["danceability"].dtype == np.float64  # floats keep NaN
    # columns that are never null keep NumPy dtypes; dates are datetimes, not objects
    assert not schema.field("skip_2").nullable and frame["skip_2"].dtype == np.bool_
    assert frame["session_position"].dtype == np.int8 and frame["weekday"].dtype == np.int8
    assert frame["date"].dtype == "datetime64[ms]"
    assert isinstance(frame["context_type"].dtype, pd.CategoricalDtype)
    # the same values as Arrow's
    table = load_table(store, lags=2, features=("danceability", "release_year", "key"))
    for name in ("prev_skip_2", "release_year", "skip_2"):
        want = table.column(name).to_pylist()
        assert [None if pd.isna(v) else v for v in frame[name].tolist()] == want
