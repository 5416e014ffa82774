"""The minibatch model is the spec's own model on the minibatch's rows, scaled to the stream.

No optimisation here (tests/test_scale_fit.py fits); only the model the optimiser steps on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pytensor.compile.mode import Mode

from skipmodel.errors import SkipmodelError
from skipmodel.model.build import build_model
from skipmodel.model.design import build_design
from skipmodel.model.spec import VARIANTS, ModelSpec
from skipmodel.scale.minibatch import _row_arrays, _shared_model
from skipmodel.simulate.plays import toy_plays

MODELS = Path(__file__).resolve().parents[1] / "models"
PY_MODE = Mode(linker="py", optimizer=None)


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(30, n_tracks=40, seed=6)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_minibatch_model_is_the_specs_model_scaled(plays, name) -> None:
    spec = ModelSpec.load(MODELS / f"{name}.toml")
    design = build_design(spec, plays)
    n_stream = 50 * design.n_obs
    model, shared = _shared_model(design, n_stream, design.n_obs)
    for key, values in _row_arrays(design).items():
        shared[key].set_value(values)
    reference = build_model(design, total_size=n_stream)
    assert [v.name for v in model.free_RVs] == [v.name for v in reference.free_RVs]
    assert model.named_vars_to_dims == reference.named_vars_to_dims
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in reference.initial_point().items()}
    got = model.compile_logp(mode=PY_MODE)(point)
    want = reference.compile_logp(mode=PY_MODE)(point)
    assert got == pytest.approx(want, rel=1e-10)
    # The likelihood carries the stream's size: 50x the rows' own log-likelihood.
    plain = build_model(design)
    lik = plain.compile_fn(plain.observedlogp, mode=PY_MODE)(point)
    assert model.compile_fn(model.observedlogp, mode=PY_MODE)(point) == pytest.approx(
        50 * lik, rel=1e-10
    )


def test_row_tables_cannot_be_streamed(plays) -> None:
    design = build_design(ModelSpec.load(MODELS / "smooth.toml"), plays)
    legacy = tuple(
        dataclasses.replace(td, data_tables=("basis",)) if td.term.kind == "smooth" else td
        for td in design.terms
    )
    with pytest.raises(SkipmodelError, match="refit the encoders"):
        _row_arrays(dataclasses.replace(design, terms=legacy))
