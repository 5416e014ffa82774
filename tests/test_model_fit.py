"""Smoke fits of every variant (tiny draws), run directories, prediction, and the CLI verbs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.model import fitting as fit_module
from skipmodel.model.fitting import fit, load_run, save_run
from skipmodel.model.prediction import predict
from skipmodel.model.spec import VARIANTS, get_variant
from skipmodel.simulate.plays import toy_plays

DIAGNOSTIC_KEYS = {
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "divergences",
    "min_bfmi",
    "seconds",
    "ess_per_second",
}


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(24, n_tracks=30, seed=8)


@pytest.fixture(scope="module")
def smoke_fits(plays) -> dict[str, object]:
    """Each variant fitted once (lazily) and shared by the tests below."""
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            # PyMC's sampler: its compiled C modules are cached on disk across runs.
            cache[name] = fit(
                get_variant(name), plays, draws=15, tune=15, chains=1, sampler="pymc", seed=1
            )
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_smoke_fits(plays, smoke_fits, name) -> None:
    result = smoke_fits(name)
    post = result.posterior["posterior"].to_dataset()
    assert post.sizes["draw"] == 15 and post.sizes["chain"] == 1
    assert set(result.diagnostics) >= DIAGNOSTIC_KEYS
    assert np.isfinite(post["intercept"].values).all()
    assert result.manifest["n_rows"] == len(plays)
    assert name in result.summary()


@pytest.fixture(scope="module")
def saved_run(smoke_fits, tmp_path_factory) -> tuple[Path, object]:
    result = smoke_fits("markov")
    return save_run(result, tmp_path_factory.mktemp("run") / "markov"), result


def test_run_saves_and_loads(saved_run) -> None:
    out, result = saved_run
    assert {p.name for p in out.iterdir()} >= {
        "spec.toml",
        "data.json",
        "posterior.nc",
        "diagnostics.json",
    }
    loaded = load_run(out)
    assert loaded.spec == result.spec
    as_json = json.loads(json.dumps(result.encoders.to_json()))
    assert json.loads(json.dumps(loaded.encoders.to_json())) == as_json
    a = loaded.posterior["posterior"].to_dataset()
    b = result.posterior["posterior"].to_dataset()
    np.testing.assert_array_equal(a["prev_skip_2_effect"].values, b["prev_skip_2_effect"].values)
    assert tuple(a["hour_effect"].coords["hour"].values) == tuple(range(24))
    assert tuple(a["weekday_effect"].coords["weekday"].values)[0] == "Mon"
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["divergences"] >= 0 and diag["min_ess_bulk"] > 0
    # one chain: R-hat is undefined, written as null (bare NaN is not JSON), NaN again on load
    assert diag["max_rhat"] is None
    assert np.isnan(loaded.diagnostics["max_rhat"])
    assert loaded.options == result.options


def test_low_rank_adaptation_reaches_nutpie(plays, monkeypatch) -> None:
    import nutpie

    seen = {}
    real = nutpie.sample

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen["adaptation"] = kwargs.get("adaptation")
        return real(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    spec = get_variant("baseline").with_inference(adaptation="low_rank")
    result = fit(spec, plays, draws=20, tune=30, chains=1, seed=2)
    assert seen["adaptation"] == "low_rank"
    assert result.options.adaptation == "low_rank"


def test_nutpie_is_the_default_sampler(plays) -> None:
    result = fit(get_variant("baseline"), plays, draws=20, tune=20, chains=2, seed=2)
    assert result.options.sampler == "nutpie"
    assert result.posterior["sample_stats"].attrs.get("inference_library") == "nutpie"
    assert result.diagnostics["compile_seconds"] > 0
    assert result.posterior["posterior"].to_dataset().sizes["chain"] == 2


def test_prediction_from_a_loaded_run_covers_unseen_tracks(saved_run) -> None:
    out, _ = saved_run
    loaded = load_run(out)
    new = toy_plays(6, n_tracks=30, seed=99)
    new.loc[new.index[:5], "track_id_clean"] = "t_never_seen"
    table = predict(loaded, new.drop(columns=["skip_1", "skip_2", "skip_3", "not_skipped"]))
    assert list(table.columns) == ["session_id", "session_position", "p_skip", "p_lo", "p_hi"]
    assert len(table) == len(new)
    assert ((table.p_lo <= table.p_skip) & (table.p_skip <= table.p_hi)).all()
    assert table[["p_skip", "p_lo", "p_hi"]].stack().between(0, 1).all()
    seq = predict(loaded, new, sequential=True)
    assert (seq["session_position"] > 5).all() and len(seq) < len(new)


def test_log_likelihood_on_request(plays) -> None:
    result = fit(
        get_variant("baseline"),
        plays,
        draws=10,
        tune=10,
        chains=1,
        sampler="pymc",
        log_likelihood=True,
    )
    ll = result.posterior["log_likelihood"].to_dataset()["skip_2"]
    assert ll.shape == (1, 10, len(plays))


@pytest.mark.filterwarnings("ignore:.*:UserWarning:pymc.*")  # ADVI with very few steps
def test_advi_quick_fit(plays, monkeypatch) -> None:
    monkeypatch.setattr(fit_module, "ADVI_STEPS", 200)
    result = fit(get_variant("baseline"), plays, draws=20, chains=1, method="advi")
    assert result.posterior["posterior"].to_dataset().sizes["draw"] == 20
    assert "Variational" in result.summary()


def test_fit_rejects_unknown_options(plays) -> None:
    with pytest.raises(SkipmodelError, match="sampler: invalid value 'stan'"):
        fit(get_variant("baseline"), plays, sampler="stan")
    with pytest.raises(TypeError):
        fit(get_variant("baseline"), plays, n_draws=10)  # no silent pass-through


# --- the CLI on a tiny simulated store ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    assert main(["simulate", "--out", str(root / "sim"), "--sessions", "40", "--seed", "3"]) == 0
    sim = root / "sim"
    args = [str(sim / "training_set.tar.gz"), str(sim / "track_features.tar.gz")]
    assert main(["ingest", *args, "--store", str(root / "store")]) == 0
    return root / "store"


def test_cli_fit_and_predict(tiny_store, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "fit",
            "--store",
            str(tiny_store),
            "--model",
            "baseline",
            "--out",
            str(run),
            "--draws",
            "10",
            "--tune",
            "10",
            "--chains",
            "1",
            "--sampler",
            "pymc",
        ]
    )
    assert code == 0
    assert "Fitted model 'baseline'" in capsys.readouterr().out
    manifest = json.loads((run / "data.json").read_text())
    assert manifest["sample"]["split"] == "train" and manifest["n_rows"] > 0
    out = tmp_path / "pred.parquet"
    assert main(["predict", str(run), "--store", str(tiny_store), "--out", str(out)]) == 0
    table = pq.read_table(out).to_pandas()
    assert list(table.columns) == ["session_id", "session_position", "p_skip", "p_lo", "p_hi"]
    assert len(table) > 0


def test_cli_errors_are_one_line(tiny_store, tmp_path, capsys) -> None:
    code = main(["fit", "--store", str(tiny_store), "--model", "fulll", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown model 'fulll'; valid models:" in err and len(err.strip().splitlines()) == 1
    code = main(["predict", str(tmp_path / "nothing"), "--store", str(tiny_store), "--out", "x"])
    assert code == 2
    assert "is not a fitted run" in capsys.readouterr().err


def test_pathfinder_without_pymc_extras_says_what_to_install(plays) -> None:
    try:
        import pymc_extras  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pymc-extras is installed")
    with pytest.raises(SkipmodelError, match="needs the pymc-extras package"):
        fit(get_variant("baseline"), plays, method="pathfinder")


def test_diagnostics_skip_elements_that_are_constant_by_construction() -> None:
    import xarray as xr

    rng = np.random.default_rng(0)
    draws = rng.normal(size=(2, 200, 3))
    draws[:, :, 0] = 0.0  # e.g. prev_skip_2_effect[no_previous] when position carries it
    posterior = xr.Dataset(
        {
            "prev_skip_2_effect": (("chain", "draw", "prev_skip_2"), draws),
            "intercept": (("chain", "draw"), rng.normal(size=(2, 200))),
        }
    )
    tree = xr.DataTree.from_dict({"posterior": posterior})
    d = fit_module.diagnose(tree)  # the test settings turn a RuntimeWarning into an error
    assert np.isfinite(d["max_rhat"]) and d["max_rhat"] < 1.1
    assert d["min_ess_bulk"] > 50
