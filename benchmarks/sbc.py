"""Simulation-based calibration (Talts et al. 2018) of a small skip model, fitted by skipmodel.

``python -m benchmarks.sbc --out reports/sbc [--reps N] [--quick]`` (``make sbc``).

If skipmodel's model, priors and NUTS settings are right, then for parameters drawn from the prior
and outcomes drawn from the likelihood given them, the rank of each prior draw among L
(effectively independent) posterior draws is uniform on 0..L. Each replication here:

1. takes the r-th joint draw (parameters and ``skip_2`` outcomes) of ``pm.sample_prior_predictive``
   on the model skipmodel builds (:func:`skipmodel.model.build.build`) for a fixed design, so the
   prior and likelihood are exactly the ones skipmodel fits, in its parametrisation (zero-sum
   weekday, previous-skip and pooled effects, ``HalfNormal`` pool scale: :class:`~skipmodel.model.
   spec.Priors`' defaults);
2. fits :data:`SBC_SPEC` to the design with those outcomes through skipmodel's one fit entry,
   :func:`skipmodel.model.fitting.fit` (nutpie NUTS with the spec's tuning, target acceptance and
   mass-matrix adaptation), as ``skipmodel fit`` would;
3. thins each chain evenly to L draws in all and records, for every scalar parameter, the rank of
   the prior draw among them (ties, which continuous draws do not have, broken at random).

The design is fixed: the toy plays' columns, their previous-skip column included, are kept and only
the outcomes are redrawn. skipmodel fits ``p(y | X, theta)`` with the lagged outcome inside X, and
SBC of a conditional model holds for any fixed X, so the lag need not be the lag of the redrawn
outcomes. (Simulating sessions play by play would be valid too — the product of
``p(y_t | y_{t-1}, theta)`` is the joint — but would change X in every replication.) The pool's
centred / non-centred choice is made from each replication's outcomes: it re-parametrises the same
prior, and as a function of the data alone it leaves the ranks uniform within each choice under
exact inference, so the report also tests each group of replications apart.

skipmodel's fit entry builds and compiles the model from the data on every call (nutpie compiles it
in :func:`skipmodel.model.fitting.sample_model`) and has no way to swap the outcomes of a compiled
model; each replication pays that compile, and the report gives it apart from the sampling time.

Outputs in ``--out``: ``sbc_ranks.csv`` (rep, parameter, rank, L), ``sbc_reps.csv`` (per-replication
time and diagnostics), ``sbc_ranks.png`` (rank histograms with the 99 % band of a uniform
histogram), ``sbc_ecdf.png`` (ECDF minus uniform, simultaneous 99 % band), ``sbc.md`` and
``sbc.json`` (tests, verdict, what was run). Uniformity is tested per parameter by a chi-square
test over equal-width rank bins and by the simultaneous ECDF test of Säilynoja, Bürkner & Vehtari
(2022), its null distribution simulated. Replications that diverged, did not converge or failed are
counted and reported; their ranks are kept.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skipmodel.model.spec import Markov, ModelSpec, Pooled, Seasonal

#: The calibrated variant: intercept + weekday + previous play's skip + pooled context type,
#: the spec's default priors and inference options.
SBC_SPEC = ModelSpec(
    name="sbc",
    description="intercept + weekday + previous skip + pooled context type (SBC)",
    terms=(
        Pooled(column="context_type"),
        Seasonal(weekday=True, hour="none", position=False),
        Markov(),
    ),
)
#: The variables whose scalar entries are ranked; every free parameter of :data:`SBC_SPEC`, on
#: the scale it is reported (the pool's effects whatever its parametrisation).
PARAMETERS = (
    "intercept",
    "weekday_effect",
    f"prev_{SBC_SPEC.outcome}_effect",
    "context_type_sigma",
    "context_type_effect",
)
#: Family-wise level of the verdict (Bonferroni over parameters and the two tests).
ALPHA = 0.05
#: Unadjusted p-value below which a parameter is worth a look.
WATCH = 0.01
#: Coverage of the bands drawn in the figures.
BAND = 0.99
#: Fewer replications than this make a smoke run, whatever the tests say.
MIN_REPS = 100
#: Largest R-hat of a replication counted as converged.
MAX_RHAT = 1.01


@dataclass(frozen=True)
class Settings:
    """What one SBC run does.

    ``ranks`` is L: each prior draw is ranked among L posterior draws, thinned evenly from
    ``chains`` x ``draws``; ``L + 1`` must be a multiple of ``bins`` (the chi-square bins).
    """

    reps: int = 100
    ranks: int = 199
    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    sessions: int = 150
    seed: int = 2018
    bins: int = 10
    ecdf_sims: int = 5000
    budget_minutes: float | None = None

    def validate(self) -> None:
        for key in ("reps", "ranks", "chains", "draws", "tune", "sessions", "bins", "ecdf_sims"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if (self.ranks + 1) % self.bins:
            raise ValueError(f"L + 1 = {self.ranks + 1} is not a multiple of bins = {self.bins}")
        if self.ranks > self.chains * self.draws:
            raise ValueError(f"L = {self.ranks} exceeds {self.chains} x {self.draws} draws")


#: A smoke run: 10 replications, L = 39 from 2 x 200 draws.
QUICK = Settings(reps=10, ranks=39, draws=200, tune=300, bins=5, ecdf_sims=1000)


# ---------------------------------------------------------------------------------------------
# Ranks and uniformity tests (NumPy and SciPy only)


def thin(draws: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from ``draws`` (chain, draw), spread evenly over every chain.

    The chains share ``n`` as evenly as they can; within a chain the kept draws are equally
    spaced, so draws ``per_chain / kept`` apart are as independent as the chain allows.
    """
    draws = np.asarray(draws)
    if draws.ndim != 2:
        raise ValueError(f"expected (chain, draw), got shape {draws.shape}")
    chains, per_chain = draws.shape
    if n > chains * per_chain:
        raise ValueError(f"cannot keep {n} of {chains * per_chain} draws")
    kept = [len(part) for part in np.array_split(np.arange(n), chains)]
    out = [
        draws[c, ((np.arange(k) + 0.5) * per_chain / k).astype(int)]
        for c, k in enumerate(kept)
        if k
    ]
    return np.concatenate(out)


