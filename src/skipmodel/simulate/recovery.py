"""Does a fit recover the effects ``skipmodel simulate`` put in? Judged in posterior sd and MCSE.

:func:`recovery_table` lines up every true effect in ``truth.json`` that a skip model can
express — weekday, hour of day, session position (positions 2..20: position 1 is confounded
with "no previous play"), context type, premium, shuffle, the Markov effect of the previous skip,
danceability's current / before x now / change slopes, and the spread of track effects — with the
fitted model's implied value, as posterior draws. A model without the term that carries an
effect implies 0 for it, with no uncertainty, and fails that row.

A row passes when ``|posterior mean - truth| <= Z_SD * posterior sd + Z_MCSE * MCSE(mean)``:
the truth inside a ~99.95 % posterior interval (Bonferroni over ~70 rows), widened by the
Monte-Carlo error of the mean rather than by a fixed tolerance.

Two more line-ups serve the report's recovery section (:mod:`skipmodel.report.recovery`), in the
same form: :func:`smooth_effects` (each true smooth curve at the fitted grid points, both
centred) and :func:`null_effects` (what a model estimates that the truth sets to zero: the
lag-2 outcome, slopes of other Markov features, fixed effects of columns without an effect).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from skipmodel.store.schema import WEEKDAYS

#: Posterior sds and MCSEs the truth may sit from the posterior mean.
Z_SD = 3.5
Z_MCSE = 3.0


def _mcse(draws: np.ndarray) -> float:
    import arviz_stats as azs

    if np.ptp(draws) == 0:
        return 0.0
    da = xr.DataArray(draws, dims=("chain", "draw"))
    return float(azs.mcse(xr.Dataset({"q": da}))["q"])


def _dance_scale(result: Any, truth: dict[str, Any]) -> tuple[float, float]:
    """(a, b) with z_truth = a z_fit + b for danceability (different standardisations)."""
    scaler = result.encoders.scalers.get("markov.danceability")
    if scaler is None:
        return 1.0, 0.0
    t = truth["danceability"]
    a = scaler.scale / t["standardise_sd"]
    return a, (scaler.center - t["standardise_mean"]) / t["standardise_sd"]


def implied_effects(result: Any, truth: dict[str, Any]) -> dict[str, tuple[float, np.ndarray]]:
    """Quantity -> (true value, posterior draws (chain, draw) the model implies for it)."""
    post: xr.Dataset = result.posterior["posterior"].to_dataset()
    shape = (post.sizes["chain"], post.sizes["draw"])
    zero = np.zeros(shape)

    def var(name: str, **sel: Any) -> np.ndarray:
        # a level the model lacks (a context type absent from its data) is not expressed either
        if name not in post or any(v not in post[name][d].values for d, v in sel.items()):
            return zero
        return np.asarray(post[name].sel(**sel).values, dtype=float)

    out: dict[str, tuple[float, np.ndarray]] = {}
    sm = truth["skip_model"]
    for day in WEEKDAYS:
        out[f"weekday[{day}]"] = (sm["weekday_effect"][day], var("weekday_effect", weekday=day))
    for hour in range(24):
        out[f"hour[{hour}]"] = (sm["hour_effect"][str(hour)], var("hour_effect", hour=hour))
    positions = range(2, 21)
    true_pos = np.array([sm["position_effect"][str(p)] for p in positions])
    if "position_effect" in post:
        fit_pos = np.stack([var("position_effect", position=p) for p in positions])
        fit_pos = fit_pos - fit_pos.mean(axis=0)
    else:
        fit_pos = np.zeros((len(positions), *shape))
    for i, p in enumerate(positions):
        out[f"position[{p}] - mean(2..20)"] = (true_pos[i] - true_pos.mean(), fit_pos[i])
    for level, value in sm["context_type_effect"].items():
        out[f"context_type[{level}]"] = (value, var("context_type_effect", context_type=level))
    fixed = set(post["fixed_predictor"].values) if "fixed_predictor" in post.coords else set()
    for key, col in (
        ("premium_effect", "premium"),
        ("shuffle_effect", "hist_user_behavior_is_shuffle"),
    ):
        draws = var("fixed_beta", fixed_predictor=col) if col in fixed else zero
        out[col] = (sm[key], draws)
    prev = "prev_skip_2_effect"
    if prev in post:
        contrast = var(prev, prev_skip_2="true") - var(prev, prev_skip_2="false")
    else:
        contrast = zero
    out["prev_skip_2 (true - false)"] = (sm["markov"]["prev_skip_2"], contrast)
    a, b = _dance_scale(result, sm)
    d = sm["danceability"]
    dance = {"markov_feature": "danceability"}
    out["danceability x before"] = (
        d["prev_x_current"] * a * a,
        var("markov_interaction_beta", **dance),
    )
    out["|danceability change|"] = (d["abs_change"] * a, var("markov_change_beta", **dance))
    out["danceability now"] = (
        d["main_effect"] * a + d["prev_x_current"] * a * b,
        var("markov_current_beta", **dance),
    )
    out["track sd"] = (sm["track_effect"]["sd"], var("track_sigma"))
    return out


def recovery_table(result: Any, truth: dict[str, Any]) -> pd.DataFrame:
    """One row per true effect: truth, posterior mean / sd, MCSE, distance, pass."""
    rows = []
    for name, (true, draws) in implied_effects(result, truth).items():
        mean, sd, mcse = float(draws.mean()), float(draws.std()), _mcse(draws)
        allowed = Z_SD * sd + Z_MCSE * mcse
        rows.append(
            {
                "quantity": name,
                "truth": true,
                "mean": mean,
                "sd": sd,
                "mcse": mcse,
                "error_in_sd": abs(mean - true) / sd if sd > 0 else np.inf,
                "passed": abs(mean - true) <= allowed,
            }
        )
    return pd.DataFrame(rows)


def smooth_truth(truth: dict[str, Any], column: str, x: np.ndarray) -> np.ndarray:
    """The true smooth effect of ``column`` at raw values ``x``, from ``truth.json``.

    The truth records each curve on a grid over the catalogue's 0.5-99.5 % range (of ``log(x)``
    for a log-scale smooth); between grid points it is interpolated linearly, and outside the
    grid it takes the end value.
    """
    smooth = truth["skip_model"]["smooth_effects"][column]
    x = np.asarray(x, dtype=float)
    at = np.log(np.clip(x, 1e-10, None)) if smooth["scale"] == "log" else x
    return np.interp(at, np.asarray(smooth["grid"], float), np.asarray(smooth["effect"], float))


def smooth_effects(result: Any, truth: dict[str, Any]) -> dict[str, tuple[float, np.ndarray]]:
    """``"<column>[x]"`` -> (true value, posterior draws) along every smooth of ``truth.json``.

    A smooth's level is not identified apart from the intercept (the model centres it on the
    fitted plays, the truth on the track catalogue), so both curves are centred over the points
    compared: the model's grid points (``<column>_grid``, raw units) inside the truth's grid. A
    model without a smooth of the column implies 0 at the truth's own grid points.
    """
    post: xr.Dataset = result.posterior["posterior"].to_dataset()
    shape = (post.sizes["chain"], post.sizes["draw"])
    out: dict[str, tuple[float, np.ndarray]] = {}
    for column, smooth in truth["skip_model"].get("smooth_effects", {}).items():
        name, dim = f"{column}_effect", f"{column}_grid"
        grid = np.asarray(smooth["grid"], float)
        if name in post and dim in post[name].dims:
            x = np.asarray(post[dim].values, dtype=float)
            at = np.log(np.clip(x, 1e-10, None)) if smooth["scale"] == "log" else x
            inside = (at >= grid[0]) & (at <= grid[-1])
            x = x[inside]
            fitted = np.moveaxis(np.asarray(post[name].values, float)[..., inside], -1, 0)
            fitted = fitted - fitted.mean(axis=0)
        else:
            x = np.exp(grid) if smooth["scale"] == "log" else grid
            fitted = np.zeros((x.size, *shape))
        true = smooth_truth(truth, column, x)
        true = true - true.mean()
        for i, value in enumerate(x):
            out[f"{column}[{value:.6g}]"] = (float(true[i]), fitted[i])
    return out


def null_effects(result: Any, truth: dict[str, Any]) -> dict[str, tuple[float, np.ndarray]]:
    """Effects a model estimates that ``truth.json`` leaves out: quantity -> (true value, draws).

    Only what the model has is listed (these are not effects of the truth): the lag-2 outcome
    contrast, the slopes of Markov features other than danceability (and of danceability the
    previous track's own slope), and fixed effects of columns the truth lists under
    ``no_effect_columns``. Their true value is 0, except danceability before, which the fitted
    standardisation gives a slope ``prev_x_current * a * b`` (see :func:`_dance_scale`).
    """
    post: xr.Dataset = result.posterior["posterior"].to_dataset()
    sm = truth["skip_model"]
    out: dict[str, tuple[float, np.ndarray]] = {}

    def draws(name: str, **sel: Any) -> np.ndarray:
        return np.asarray(post[name].sel(**sel).values, dtype=float)

    prev2 = "prev2_skip_2_effect"
    if prev2 in post:
        contrast = draws(prev2, prev2_skip_2="true") - draws(prev2, prev2_skip_2="false")
        out["prev2_skip_2 (true - false)"] = (0.0, contrast)
    features = post["markov_feature"].values if "markov_feature" in post.coords else ()
    with_effect = {"danceability", *sm.get("smooth_effects", {})}
    slopes = (
        ("markov_current_beta", "{} now"),
        ("markov_prev_beta", "{} before"),
        ("markov_interaction_beta", "{} x before"),
        ("markov_change_beta", "|{} change|"),
    )
    for feature in (str(f) for f in features):
        for var, label in slopes:
            if var not in post:
                continue
            if feature not in with_effect:
                out[label.format(feature)] = (0.0, draws(var, markov_feature=feature))
            elif feature == "danceability" and var == "markov_prev_beta":
                a, b = _dance_scale(result, sm)
                true = sm["danceability"]["prev_x_current"] * a * b
                out[label.format(feature)] = (true, draws(var, markov_feature=feature))
    if "fixed_predictor" in post.coords:
        nulls = set(sm.get("no_effect_columns", ()))
        for column in (str(c) for c in post["fixed_predictor"].values):
            if column in nulls:
                out[column] = (0.0, draws("fixed_beta", fixed_predictor=column))
    return out
