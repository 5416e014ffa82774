"""The session term: a pooled propensity per session, learnt at prediction from earlier plays only.

The leakage rule, as a permutation test: the prediction for play t never changes when the
observed outcome of t or of any later play changes (and does when an earlier one does, so the
test can fail). The one-dimensional update is checked against the exact posterior predictive by
brute-force integration, and sequential prediction against the same integral.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import skipmodel.scale  # noqa: F401 - registers the full-data paths
from skipmodel.errors import SkipmodelError
from skipmodel.model.design import build_design
from skipmodel.model.prediction import predict_design, predict_sequential
from skipmodel.model.spec import Markov, ModelSpec, Session, get_variant
from skipmodel.model.terms.session import predictive, update
from skipmodel.simulate.plays import toy_plays

SPEC = ModelSpec(terms=(Markov(), Session()))
N_DRAWS = 40


def _draws(design, seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up posterior draws of every variable the spec's terms read."""
    rng = np.random.default_rng(seed)
    return {
        "intercept": rng.normal(-0.2, 0.1, N_DRAWS),
        "session_sigma": rng.uniform(0.6, 1.0, N_DRAWS),
        "prev_skip_2_effect": np.column_stack(
            [np.zeros(N_DRAWS), rng.normal(-0.5, 0.1, N_DRAWS), rng.normal(0.5, 0.1, N_DRAWS)]
        ),
        "markov_current_beta": rng.normal(0, 0.2, (N_DRAWS, 2)),
        "markov_prev_beta": rng.normal(0, 0.2, (N_DRAWS, 2)),
    }