def rank_of(value: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Posterior draws below the prior ``value`` (0..len(draws)); ties split at random."""
    draws = np.asarray(draws)
    below = int(np.sum(draws < value))
    ties = int(np.sum(draws == value))
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def rank_histogram(ranks: np.ndarray, n_ranks: int, bins: int) -> np.ndarray:
    """Counts of ranks 0..``n_ranks`` in ``bins`` equal-width bins (``n_ranks + 1`` divisible)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if (n_ranks + 1) % bins:
        raise ValueError(f"L + 1 = {n_ranks + 1} is not a multiple of {bins} bins")
    if ranks.size and (ranks.min() < 0 or ranks.max() > n_ranks):
        raise ValueError(f"ranks must lie in 0..{n_ranks}")
    return np.bincount(ranks // ((n_ranks + 1) // bins), minlength=bins)


def chi_square_test(ranks: np.ndarray, n_ranks: int, bins: int) -> tuple[float, float]:
    """Pearson's chi-square of the rank histogram against a uniform one: (statistic, p)."""
    from scipy import stats

    counts = rank_histogram(ranks, n_ranks, bins)
    expected = counts.sum() / bins
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, bins - 1))


def histogram_band(n: int, bins: int, level: float = BAND) -> tuple[float, float]:
    """Central ``level`` interval of one bin's count when ``n`` ranks are uniform (pointwise)."""
    from scipy import stats

    tail = (1 - level) / 2
    return float(stats.binom.ppf(tail, n, 1 / bins)), float(stats.binom.ppf(1 - tail, n, 1 / bins))


def _cumulative_counts(ranks: np.ndarray, n_ranks: int) -> np.ndarray:
    """``#(rank <= k)`` for k = 0..L-1, per row of ``ranks`` (..., n)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    rows = ranks.reshape(-1, ranks.shape[-1])
    offsets = (n_ranks + 1) * np.arange(len(rows))[:, None]
    hist = np.bincount((rows + offsets).ravel(), minlength=len(rows) * (n_ranks + 1))
    counts = np.cumsum(hist.reshape(len(rows), n_ranks + 1), axis=1)[:, :n_ranks]
    return counts.reshape(*ranks.shape[:-1], n_ranks)


def ecdf_statistic(ranks: np.ndarray, n_ranks: int) -> np.ndarray:
    """The simultaneous ECDF test's statistic per row of ``ranks`` (..., n): the smallest
    two-sided binomial tail probability of ``#(rank <= k)`` over k = 0..L-1 (Säilynoja, Bürkner
    & Vehtari 2022, for ranks on 0..L); small means far from uniform somewhere."""
    from scipy import stats

    ranks = np.asarray(ranks)
    n = ranks.shape[-1]
    counts = _cumulative_counts(ranks, n_ranks)
    p = np.arange(1, n_ranks + 1) / (n_ranks + 1)
    lower = stats.binom.cdf(counts, n, p)
    upper = stats.binom.sf(counts - 1, n, p)
    return np.minimum(1.0, 2 * np.minimum(lower, upper)).min(axis=-1)


def ecdf_null(n: int, n_ranks: int, sims: int, rng: np.random.Generator) -> np.ndarray:
    """The ECDF statistic of ``sims`` samples of ``n`` uniform ranks on 0..L, sorted."""
    out = []
    for start in range(0, sims, 1000):  # in chunks: sims x n x L would not fit in memory
        size = min(1000, sims - start)
        out.append(ecdf_statistic(rng.integers(0, n_ranks + 1, (size, n)), n_ranks))
    return np.sort(np.concatenate(out))


def ecdf_test(ranks: np.ndarray, n_ranks: int, null: np.ndarray) -> float:
    """p-value of the simultaneous ECDF test: the share of uniform samples (``null``, from
    :func:`ecdf_null` with the same n and L) at least as far from uniform as ``ranks``."""
    observed = float(ecdf_statistic(ranks, n_ranks))
    extreme = np.searchsorted(null, observed, side="right")  # null <= observed
    return float((1 + extreme) / (1 + len(null)))


def ecdf_band(
    n: int, n_ranks: int, null: np.ndarray, level: float = BAND
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simultaneous ``level`` band of ``ECDF - uniform`` at k = 0..L-1: (p, lower, upper),
    with p = (k + 1) / (L + 1) the uniform CDF there."""
    from scipy import stats

    gamma = float(np.quantile(null, 1 - level))
    p = np.arange(1, n_ranks + 1) / (n_ranks + 1)
    lower = stats.binom.ppf(gamma / 2, n, p) / n - p
    upper = stats.binom.ppf(1 - gamma / 2, n, p) / n - p
    return p, lower, upper


