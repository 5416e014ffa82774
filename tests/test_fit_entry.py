"""The one fit entry: one FitOptions for every path, keyword options, refused options (Python and
CLI), and the cells and minibatch paths through ``fit`` on a tiny store."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import skipmodel.scale  # noqa: F401 - registers the cells and minibatch paths
from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.model import FitOptions, StoreSample, fitting, get_variant
from skipmodel.model.fitting import fit, load_run, save_run
from skipmodel.model.options import FIT_PATHS, UnknownOptionError
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Pooled, Seasonal
from skipmodel.scale.aggregate import aggregate
from skipmodel.simulate.mssd import simulate
from skipmodel.simulate.plays import toy_plays

CELLS_SPEC = ModelSpec(
    name="cells",
    terms=(Pooled(column="context_type"), Fixed(columns=("premium",))),
)
STREAM_SPEC = ModelSpec(
    name="stream",
    terms=(
        Seasonal(weekday=False, hour="none", position=False),
        Markov(features=(), interactions=False, changes=False),
        Fixed(columns=("premium",)),
    ),
)
NOWHERE = StoreSample(Path("/nonexistent/store"))  # refusals come before any data is read

#: (options, the one-line message) for every combination a path or method cannot honour.
REFUSED = [
    (dict(inference="minibatch", chains=2), "--chains is not used by --minibatch"),
    (dict(inference="minibatch", tune=10), "--tune is not used by --minibatch"),
    (dict(inference="minibatch", target_accept=0.9), "--target-accept is not used by --minibatch"),
    (dict(inference="minibatch", sampler="pymc"), "--sampler is not used by --minibatch"),
    (dict(inference="minibatch", method="nuts"), "--method nuts is not used by --minibatch"),
    (
        dict(inference="minibatch", log_likelihood=True),
        "--log-likelihood is not used by --minibatch",
    ),
    (dict(inference="minibatch", bins={"danceability": 3}), "--bins is not used by --minibatch"),
    (dict(inference="cells", log_likelihood=True), "--log-likelihood is not used by --aggregate"),
    (dict(inference="cells", batch_size=64), "--batch-size is not used by --aggregate"),
    (dict(inference="cells", epochs=2), "--epochs is not used by --aggregate"),
    (dict(inference="cells", full_rank=True), "--full-rank is not used by --aggregate"),
    (dict(bins={"danceability": 3}), "--bins is not used by a row-level fit"),
    (dict(batch_size=64), "--batch-size is not used by a row-level fit"),
    (dict(method="advi", tune=10), "--tune is not used by --method advi"),
    (dict(method="advi", target_accept=0.9), "--target-accept is not used by --method advi"),
]
#: The same combinations as command-line flags.
REFUSED_FLAGS = [
    (["--minibatch", "--chains", "2"], "--chains is not used by --minibatch"),
    (["--minibatch", "--tune", "10"], "--tune is not used by --minibatch"),
    (["--minibatch", "--target-accept", "0.9"], "--target-accept is not used by --minibatch"),
    (["--minibatch", "--sampler", "pymc"], "--sampler is not used by --minibatch"),
    (["--minibatch", "--method", "nuts"], "--method nuts is not used by --minibatch"),
    (["--minibatch", "--log-likelihood"], "--log-likelihood is not used by --minibatch"),
    (["--minibatch", "--bins", "danceability=3"], "--bins is not used by --minibatch"),
    (["--aggregate", "--log-likelihood"], "--log-likelihood is not used by --aggregate"),
    (["--aggregate", "--batch-size", "64"], "--batch-size is not used by --aggregate"),
    (["--aggregate", "--full-rank"], "--full-rank is not used by --aggregate"),
    (["--bins", "danceability=3"], "--bins is not used by a row-level fit"),
    (["--epochs", "2"], "--epochs is not used by a row-level fit"),
    (["--method", "advi", "--tune", "10"], "--tune is not used by --method advi"),
]


def test_fit_and_predict_are_the_functions() -> None:
    from skipmodel.model import fit as fit_function
    from skipmodel.model import predict

    assert callable(fit_function) and callable(predict)
    assert fit_function is fit and predict.__name__ == "predict"


def test_keyword_options_build_the_same_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[FitOptions] = []
    rows = FIT_PATHS["rows"]
    monkeypatch.setitem(
        FIT_PATHS, "rows", dataclasses.replace(rows, run=lambda s, d, o, m: seen.append(o))
    )
    plays = toy_plays(4, n_tracks=5, seed=1)
    spec = get_variant("baseline")
    fit(spec, plays, chains=2, draws=30, sampler="pymc", seed=4)
    fit(spec, plays, options=FitOptions(chains=2, draws=30, sampler="pymc", seed=4))
    fit(spec, plays, options=FitOptions(chains=3, draws=30), chains=2, sampler="pymc", seed=4)
    assert seen[0] == seen[1] == seen[2]
    # resolved: the spec fills what was left unset, the path records what it used
    assert seen[0].inference == "rows" and seen[0].method == "nuts" and seen[0].tune == 1000
    assert seen[0].batch_size is None and seen[0].bins is None
    fit(spec, plays, method="advi", draws=30)
    assert seen[-1].tune is None and seen[-1].sampler is None and seen[-1].chains == 4


def test_unknown_keyword_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(UnknownOptionError, match="unknown fit option 'n_draws'; valid options:"):
        fit(get_variant("baseline"), NOWHERE, n_draws=10)
    assert issubclass(UnknownOptionError, SkipmodelError)


@pytest.mark.parametrize(("options", "message"), REFUSED)
def test_an_option_a_path_does_not_read_is_refused(options: dict, message: str) -> None:
    with pytest.raises(SkipmodelError) as info:
        fit(get_variant("baseline"), NOWHERE, **options)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_data_a_path_cannot_read_is_refused() -> None:
    plays = toy_plays(4, n_tracks=5, seed=1)
    with pytest.raises(SkipmodelError, match="--minibatch fits a StoreSample, not a DataFrame"):
        fit(get_variant("baseline"), plays, inference="minibatch")
    with pytest.raises(SkipmodelError, match="unknown path 'grid'; valid paths:"):
        fit(get_variant("baseline"), plays, inference="grid")


@pytest.mark.parametrize(("flags", "message"), REFUSED_FLAGS)
def test_cli_refuses_an_option_the_path_does_not_read(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fit", "--store", str(tmp_path / "none"), "--model", "baseline"]
    code = main([*argv, "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"skipmodel fit: error: {message}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


# --- the cells and minibatch paths on a tiny store ---------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit_entry")
    sim = simulate(root / "sim", sessions=60, seed=5, tracks=80, days=3)
    ingest([sim.training_set, sim.track_features], root / "store", n_buckets=2, progress=False)
    return root / "store"


def test_cells_fit_through_the_entry(store: Path, tmp_path: Path) -> None:
    opts = dict(draws=10, tune=10, chains=1, sampler="pymc", seed=1)
    result = fit(CELLS_SPEC, StoreSample(store), inference="cells", **opts)
    assert result.manifest["likelihood"] == "binomial"
    assert result.manifest["n_cells"] < result.manifest["n_rows"]
    assert result.options.inference == "cells" and result.options.draws == 10
    assert result.spec.inference.draws == 10 and result.spec.inference.chains == 1
    assert "in" in result.summary() and "cells" in result.summary()
    loaded = load_run(save_run(result, tmp_path / "run"))
    assert loaded.options == result.options
    assert loaded.spec.inference.draws == 10  # spec.toml shows what the fit used
    cells = aggregate(store, CELLS_SPEC, progress=False)
    by_cells = fit(CELLS_SPEC, cells, **opts)  # cells choose the cells path
    assert by_cells.options.inference == "cells"
    assert by_cells.manifest["n_cells"] == cells.n_cells
    with pytest.raises(SkipmodelError, match="--bins is not used by cells already aggregated"):
        fit(CELLS_SPEC, cells, bins={"danceability": 3}, **opts)


@pytest.mark.filterwarnings("ignore:.*:UserWarning:pymc.*")  # ADVI with very few steps
def test_minibatch_fit_through_the_entry(store: Path, tmp_path: Path) -> None:
    result = fit(
        STREAM_SPEC,
        StoreSample(store),
        inference="minibatch",
        batch_size=32,
        epochs=1,
        draws=10,
        seed=2,
    )
    assert result.manifest["likelihood"] == "bernoulli-minibatch"
    assert result.manifest["minibatch"]["batch_size"] == 32
    assert result.manifest["sample"]["split"] == "train"
    assert result.options.method == "advi" and result.options.chains is None
    assert result.posterior["posterior"].to_dataset().sizes["draw"] == 10
    assert "minibatch advi" in result.summary()
    loaded = load_run(save_run(result, tmp_path / "run"))
    assert loaded.options == result.options and loaded.spec.inference.method == "advi"


def _posterior_of_the_size_asked(model: object, opts: FitOptions) -> tuple[xr.DataTree, dict]:
    """Stands in for the sampler: a posterior of ``chains`` x ``draws``, NUTS-like diagnostics."""
    assert opts.chains is not None and opts.draws is not None
    draws = xr.Dataset({"intercept": (("chain", "draw"), np.zeros((opts.chains, opts.draws)))})
    diagnostics = {
        **dict(max_rhat=1.004, max_rhat_var="intercept", min_ess_bulk=812.0),
        **dict(min_ess_bulk_var="intercept", min_ess_tail=640.0, divergences=0, min_bfmi=0.9),
        **dict(ess_per_second=50.0, seconds=16.2, n_draws=opts.draws * opts.chains),
    }
    return xr.DataTree.from_dict({"posterior": draws}), diagnostics


@pytest.fixture
def no_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitting, "sample_model", _posterior_of_the_size_asked)
    # the made-up posterior has no variables to predict replicates from
    monkeypatch.setattr(fitting, "with_predictive", lambda tree, design, seed=0: tree)


@pytest.mark.usefixtures("no_sampling")
def test_the_run_folder_records_the_options_a_python_fit_used(tmp_path: Path) -> None:
    plays = toy_plays(4, n_tracks=5, seed=1)
    result = fit(get_variant("baseline"), plays, draws=200, chains=2, tune=50, seed=3)
    run = save_run(result, tmp_path / "run")
    inference = ModelSpec.load(run / "spec.toml").inference
    assert (inference.draws, inference.chains, inference.tune) == (200, 2, 50)
    options = json.loads((run / "data.json").read_text())["options"]
    assert (options["draws"], options["chains"], options["tune"]) == (200, 2, 50)
    loaded = load_run(run)
    assert loaded.options == result.options and loaded.spec == result.spec


@pytest.mark.usefixtures("no_sampling")
def test_a_fit_result_shows_a_short_repr(tmp_path: Path) -> None:
    plays = toy_plays(4, n_tracks=5, seed=1)
    result = fit(get_variant("baseline"), plays, draws=200, chains=2, sampler="pymc")
    text = repr(result)
    assert len(text) < 250 and "\n" not in text
    assert text.startswith("<FitResult 'baseline': nuts/pymc on ")
    assert "200 draws x 2 chains" in text and "max R-hat 1.004" in text
    assert "0 divergences" in text
    assert repr(load_run(save_run(result, tmp_path / "run"))) == text
    quick = fit(get_variant("baseline"), plays, draws=30, chains=1, method="advi")
    assert "advi" in repr(quick) and "30 draws x 1 chain;" in repr(quick)
