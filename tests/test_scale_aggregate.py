"""Exact aggregation: detection, streaming cells == a pandas group-by, Bernoulli == Binomial logp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.load.loaders import load_table
from skipmodel.model.build import build_model
from skipmodel.model.design import build_design
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Pooled, Seasonal, Smooth, get_variant
from skipmodel.scale.aggregate import (
    SKIPS,
    TRIALS,
    BinSpec,
    aggregate,
    apply_binning,
    check_aggregable,
    sample_for_cells,
)
from skipmodel.scale.binomial import (
    cell_encoders,
    cells_design,
    log_binomial_constant,
    rows_design,
)
from skipmodel.simulate.mssd import simulate

#: A binned model that compresses well: every input discrete or binned coarsely.
BINNED = ModelSpec(
    name="binned",
    terms=(
        Pooled(column="context_type"),
        Seasonal(weekday=True, hour="none", position=False),
        Markov(features=("danceability",), interactions=True, changes=True),
        Smooth(column="duration", log=True),
        Fixed(columns=("premium",)),
    ),
)
BINS = {"danceability": 2, "duration": 3}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scale")
    sim = simulate(root / "sim", sessions=1000, seed=5, tracks=600, days=7)
    ingest([sim.training_set, sim.track_features], root / "store", n_buckets=8, progress=False)
    return root / "store"


def _pandas_cells(store: Path, spec: ModelSpec, cells) -> pd.DataFrame:
    rows = apply_binning(load_table(store, cells.sample), cells.binning).to_pandas()
    keys = list(cells.key_columns)
    for col in keys:
        if isinstance(rows[col].dtype, pd.CategoricalDtype):
            rows[col] = rows[col].astype(str)
    rows[SKIPS] = rows[spec.outcome].astype(int)
    out = rows.groupby(keys, dropna=False).agg(trials=(SKIPS, "size"), skips=(SKIPS, "sum"))
    return out.reset_index()


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for col in keys:
        frame[col] = frame[col].astype("string").fillna("<null>")
    return frame.sort_values(keys).reset_index(drop=True)


def test_streaming_cells_equal_a_pandas_groupby(store: Path) -> None:
    sample = sample_for_cells(BINNED, split="train", batch_rows=1024)
    # Tiny batches and merges after every batch exercise the running merge.
    cells = aggregate(store, BINNED, bins=BINS, sample=sample, merge_rows=1, progress=False)
    assert cells.batches > 5
    expected = _pandas_cells(store, BINNED, cells)
    keys = list(cells.key_columns)
    got = _sorted(cells.table.to_pandas(), keys)
    want = _sorted(expected, keys)
    assert len(got) == len(want) == cells.n_cells
    pd.testing.assert_frame_equal(got[keys], want[keys])
    np.testing.assert_array_equal(got[TRIALS].to_numpy(), want[TRIALS].to_numpy())
    np.testing.assert_array_equal(got[SKIPS].to_numpy(), want[SKIPS].to_numpy())
    assert cells.trials.sum() == cells.n_rows == len(load_table(store, sample))
    assert cells.n_cells < cells.n_rows / 2  # the binned model really compresses


def test_bernoulli_logp_equals_binomial_logp_up_to_the_constant(store: Path) -> None:
    cells = aggregate(store, BINNED, bins=BINS, progress=False)
    enc = cell_encoders(BINNED, cells)
    rows = load_table(store, cells.sample)
    row_model = build_model(rows_design(BINNED, rows, cells, encoders=enc))
    cell_model = build_model(cells_design(BINNED, cells, encoders=enc))
    assert row_model.observed_RVs[0].owner.op.__class__.__name__.startswith("Bernoulli")
    assert cell_model.observed_RVs[0].owner.op.__class__.__name__.startswith("Binomial")
    logp_rows, logp_cells = row_model.compile_logp(), cell_model.compile_logp()
    constant = log_binomial_constant(cells)
    assert constant > 0
    rng = np.random.default_rng(1)
    start = row_model.initial_point()
    for _ in range(4):
        point = {k: v + rng.normal(scale=0.7, size=np.shape(v)) for k, v in start.items()}
        a, b = float(logp_rows(point)), float(logp_cells(point))
        assert b - a == pytest.approx(constant, rel=1e-10, abs=1e-6)


def test_encoders_from_cells_equal_the_row_encoders(store: Path) -> None:
    cells = aggregate(store, BINNED, bins=BINS, progress=False)
    rows = apply_binning(load_table(store, cells.sample), cells.binning)
    from_rows = build_design(BINNED, rows).encoders
    from_cells = cell_encoders(BINNED, cells)
    assert from_cells.levels == from_rows.levels
    assert from_cells.settings.keys() == from_rows.settings.keys()
    for key, setting in from_rows.settings.items():  # floats differ by summation order only
        for name, value in setting.items():
            got = from_cells.settings[key][name]
            if isinstance(value, str):
                assert got == value
            elif name == "rotation":  # eigenvectors: summation order moves them by ~1e-9
                np.testing.assert_allclose(got, value, atol=1e-6)
            else:
                np.testing.assert_allclose(got, value, rtol=1e-9, atol=1e-12)
    for key, sc in from_rows.scalers.items():
        assert from_cells.scalers[key].center == pytest.approx(sc.center, abs=1e-9)
        assert from_cells.scalers[key].scale == pytest.approx(sc.scale, rel=1e-9)
    # Above the expansion budget a sample fits the scalers; the level maps stay exact.
    sampled = cell_encoders(BINNED, cells, max_rows=500, seed=3)
    assert sampled.levels == from_rows.levels
    assert sampled.scalers["markov.danceability"].center == pytest.approx(
        from_rows.scalers["markov.danceability"].center, abs=0.2
    )


def test_detection_names_every_reason() -> None:
    full = check_aggregable(get_variant("full"), n_tracks=2000)
    assert not full.aggregable
    text = " | ".join(full.reasons)
    assert "one level per track (2,000 tracks in the store)" in text
    for column in ("danceability", "energy", "duration", "us_popularity_estimate"):
        assert f"'{column}' (and its lags)" in text and f"bins={{'{column}': 20}}" in text
    assert len(full.reasons) == 5  # prev_ lags are not reported twice
    with pytest.raises(SkipmodelError, match="cannot be fitted by exact aggregation"):
        full.require()
    # Binned, the same continuous inputs are fine; an unbinned fixed float is not.
    ok = check_aggregable(
        BINNED, binning=(BinSpec("danceability", 2, 0, 1), BinSpec("duration", 3, 0, 9, True))
    )
    assert ok.aggregable and ok.reasons == () and np.isfinite(ok.max_cells)
    tempo = ModelSpec(name="t", terms=(Fixed(columns=("tempo", "premium")),))
    assert "'tempo' (and its lags) is a continuous input" in check_aggregable(tempo).reasons[0]
    assert check_aggregable(ModelSpec(name="d", terms=(Fixed(columns=("key",)),))).aggregable


def test_aggregate_refuses_what_does_not_aggregate(store: Path) -> None:
    with pytest.raises(SkipmodelError, match="one level per track"):
        aggregate(store, get_variant("baseline"), progress=False)
    with pytest.raises(SkipmodelError, match="more than 10 cells"):
        aggregate(store, BINNED, bins=BINS, max_cells=10, progress=False)
    with pytest.raises(SkipmodelError, match="not a numeric track feature"):
        aggregate(store, BINNED, bins={"premium": 3}, progress=False)


def test_binspec_midpoints_nulls_and_range() -> None:
    b = BinSpec("danceability", 4, 0.0, 1.0)
    x = np.array([0.0, 0.1, 0.3, 0.5, 0.99, 1.0, 1.7, -2.0, np.nan])
    out = b.apply(x)
    np.testing.assert_allclose(out[:8], [0.125, 0.125, 0.375, 0.625, 0.875, 0.875, 0.875, 0.125])
    assert np.isnan(out[8])
    logb = BinSpec("duration", 2, np.log(10), np.log(1000), log=True)
    np.testing.assert_allclose(
        logb.apply(np.array([20.0, 900.0])), [np.sqrt(10 * 100), np.sqrt(100 * 1000)]
    )
    with pytest.raises(SkipmodelError):
        BinSpec("danceability", 0, 0, 1)


def test_fit_options_parse_and_bad_bins_fail_in_one_line() -> None:
    import argparse

    from skipmodel.scale.cli import add_arguments, parse_bins

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--aggregate", "--bins", "danceability=20,energy=5"])
    assert args.aggregate and not args.minibatch
    assert parse_bins(args.bins) == {"danceability": 20, "energy": 5}
    assert parse_bins(None) == {}
    with pytest.raises(SkipmodelError, match="COLUMN=N"):
        parse_bins("danceability=many")
    with pytest.raises(SystemExit):  # the two methods exclude each other
        parser.parse_args(["--aggregate", "--minibatch"])


def test_prediction_bins_new_plays_as_the_aggregated_fit_did(store: Path) -> None:
    """A cells fit is a model of binned columns; its run's binning is applied to new plays."""
    import dataclasses

    from skipmodel.model.prediction import binned_like_the_fit
    from skipmodel.scale.aggregate import run_binning

    cells = aggregate(store, BINNED, bins=BINS, progress=False)
    manifest = {"binning": [dataclasses.asdict(b) for b in cells.binning]}
    assert run_binning(manifest) == cells.binning
    rows = load_table(store, cells.sample)
    got = binned_like_the_fit(manifest, rows.to_pandas())
    want = apply_binning(rows, cells.binning).to_pandas()
    for column in ("danceability", "prev_danceability", "duration"):
        if column in want:
            np.testing.assert_array_equal(got[column].to_numpy(float), want[column].to_numpy(float))
    assert got["danceability"].nunique() <= BINS["danceability"]
    plain = rows.to_pandas()
    assert binned_like_the_fit({}, plain) is plain  # row-level runs: unchanged
