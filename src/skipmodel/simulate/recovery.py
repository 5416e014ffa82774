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
        if name not in post:
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
