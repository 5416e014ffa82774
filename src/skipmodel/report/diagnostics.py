"""Can this fit be trusted? Convergence checks and the posterior summary table.

The banner applies four rules to every posterior parameter (every element of every variable,
labelled like ``weekday_effect[Mon]``):

- rank-normalised split R-hat <= 1.01 for every global quantity; for a pool of hundreds of
  levels (``track_z``, ``session_z``), <= 1.01 for 99.9 % of its levels and <= 1.02 for all (the
  maximum of thousands of R-hats passes 1.01 by chance: :mod:`skipmodel.model.convergence`),
- bulk ESS >= 400 and tail ESS >= 400, with the same allowance for pools (>= 100 for all),
- zero divergent transitions,
- E-BFMI >= 0.3 in every chain,

and names each offender. Per-observation deterministics (variables sharing a dimension with
the observed data) are left out: they are functions of the parameters, not parameters.
Parameters that are constant across all draws (e.g. a pinned reference level) have no R-hat or
ESS and are not counted as failures.

A nested-Laplace fit (``--method laplace``) draws independently from a Gaussian approximation:
R-hat, ESS, divergences and E-BFMI say nothing about it. Its banner checks what can go wrong
there instead, from the run's recorded diagnostics: the mode converged (every step below the
tolerance within the pass limit), the dense part's posterior precision is well conditioned
(condition number below 1e8), and whether the posterior was compared with NUTS (it never is by
``skipmodel fit``: "n/a", a reminder). Its summary table has no MCMC columns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from skipmodel.model import convergence

__all__ = [
    "Check",
    "Diagnostics",
    "CI_PROB",
    "diagnose_run",
    "laplace_checks",
    "parameter_names",
    "summary_table",
]

CI_PROB = 0.94
RHAT_MAX = convergence.RHAT_MAX
ESS_MIN = convergence.ESS_MIN
BFMI_MIN = 0.3
#: A nested-Laplace fit's dense posterior precision (correlation-scaled) must be better
#: conditioned than this: above, its Cholesky factor and draws lose most of their digits.
CONDITION_MAX = 1e8
MAX_NAMED = 12  # offenders listed by name in the banner; the rest are counted

Status = Literal["pass", "fail", "n/a"]


@dataclass(frozen=True)
class Check:
    """One convergence rule and its outcome."""

    name: str
    rule: str
    status: Status
    worst: float | None = None
    offenders: tuple[str, ...] = ()
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def by_variable(self) -> str:
        """Offenders grouped by variable, worst first: ``weekday_effect (5), track_z (312)``."""
        counts: dict[str, int] = {}
        for name in self.offenders:
            var = name.split("[")[0]
            counts[var] = counts.get(var, 0) + 1
        return ", ".join(f"{v} ({n})" if n > 1 else v for v, n in counts.items())

    def describe(self, *, grouped: bool = False) -> str:
        """One line for a banner: offending elements by name, or (``grouped``) by variable."""
        if self.status == "n/a":
            return f"{self.name}: not checked ({self.note})"
        head = f"{self.name} ({self.rule}): {'ok' if self.passed else 'FAILED'}"
        if self.worst is not None:
            head += f", worst {self.worst:.4g}"
        if self.offenders and grouped and not self.name.startswith(("Divergences", "E-BFMI")):
            head += f" — {len(self.offenders)} element(s) of {self.by_variable()}"
        elif self.offenders:
            shown = ", ".join(self.offenders[:MAX_NAMED])
            more = len(self.offenders) - MAX_NAMED
            head += f" — {shown}" + (f" and {more} more" if more > 0 else "")
        if self.note:
            head += f" ({self.note})"
        return head


@dataclass(frozen=True)
class Diagnostics:
    """All checks for one posterior, plus the full summary table."""

    checks: tuple[Check, ...]
    summary: pd.DataFrame = field(repr=False)
    n_chains: int
    n_draws: int
    method: str = "nuts"
    fit: Mapping[str, Any] = field(default_factory=dict, repr=False)
    approximation: str = ""

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def headline(self) -> str:
        if self.method == "laplace":
            return self._laplace_headline()
        if self.method != "nuts":
            return (
                f"Approximate fit ({self.method}, {self.n_chains * self.n_draws} draws): MCMC "
                "convergence checks do not apply and the posterior may be too narrow. Use it for "
                "exploration only; re-fit with NUTS before trusting intervals."
            )
        if self.ok:
            return (
                f"Diagnostics passed: {self.n_chains} chains x {self.n_draws} draws; every "
                "parameter meets R-hat, ESS, divergence and E-BFMI rules."
            )
        failed = [c.name for c in self.checks if not c.passed]
        return (
            f"Do not trust this fit yet: {', '.join(failed)} failed "
            f"({self.n_chains} chains x {self.n_draws} draws). Results below are shown for "
            "inspection only."
        )

    def _laplace_headline(self) -> str:
        """A nested-Laplace fit: judged by its mode, described by its approximation."""
        passes = self.fit.get("passes", "?")
        size = f"{self.n_draws} draws of the global effects"
        if not self.ok:
            failed = ", ".join(c.name for c in self.checks if not c.passed)
            return (
                f"Do not trust this fit yet: {failed} failed (nested Laplace approximation, "
                f"{passes} passes, {size}). Results below are shown for inspection only."
            )
        text = (
            f"Diagnostics passed for a nested Laplace approximation ({size}): the mode converged "
            f"in {passes} passes and its Hessian is well conditioned. It is not MCMC: R-hat, "
            "ESS, divergences and E-BFMI do not apply."
        )
        if self.approximation:
            text += f" Approximation — {self.approximation}."
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "method": self.method,
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "checks": [
                {
                    "name": c.name,
                    "rule": c.rule,
                    "status": c.status,
                    "worst": c.worst,
                    "offenders": list(c.offenders),
                    "note": c.note,
                }
                for c in self.checks
            ],
        }


def _observation_dims(dt: xr.DataTree) -> set[str]:
    dims: set[str] = set()
    for group in ("observed_data", "log_likelihood", "constant_data"):
        if group in dt.children:
            dims.update(str(d) for d in dt[group].dims)
    return dims - {"chain", "draw"}


def parameter_names(dt: xr.DataTree, var_names: Sequence[str] | None = None) -> list[str]:
    """Posterior variables that are parameters (not per-observation deterministics)."""
    posterior = dt["posterior"].dataset
    if var_names is not None:
        missing = [v for v in var_names if v not in posterior.data_vars]
        if missing:
            raise KeyError(f"not in the posterior: {missing}; have {list(posterior.data_vars)}")
        return list(var_names)
    obs_dims = _observation_dims(dt)
    return [
        str(name)
        for name, var in posterior.data_vars.items()
        if not obs_dims.intersection(str(d) for d in var.dims)
    ]


def summary_table(
    dt: xr.DataTree, var_names: Sequence[str] | None = None, *, mcmc: bool = True
) -> pd.DataFrame:
    """mean, sd, 94 % equal-tailed interval, MCSE, bulk/tail ESS and R-hat per parameter element.

    Thin wrapper over :func:`arviz_stats.summary` with raw (unrounded) numbers. ``mcmc=False``
    (independent draws from an approximation): mean, sd and interval only.
    """
    import arviz_stats as azs

    names = parameter_names(dt, var_names)
    if not names:
        raise KeyError("the posterior has no parameters to summarise")
    with warnings.catch_warnings():
        # constant parameters (sd 0) make R-hat/ESS 0/0; they are reported as NaN, on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        table = azs.summary(
            dt,
            var_names=names,
            kind="all" if mcmc else "stats",
            ci_prob=CI_PROB,
            ci_kind="eti",
            round_to="none",
        )
    return pd.DataFrame(table)


def _offenders(values: pd.Series, bad: pd.Series) -> tuple[str, ...]:
    ranked = values[bad].sort_values(ascending=bool(values.name != "r_hat"))
    return tuple(str(i) for i in ranked.index)


def _by_variable(column: pd.Series) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A summary column's values and element labels, grouped by variable (``var[...]``)."""
    labels = column.index.astype(str)
    variables = pd.Index([name.split("[")[0] for name in labels])
    values, names = {}, {}
    for var in dict.fromkeys(variables):
        at = variables == var
        values[var] = column.to_numpy(dtype=float)[at]
        names[var] = np.asarray(labels[at])
    return values, names