def ecdf_difference(ranks: np.ndarray, n_ranks: int) -> np.ndarray:
    """``ECDF - uniform`` of ``ranks`` at k = 0..L-1."""
    ranks = np.asarray(ranks)
    p = np.arange(1, n_ranks + 1) / (n_ranks + 1)
    return _cumulative_counts(ranks, n_ranks) / ranks.shape[-1] - p


def verdict(p_chi2: float, p_ecdf: float, n_parameters: int) -> str:
    """``fail`` below the Bonferroni level (:data:`ALPHA` over parameters and both tests),
    ``watch`` below :data:`WATCH` unadjusted, else ``ok``."""
    low = min(p_chi2, p_ecdf)
    if low < ALPHA / (2 * n_parameters):
        return "fail"
    return "watch" if low < WATCH else "ok"


def uniformity(
    ranks: Mapping[str, np.ndarray], n_ranks: int, bins: int, null: np.ndarray
) -> list[dict[str, Any]]:
    """Both tests and the verdict for each parameter's ranks (all the same length)."""
    rows = []
    for name, r in ranks.items():
        chi2, p_chi2 = chi_square_test(r, n_ranks, bins)
        p_ecdf = ecdf_test(r, n_ranks, null)
        rows.append(
            {
                "parameter": name,
                "n": int(len(r)),
                "mean_rank": float(np.mean(r)) / n_ranks,
                "chi2": chi2,
                "p_chi2": p_chi2,
                "p_ecdf": p_ecdf,
                "verdict": verdict(p_chi2, p_ecdf, len(ranks)),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Prior draws and replications (PyMC, through skipmodel)


def design_plays(sessions: int, seed: int) -> pd.DataFrame:
    """The fixed design: toy plays of ``sessions`` sessions (10..20 plays each)."""
    from skipmodel.simulate.plays import toy_plays

    return toy_plays(sessions, seed=seed)


def scalar_entries(
    values: Mapping[str, np.ndarray],
    dims: Mapping[str, Sequence[str]],
    coords: Mapping[str, Sequence[Any]],
    lead: int,
) -> dict[str, np.ndarray]:
    """Each scalar entry of :data:`PARAMETERS` as ``name[level]``: arrays over the ``lead``
    leading (sample) axes."""
    out = {}
    for var in PARAMETERS:
        array = np.asarray(values[var])
        var_dims = list(dims.get(var) or ())
        if array.ndim - lead != len(var_dims):
            raise ValueError(f"{var}: shape {array.shape} does not match dims {var_dims}")
        if not var_dims:
            out[var] = array
            continue
        for index in np.ndindex(*array.shape[lead:]):
            label = ",".join(str(coords[d][i]) for d, i in zip(var_dims, index, strict=True))
            out[f"{var}[{label}]"] = array[(slice(None),) * lead + index]
    return out


@dataclass(frozen=True)
class PriorDraws:
    """Joint draws from skipmodel's model for the design: scalar parameters and outcomes."""

    parameters: dict[str, np.ndarray]  # name[level] -> (reps,)
    outcomes: np.ndarray  # (reps, rows), 0/1
    coords: dict[str, tuple[Any, ...]]
    seconds: float


def draw_prior(spec: ModelSpec, plays: pd.DataFrame, reps: int, seed: int) -> PriorDraws:
    """``reps`` joint draws of parameters and outcomes from the model skipmodel builds for
    ``plays`` (``pm.sample_prior_predictive``: the model's own priors and parametrisation)."""
    import pymc as pm

    from skipmodel.model.build import build

    start = time.perf_counter()
    model, _ = build(spec, plays)
    draws = pm.sample_prior_predictive(
        draws=reps,
        model=model,
        var_names=[*PARAMETERS, spec.outcome],
        random_seed=seed,
        return_inferencedata=False,
    )
    coords = {k: tuple(v) for k, v in model.coords.items() if v is not None}
    dims = {k: tuple(v) for k, v in model.named_vars_to_dims.items()}
    parameters = scalar_entries(draws, dims, coords, lead=1)
    outcomes = np.asarray(draws[spec.outcome]).astype(np.int8)
    return PriorDraws(parameters, outcomes, coords, time.perf_counter() - start)


@dataclass(frozen=True)
class Replication:
    """One replication's ranks (name[level] -> rank) and how its fit went."""

    rep: int
    ranks: dict[str, int]
    diagnostics: dict[str, Any]


def replicate(
    rep: int, spec: ModelSpec, plays: pd.DataFrame, prior: PriorDraws, settings: Settings
) -> Replication:
    """Fit the r-th prior draw's outcomes through skipmodel's fit entry and rank the r-th
    prior draw of each parameter among L thinned posterior draws."""
    from skipmodel.model.fitting import fit

    frame = plays.copy()
    frame[spec.outcome] = prior.outcomes[rep].astype(bool)
    start = time.perf_counter()
    result = fit(
        spec,
        frame,
        chains=settings.chains,
        draws=settings.draws,
        tune=settings.tune,
        seed=settings.seed + 1 + rep,
    )
    seconds = time.perf_counter() - start
    posterior = result.posterior["posterior"].to_dataset()
    coords = {k: tuple(v.values.tolist()) for k, v in posterior.coords.items()}
    for dim, levels in coords.items():
        if dim in prior.coords and tuple(prior.coords[dim]) != levels:
            raise RuntimeError(f"rep {rep}: the fit's {dim} levels differ from the prior model's")
    values = {v: posterior[v].values for v in PARAMETERS}
    dims = {v: posterior[v].dims[2:] for v in PARAMETERS}
    entries = scalar_entries(values, dims, coords, lead=2)
    if set(entries) != set(prior.parameters):
        raise RuntimeError(f"rep {rep}: the fit's parameters differ from the prior model's")
    rng = np.random.default_rng([settings.seed, rep])
    ranks = {
        name: rank_of(prior.parameters[name][rep], thin(entries[name], settings.ranks), rng)
        for name in prior.parameters
    }
    d = result.diagnostics
    diagnostics = {
        "seconds": seconds,
        "compile_seconds": d.get("compile_seconds"),
        "divergences": int(d["divergences"]),
        "max_rhat": float(d["max_rhat"]),
        "max_rhat_var": d["max_rhat_var"],
        "min_ess_bulk": float(d["min_ess_bulk"]),
        "min_ess_tail": float(d["min_ess_tail"]),
        "min_ess_var": d["min_ess_bulk_var"],
        "min_bfmi": float(d["min_bfmi"]),
        "parametrization": result.encoders.settings.get("pooled_context_type", {}).get("p"),
        "outcome_rate": float(prior.outcomes[rep].mean()),
        "error": "",
    }
    return Replication(rep, ranks, diagnostics)


def flags(diagnostics: Mapping[str, Any], n_ranks: int) -> list[str]:
    """Why a replication's fit is suspect: failed, divergent, R-hat, or ESS below L."""
    if diagnostics.get("error"):
        return ["failed"]
    out = []
    if diagnostics["divergences"]:
        out.append("divergent")
    if not diagnostics["max_rhat"] <= MAX_RHAT:
        out.append("rhat")
    if not min(diagnostics["min_ess_bulk"], diagnostics["min_ess_tail"]) >= n_ranks:
        out.append("ess<L")
    return out


# ---------------------------------------------------------------------------------------------
# Outputs


_COLOURS = f"orange: p < {WATCH}, red: fails (Bonferroni)"


def _p(p: float) -> str:
    """``p`` for a panel title, with its relation: ``=0.27``, ``=0.004``, ``<0.001``."""
    if p < 0.001:
        return "<0.001"
    return f"={p:.3f}" if p < 0.1 else f"={p:.2f}"


def _grid(n: int, ncols: int = 5) -> tuple[int, int]:
    return math.ceil(n / ncols), min(n, ncols)


def plot_histograms(
    ranks: Mapping[str, np.ndarray], results: Sequence[Mapping[str, Any]], settings: Settings
) -> Any:
    """Rank histograms per parameter with the pointwise 99 % band of a uniform histogram."""
    import matplotlib.pyplot as plt

    names = list(ranks)
    n = len(next(iter(ranks.values())))
    nrows, ncols = _grid(len(names))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), squeeze=False)
    low, high = histogram_band(n, settings.bins)
    width = (settings.ranks + 1) / settings.bins
    edges = np.arange(settings.bins) * width
    for ax, name, res in zip(axes.flat, names, results, strict=False):
        counts = rank_histogram(ranks[name], settings.ranks, settings.bins)
        ax.axhspan(low, high, color="0.85", zorder=0, label=f"{BAND:.0%} band")
        ax.axhline(n / settings.bins, color="0.45", lw=0.8, ls="--")
        colour = {"fail": "C3", "watch": "C1"}.get(res["verdict"], "C0")
        ax.bar(edges, counts, width=width, align="edge", color=colour, edgecolor="white")
        ax.set_xlim(0, settings.ranks + 1)
        ax.set_title(f"{name}\nχ² p{_p(res['p_chi2'])}  ECDF p{_p(res['p_ecdf'])}", fontsize=8.5)
        ax.tick_params(labelsize=7)
        ax.set_yticks(sorted({0, int(low), round(n / settings.bins), int(high)}))
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes.flat[max(0, len(names) - ncols) : len(names)]:  # the lowest of each column
        ax.set_xlabel(f"rank (0..{settings.ranks})", fontsize=8)
    fig.suptitle(
        f"SBC rank histograms: {n} replications, L = {settings.ranks}, {settings.bins} bins; "
        f"grey: {BAND:.0%} band of a uniform bin count; {_COLOURS}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_ecdf(
    ranks: Mapping[str, np.ndarray],
    results: Sequence[Mapping[str, Any]],
    settings: Settings,
    null: np.ndarray,
) -> Any:
    """ECDF minus the uniform CDF per parameter, with the simultaneous 99 % band."""
    import matplotlib.pyplot as plt

    names = list(ranks)
    n = len(next(iter(ranks.values())))
    nrows, ncols = _grid(len(names))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), squeeze=False, sharey=True
    )
    p, lower, upper = ecdf_band(n, settings.ranks, null)
    for ax, name, res in zip(axes.flat, names, results, strict=False):
        ax.fill_between(p, lower, upper, color="0.85", lw=0)
        ax.axhline(0, color="0.45", lw=0.8, ls="--")
        colour = {"fail": "C3", "watch": "C1"}.get(res["verdict"], "C0")
        ax.step(p, ecdf_difference(ranks[name], settings.ranks), where="post", color=colour)
        ax.set_xlim(0, 1)
        ax.set_title(f"{name}\nECDF p{_p(res['p_ecdf'])}", fontsize=8.5)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes.flat[max(0, len(names) - ncols) : len(names)]:  # the lowest of each column
        ax.set_xlabel("fractional rank", fontsize=8)
    fig.suptitle(
        f"SBC: ECDF − uniform, {n} replications, L = {settings.ranks}; "
        f"grey: simultaneous {BAND:.0%} band; {_COLOURS}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def markdown(summary: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> str:
    """``sbc.md``: verdict, what was run, replication diagnostics and the per-parameter tests."""
    s, run, diag = summary["settings"], summary["run"], summary["diagnostics"]
    failed = [r["parameter"] for r in results if r["verdict"] == "fail"]
    watch = [r["parameter"] for r in results if r["verdict"] == "watch"]
    lines = [
        f"# Simulation-based calibration: {summary['spec']['name']}",
        "",
        f"**Verdict: {summary['verdict']}.** "
        + (
            f"Failing: {', '.join(failed)}. "
            if failed
            else "No parameter's ranks depart from uniform at the Bonferroni level "
            f"(family-wise {ALPHA:.0%} over {len(results)} parameters x 2 tests). "
        )
        + (f"Worth a look (p < {WATCH}): {', '.join(watch)}. " if watch else "")
        + (
            f"Only {run['reps_done']} replications: a smoke run, blind to all but gross "
            "miscalibration."
            if run["reps_done"] < MIN_REPS
            else ""
        ),
        "",
        "## What was run",
        "",
        f"- Variant `{summary['spec']['name']}`: {summary['spec']['description']}; outcome "
        f"`{summary['spec']['outcome']}`; default priors ({summary['spec']['priors']}).",
        f"- Design: {run['rows']:,} toy plays of {s['sessions']} sessions "
        f"(`skipmodel.simulate.plays.toy_plays`, seed {s['seed']}), fixed across replications; "
        f"outcome rate over replications {run['outcome_rate_mean']:.2f} "
        f"(range {run['outcome_rate_min']:.2f}–{run['outcome_rate_max']:.2f}).",
        f"- Prior: {run['reps_done']} joint draws of parameters and outcomes by "
        "`pm.sample_prior_predictive` on the model `skipmodel.model.build.build` makes for the "
        "design (its own priors and parametrisation).",
        f"- Fit: `skipmodel.model.fitting.fit`, nutpie NUTS, {s['chains']} chains x "
        f"{s['draws']} draws after {s['tune']} tuning (target accept and adaptation the spec's "
        f"defaults); each chain thinned evenly to L = {s['ranks']} draws in all; the pool's "
        f"parametrisation chosen per fit from its data ({run['parametrizations']}).",
        f"- Replications: {run['reps_done']} of {s['reps']} asked"
        + (f" ({run['stopped']})" if run["stopped"] else "")
        + f"; {run['reps_failed']} failed.",
        f"- Time: {run['total_seconds'] / 60:.1f} min in all; per replication median "
        f"{run['rep_seconds_median']:.1f} s (of which compiling the model "
        f"{run['compile_seconds_median']:.1f} s: skipmodel's fit entry compiles per call), "
        f"prior draws {run['prior_seconds']:.1f} s. {run['machine']}, one process, no parallel "
        "replications.",
        "",
        "## Replication diagnostics",
        "",
        f"Every replication's ranks are kept, suspect ones included (per-replication numbers in "
        f"`sbc_reps.csv`): {diag['reps_divergent']} with divergences "
        f"({diag['divergences_total']} divergent transitions in all), {diag['reps_rhat']} with "
        f"max R-hat > {MAX_RHAT}, {diag['reps_low_ess']} with min bulk or tail ESS below "
        f"L = {s['ranks']} (thinned draws then not effectively independent); "
        f"min bulk ESS over replications {diag['min_ess_bulk']:.0f}, max R-hat "
        f"{diag['max_rhat']:.3f}.",
        "",
        "## Uniformity of ranks per parameter",
        "",
        f"χ²: Pearson's test over {s['bins']} equal-width bins ({s['bins'] - 1} df). ECDF: the "
        "simultaneous ECDF test (Säilynoja, Bürkner & Vehtari 2022; null simulated from "
        f"{s['ecdf_sims']:,} samples of uniform ranks). Verdict: fail below "
        f"{ALPHA} / (2 x {len(results)}) = {ALPHA / (2 * len(results)):.4f}, watch below "
        f"{WATCH}. Mean rank as a fraction of L (0.5 when calibrated)"
        + (
            f"; 'ECDF p (clean)': the test on the {diag['reps_clean']} replications without "
            "any flag"
            if 0 < diag["reps_clean"] < run["reps_done"]
            else ""
        )
        + ".",
        "",
    ]
    clean = 0 < diag["reps_clean"] < run["reps_done"]
    head = ["parameter", "mean rank", "χ²", "χ² p", "ECDF p", *(["ECDF p (clean)"] * clean)]
    lines += ["| " + " | ".join([*head, "verdict"]) + " |", "|" + "---|" * (len(head) + 1)]
    for r in results:
        cells = [
            f"`{r['parameter']}`",
            _cell(r["mean_rank"]),
            _cell(r["chi2"]),
            _cell(r["p_chi2"]),
            _cell(r["p_ecdf"]),
            *([_cell(r.get("p_ecdf_clean", float("nan")))] * clean),
            f"**{r['verdict']}**" if r["verdict"] != "ok" else "ok",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    groups = sorted({g for r in results for g in r.get("by_parametrization", {})})
    if groups:
        sizes = {g: next(r["by_parametrization"][g]["n"] for r in results) for g in groups}
        by = diag["by_parametrization"]
        lines += [
            "",
            "### By the pool's parametrisation",
            "",
            "skipmodel chooses the context-type pool's parametrisation from each replication's "
            "outcomes (`auto`); a choice made from the data alone leaves ranks uniform within each "
            "group under exact inference, so a group that departs points at the sampler in that "
            "parametrisation. "
            + "; ".join(
                f"{g}: {by[g]['reps']} replications, {by[g]['reps_divergent']} with divergences "
                f"({by[g]['divergences']} in all)"
                for g in groups
            )
            + ".",
            "",
            "| parameter | "
            + " | ".join(f"{g} (n={sizes[g]}) mean rank | {g} ECDF p" for g in groups)
            + " |",
            "|---|" + "---|---|" * len(groups),
        ]
        for r in results:
            cells = [f"`{r['parameter']}`"]
            for g in groups:
                res = r["by_parametrization"][g]
                flag = "**" if res["p_ecdf"] < WATCH else ""
                cells += [_cell(res["mean_rank"]), f"{flag}{_cell(res['p_ecdf'])}{flag}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "![rank histograms](sbc_ranks.png)",
        "",
        "![ECDF difference](sbc_ecdf.png)",
        "",
        "## Notes",
        "",
        "- Zero-sum effects (weekday, previous skip, context type) have one entry fixed by the "
        "others; each entry's marginal is still a valid SBC target, but their tests are not "
        "independent.",
        "- The design's previous-skip column is conditioned upon, not regenerated from the "
        "redrawn outcomes: skipmodel's likelihood is conditional on it, so SBC holds for any "
        "fixed design (see `benchmarks/sbc.py`).",
        f"- Measured {summary['measured_at']}; `python -m benchmarks.sbc {summary['command']}`.",
        "",
    ]
    return "\n".join(lines)


RANKS_FILE = "sbc_ranks.csv"
REPS_FILE = "sbc_reps.csv"
SUMMARY_FILE = "sbc.json"
#: Smallest group of replications tested on its own (by the pool's parametrisation).
MIN_GROUP = 10


def save_replications(
    out: Path, settings: Settings, reps: Sequence[Replication], names: Sequence[str]
) -> None:
    """``sbc_ranks.csv`` (rep, parameter, rank, L) and ``sbc_reps.csv`` (time, diagnostics,
    flags; failed replications too, with their error)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / RANKS_FILE).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["rep", "parameter", "rank", "L"])
        for r in reps:
            writer.writerows([r.rep, name, r.ranks[name], settings.ranks] for name in r.ranks)
    rows = [
        {"rep": r.rep, **r.diagnostics, "flags": " ".join(flags(r.diagnostics, settings.ranks))}
        for r in reps
    ]
    pd.DataFrame(rows).to_csv(out / REPS_FILE, index=False)


def load_replications(out: Path) -> tuple[Settings, list[Replication], list[str], dict[str, Any]]:
    """What :func:`save_replications` and :func:`report` wrote to ``out``: settings,
    replications, parameter names and run facts, the arguments of :func:`report` (to re-report
    without refitting)."""
    summary = json.loads((out / SUMMARY_FILE).read_text())
    settings = Settings(**summary["settings"])
    run = {"measured_at": summary["measured_at"], "command": summary["command"], **summary["run"]}
    ranks = pd.read_csv(out / RANKS_FILE)
    names = list(dict.fromkeys(ranks["parameter"]))
    by_rep = {
        int(rep): dict(zip(g["parameter"], g["rank"].astype(int), strict=True))
        for rep, g in ranks.groupby("rep")
    }
    frame = pd.read_csv(out / REPS_FILE, keep_default_na=False, na_values=[""])
    reps = []
    for row in frame.drop(columns="flags").to_dict("records"):
        rep = int(row.pop("rep"))
        row["error"] = "" if pd.isna(row.get("error")) else str(row["error"])
        if not row["error"]:
            row["divergences"] = int(row["divergences"])
        reps.append(Replication(rep, by_rep.get(rep, {}), row))
    return settings, reps, names, run


def _by_group(
    ranks: Mapping[str, np.ndarray],
    groups: np.ndarray,
    settings: Settings,
    rng: np.random.Generator,
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean rank and ECDF p-value per parameter within each group of at least
    :data:`MIN_GROUP` replications. Valid when the grouping is a function of the outcomes
    (and the sampler's own randomness) alone: given the data, ranks are uniform whatever the
    group."""
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in ranks}
    for group in sorted(set(groups)):
        members = groups == group
        if members.sum() < MIN_GROUP or members.all():
            continue
        null = ecdf_null(int(members.sum()), settings.ranks, settings.ecdf_sims, rng)
        for name, r in ranks.items():
            out[name][group] = {
                "n": int(members.sum()),
                "mean_rank": float(np.mean(r[members])) / settings.ranks,
                "p_ecdf": ecdf_test(r[members], settings.ranks, null),
            }
    return out


def report(
    out: Path,
    settings: Settings,
    reps: Sequence[Replication],
    names: Sequence[str],
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """Test the ranks and write ``sbc.json``, ``sbc.md`` and the figures; returns the summary.

    ``run``: facts of the run (when, where, rows, time, how it was started: ``command``)."""
    import matplotlib

    matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
    import matplotlib.pyplot as plt

    done = [r for r in reps if not r.diagnostics["error"]]
    if not done:
        raise RuntimeError(f"no replication finished; see {out / REPS_FILE}")
    ranks = {name: np.array([r.ranks[name] for r in done]) for name in names}
    rng = np.random.default_rng([settings.seed, 1])
    null = ecdf_null(len(done), settings.ranks, settings.ecdf_sims, rng)
    results = uniformity(ranks, settings.ranks, settings.bins, null)
    diags = [r.diagnostics for r in done]
    clean = np.array([not flags(d, settings.ranks) for d in diags])
    if 0 < clean.sum() < len(done):
        null_clean = ecdf_null(int(clean.sum()), settings.ranks, settings.ecdf_sims, rng)
        for res in results:
            r = ranks[res["parameter"]][clean]
            res["p_ecdf_clean"] = ecdf_test(r, settings.ranks, null_clean)
    groups = np.array([str(d["parametrization"]) for d in diags])
    for res, (_, by) in zip(results, _by_group(ranks, groups, settings, rng).items(), strict=True):
        res["by_parametrization"] = by

    diagnostics = {
        "reps_divergent": int(sum(d["divergences"] > 0 for d in diags)),
        "divergences_total": int(sum(d["divergences"] for d in diags)),
        "reps_rhat": int(sum("rhat" in flags(d, settings.ranks) for d in diags)),
        "reps_low_ess": int(sum("ess<L" in flags(d, settings.ranks) for d in diags)),
        "reps_clean": int(clean.sum()),
        "min_ess_bulk": float(min(d["min_ess_bulk"] for d in diags)),
        "max_rhat": float(max(d["max_rhat"] for d in diags)),
        "by_parametrization": {},
    }
    for g in sorted(set(groups)):
        members = [d for d, h in zip(diags, groups, strict=True) if h == g]
        diagnostics["by_parametrization"][g] = {
            "reps": len(members),
            "reps_divergent": int(sum(d["divergences"] > 0 for d in members)),
            "divergences": int(sum(d["divergences"] for d in members)),
        }
    rates = np.array([d["outcome_rate"] for d in diags])
    seconds = [d["seconds"] for d in diags]
    compile_seconds = [d["compile_seconds"] or 0.0 for d in diags]
    run = {
        **run,
        "reps_failed": len(reps) - len(done),
        "outcome_rate_mean": float(rates.mean()),
        "outcome_rate_min": float(rates.min()),
        "outcome_rate_max": float(rates.max()),
        "rep_seconds_median": float(np.median(seconds)),
        "rep_seconds_mean": float(np.mean(seconds)),
        "compile_seconds_median": float(np.median(compile_seconds)),
        "parametrizations": ", ".join(
            f"{k} {v}" for k, v in pd.Series(groups).value_counts().items()
        ),
    }
    summary = {
        "verdict": "fail" if any(r["verdict"] == "fail" for r in results) else "calibrated",
        "measured_at": run["measured_at"],
        "command": run["command"],
        "spec": {
            "name": SBC_SPEC.name,
            "description": SBC_SPEC.description,
            "outcome": SBC_SPEC.outcome,
            "priors": ", ".join(f"{k} = {v}" for k, v in asdict(SBC_SPEC.priors).items()),
            "toml": SBC_SPEC.to_toml(),
        },
        "settings": asdict(settings),
        "run": run,
        "diagnostics": diagnostics,
        "parameters": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (out / "sbc.md").write_text(markdown(summary, results))
    for name, fig in (
        ("sbc_ranks.png", plot_histograms(ranks, results, settings)),
        ("sbc_ecdf.png", plot_ecdf(ranks, results, settings, null)),
    ):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    return summary


# ---------------------------------------------------------------------------------------------
# Entry point


def run_sbc(out: Path, settings: Settings, *, command: str = "") -> dict[str, Any]:
    """Draw, fit and rank ``settings.reps`` replications, then write the outputs to ``out``."""
    settings.validate()
    started = time.perf_counter()
    measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    plays = design_plays(settings.sessions, settings.seed)
    prior = draw_prior(SBC_SPEC, plays, settings.reps, settings.seed)
    print(
        f"sbc: {len(plays):,} plays, {len(prior.parameters)} parameters, "
        f"{settings.reps} replications; prior drawn in {prior.seconds:.1f} s",
        flush=True,
    )
    reps: list[Replication] = []
    stopped = ""
    for rep in range(settings.reps):
        elapsed = time.perf_counter() - started
        if settings.budget_minutes is not None and elapsed > 60 * settings.budget_minutes:
            stopped = f"stopped at the {settings.budget_minutes:g}-minute budget"
            break
        try:
            r = replicate(rep, SBC_SPEC, plays, prior, settings)
        except Exception as exc:  # counted and reported, never dropped silently
            r = Replication(rep, {}, {"error": f"{type(exc).__name__}: {exc}", "seconds": 0.0})
        reps.append(r)
        d = r.diagnostics
        status = d["error"] or (
            f"{d['seconds']:.1f} s (compile {d['compile_seconds'] or 0:.1f} s), "
            f"{d['divergences']} divergences, max R-hat {d['max_rhat']:.3f}, "
            f"min ESS {d['min_ess_bulk']:.0f} {' '.join(flags(d, settings.ranks))}"
        )
        print(f"  rep {rep + 1}/{settings.reps}: {status}", flush=True)
    run = {
        "measured_at": measured_at,
        "command": command,
        "machine": f"{platform.node() or platform.machine()} ({os.cpu_count()} CPUs)",
        "rows": len(plays),
        "prior_seconds": prior.seconds,
        "reps_done": sum(not r.diagnostics["error"] for r in reps),
        "stopped": stopped,
        "total_seconds": time.perf_counter() - started,
    }
    names = list(prior.parameters)
    save_replications(out, settings, reps, names)
    return report(out, settings, reps, names, run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sbc", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports/sbc"))
    parser.add_argument("--reps", type=int, help="replications (default 100; 10 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few replications and draws")
    parser.add_argument("--seed", type=int, help=f"seed (default {Settings.seed})")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-test and re-draw the outputs from the CSV files in --out, without fitting",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        help="start no replication after this many minutes (the report says so)",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        summary = report(args.out, *load_replications(args.out))
        _print_summary(summary, args.out)
        return 0
    settings = QUICK if args.quick else Settings()
    changes = {
        k: v
        for k, v in (
            ("reps", args.reps),
            ("seed", args.seed),
            ("budget_minutes", args.budget_minutes),
        )
        if v is not None
    }
    settings = replace(settings, **changes)
    try:
        settings.validate()
    except ValueError as exc:
        parser.error(str(exc))
    # one status line per replication instead of nutpie's progress bars
    os.environ.setdefault("SKIPMODEL_QUIET", "1")
    summary = run_sbc(
        args.out, settings, command=" ".join(argv if argv is not None else sys.argv[1:])
    )
    _print_summary(summary, args.out)
    return 0


def _print_summary(summary: Mapping[str, Any], out: Path) -> None:
    print(f"sbc: {summary['verdict']}; -> {out / 'sbc.md'}")
    for res in summary["parameters"]:
        print(
            f"  {res['parameter']:<42} chi2 p={res['p_chi2']:.3f}  ecdf p={res['p_ecdf']:.4f}  "
            f"{res['verdict']}"
        )


if __name__ == "__main__":
    sys.exit(main())
