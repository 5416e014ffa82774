"""Posterior effects turned into probability-scale summaries ready to plot.

The model's variables are named for what they are (see :mod:`skipmodel.model.terms`):
``intercept``; ``<name>_effect`` over one named dimension (``weekday``, ``hour``, ``position``,
``day_of_month``, ``prev_skip_2``, ``context_type``, ``<column>_grid`` for smooths, a pooled
column's levels); pooled scales ``<name>_sigma`` and smooth amplitudes ``<name>_amplitude``;
the track effect as ``track_sigma * track_z`` when there are too many tracks to store it, or,
in a nested-Laplace run, as a per-level mean and sd in the run's ``levels`` group (drawn here
only for the tracks shown).

Which variables are effects, and how each is drawn, the run says: at fit time every term records,
per posterior variable, its kind and a drawing (``categorical``, ``curve``, ``cyclic``; see
:class:`skipmodel.model.terms.EffectPlot`) in the run's encoders, and
:func:`skipmodel.report.runs.load_run_inputs` attaches them to the posterior
(:func:`with_effect_plots`). Runs fitted before that fall back to a guess from dimension names.

Each effect is shown as ``P(skip) = logistic(intercept + effect)``: every other term at its
average contribution, which is zero by construction (zero-sum categorical effects, centred
smooths, standardised slopes) — the skip probability of an otherwise average play.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

__all__ = [
    "Effect",
    "Interval",
    "MAX_DRAWS",
    "interval",
    "posterior_draws",
    "probability_effects",
    "scale_parameters",
    "slope_parameters",
    "track_extremes",
    "with_effect_plots",
]

CI_PROB = 0.94
MAX_DRAWS = 1000
MAX_CATEGORIES = 40
CURVE_DIMS = ("position", "day_of_month")
CYCLIC_DIMS = ("hour",)
SAMPLE_DIMS = ("chain", "draw")
#: Axis labels (with units) of the curves a report draws; other columns use their own name.
AXIS_LABELS = {
    "hour": "hour of day (h)",
    "position": "position in session (plays)",
    "day_of_month": "day of month",
    "duration": "track duration (s)",
    "us_popularity_estimate": "US popularity estimate (percentile)",
    "release_year": "release year",
}
TRACK_LABEL = "track"

EffectKind = Literal["categorical", "curve", "cyclic"]


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Interval:
    """Posterior mean and central ``CI_PROB`` interval per column of a (draws, K) array."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def interval(draws: np.ndarray, prob: float = CI_PROB) -> Interval:
    """Equal-tailed interval over axis 0."""
    tail = (1 - prob) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail], axis=0)
    return Interval(draws.mean(axis=0), lo, hi)


@dataclass(frozen=True)
class Effect:
    """One term's effect on P(skip), per level / grid point, as posterior draws (S, K)."""

    variable: str
    dim: str
    kind: EffectKind
    labels: tuple[object, ...]
    probability: np.ndarray
    #: A panel title other than "P(skip) by <name>" (effects on the logit scale).
    heading: str = ""

    @property
    def name(self) -> str:
        return self.variable.removesuffix("_effect").replace("_", " ")

    @property
    def title(self) -> str:
        return self.heading or f"P(skip) by {self.name}"

    @property
    def axis_label(self) -> str:
        """The x axis of a curve, with units where the column has them."""
        name = self.dim.removesuffix("_grid")
        return AXIS_LABELS.get(name, name.replace("_", " "))

    def summary(self) -> Interval:
        return interval(self.probability)


def posterior_draws(
    dt: xr.DataTree, var: str, *, max_draws: int = MAX_DRAWS, seed: int = 0
) -> xr.DataArray:
    """``var`` with chain and draw stacked into ``sample`` (thinned evenly to ``max_draws``)."""
    da = dt["posterior"][var]
    stacked = da.stack(sample=SAMPLE_DIMS).transpose("sample", ...)
    n = stacked.sizes["sample"]
    if n > max_draws:
        keep = np.linspace(0, n - 1, max_draws).round().astype(int)
        stacked = stacked.isel(sample=keep)
    return stacked


