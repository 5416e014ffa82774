"""Fitting a spec to plays, saving the run, and loading it back.

``fit(spec, data, options=FitOptions(...))`` (or ``fit(spec, data, chains=4, ...)``) is the one
fit entry: it resolves the options (:mod:`skipmodel.model.options`), picks the inference path —
Bernoulli rows (here), Binomial cells or streaming minibatch (registered by
:mod:`skipmodel.scale`) — and runs it. The row path builds the design and the model, then
samples: NUTS through nutpie by default (PyMC's own NUTS as the fallback), or a quick ADVI /
Pathfinder fit for exploration. :func:`sample_model` is the one place a sampler runs; every
path saves the same run directory::

    RUN/spec.toml          the spec, as TOML (``ModelSpec.load`` reads it); its [inference] shows
                           the sampling options the fit used
    RUN/data.json          data manifest: store, sample spec, row count, outcome rate, the fitted
                           encoders (level maps, scalers, HSGP boxes, parametrisations), and the
                           resolved options (the ones the path did not read are null)
    RUN/posterior.nc       ArviZ DataTree (posterior, sample_stats, log_likelihood if asked)
    RUN/diagnostics.json   max R-hat, min bulk / tail ESS (and where), divergences, E-BFMI, time

``load_run(RUN)`` restores a :class:`FitResult` that predicts (``skipmodel.model.prediction``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from skipmodel.errors import SkipmodelError, environment_problem
from skipmodel.model import convergence
from skipmodel.model.build import build_model
from skipmodel.model.data import StoreSample, load_plays, sample_manifest
from skipmodel.model.design import Encoders, build_design
from skipmodel.model.options import (
    METHOD_OPTIONS,
    SAMPLING_METHODS,
    FitOptions,
    FitPath,
    build_options,
    choose_path,
    register_path,
    resolve_options,
    spec_as_fitted,
)
from skipmodel.model.ppc import with_predictive
from skipmodel.model.spec import SAMPLERS, ModelSpec
from skipmodel.progress import forced_progress, progress_enabled
from skipmodel.store.layout import atomic_path, atomic_write_json, atomic_write_text

SPEC_FILE = "spec.toml"
DATA_FILE = "data.json"
POSTERIOR_FILE = "posterior.nc"
DIAGNOSTICS_FILE = "diagnostics.json"
#: ADVI optimisation steps for ``method="advi"``.
ADVI_STEPS = 20_000


@dataclass(frozen=True, repr=False)
class FitResult:
    """A fitted model: spec, fitted encoders, posterior (DataTree), diagnostics, manifest.

    Its ``repr`` is one line (the spec, how it was fitted, the posterior's size, a headline of
    the diagnostics); :meth:`summary` says more.
    """

    spec: ModelSpec
    encoders: Encoders
    posterior: xr.DataTree
    diagnostics: dict[str, Any]
    options: FitOptions
    manifest: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        o, d = self.options, self.diagnostics
        how = f"nuts/{o.sampler}" if o.method == "nuts" else str(o.method)
        if o.inference not in (None, "rows"):
            how += f" ({o.inference})"
        rows = self.manifest.get("n_rows", "?")
        sizes = self.posterior["posterior"].sizes if "posterior" in self.posterior else {}
        chains = sizes.get("chain", "?")
        shape = f"{sizes.get('draw', '?')} draws x {chains} chain{'' if chains == 1 else 's'}"
        if o.method == "nuts":
            headline = (
                f"max R-hat {d.get('max_rhat', float('nan')):.3f}, "
                f"min bulk ESS {d.get('min_ess_bulk', float('nan')):.0f}, "
                f"{d.get('divergences', '?')} divergences"
            )
        elif "converged" in d:
            headline = "converged" if d["converged"] else "not converged"
        else:
            headline = "approximate: no MCMC diagnostics"
        return f"<FitResult {self.spec.name!r}: {how} on {rows} plays, {shape}; {headline}>"

    def summary(self) -> str:
        """One paragraph on what was fitted and how well it mixed."""
        d, o = self.diagnostics, self.options
        rows = self.manifest.get("n_rows", "?")
        cells = f" in {self.manifest['n_cells']} cells" if "n_cells" in self.manifest else ""
        if o.method == "nuts":
            how = f"nuts/{o.sampler}: {o.chains} chains x {o.draws} draws after {o.tune} tuning"
        elif o.method == "laplace":
            passes = d.get("passes", "?")
            how = f"nested Laplace: {passes} passes, {o.draws} draws of the global effects"
        elif o.inference == "minibatch":
            how = f"minibatch advi ({o.batch_size} rows per step): {o.draws} draws"
        else:
            how = f"{o.method}: {o.chains} chains x {o.draws} draws"
        text = (
            f"Fitted model {self.spec.name!r} ({self.spec.outcome}) on {rows} plays{cells} with "
            f"{how} in {d.get('seconds', float('nan')):.1f} s."
        )
        if o.method == "nuts":
            text += (
                f" Max R-hat {d['max_rhat']:.3f} ({d['max_rhat_var']}), min bulk ESS "
                f"{d['min_ess_bulk']:.0f} ({d['min_ess_bulk_var']}), min tail ESS "
                f"{d['min_ess_tail']:.0f}, {d['divergences']} divergences, min E-BFMI "
                f"{d['min_bfmi']:.2f}, {d['ess_per_second']:.1f} bulk ESS/s."
            )
            rule_failed = not d.get("rule_passed", d["max_rhat"] <= 1.01)  # older runs: max R-hat
            if rule_failed or d["divergences"] or d["min_bfmi"] < 0.3:
                text += " Warning: not converged well enough to trust every quantity; run longer or simplify."
        elif o.method == "laplace":
            text += " Converged." if d.get("converged") else " Warning: the mode did not converge."
        else:
            text += " Variational approximation: no MCMC diagnostics; use for exploration only."
        return text


def fit(
    spec: ModelSpec,
    data: pd.DataFrame | pa.Table | StoreSample | Any,
    *,
    options: FitOptions | None = None,
    manifest: dict[str, Any] | None = None,
    progress: bool | None = None,
    **keywords: Any,
) -> FitResult:
    """Fit ``spec`` to ``data``: the one fit entry, for every inference path and method.

    Parameters
    ----------
    spec : ModelSpec
    data : pandas.DataFrame, pyarrow.Table, StoreSample or Cells
        Plays with the loaders' columns (session columns, weekday, track features, lags); or a
        :class:`~skipmodel.model.data.StoreSample` (a store and a session sample, read by the
        path: loaded for rows, aggregated for cells, streamed for minibatch); or
        :class:`~skipmodel.scale.Cells` (the cells path). See :mod:`skipmodel.model.options`.
    options : FitOptions, optional
        How to fit; unset options take the spec's ``[inference]`` or the path's defaults.
    manifest : dict, optional
        Where the data came from (store, sample spec), recorded in the run; a StoreSample
        records itself.
    progress : bool, optional
        Show progress (compiling, sampling, passes): True or False; default on a terminal or
        in a Jupyter notebook, off in CI and pipes.
    **keywords
        Fields of :class:`FitOptions` (``chains=4``, ``method="advi"``, ...), replacing those of
        ``options``; an unknown name is refused, naming the valid ones.

    Returns
    -------
    FitResult
        Its ``options`` are the resolved options the fit used, its spec's ``[inference]`` too.

    Raises
    ------
    SkipmodelError
        An unknown option, an invalid value, or an option set for a path or method that does
        not read it (``--chains is not used by --minibatch``).
    """
    opts = build_options(options, keywords)
    path = choose_path(data, opts, spec.inference.method)
    resolved = resolve_options(spec, opts, path)
    with forced_progress(progress):
        return path.run(spec_as_fitted(spec, resolved), data, resolved, dict(manifest or {}))


def _fit_rows(spec: ModelSpec, data: Any, opts: FitOptions, manifest: dict[str, Any]) -> FitResult:
    """The row path: Bernoulli likelihood over plays, any method."""
    if isinstance(data, StoreSample):
        sample = data.rows_sample(spec)
        manifest = {**manifest, **sample_manifest(data.store, sample)}
        data = load_plays(data.store, sample)
    design = build_design(spec, data)
    model = build_model(design)
    tree, diagnostics = sample_model(model, opts)
    assert design.outcome is not None  # build_design requires it when fitting
    tree = with_predictive(tree, design, seed=opts.seed)
    outcome = design.outcome.astype(float)
    info = {
        **manifest,
        "n_rows": int(design.n_obs),
        "outcome": spec.outcome,
        "outcome_rate": float(outcome.mean()),
        "coords_sizes": {k: len(v) for k, v in design.coords.items()},
    }
    return FitResult(spec, design.encoders, tree, diagnostics, opts, info)


register_path(
    FitPath(
        name="rows",
        label="a row-level fit",
        accepts=(pd.DataFrame, pa.Table, StoreSample),
        methods={m: METHOD_OPTIONS[m] | {"log_likelihood"} for m in SAMPLING_METHODS},
        run=_fit_rows,
    )
)


def sample_model(model: Any, opts: FitOptions) -> tuple[Any, dict[str, Any]]:
    """Sample a built model as ``opts`` says; the cleaned posterior tree and its diagnostics.

    The one place that runs a sampler: row-level fits and aggregated (cell) fits share it.
    ``opts`` are resolved (:func:`fit` resolves them).
    """
    run = Sampling.of(opts)
    start = time.perf_counter()
    if run.method == "nuts":
        tree, compile_seconds = _SAMPLERS[run.sampler](model, run)
    else:
        tree, compile_seconds = _APPROXIMATIONS[run.method](model, run)
    seconds = time.perf_counter() - start
    if opts.log_likelihood:
        import pymc as pm

        pm.compute_log_likelihood(tree, model=model, progressbar=False)
    tree = clean_tree(tree)
    diagnostics = diagnose(tree) if opts.method == "nuts" else {}
    # Wall time includes compiling (nutpie reports it apart; PyMC's sampler does not).
    diagnostics["seconds"] = seconds
    diagnostics["compile_seconds"] = compile_seconds
    if opts.method == "nuts":
        diagnostics["ess_per_second"] = diagnostics["min_ess_bulk"] / max(seconds, 1e-9)
    return tree, diagnostics


class Sampling(NamedTuple):
    """The resolved options a sampler reads, none unset (the NUTS-only ones are placeholders
    for an approximation, which does not read them)."""

    method: str
    sampler: str
    draws: int
    tune: int
    chains: int
    target_accept: float
    adaptation: str
    seed: int

    @classmethod
    def of(cls, opts: FitOptions) -> Sampling:
        if opts.method is None or opts.draws is None or opts.chains is None:
            raise SkipmodelError("sample_model needs resolved options; call fit()")
        if opts.method == "nuts" and (opts.sampler is None or opts.tune is None):
            raise SkipmodelError("sample_model needs resolved options; call fit()")
        return cls(
            method=opts.method,
            sampler=opts.sampler or "",
            draws=opts.draws,
            tune=opts.tune or 0,
            chains=opts.chains,
            target_accept=opts.target_accept or 0.8,
            adaptation=opts.adaptation or "diag",
            seed=opts.seed,
        )


def _cores(chains: int) -> int:
    return max(1, min(chains, os.cpu_count() or 1))


def _sample_nutpie(model: Any, opts: Sampling) -> tuple[xr.DataTree, float | None]:
    import nutpie

    start = time.perf_counter()
    if progress_enabled():
        print("compiling the model (cached for the next fit of the same shape)...", file=sys.stderr)
    compiled = nutpie.compile_pymc_model(model)
    compile_seconds = time.perf_counter() - start
    tree = nutpie.sample(
        compiled,
        draws=opts.draws,
        tune=opts.tune,
        chains=opts.chains,
        cores=_cores(opts.chains),
        seed=opts.seed,
        target_accept=opts.target_accept,
        adaptation=opts.adaptation,
        save_warmup=False,
        progress_bar=progress_enabled(),
    )
    return tree, compile_seconds


def _sample_pymc(model: Any, opts: Sampling) -> tuple[xr.DataTree, float | None]:
    import pymc as pm

    with model:
        tree = pm.sample(
            draws=opts.draws,
            tune=opts.tune,
            chains=opts.chains,
            cores=_cores(opts.chains),
            target_accept=opts.target_accept,
            random_seed=opts.seed,
            progressbar=progress_enabled(),
            compute_convergence_checks=False,
            nuts_sampler="pymc",
        )
    return tree, None


def _fit_advi(model: Any, opts: Sampling) -> tuple[xr.DataTree, float | None]:
    import pymc as pm

    with model:
        approx = pm.fit(
            n=ADVI_STEPS, method="advi", random_seed=opts.seed, progressbar=progress_enabled()
        )
        tree = approx.sample(draws=opts.draws * opts.chains, random_seed=opts.seed)
    return tree, None


def _fit_pathfinder(model: Any, opts: Sampling) -> tuple[xr.DataTree, float | None]:
    try:
        import pymc_extras as pmx
    except ImportError:
        raise SkipmodelError(
            "method 'pathfinder' needs the pymc-extras package (pip install pymc-extras); "
            "use --method advi for a quick look instead"
        ) from None
    with model:
        tree = pmx.fit(
            method="pathfinder", num_draws=opts.draws * opts.chains, random_seed=opts.seed
        )
    return tree, None


_SAMPLERS = {"nutpie": _sample_nutpie, "pymc": _sample_pymc}
_APPROXIMATIONS = {"advi": _fit_advi, "pathfinder": _fit_pathfinder}
assert set(_SAMPLERS) == set(SAMPLERS) and set(_APPROXIMATIONS) | {"nuts"} == set(SAMPLING_METHODS)


def clean_tree(tree: xr.DataTree) -> xr.DataTree:
    """Keep what a run needs; drop warmup and object-typed stats netCDF cannot store."""
    keep = [
        g
        for g in (
            "posterior",
            "sample_stats",
            "log_likelihood",
            "observed_data",
            "posterior_predictive",
        )
        if g in tree
    ]
    out = {}
    for group in keep:
        ds = tree[group].to_dataset()
        ds = ds.drop_vars([v for v in ds.data_vars if ds[v].dtype == object])
        out[group] = ds
    return xr.DataTree.from_dict(out)


def diagnose(tree: xr.DataTree) -> dict[str, Any]:
    """Convergence summary over every posterior variable (parameters and recorded effects)."""
    import arviz_stats as azs

    def extreme(ds: xr.Dataset, pick: Any) -> tuple[float, str]:
        best, where = None, ""
        for name, var in ds.data_vars.items():
            values = np.asarray(var.values, dtype=float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            v = float(pick(values))
            if best is None or pick([best, v]) == v:
                best, where = v, str(name)
        return (float("nan") if best is None else best), where

    with warnings.catch_warnings():
        # elements constant by construction (the Markov effect's no_previous level when
        # position carries it) make R-hat 0/0: NaN, skipped below, not a convergence problem
        warnings.simplefilter("ignore", RuntimeWarning)
        bulk = azs.ess(tree, method="bulk")
        tail = azs.ess(tree, method="tail")
        rhat = azs.rhat(tree)
    bulk, tail, rhat = (
        x.to_dataset() if isinstance(x, xr.DataTree) else x for x in (bulk, tail, rhat)
    )
    min_bulk, min_bulk_var = extreme(bulk, np.min)
    min_tail, min_tail_var = extreme(tail, np.min)
    max_rhat, max_rhat_var = extreme(rhat, np.max)

    def by_var(ds: xr.Dataset) -> dict[str, np.ndarray]:
        return {str(k): np.asarray(v.values, dtype=float).ravel() for k, v in ds.data_vars.items()}

    # the two-tier rule (global quantities; pools of levels with their allowance)
    rule_passed = (
        convergence.rhat_verdict(by_var(rhat)).passed
        and convergence.ess_verdict(by_var(bulk)).passed
        and convergence.ess_verdict(by_var(tail)).passed
    )
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree else xr.Dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    min_bfmi = float("nan")
    if "energy" in stats:
        bfmi = azs.bfmi(tree)
        bfmi = bfmi.to_dataset() if isinstance(bfmi, xr.DataTree) else bfmi
        min_bfmi = float(np.min(bfmi["energy"].values))
    n_draws = int(tree["posterior"].sizes["draw"] * tree["posterior"].sizes["chain"])
    return {
        "max_rhat": max_rhat,
        "max_rhat_var": max_rhat_var,
        "rule_passed": rule_passed,
        "min_ess_bulk": min_bulk,
        "min_ess_bulk_var": min_bulk_var,
        "min_ess_tail": min_tail,
        "min_ess_tail_var": min_tail_var,
        "divergences": divergences,
        "min_bfmi": min_bfmi,
        "n_draws": n_draws,
    }


# ---------------------------------------------------------------------------------------------
# Run directories


def save_run(result: FitResult, out: str | Path) -> Path:
    """Write ``result`` to the run directory ``out`` (created; files replaced atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SPEC_FILE, result.spec.to_toml())
    atomic_write_json(
        out / DATA_FILE,
        {
            **result.manifest,
            "options": result.options.to_json(),
            "encoders": result.encoders.to_json(),
        },
    )
    with atomic_path(out / POSTERIOR_FILE) as tmp:
        result.posterior.to_netcdf(tmp, engine="h5netcdf")
    atomic_write_json(out / DIAGNOSTICS_FILE, _json_numbers(result.diagnostics))
    return out