def _rhat_check(table: pd.DataFrame, rhat_max: float) -> Check:
    """R-hat by the two-tier rule of :mod:`skipmodel.model.convergence` (the global limit
    ``rhat_max`` when it is not the default: then every element is held to it)."""
    values, names = _by_variable(table["r_hat"])
    if rhat_max != convergence.RHAT_MAX:
        rhat = table["r_hat"].rename("r_hat")
        bad = rhat > rhat_max
        worst = float(rhat.max()) if rhat.notna().any() else None
        status: Status = "fail" if bad.any() else "pass"
        return Check("R-hat", f"<= {rhat_max}", status, worst, _offenders(rhat, bad))
    verdict = convergence.rhat_verdict(values, names)
    return Check(
        "R-hat",
        convergence.rule_text("rhat"),
        "pass" if verdict.passed else "fail",
        verdict.worst,
        verdict.offenders,
    )


def _ess_check(table: pd.DataFrame, column: str, label: str, ess_min: float) -> Check:
    if ess_min != convergence.ESS_MIN:
        ess = table[column].rename(column)
        bad = ess < ess_min
        worst = float(ess.min()) if ess.notna().any() else None
        status: Status = "fail" if bad.any() else "pass"
        return Check(label, f">= {ess_min:g}", status, worst, _offenders(ess, bad))
    values, names = _by_variable(table[column])
    verdict = convergence.ess_verdict(values, names)
    return Check(
        label,
        convergence.rule_text("ess"),
        "pass" if verdict.passed else "fail",
        verdict.worst,
        verdict.offenders,
    )


