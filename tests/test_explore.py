"""Exploration aggregates against brute-force pandas on small random logs (loader-contract batches)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from explore_data import FrameSources, loader_frame, make_log, make_tracks, to_batches
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore import tables as T
from skipmodel.explore.accumulators import GroupSums, Histogram, TrackCounter, reduce_by_key
from skipmodel.explore.dates import core_span, plausible_days, session_starts, session_stray_mask
from skipmodel.explore.plays import LogPass
from skipmodel.explore.stats import wilson_interval
from skipmodel.explore.trackpass import FeatureScale
from skipmodel.store.schema import SKIP_OUTCOMES, TRACK_NUMERIC_FEATURES

FEATURE = "danceability"
SKIP = "skip_2"


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    tracks = make_tracks(30, rng)
    log = make_log(rng, sessions=90, tracks=30, days=20)
    return loader_frame(log, tracks, lag_features=[FEATURE, "acousticness"]), tracks


def untied_top(frame: pd.DataFrame, at_most: int) -> int:
    """The largest N <= at_most with no tie in play counts between rank N and N+1."""
    plays = frame["track_id_clean"].value_counts().to_numpy()
    return max(n for n in range(1, at_most + 1) if plays[n - 1] > plays[n])


@pytest.fixture(scope="module")
def results(data):  # noqa: ANN001, ANN201
    frame, tracks = data
    options = ExploreOptions(
        top_tracks=untied_top(frame, 12),
        min_count=5,
        bins=6,
        skip=SKIP,
        feature=FEATURE,
        order_by="energy",
    )
    return compute(FrameSources(to_batches(frame, sessions_per_batch=7), tracks), options)


# ---------------------------------------------------------------- brute force references


def plausible_mask(frame: pd.DataFrame) -> pd.Series:
    """Both date rules of skipmodel.explore.dates, written the slow way."""
    day = pd.to_datetime(frame["date"])
    mode = {}
    for sid, g in day.groupby(frame["session_id"]):
        counts = g.value_counts()
        best = counts[counts == counts.max()].index.max()
        mode[sid] = best
    rule1 = (day - frame["session_id"].map(mode)).abs() <= pd.Timedelta(days=1)
    per_day = day[rule1].value_counts()
    busy = per_day.index[per_day >= 0.05 * per_day.max()]
    near_busy = [min(abs((d - b).days) for b in busy) <= 1 for d in day]
    return rule1 & np.array(near_busy)


def rates(g: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
    out = g[SKIP].agg(["size", "sum"]).rename(columns={"size": "n", "sum": "skipped"})
    return out.astype(np.int64)


def _records(frame: pd.DataFrame) -> list[tuple]:
    return sorted(
        (tuple(str(k) for k in (key if isinstance(key, tuple) else (key,))), int(n), int(s))
        for key, n, s in zip(frame.index, frame["n"], frame["skipped"], strict=True)
    )


def check_counts(got: pd.DataFrame, keys: list[str], want: pd.DataFrame) -> None:
    """Same (key, n, skipped) rows, keys compared as text (index dtypes differ harmlessly)."""
    got = got.set_index(keys)
    got = got[got["n"] > 0]
    assert _records(got) == _records(want)


# ---------------------------------------------------------------- tables vs brute force


def test_seasonality_matches_pandas(data, results) -> None:  # noqa: ANN001
    frame, _ = data
    cal = T.CalendarTables.build(results.log.calendar)
    table = T.seasonality_table(results.log.calendar, cal, SKIP)
    ok = frame[plausible_mask(frame)]
    day = pd.to_datetime(ok["date"])
    expected = {
        "weekday": rates(ok.groupby(day.dt.day_of_week)),
        "day_of_month": rates(ok.groupby(day.dt.day)),
        "hour": rates(frame.groupby("hour_of_day")),
        "position": rates(frame.groupby("session_position")),
    }
    for panel, want in expected.items():
        got = table[table["panel"] == panel]
        check_counts(got, ["level"], want)
    # rates and intervals are the Wilson ones of those counts
    np.testing.assert_allclose(table["rate"], table["skipped"] / table["n"])
    lo, hi = wilson_interval(table["skipped"].to_numpy(), table["n"].to_numpy())
    np.testing.assert_allclose(table["ci_low"], lo)
    assert (table["ci_low"] <= table["rate"]).all() and (table["rate"] <= table["ci_high"]).all()
    assert cal.session_strays == int((~plausible_mask(frame)).sum()) - cal.span_strays > 0
    assert cal.span_strays >= 2  # the stray session's day is not busy


def test_time_structure_tables_match_pandas(data, results) -> None:  # noqa: ANN001
    frame, _ = data
    cal = T.CalendarTables.build(results.log.calendar)
    ok = frame[plausible_mask(frame)]
    day = pd.to_datetime(ok["date"])
    daily = T.daily_table(cal, SKIP)
    daily = daily[daily["n"] > 0].assign(date=lambda d: pd.to_datetime(d["date"]))
    check_counts(daily, ["date"], rates(ok.groupby(day)))
    how = T.hour_of_week_table(cal, SKIP)
    want = rates(ok.groupby(day.dt.day_of_week * 24 + ok["hour_of_day"].astype(int)))
    check_counts(how, ["hour_of_week"], want)
    assert len(how) == 168
    assert cal.n_days >= T.MIN_DAYS_DAILY


def test_previous_outcome_matches_pandas(data, results) -> None:  # noqa: ANN001
    frame, _ = data
    prev = frame[f"prev_{SKIP}"]
    state = np.select(
        [
            frame["session_position"] == 1,
            prev.isna(),
            prev.astype("boolean").fillna(False).astype(bool),
        ],
        ["first in session", "previous missing", "previous true"],
        "previous false",
    )
    want = rates(frame.groupby([state, frame["session_position"].astype(int)]))
    got = T.previous_table(results.log.previous, SKIP)
    check_counts(got, ["previous", "position"], want)
    assert set(got["previous"]) == {
        "first in session",
        "previous missing",
        "previous true",
        "previous false",
    }


def test_memory_in_chains_grid_matches_pandas(data, results) -> None:  # noqa: ANN001
    frame, tracks = data
    edges = results.log.chains.edges
    lo, hi = tracks[FEATURE].min(), tracks[FEATURE].max()
    np.testing.assert_allclose(edges, np.linspace(lo, hi, 7))
    both = frame.dropna(subset=[FEATURE, f"prev_{FEATURE}"])

    def to_bin(x: pd.Series) -> np.ndarray:
        return np.array([min(max(int(np.sum(edges <= v)) - 1, 0), len(edges) - 2) for v in x])

    want = rates(both.groupby([to_bin(both[f"prev_{FEATURE}"]), to_bin(both[FEATURE])]))
    got = T.chains_table(results.log.chains, SKIP, min_count=5)
    check_counts(got, ["prev_bin", "current_bin"], want)
    assert len(got) == 36
    assert (got["masked"] == (got["n"] < 5)).all()
    assert results.log.chains.without_previous == len(frame) - len(both)


def test_transitions_match_pandas_within_sessions_only(data, results) -> None:  # noqa: ANN001
    frame, _ = data
    counts, ranked = T.transitions_tables(results.transitions)
    plays = frame["track_id_clean"].value_counts()
    n = untied_top(frame, 12)
    assert n >= 5 and len(ranked) == n
    assert set(ranked["track_id"]) == set(plays.index[:n])
    assert dict(zip(ranked["track_id"], ranked["plays"], strict=True)) == plays.iloc[:n].to_dict()
    assert (np.diff(ranked["plays"]) <= 0).all()
    # brute force: adjacent rows of one session with consecutive positions
    top = set(plays.index[:n])
    nxt = frame.shift(-1)
    adjacent = (nxt["session_id"] == frame["session_id"]) & (
        nxt["session_position"] == frame["session_position"] + 1
    )
    pairs = pd.DataFrame({"a": frame["track_id_clean"], "b": nxt["track_id_clean"]})[adjacent]
    pairs = pairs[pairs["a"].isin(top) & pairs["b"].isin(top)]
    want = pairs.value_counts().sort_index()
    label = dict(zip(ranked["rank"], ranked["track_id"], strict=True))
    got = (
        counts.assign(a=counts["prev_rank"].map(label), b=counts["next_rank"].map(label))
        .set_index(["a", "b"])["count"]
        .sort_index()
    )
    np.testing.assert_array_equal(got.index.to_list(), want.index.to_list())
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert results.transitions.total == int(adjacent.sum())
    # a naive shift over all rows would count more (across sessions and gaps): the data has both
    naive = pd.DataFrame({"a": frame["track_id_clean"], "b": nxt["track_id_clean"]}).iloc[:-1]
    assert len(naive) > adjacent.sum()
    energy = frame.drop_duplicates("track_id_clean").set_index("track_id_clean")["energy"]
    np.testing.assert_allclose(ranked["energy"], energy.loc[ranked["track_id"]].to_numpy())


def test_duration_table_matches_pandas(data, results) -> None:  # noqa: ANN001
    _, tracks = data
    t = T.duration_table(results.tracks)
    ok = tracks.dropna(subset=["duration", "acousticness"])
    g = ok.groupby(np.rint(ok["duration"] / 10.0).astype(int) * 10.0)["acousticness"]
    want = pd.DataFrame({"tracks": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)})
    got = t.set_index("duration_s")
    np.testing.assert_array_equal(got.index, want.index)
    np.testing.assert_array_equal(got["tracks"], want["tracks"])
    np.testing.assert_allclose(got["mean"], want["mean"])
    np.testing.assert_allclose(got["sd"], want["sd"], atol=1e-12)
    np.testing.assert_allclose(got["se"], want["sd"] / np.sqrt(want["tracks"]), atol=1e-12)


def test_histograms_match_numpy(data, results) -> None:  # noqa: ANN001
    _, tracks = data
    for f in TRACK_NUMERIC_FEATURES:
        scale = results.scales[f]
        x = tracks[f].dropna().to_numpy(dtype=float)
        if scale.log:
            assert scale.edges[0] == x[x > 0].min() and np.isclose(scale.edges[-1], x.max())
            inside = x[x >= scale.edges[0]]
        else:
            inside = x
        want, _ = np.histogram(inside, bins=scale.edges)
        np.testing.assert_array_equal(results.tracks.histograms[f].counts, want, err_msg=f)
        assert results.tracks.histograms[f].below == int((x < scale.edges[0]).sum())
    assert results.scales["duration"].log and results.scales["acousticness"].log
    assert not results.scales["release_year"].log  # one decade or less: linear
    assert (
        results.tracks.histograms["acousticness"].below
        == int((tracks["acousticness"] == 0).sum())
        > 0
    )
    assert results.tracks.histograms["danceability"].missing == 1


def test_overview_counts(data, results) -> None:  # noqa: ANN001
    frame, tracks = data
    ov = results.log.overview
    assert ov.rows == len(frame)
    assert ov.sessions == frame["session_id"].nunique()
    np.testing.assert_allclose(ov.outcome_sums, frame[list(SKIP_OUTCOMES)].sum().to_numpy())
    assert ov.without_features == int(frame[FEATURE].isna().sum())
    assert results.track_counts.n_tracks == frame["track_id_clean"].nunique()


# ---------------------------------------------------------------- merge and batch boundaries


def test_batching_and_merging_do_not_change_results(data) -> None:  # noqa: ANN001
    frame, tracks = data
    options = ExploreOptions(top_tracks=12, min_count=5, bins=6, feature=FEATURE)
    one = compute(FrameSources(to_batches(frame, sessions_per_batch=1000), tracks), options)
    many = compute(FrameSources(to_batches(frame, sessions_per_batch=3), tracks), options)
    cal_one, cal_many = (T.CalendarTables.build(r.log.calendar) for r in (one, many))
    pd.testing.assert_frame_equal(
        T.seasonality_table(one.log.calendar, cal_one, SKIP),
        T.seasonality_table(many.log.calendar, cal_many, SKIP),
    )
    np.testing.assert_array_equal(one.transitions.counts, many.transitions.counts)
    pd.testing.assert_frame_equal(
        T.chains_table(one.log.chains, SKIP, min_count=5),
        T.chains_table(many.log.chains, SKIP, min_count=5),
    )
    # merging two partial passes equals one pass over everything
    batches = to_batches(frame, sessions_per_batch=4)
    half = len(batches) // 2
    parts = []
    for chunk in (batches[:half], batches[half:]):
        r = compute(
            FrameSources(chunk, tracks),
            ExploreOptions(views=("seasonality", "memory_in_chains", "previous_outcome"), bins=6),
        )
        parts.append(r.log)
    merged: LogPass = parts[0]
    merged.merge(parts[1])
    whole = compute(
        FrameSources(batches, tracks),
        ExploreOptions(views=("seasonality", "memory_in_chains", "previous_outcome"), bins=6),
    ).log
    assert (
        merged.overview.rows == whole.overview.rows
        and merged.overview.sessions == whole.overview.sessions
    )
    np.testing.assert_array_equal(merged.calendar.by_day_hour.sums, whole.calendar.by_day_hour.sums)
    np.testing.assert_array_equal(merged.chains.sums.sums, whole.chains.sums.sums)
    np.testing.assert_array_equal(merged.previous.sums.keys, whole.previous.sums.keys)
    assert merged.tracks.n_tracks == whole.tracks.n_tracks


# ---------------------------------------------------------------- unit checks


def test_wilson_interval_by_hand() -> None:
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half = z*sqrt(.025 + z^2/400)/(1 + z^2/10)
    lo, hi = wilson_interval(np.array([5, 0, 3]), np.array([10, 10, 0]))
    z = 1.959963984540054
    half = z * np.sqrt(0.025 + z**2 / 400) / (1 + z**2 / 10)
    assert lo[0] == pytest.approx(0.5 - half) and hi[0] == pytest.approx(0.5 + half)
    assert lo[0] == pytest.approx(0.2366, abs=1e-4)
    # 0 of 10: lower bound 0, upper z^2/(n + z^2)
    assert lo[1] == pytest.approx(0.0, abs=1e-15) and hi[1] == pytest.approx(z**2 / (10 + z**2))
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_session_rule_and_core_span() -> None:
    days = np.array([10, 10, 10, 3, 11, 20, 20, 5, 5, 6])
    starts = session_starts(
        np.array([0, 0, 0, 0, 1, 0, 1, 0, 0], dtype=bool)
    )  # sessions [0:5], [5:7], [7:10]
    np.testing.assert_array_equal(starts, [0, 5, 7])
    stray = session_stray_mask(days, starts)
    np.testing.assert_array_equal(stray, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    # tie between two dates far apart: the later one is the mode
    np.testing.assert_array_equal(
        session_stray_mask(np.array([1, 1, 9, 9]), np.array([0])), [1, 1, 0, 0]
    )
    # busy days 100, 101 (>= 5 % of the busiest); 102 is within a day of one; 0 and 98 are not
    days = np.array([0, 98, 100, 101, 102, 104])
    counts = np.array([1, 40, 5000, 4000, 10, 249])
    np.testing.assert_array_equal(plausible_days(days, counts), [0, 0, 1, 1, 1, 0])
    assert core_span(days, counts) == (100, 102)
    assert core_span(np.array([5]), np.array([0])) is None


def test_reduce_and_group_sums_dense_and_sparse() -> None:
    rng = np.random.default_rng(0)
    for keys in (rng.integers(0, 20, 500), rng.integers(0, 10**12, 500), np.array([3, 3, -2])):
        values = rng.random((len(keys), 2))
        uk, sums = reduce_by_key(keys, values)
        want = pd.DataFrame(values).groupby(keys).sum()
        np.testing.assert_array_equal(uk, want.index)
        np.testing.assert_allclose(sums, want.to_numpy())
    g = GroupSums(("n", "x"))
    g.update(np.array([5, 1, 5]), np.array([[1, 2], [1, 3], [1, 4.0]]))
    np.testing.assert_array_equal(
        g.dense(7), [[0, 0], [1, 3], [0, 0], [0, 0], [0, 0], [2, 6], [0, 0]]
    )


def test_histogram_merge_and_edges() -> None:
    a, b = Histogram(np.array([0.0, 1, 2])), Histogram(np.array([0.0, 1, 2]))
    a.update(np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan]))
    b.update(np.array([3.0, 1.5]))
    a.merge(b)
    np.testing.assert_array_equal(a.counts, [2, 3])
    assert (a.below, a.above, a.missing) == (1, 1, 1)
    with pytest.raises(ValueError, match="different bin edges"):
        a.merge(Histogram(np.array([0.0, 1.0])))


def test_track_counter_counts_exactly_across_compactions() -> None:
    import pyarrow as pa

    rng = np.random.default_rng(3)
    ids = np.array([f"t_{i}" for i in rng.zipf(1.5, 5000) % 700])
    counter, other = TrackCounter(), TrackCounter()
    for chunk in np.array_split(ids[:3000], 7):
        counter.update_ids(pa.array(chunk))
    other.update_ids(pa.array(ids[3000:]))
    counter.merge(other)
    want = pd.Series(ids).value_counts()
    assert counter.n_tracks == len(want)
    _, top_counts = counter.top(10)
    np.testing.assert_array_equal(top_counts, want.to_numpy()[:10])


def test_feature_scale_integer_and_degenerate() -> None:
    from skipmodel.explore.accumulators import Extent

    e = Extent()
    e.update(np.array([0.0, 11.0, 4.0]))
    np.testing.assert_array_equal(
        FeatureScale.build("key", e, 50).edges, np.arange(-0.5, 11.6, 1.0)
    )
    flat = Extent()
    flat.update(np.array([0.3, 0.3]))
    assert FeatureScale.build("energy", flat, 4).edges.tolist() == pytest.approx(
        [-0.2, 0.05, 0.3, 0.55, 0.8]
    )


def test_bad_options_are_one_line_errors() -> None:
    from skipmodel.errors import SkipmodelError

    with pytest.raises(SkipmodelError, match="choose from feature_histograms"):
        ExploreOptions(views=("histogram",))
    with pytest.raises(SkipmodelError, match="skip_1, skip_2"):
        ExploreOptions(skip="skip_9")
    with pytest.raises(SkipmodelError, match="not a numeric track feature"):
        ExploreOptions(feature="mode")
    with pytest.raises(SkipmodelError, match="--bins"):
        ExploreOptions(bins=1)


def test_transitions_use_the_lag_column_when_rows_were_filtered_after_lags(data) -> None:  # noqa: ANN001
    """Lags are computed before split/date filters: the previous play may not be the previous row."""
    frame, tracks = data
    rng = np.random.default_rng(11)
    kept = frame[rng.random(len(frame)) > 0.25].reset_index(drop=True)
    n = untied_top(kept, 8)
    r = compute(
        FrameSources(to_batches(kept, sessions_per_batch=5), tracks),
        ExploreOptions(views=("transitions",), top_tracks=n),
    )
    counts, ranked = T.transitions_tables(r.transitions)
    top = set(kept["track_id_clean"].value_counts().index[:n])
    pairs = kept[["prev_track_id_clean", "track_id_clean"]].dropna()
    assert r.transitions.total == len(pairs)
    pairs = pairs[pairs["prev_track_id_clean"].isin(top) & pairs["track_id_clean"].isin(top)]
    label = dict(zip(ranked["rank"], ranked["track_id"], strict=True))
    got = sorted(
        zip(
            counts["prev_rank"].map(label),
            counts["next_rank"].map(label),
            counts["count"],
            strict=True,
        )
    )
    want = sorted((a, b, int(c)) for (a, b), c in pairs.value_counts().items())
    assert got == want and len(want) > 5


@pytest.mark.parametrize(
    "edges",
    [
        np.linspace(-1.0, 2.0, 31),
        np.geomspace(1e-8, 1.0, 41),
        np.array([0.0, 0.1, 0.5, 3.0]),
        np.arange(-0.5, 12.0),
    ],
)
def test_histogram_arithmetic_binning_matches_numpy(edges: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(edges[0], edges[-1], 5000), edges, edges[:-1] + 1e-15])
    h = Histogram(edges)
    h.update(x)
    np.testing.assert_array_equal(h.counts, np.histogram(x, bins=edges)[0])


def test_transition_spills_merge(data) -> None:  # noqa: ANN001
    """Two partial log passes with spilled transitions merge into the one-pass counts."""
    from skipmodel.explore.accumulators import TopTracks
    from skipmodel.explore.plays import Calendar, Overview, TransitionSpill

    frame, _ = data
    batches = to_batches(frame, sessions_per_batch=6)

    def log_pass(chunk: list) -> LogPass:
        lp = LogPass(Overview(), Calendar(), transitions=TransitionSpill())
        for batch in chunk:
            lp.update(batch)
        return lp

    whole, first, second = log_pass(batches), log_pass(batches[:3]), log_pass(batches[3:])
    first.merge(second)
    top = TopTracks(whole.tracks.top(10)[0])
    np.testing.assert_array_equal(first.tracks.top(10)[1], whole.tracks.top(10)[1])
    assert first.transitions.transitions == whole.transitions.transitions > 0
    np.testing.assert_array_equal(first.transitions.count(top), whole.transitions.count(top))
    assert whole.transitions.count(top).sum() > 0
    for lp in (whole, first):
        lp.transitions.close()
    assert not os.path.exists(whole.transitions.path)