def _exact_predictive(eta: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """P(y_t = 1 | y_<t) for one session by integration on a fine grid."""
    u = np.linspace(-8 * sigma, 8 * sigma, 8001)
    log_post = -0.5 * (u / sigma) ** 2
    out = np.empty(len(eta))
    for t, (e, obs) in enumerate(zip(eta, y, strict=True)):
        w = np.exp(log_post - log_post.max())
        p = 1 / (1 + np.exp(-(e + u)))
        out[t] = (w * p).sum() / w.sum()
        log_post = log_post + np.log(p if obs else 1 - p)
    return out


def test_the_update_follows_the_exact_posterior_predictive_play_by_play() -> None:
    """The posterior is kept Gaussian (assumed-density filtering): within 0.005 of the exact
    predictive for session scales up to 1.2 (MSSD-like moods), 0.02 at 2.0, where 20 outcomes
    leave the posterior skewed."""
    rng = np.random.default_rng(3)
    for sigma, tolerance in ((0.3, 0.005), (0.8, 0.005), (1.2, 0.005), (2.0, 0.02)):
        eta = rng.normal(0, 1, 20)
        y = rng.random(20) < 0.8  # a moody session: mostly skips
        exact = _exact_predictive(eta, y, sigma)
        m, v = np.zeros(1), np.full(1, sigma**2)
        worst = 0.0
        for t in range(20):
            approx = predictive(m, v, eta[t : t + 1])[0]
            worst = max(worst, abs(approx - exact[t]))
            m, v = update(m, v, eta[t : t + 1], y[t : t + 1])
        assert worst < tolerance, (sigma, worst)


def _frame(seed: int = 0) -> pd.DataFrame:
    return toy_plays(30, n_tracks=40, seed=seed, session_sd=0.8)


def _predict(frame: pd.DataFrame) -> np.ndarray:
    design = build_design(SPEC, frame, require_outcome=False)
    return predict_design(design, _draws(design), chunk_rows=50).p_skip


def test_a_prediction_never_reads_the_outcome_of_its_own_play_or_later_ones() -> None:
    frame = _frame()
    base = _predict(frame)
    session = frame["session_id"].iloc[0]
    rows = np.flatnonzero(frame["session_id"].to_numpy() == session)
    t = rows[5]  # play 6 of the first session
    changed = frame.copy()
    later = rows[rows >= t]
    changed.loc[later, "skip_2"] = ~frame.loc[later, "skip_2"].astype(bool)
    # the Markov term reads the previous outcome from its lag column, which is not changed here
    after = _predict(changed)
    assert after[t] == base[t]
    np.testing.assert_array_equal(after[rows[rows <= t]], base[rows[rows <= t]])
    # other sessions are untouched
    others = frame["session_id"].to_numpy() != session
    np.testing.assert_array_equal(after[others], base[others])
    # an earlier play's outcome does change it: the rule is not vacuous
    earlier = frame.copy()
    earlier.loc[rows[:5], "skip_2"] = ~frame.loc[rows[:5], "skip_2"].astype(bool)
    assert abs(_predict(earlier)[t] - base[t]) > 1e-3


def test_row_order_and_chunking_do_not_change_the_predictions() -> None:
    frame = _frame(1)
    base = _predict(frame)
    shuffled = frame.sample(frac=1.0, random_state=0)
    again = _predict(shuffled.reset_index(drop=True))
    np.testing.assert_allclose(again, base[shuffled.index.to_numpy()], rtol=1e-12)


def test_more_skips_earlier_in_the_session_raise_the_prediction() -> None:
    frame = _frame(2)
    rows = np.flatnonzero(frame["session_id"].to_numpy() == frame["session_id"].iloc[0])
    moody, calm = frame.copy(), frame.copy()
    moody.loc[rows[:-1], "skip_2"] = True
    calm.loc[rows[:-1], "skip_2"] = False
    assert _predict(moody)[rows[-1]] > _predict(calm)[rows[-1]] + 0.1


def test_without_outcomes_every_play_gets_the_population_average() -> None:
    frame = _frame(3).drop(columns=["skip_1", "skip_2", "skip_3", "not_skipped"])
    design = build_design(SPEC, frame, require_outcome=False)
    draws = _draws(design)
    draws["prev_skip_2_effect"][:] = 0.0  # no previous outcome to read either
    p = predict_design(design, draws).p_skip
    sigma = draws["session_sigma"]
    expected = np.mean(
        predictive(np.zeros(N_DRAWS), sigma**2, draws["intercept"] + 0 * sigma)
    )  # the features' slopes vary by row: compare the spread instead of the level
    assert np.isfinite(p).all() and abs(np.median(p) - expected) < 0.1


def test_sequential_prediction_learns_from_the_first_half_only() -> None:
    frame = _frame(4)
    design = build_design(SPEC, frame, require_outcome=False)
    draws = _draws(design)
    ids, base = predict_sequential(design, draws, frame, seed=0, reveal="context")
    second = (2 * frame["session_position"] > frame["session_length"]).to_numpy()
    # changing second-half outcomes changes nothing (they are rolled, not read)
    changed = frame.copy()
    changed.loc[second, "skip_2"] = ~frame.loc[second, "skip_2"].astype(bool)
    design2 = build_design(SPEC, changed, require_outcome=False)
    _, again = predict_sequential(design2, draws, changed, seed=0, reveal="context")
    np.testing.assert_array_equal(again.p_skip, base.p_skip)
    # a first half of skips raises the second half's predictions
    first = ~second
    moody = frame.copy()
    moody.loc[first, "skip_2"] = True
    moody["prev_skip_2"] = moody.groupby("session_id")["skip_2"].shift(1).astype("boolean")
    design3 = build_design(SPEC, moody, require_outcome=False)
    _, high = predict_sequential(design3, draws, moody, seed=0, reveal="context")
    assert high.p_skip.mean() > base.p_skip.mean() + 0.05


def test_sequential_one_step_ahead_matches_row_level_prediction() -> None:
    """reveal="all" predicts each second-half play from every earlier outcome: the same
    quantity as the row-level prediction, through the per-session state instead."""
    frame = _frame(5)
    design = build_design(SPEC, frame, require_outcome=False)
    draws = _draws(design)
    ids, seq = predict_sequential(design, draws, frame, seed=0, reveal="all")
    rows = predict_design(design, draws).p_skip
    second = (2 * frame["session_position"] > frame["session_length"]).to_numpy()
    np.testing.assert_allclose(seq.p_skip, rows[second], atol=1e-9)


def test_the_session_variant_is_full_plus_the_session_term() -> None:
    session, full = get_variant("session"), get_variant("full")
    assert session.terms[:-1] == full.terms or set(full.terms) < set(session.terms)
    assert any(t.kind == "session" for t in session.terms)
    assert ModelSpec.from_toml(session.to_toml()) == session


@pytest.mark.parametrize(
    ("method", "message"),
    [("laplace", None), ("advi", None)],
)
def test_methods_fit_it_or_refuse_it_in_one_line(method: str, message: str | None) -> None:
    from skipmodel.model.fitting import fit

    plays = toy_plays(40, n_tracks=20, seed=6, session_sd=0.8)
    spec = ModelSpec(terms=(Session(),))
    if message is None:
        options = {"chains": 1} if method == "advi" else {}
        result = fit(spec, plays, method=method, draws=50, **options)
        assert "session_sigma" in result.posterior["posterior"]
        return
    with pytest.raises(SkipmodelError, match=message) as err:
        fit(spec, plays, method=method)
    assert "\n" not in str(err.value)


def test_cells_refuse_it_in_one_line() -> None:
    from skipmodel.scale.aggregate import check_aggregable

    verdict = check_aggregable(ModelSpec(terms=(Session(),)))
    assert not verdict.aggregable
    (reason,) = verdict.reasons
    assert "sessions do not aggregate" in reason and "\n" not in reason


def test_minibatch_refuses_it_in_one_line(tmp_path) -> None:
    from skipmodel.scale.minibatch import fit_minibatch

    with pytest.raises(SkipmodelError, match="one effect per session") as err:
        fit_minibatch(tmp_path, ModelSpec(terms=(Session(),)))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_nuts_recovers_the_session_scale_and_the_previous_skip_from_the_toy_generator() -> None:
    """The second generator (toy_plays; the MSSD simulator's case is bench_session): with a
    session propensity of sd 0.8, the session model recovers the sd and the previous-skip
    contrast (true 1.0) within 2 posterior sds; without the term the contrast is inflated."""
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import Pooled

    plays = toy_plays(700, n_tracks=150, seed=11, session_sd=0.8)
    terms = (Pooled(column="track_id_clean"), Markov())
    contrasts = {}
    for name, spec in (
        ("without", ModelSpec(terms=terms)),
        ("with", ModelSpec(terms=(*terms, Session()))),
    ):
        result = fit(spec, plays, draws=500, tune=500, chains=2, seed=1)
        post = result.posterior["posterior"]
        table = post["prev_skip_2_effect"]
        diff = (table.sel(prev_skip_2="true") - table.sel(prev_skip_2="false")).values.ravel()
        contrasts[name] = (diff.mean(), diff.std())
        if name == "with":
            sigma = post["session_sigma"].values.ravel()
            assert abs(sigma.mean() - 0.8) < 2 * sigma.std(), (sigma.mean(), sigma.std())
            assert result.diagnostics["divergences"] == 0
    m, s = contrasts["with"]
    assert abs(m - 1.0) < 2 * s, contrasts
    m0, s0 = contrasts["without"]
    assert m0 - 1.0 > 2 * s0, contrasts  # the mood leaks into the lag effect without the term