def _json_numbers(d: dict[str, Any]) -> dict[str, Any]:
    """Non-finite numbers as null: bare ``NaN`` (e.g. R-hat of one chain) is not valid JSON."""
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in d.items()}


def load_run(run: str | Path) -> FitResult:
    """Restore a fitted model saved by :func:`save_run` (``skipmodel fit``).

    Raises
    ------
    SkipmodelError
        ``run`` is not a run folder, or one of its files cannot be read back (truncated,
        edited, from another program): "run folder RUN is damaged", re-run ``skipmodel fit``.
    """
    run = Path(run)
    missing = [f for f in (SPEC_FILE, DATA_FILE, POSTERIOR_FILE) if not (run / f).is_file()]
    if missing:
        raise SkipmodelError(
            f"{run} is not a fitted run (missing {', '.join(missing)}); create one with 'skipmodel fit'"
        )
    with _reading(run, SPEC_FILE):
        spec = ModelSpec.load(run / SPEC_FILE)
    with _reading(run, DATA_FILE):
        data = json.loads((run / DATA_FILE).read_text())
        encoders = Encoders.from_json(data.pop("encoders"))
        options = FitOptions(**data.pop("options"))
    with _reading(run, POSTERIOR_FILE):
        with xr.open_datatree(run / POSTERIOR_FILE, engine="h5netcdf") as tree:
            posterior = tree.load()
        if "posterior" not in posterior.children:
            raise ValueError("it holds no posterior group")
    diag_path = run / DIAGNOSTICS_FILE
    with _reading(run, DIAGNOSTICS_FILE):
        diagnostics = json.loads(diag_path.read_text()) if diag_path.is_file() else {}
        # null stands for a number that could not be computed (see _json_numbers)
        diagnostics = {k: float("nan") if v is None else v for k, v in diagnostics.items()}
    return FitResult(spec, encoders, posterior, diagnostics, options, data)


#: What reading a file that is not what ``save_run`` wrote raises (JSON, HDF5, the dataclasses).
_DAMAGE: tuple[type[Exception], ...] = (
    SkipmodelError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    EOFError,
)


@contextmanager
def _reading(run: Path, name: str) -> Iterator[None]:
    """Read ``run/name``: a file that cannot be read back (truncated, not what ``save_run``
    wrote) is a one-line "run folder is damaged"; a refusal of the system (permissions) is
    left to the CLI, which names it."""
    try:
        yield
    except OSError as exc:
        if environment_problem(exc) is not None:
            raise
        raise _damaged(run, name, exc) from None
    except _DAMAGE as exc:
        raise _damaged(run, name, exc) from None


def _damaged(run: Path, name: str, exc: BaseException) -> SkipmodelError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return SkipmodelError(
        f"run folder {run} is damaged: {name} cannot be read ({detail}); "
        "re-run skipmodel fit to write it again"
    )
