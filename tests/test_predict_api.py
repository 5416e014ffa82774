"""Prediction as a notebook user meets it (issue 21): imports, rows that line up with the
caller's, per-draw probabilities and interval widths, one-line errors for malformed values; and
the same from ``skipmodel predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xarray as xr

import skipmodel.model
import skipmodel.scale  # noqa: F401 - registers --method laplace
from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.model.design import build_design
from skipmodel.model.fitting import FitResult, fit
from skipmodel.model.options import FitOptions
from skipmodel.model.prediction import predict, predict_draws
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Seasonal, Session
from skipmodel.simulate.plays import toy_plays
from store_factory import random_logs, random_tracks, write_store

SPEC = ModelSpec(
    terms=(
        Markov(features=("danceability",)),
        Seasonal(weekday=True, hour="none", position=False),
        Fixed(columns=("premium", "us_popularity_estimate")),
    )
)


@pytest.fixture(scope="module")
def run() -> FitResult:
    return fit(SPEC, toy_plays(100, n_tracks=40, seed=1), method="laplace", draws=200)


@pytest.fixture
def test() -> pd.DataFrame:
    return toy_plays(30, n_tracks=40, seed=2)


def _second_half(frame: pd.DataFrame) -> np.ndarray:
    return (2 * frame["session_position"] > frame["session_length"]).to_numpy()


# --- 1. the names a notebook imports --------------------------------------------------------


def test_the_package_gives_the_functions_and_lists_them() -> None:
    from skipmodel.model import fit as fit_function
    from skipmodel.model import predict as predict_function
    from skipmodel.model import predict_draws as draws_function

    assert fit_function is fit and predict_function is predict and draws_function is predict_draws
    # tab completion in a notebook lists the lazily loaded names too
    assert {"fit", "predict", "predict_draws", "load_run"} <= set(dir(skipmodel.model))


# --- 2. rows line up with the caller's --------------------------------------------------------


def test_a_filtered_frame_gets_each_plays_own_prediction(
    run: FitResult, test: pd.DataFrame
) -> None:
    whole = predict(run, test)
    sub = test[test.session_position > 5].copy()
    sub["p"] = predict(run, sub)["p_skip"]
    assert sub["p"].notna().all()
    np.testing.assert_allclose(sub["p"], whole.loc[sub.index, "p_skip"], rtol=1e-12)


def test_rows_keep_the_callers_index_and_order(run: FitResult, test: pd.DataFrame) -> None:
    whole = predict(run, test)
    order = np.random.default_rng(0).permutation(len(test))
    shuffled = test.iloc[order].set_axis([f"play{i}" for i in range(len(test))])
    out = predict(run, shuffled)
    assert out.index.equals(shuffled.index)
    assert (out["session_id"] == shuffled["session_id"]).all()
    np.testing.assert_allclose(out["p_skip"], whole["p_skip"].to_numpy()[order], rtol=1e-12)
    table = predict(run, pa.Table.from_pandas(shuffled, preserve_index=False))
    assert isinstance(table.index, pd.RangeIndex) and len(table) == len(test)
    np.testing.assert_allclose(table["p_skip"], out["p_skip"])


def test_sequential_rows_keep_their_labels(run: FitResult, test: pd.DataFrame) -> None:
    labelled = test.set_axis(test.index + 1000)
    out = predict(run, labelled, sequential=True)
    assert out.index.equals(labelled.index[_second_half(labelled)])
    pd.testing.assert_frame_equal(
        out[["session_id", "session_position"]],
        labelled.loc[out.index, ["session_id", "session_position"]],
        check_dtype=False,
    )


def _session_run() -> FitResult:
    """A fitted session model with a made-up posterior (nothing is sampled)."""
    spec = ModelSpec(terms=(Markov(), Session()))
    design = build_design(spec, toy_plays(20, n_tracks=30, seed=5, session_sd=0.8))
    rng = np.random.default_rng(0)
    n = 40
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), rng.normal(-0.2, 0.1, (1, n))),
            "session_sigma": (("chain", "draw"), rng.uniform(0.6, 1.0, (1, n))),
            "prev_skip_2_effect": (
                ("chain", "draw", "prev_skip_2"),
                np.stack([np.zeros(n), rng.normal(-0.5, 0.1, n), rng.normal(0.5, 0.1, n)], -1)[
                    None
                ],
            ),
        }
    )
    return FitResult(
        spec,
        design.encoders,
        xr.DataTree.from_dict({"posterior": posterior}),
        {},
        FitOptions(method="nuts", draws=n, chains=1),
    )


def test_a_session_model_lines_up_a_shuffled_subset_too() -> None:
    """The session term reorders rows by session inside prediction and scatters them back."""
    result = _session_run()
    frame = toy_plays(12, n_tracks=30, seed=6, session_sd=0.8)
    whole = predict(result, frame)
    shuffled = frame.sample(frac=1.0, random_state=1)
    out = predict(result, shuffled)
    assert out.index.equals(shuffled.index)
    np.testing.assert_allclose(out["p_skip"], whole.loc[shuffled.index, "p_skip"], rtol=1e-9)


# --- 3. per-draw probabilities and the interval width -------------------------------------------


def test_per_draw_probabilities_carry_the_rows_and_match_the_summary(
    run: FitResult, test: pd.DataFrame
) -> None:
    sub = test[test.session_position > 5]
    p = predict_draws(run, sub, max_draws=50, seed=3)
    assert isinstance(p, xr.DataArray) and p.dims == ("draw", "obs")
    assert p.shape == (50, len(sub))
    assert pd.Index(p["obs"].values).equals(sub.index)
    assert ((p > 0) & (p < 1)).all()
    summary = predict(run, sub, max_draws=50, seed=3, interval=0.5)
    np.testing.assert_allclose(p.mean("draw"), summary["p_skip"], rtol=1e-12)
    np.testing.assert_allclose(p.quantile(0.25, "draw"), summary["p_lo"], rtol=1e-12)
    np.testing.assert_allclose(p.quantile(0.75, "draw"), summary["p_hi"], rtol=1e-12)
    wide = predict(run, sub, max_draws=50, seed=3)
    assert (wide["p_hi"] - wide["p_lo"] > summary["p_hi"] - summary["p_lo"]).all()


def test_sequential_per_draw_probabilities_cover_the_second_halves(
    run: FitResult, test: pd.DataFrame
) -> None:
    p = predict_draws(run, test, sequential=True, max_draws=30)
    assert pd.Index(p["obs"].values).equals(test.index[_second_half(test)])
    np.testing.assert_allclose(
        p.mean("draw"), predict(run, test, sequential=True, max_draws=30)["p_skip"], rtol=1e-12
    )


@pytest.mark.parametrize("width", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_an_interval_outside_zero_one_is_refused(
    run: FitResult, test: pd.DataFrame, width: float
) -> None:
    with pytest.raises(SkipmodelError, match="interval"):
        predict(run, test, interval=width)


# --- 11. malformed values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("prev_skip_2", "yes"),
        ("danceability", "abc"),
        ("prev_danceability", "n/a"),
        ("us_popularity_estimate", "high"),
        ("weekday", "Monday"),
    ],
)
def test_a_malformed_value_is_named_in_one_line(
    run: FitResult, test: pd.DataFrame, column: str, bad: str
) -> None:
    broken = test.astype({column: object})
    broken.loc[3, column] = bad
    with pytest.raises(SkipmodelError) as caught:
        predict(run, broken)
    message = str(caught.value)
    assert repr(column) in message and repr(bad) in message and "\n" not in message


def test_missing_values_and_numbers_as_text_are_still_read(
    run: FitResult, test: pd.DataFrame
) -> None:
    expected = predict(run, test)
    as_text = test.astype({"danceability": object, "prev_skip_2": object})
    as_text["danceability"] = as_text["danceability"].map(repr)
    as_text["prev_skip_2"] = as_text["prev_skip_2"].map(lambda v: None if pd.isna(v) else int(v))
    np.testing.assert_allclose(predict(run, as_text)["p_skip"], expected["p_skip"], rtol=1e-9)


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    write_store(root / "store", random_logs(rng, 120), random_tracks(rng), n_buckets=2)
    argv = ["fit", "--store", str(root / "store"), "--model", "markov", "--method", "laplace",
            "--draws", "50", "--out", str(root / "run")]  # fmt: skip
    assert main(argv) == 0
    return root / "store", root / "run"


def test_cli_writes_per_draw_columns_and_the_chosen_interval(
    store_run: tuple[Path, Path], tmp_path: Path
) -> None:
    store, run_dir = store_run
    narrow, wide = tmp_path / "narrow.parquet", tmp_path / "wide.parquet"
    argv = ["predict", str(run_dir), "--store", str(store)]
    assert main([*argv, "--out", str(narrow), "--interval", "0.5", "--draws", "7"]) == 0
    assert main([*argv, "--out", str(wide)]) == 0
    got, default = pd.read_parquet(narrow), pd.read_parquet(wide)
    draws = [f"p_draw_{k}" for k in range(7)]
    assert list(got.columns) == [*default.columns, *draws]
    assert (got[draws].gt(0) & got[draws].lt(1)).all().all()
    np.testing.assert_allclose(got["p_skip"], default["p_skip"])
    assert (got["p_hi"] - got["p_lo"] < default["p_hi"] - default["p_lo"]).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--interval", "1.2"], "--interval"),
        (["--interval", "0"], "--interval"),
        (["--draws", "0"], "--draws"),
        (["--draws", "51"], "--draws"),
    ],
)
def test_cli_refuses_bad_interval_and_draws_in_one_line(
    store_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    store, run_dir = store_run
    out = tmp_path / "p.parquet"
    argv = ["predict", str(run_dir), "--store", str(store), "--out", str(out), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()