#: Attribute of a posterior DataTree holding the run's recorded effect drawings (JSON).
EFFECTS_ATTR = "skipmodel_effects"
_DRAWN = ("categorical", "curve", "cyclic")


def with_effect_plots(dt: xr.DataTree, plots: Mapping[str, Mapping[str, str]]) -> xr.DataTree:
    """``dt`` carrying a run's recorded effect drawings (``Encoders.effects``: per variable its
    ``term`` kind, ``dim`` and ``draw``); empty ``plots`` (runs fitted before) leave it as is."""
    if plots:
        dt.attrs[EFFECTS_ATTR] = json.dumps({k: dict(v) for k, v in plots.items()})
    return dt


def recorded_effect_plots(dt: xr.DataTree) -> dict[str, dict[str, str]] | None:
    """The drawings recorded with the run, or None for a run fitted before they were."""
    raw = dt.attrs.get(EFFECTS_ATTR)
    return json.loads(raw) if raw else None


def _guess(var: str, dims: list[str]) -> tuple[str, EffectKind] | None:
    """Runs fitted before effect drawings were recorded: an effect is a one-dimensional
    ``*_effect`` (not a part of one), its drawing guessed from the dimension's name."""
    # a mixed pool's centred levels are a part of the pool (see track_extremes), and a
    # previous outcome's observed levels a part of its effect: not effects of their own
    parts = ("_centered_effect", "_observed_effect")
    if not var.endswith("_effect") or var.endswith(parts) or len(dims) != 1:
        return None
    return dims[0], _kind(dims[0])


def _kind(dim: str) -> EffectKind:
    if dim in CYCLIC_DIMS:
        return "cyclic"
    if dim in CURVE_DIMS or dim.endswith("_grid"):
        return "curve"
    return "categorical"


def probability_effects(dt: xr.DataTree, *, max_draws: int = MAX_DRAWS) -> list[Effect]:
    """Every effect the run records as drawn (categorical ones: at most 40 levels)."""
    posterior = dt["posterior"]
    if "intercept" not in posterior.data_vars:
        return []
    recorded = recorded_effect_plots(dt)
    base = posterior_draws(dt, "intercept", max_draws=max_draws).values
    effects = []
    for name in posterior.data_vars:
        var = str(name)
        da = posterior[var]
        dims = [str(d) for d in da.dims if d not in SAMPLE_DIMS]
        if recorded is None:
            guessed = _guess(var, dims)
            if guessed is None:
                continue
            dim, kind = guessed
        else:
            plot = recorded.get(var)
            if plot is None or plot["draw"] not in _DRAWN or dims != [plot["dim"]]:
                continue
            dim, kind = plot["dim"], plot["draw"]  # type: ignore[assignment]
        if kind == "categorical" and da.sizes[dim] > MAX_CATEGORIES:
            continue
        draws = posterior_draws(dt, var, max_draws=max_draws).values
        labels = tuple(v.item() if hasattr(v, "item") else v for v in da[dim].to_numpy())
        if kind == "categorical":
            # a level fixed at 0 by construction (a previous outcome's no_previous when the
            # position effect carries it) would read as a probability of its own: leave it out
            free = ~np.all(draws == 0, axis=0)
            if free.any() and not free.all():
                labels = tuple(lab for lab, f in zip(labels, free, strict=True) if f)
                draws = draws[:, free]
        effects.append(Effect(var, dim, kind, labels, logistic(base[:, None] + draws)))
    order = {"categorical": 1, "cyclic": 0, "curve": 2}
    return sorted(effects, key=lambda e: (order[e.kind], e.variable))