def _divergence_check(dt: xr.DataTree) -> Check:
    stats = dt["sample_stats"].to_dataset() if "sample_stats" in dt.children else xr.Dataset()
    name = next((n for n in ("diverging", "divergent") if n in stats), None)
    if name is None:
        return Check("Divergences", "= 0", "n/a", note="no divergence record in sample_stats")
    per_chain = stats[name].astype(int).sum(dim=[d for d in stats[name].dims if d != "chain"])
    total = int(per_chain.sum())
    offenders = tuple(
        f"chain {int(c)}: {int(n)}"
        for c, n in zip(per_chain["chain"].values, per_chain.values, strict=True)
        if n > 0
    )
    return Check("Divergences", "= 0", "fail" if total else "pass", float(total), offenders)


def _bfmi_check(dt: xr.DataTree, bfmi_min: float) -> Check:
    import arviz_stats as azs

    if "sample_stats" not in dt.children or "energy" not in dt["sample_stats"].dataset:
        return Check("E-BFMI", f">= {bfmi_min}", "n/a", note="no energy in sample_stats")
    values = np.asarray(azs.bfmi(dt)["energy"].values, dtype=float).ravel()
    bad = values < bfmi_min
    offenders = tuple(f"chain {i}: {v:.2f}" for i, v in enumerate(values) if v < bfmi_min)
    return Check(
        "E-BFMI", f">= {bfmi_min}", "fail" if bad.any() else "pass", float(values.min()), offenders
    )


