"""Your own covariates: declared in the spec, read from the frames passed to fit and predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.model import Fixed, ModelSpec, Pooled, Smooth, UserColumn, fit, predict
from skipmodel.model.spec import Markov
from skipmodel.simulate.plays import toy_plays

COLUMNS = (
    UserColumn("my_user_segment", type="string"),
    UserColumn("my_score", type="number"),
    UserColumn("in_experiment", type="boolean"),
)
SPEC = ModelSpec(
    terms=(
        Markov(),
        Pooled(column="my_user_segment"),
        Smooth(column="my_score"),
        Fixed(columns=("in_experiment",)),
    ),
    columns=COLUMNS,
)


def _with_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sessions = frame["session_id"].unique()
    segment = dict(zip(sessions, rng.choice(["a", "b", "c"], len(sessions)), strict=True))
    arm = dict(zip(sessions, rng.random(len(sessions)) < 0.5, strict=True))
    return frame.assign(
        my_user_segment=frame["session_id"].map(segment),
        my_score=rng.normal(size=len(frame)),
        in_experiment=frame["session_id"].map(arm),
    )


def test_declared_columns_fit_predict_and_round_trip() -> None:
    plays = _with_columns(toy_plays(60, n_tracks=30, seed=1), 1)
    result = fit(SPEC, plays, method="advi", draws=50, chains=1)
    post = result.posterior["posterior"]
    assert "my_user_segment_sigma" in post and "fixed_beta" in post
    new = _with_columns(toy_plays(10, n_tracks=30, seed=2), 2)
    new.loc[new.index[:5], "my_user_segment"] = "never_seen"  # drawn from the pool
    p = predict(result, new)
    assert p["p_skip"].between(0, 1).all() and len(p) == len(new)
    assert ModelSpec.from_toml(SPEC.to_toml()) == SPEC
    with pytest.raises(SkipmodelError, match="lack column"):
        predict(result, new.drop(columns=["my_score"]))
    bad = new.assign(my_score=new["my_score"].astype(object))
    bad.loc[bad.index[0], "my_score"] = "lots"
    with pytest.raises(SkipmodelError, match="'my_score' is declared number but holds 'lots'"):
        predict(result, bad)


def test_undeclared_and_outcome_side_columns_are_refused() -> None:
    with pytest.raises(SkipmodelError, match="unknown column 'my_user_segment'.*declare"):
        ModelSpec(terms=(Pooled(column="my_user_segment"),))
    with pytest.raises(SkipmodelError, match="outcome-side column and cannot be a predictor"):
        ModelSpec(
            terms=(Fixed(columns=("listened_after",)),),
            columns=(UserColumn("listened_after", role="outcome"),),
        )
    with pytest.raises(SkipmodelError, match="one of MSSD's columns"):
        ModelSpec(columns=(UserColumn("premium"),))
    with pytest.raises(SkipmodelError, match="type: invalid value 'text'"):
        ModelSpec(columns=(UserColumn("x", type="text"),))