def scale_parameters(dt: xr.DataTree, *, max_draws: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """Scalar ``*_sigma`` / ``*_amplitude`` draws (logit scale): how much each term varies."""
    posterior = dt["posterior"]
    out = {}
    for name in posterior.data_vars:
        var = str(name)
        dims = [d for d in posterior[var].dims if d not in SAMPLE_DIMS]
        if not dims and var.endswith(("_sigma", "_amplitude")):
            out[var] = posterior_draws(dt, var, max_draws=max_draws).values
    return dict(sorted(out.items()))


def memory_effects(dt: xr.DataTree, *, max_draws: int = MAX_DRAWS) -> Effect | None:
    """Where the memory in a session sits, on the logit scale, for a run with a session term:
    the sd of the sessions' propensities (mood) beside the Markov contrasts (the previous play's
    skip, and the one two plays back: true - false). None without a session term."""
    posterior = dt["posterior"]
    if "session_sigma" not in posterior.data_vars:
        return None
    labels: list[str] = ["session sd (mood)"]
    columns = [posterior_draws(dt, "session_sigma", max_draws=max_draws).values]
    for var, label in (
        ("prev_skip_2_effect", "previous skip"),
        ("prev2_skip_2_effect", "skip 2 plays back"),
    ):
        if var in posterior.data_vars:
            table = posterior_draws(dt, var, max_draws=max_draws)
            dim = next(str(d) for d in table.dims if d != "sample")
            contrast = table.sel({dim: "true"}) - table.sel({dim: "false"})
            columns.append(contrast.values)
            labels.append(f"{label}: yes - no")
    return Effect(
        "memory",
        "memory",
        "categorical",
        tuple(labels),
        np.column_stack(columns),
        heading="Memory: mood and previous plays (log-odds)",
    )


def slope_parameters(dt: xr.DataTree, *, max_draws: int = MAX_DRAWS) -> list[Effect]:
    """One-dimensional ``*_beta`` slopes (logit scale, per standard deviation of the input).

    The Markov term's ``markov_{current,prev,interaction,change}_beta`` over ``markov_feature``
    and the fixed effects' ``fixed_beta`` over ``fixed_predictor``. The ``probability`` field
    holds logit-scale draws here.
    """
    posterior = dt["posterior"]
    out = []
    for name in posterior.data_vars:
        var = str(name)
        dims = [str(d) for d in posterior[var].dims if d not in SAMPLE_DIMS]
        if var.endswith("_beta") and len(dims) == 1:
            labels = tuple(str(v) for v in posterior[var][dims[0]].to_numpy())
            draws = posterior_draws(dt, var, max_draws=max_draws).values
            name = var.removesuffix("_beta").replace("_", " ")
            heading = f"{name} (log-odds per SD)"
            out.append(Effect(var, dims[0], "categorical", labels, draws, heading=heading))
    return sorted(out, key=lambda e: e.variable)


def _on_dim(da: xr.DataArray, dim: str) -> xr.DataArray:
    """``da`` (``sample`` x one level dim) with its level dim renamed ``dim``."""
    level = next(str(d) for d in da.dims if d != "sample")
    return da if level == dim else da.rename({level: dim})


def _level_table(dt: xr.DataTree, label: str, max_draws: int) -> xr.DataArray | None:
    """Logit-scale effect draws of every level of a pooled term, whatever its parametrisation:
    ``<label>_effect`` (centred, or recorded), ``sigma * z`` (non-centred), or a mixed pool's
    ``sigma * z`` [<label>_noncentered] joined with ``<label>_centered_effect`` [<label>_centered].
    """
    posterior = dt["posterior"]
    if f"{label}_effect" in posterior.data_vars:
        return _on_dim(posterior_draws(dt, f"{label}_effect", max_draws=max_draws), label)
    if f"{label}_z" in posterior.data_vars and f"{label}_sigma" in posterior.data_vars:
        sigma = posterior_draws(dt, f"{label}_sigma", max_draws=max_draws)
        table = _on_dim(posterior_draws(dt, f"{label}_z", max_draws=max_draws) * sigma, label)
        if f"{label}_centered_effect" in posterior.data_vars:
            thick = posterior_draws(dt, f"{label}_centered_effect", max_draws=max_draws)
            table = xr.concat([table, _on_dim(thick, label)], dim=label)
        return table
    return None


def _level_summary(dt: xr.DataTree, label: str) -> xr.Dataset | None:
    """A nested-Laplace run's per-level ``<label>_effect_mean`` / ``_sd`` over ``label``."""
    from skipmodel.model.levels import LEVELS_GROUP

    if LEVELS_GROUP not in dt.children:
        return None
    ds = dt[LEVELS_GROUP].to_dataset()
    name = f"{label}_effect"
    if ds.attrs.get("variable") != name or f"{name}_mean" not in ds or f"{name}_sd" not in ds:
        return None
    return ds


def _extremes(score: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the ``n`` highest and ``n`` lowest scores (at most half each), best first."""
    k = min(n, score.size // 2) if score.size >= 2 else score.size
    order = np.argsort(score, kind="stable")
    return order[::-1][:k], order[:k]


def _gaussian_extremes(
    dt: xr.DataTree,
    summary: xr.Dataset,
    label: str,
    n: int,
    *,
    exclude: Sequence[str],
    max_draws: int,
    seed: int,
) -> tuple[Effect, Effect]:
    """Extremes from per-level Gaussian summaries, drawing only the chosen levels.

    The posterior mean of P(skip) = logistic(intercept + effect) is ranked without draws: for a
    Gaussian logit with mean m and variance v it is about logistic(m / sqrt(1 + pi v / 8)) (the
    probit approximation), m and v from the intercept's draws and the level's mean and sd; unlike
    ranking by m alone, an uncertain level is pulled towards 1/2 as its draws will be. The
    chosen levels are then drawn as prediction draws them
    (:class:`~skipmodel.model.levels.GaussianLevels`, same seed and level codes), so a report
    of millions of tracks never holds more than ``2 n`` columns of draws.
    """
    from skipmodel.model.levels import GaussianLevels

    name = f"{label}_effect"
    mean = np.asarray(summary[f"{name}_mean"].values, dtype=float)
    sd = np.asarray(summary[f"{name}_sd"].values, dtype=float)
    labels = np.asarray(summary[label].values).astype(str)  # vectorised: millions of levels
    base = posterior_draws(dt, "intercept", max_draws=max_draws).values
    score = (base.mean() + mean) / np.sqrt(1.0 + np.pi * (base.var() + sd**2) / 8.0)
    codes = np.flatnonzero(~np.isin(labels, list(exclude)))
    most, least = (codes[i] for i in _extremes(score[codes], n))
    table = GaussianLevels(mean, sd, base.size, seed=seed)

    def effect(title: str, chosen: np.ndarray, *, descending: bool) -> Effect:
        prob = logistic(base[:, None] + table[:, chosen])
        # shown in the order of the drawn means, as the sampled path shows them
        order = np.argsort(prob.mean(axis=0), kind="stable")
        order = order[::-1] if descending else order
        names = tuple(str(v) for v in labels[chosen][order])
        return Effect(title, label, "categorical", names, prob[:, order])

    return (
        effect(f"most skipped {label}s", most, descending=True),
        effect(f"least skipped {label}s", least, descending=False),
    )


def track_extremes(
    dt: xr.DataTree,
    *,
    label: str = TRACK_LABEL,
    n: int = 12,
    exclude: Sequence[str] = ("__other__",),
    max_draws: int = MAX_DRAWS,
    seed: int = 0,
) -> tuple[Effect, Effect] | None:
    """The ``n`` most and least skipped levels of a pooled term (by posterior mean), on P(skip).

    The levels come from the posterior draws (:func:`_level_table`) or, for a nested-Laplace
    run, from its per-level Gaussian summary (the ``levels`` group), drawn with ``seed``.
    """
    posterior = dt["posterior"]
    if "intercept" not in posterior.data_vars:
        return None
    table = _level_table(dt, label, max_draws)
    if table is None:
        summary = _level_summary(dt, label)
        if summary is None:
            return None
        return _gaussian_extremes(
            dt, summary, label, n, exclude=exclude, max_draws=max_draws, seed=seed
        )
    dim = next(str(d) for d in table.dims if d != "sample")
    keep = [str(v) not in exclude for v in table[dim].values]
    table = table.isel({dim: np.flatnonzero(keep)})
    base = posterior_draws(dt, "intercept", max_draws=max_draws).values
    prob = logistic(base[:, None] + table.values)
    labels = np.asarray([str(v) for v in table[dim].values])
    most, least = _extremes(prob.mean(axis=0), n)
    return (
        Effect(f"most skipped {label}s", dim, "categorical", tuple(labels[most]), prob[:, most]),
        Effect(f"least skipped {label}s", dim, "categorical", tuple(labels[least]), prob[:, least]),
    )