def _recorded(fit: Mapping[str, Any], key: str) -> float | None:
    """A number the fit recorded; None when absent or unreadable (JSON null loads as NaN)."""
    try:
        value = float(fit[key])
    except (KeyError, TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _last_step(fit: Mapping[str, Any]) -> float | None:
    """The last full pass's largest step in posterior sds (a halved pass records none)."""
    steps = fit.get("max_step_sd")
    if not isinstance(steps, list | tuple):
        return None
    values = [float(v) for v in steps if isinstance(v, int | float) and not math.isnan(v)]
    return values[-1] if values else None


def _mode_check(fit: Mapping[str, Any]) -> Check:
    """The Newton passes reached the mode: the fit says ``converged`` (JSON ``true``)."""
    rule = "every step below the tolerance"
    if "converged" not in fit:
        return Check("Mode converged", rule, "fail", note="the run records no convergence")
    converged = fit["converged"] is True
    note = f"{fit.get('passes', '?')} passes"
    step = _last_step(fit)
    if step is not None:
        note += f", last max step {step:.2g} posterior sd"
    halved = _recorded(fit, "halved_steps")
    if halved:
        note += f", {int(halved)} halved step(s)"
    if not converged:
        note += "; not converged within the pass limit"
    return Check("Mode converged", rule, "pass" if converged else "fail", note=note)


def _condition_check(fit: Mapping[str, Any], condition_max: float) -> Check:
    """The dense part's correlation-scaled posterior precision is numerically invertible."""
    rule = f"< {condition_max:.0e}"
    condition = _recorded(fit, "hessian_condition")
    if condition is None:
        return Check("Hessian condition", rule, "n/a", note="not recorded by the fit")
    note = f"condition number {condition:.3g} of the dense effects' scaled posterior precision"
    status: Status = "pass" if condition < condition_max else "fail"
    return Check("Hessian condition", rule, status, note=note)


def laplace_checks(
    fit: Mapping[str, Any], *, condition_max: float = CONDITION_MAX
) -> tuple[Check, ...]:
    """The checks of a nested-Laplace fit, from its ``diagnostics.json``."""
    nuts = Check(
        "NUTS check",
        "posterior matches NUTS",
        "n/a",
        note="no NUTS comparison was run for this fit",
    )
    return (_mode_check(fit), _condition_check(fit, condition_max), nuts)


def diagnose_run(
    dt: xr.DataTree,
    *,
    var_names: Sequence[str] | None = None,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    bfmi_min: float = BFMI_MIN,
    method: str = "nuts",
    fit: Mapping[str, Any] | None = None,
    approximation: str = "",
) -> Diagnostics:
    """Apply the trust rules to a posterior DataTree (groups ``posterior``, ``sample_stats``).

    ``method="laplace"`` applies a nested-Laplace fit's checks to ``fit`` (its recorded
    diagnostics) instead; ``approximation`` (one sentence) goes into its headline. Any other
    method but ``nuts`` is an approximation without checks, never trusted.

    Examples
    --------
    >>> import numpy as np, arviz_base as azb
    >>> rng = np.random.default_rng(0)
    >>> dt = azb.from_dict({"posterior": {"mu": rng.normal(size=(4, 1000))}})
    >>> d = diagnose_run(dt)
    >>> [c.status for c in d.checks]
    ['pass', 'pass', 'pass', 'n/a', 'n/a']
    """
    if "posterior" not in dt.children:
        raise KeyError("the DataTree has no posterior group")
    posterior = dt["posterior"].dataset
    n_chains = int(posterior.sizes.get("chain", 1))
    n_draws = int(posterior.sizes.get("draw", 0))
    if method == "laplace":
        return Diagnostics(
            checks=laplace_checks(fit or {}),
            summary=summary_table(dt, var_names, mcmc=False),
            n_chains=n_chains,
            n_draws=n_draws,
            method=method,
            fit=dict(fit or {}),
            approximation=approximation,
        )
    table = summary_table(dt, var_names)
    if method != "nuts":
        approx = Check("Sampler", "NUTS", "fail", note=f"{method} is an approximation, not MCMC")
        return Diagnostics(
            checks=(approx,), summary=table, n_chains=n_chains, n_draws=n_draws, method=method
        )
    checks = (
        _rhat_check(table, rhat_max),
        _ess_check(table, "ess_bulk", "Bulk ESS", ess_min),
        _ess_check(table, "ess_tail", "Tail ESS", ess_min),
        _divergence_check(dt),
        _bfmi_check(dt, bfmi_min),
    )
    return Diagnostics(checks=checks, summary=table, n_chains=n_chains, n_draws=n_draws)
