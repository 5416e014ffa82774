"""The scale layer's inference paths of the one fit entry, :func:`skipmodel.model.fitting.fit`.

* **cells** (``inference="cells"``, CLI ``--aggregate``): the data are :class:`Cells`, or a
  :class:`~skipmodel.model.data.StoreSample` aggregated first (:func:`aggregate` with the
  options' ``bins``); the model's own sampler then runs on the Binomial cells
  (:func:`skipmodel.scale.binomial.fit_cells`). Methods nuts, advi, pathfinder; pointwise
  log-likelihoods would be per cell, not per play, so ``log_likelihood`` is refused.
* **minibatch** (``inference="minibatch"``, CLI ``--minibatch``): the data are a StoreSample,
  streamed in passes by :func:`skipmodel.scale.minibatch.fit_minibatch`. Method advi only; reads
  ``draws``, ``batch_size``, ``epochs``, ``full_rank`` and ``seed``.

The model layer cannot import scale, so the paths are registered with it
(:func:`skipmodel.model.options.register_path`) when :mod:`skipmodel.scale` is imported. The
runners import their engines on first use, so registering imports no PyMC.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.model.data import StoreSample, sample_manifest
from skipmodel.model.options import (
    METHOD_OPTIONS,
    SAMPLING_METHODS,
    FitOptions,
    FitPath,
    register_path,
)
from skipmodel.model.spec import ModelSpec
from skipmodel.scale.aggregate import Cells

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

#: The options of where a store pass runs (the cells pass, the Laplace passes).
ENGINE_OPTIONS = frozenset({"engine", "spark_master"})
#: Minibatch defaults when the options leave them unset.
MINIBATCH_DEFAULTS = {"batch_size": 4096, "epochs": 3}


def engine_of(options: FitOptions) -> EngineOptions:
    """The engine the options name (default: this process)."""
    from skipmodel.engine import EngineOptions

    if options.spark_master is not None and options.engine != "spark":
        raise SkipmodelError("--spark-master needs --engine spark")
    return EngineOptions(options.engine or "local", options.spark_master)


def fit_cells_path(
    spec: ModelSpec, data: Cells | StoreSample, options: FitOptions, manifest: dict[str, Any]
) -> Any:
    """Aggregate a store sample (or take the cells given) and fit the cells."""
    from skipmodel.scale.aggregate import aggregate, sample_for_cells
    from skipmodel.scale.binomial import fit_cells

    if isinstance(data, StoreSample):
        sample = sample_for_cells(
            spec,
            fraction=data.fraction,
            seed=data.seed,
            split=data.split,
            test_fraction=data.test_fraction,
        )
        manifest = {**manifest, **sample_manifest(data.store, sample)}
        data = aggregate(
            data.store,
            spec,
            bins=options.bins or {},
            sample=sample,
            engine=engine_of(options),
        )
    elif options.bins:
        raise SkipmodelError("--bins is not used by cells already aggregated; aggregate again")
    elif options.engine not in (None, "local"):
        raise SkipmodelError("--engine is not used by cells already aggregated")
    return fit_cells(spec, data, options, manifest)


def fit_minibatch_path(
    spec: ModelSpec, data: StoreSample, options: FitOptions, manifest: dict[str, Any]
) -> Any:
    """Streaming minibatch ADVI over a store sample, packaged as the model's ``FitResult``."""
    from skipmodel.model.fitting import FitResult, clean_tree
    from skipmodel.scale.minibatch import MinibatchOptions, fit_minibatch

    sample = data.rows_sample(spec)
    engine = MinibatchOptions(
        batch_size=options.batch_size or MINIBATCH_DEFAULTS["batch_size"],
        max_epochs=options.epochs or MINIBATCH_DEFAULTS["epochs"],
        full_rank=options.full_rank,
        draws=options.draws or MinibatchOptions.draws,
        seed=options.seed,
    )
    result = fit_minibatch(data.store, spec, sample=sample, options=engine)
    diagnostics = {
        "seconds": result.seconds,
        "epochs": result.epochs,
        "steps": result.steps,
        "converged": result.converged,
        "epoch_seconds": result.epoch_seconds,
        "compile_seconds": result.compile_seconds,
        "final_loss": float(result.losses[-100:].mean()),
    }
    info = {
        **manifest,
        **sample_manifest(data.store, sample),
        "n_rows": result.n_rows,
        "likelihood": "bernoulli-minibatch",
        "minibatch": dataclasses.asdict(engine),
        "outcome": spec.outcome,
    }
    tree = clean_tree(result.posterior)
    return FitResult(spec, result.encoders, tree, diagnostics, options, info)


register_path(
    FitPath(
        name="cells",
        label="--aggregate",
        accepts=(Cells, StoreSample),
        methods={m: METHOD_OPTIONS[m] | {"bins", *ENGINE_OPTIONS} for m in SAMPLING_METHODS},
        run=fit_cells_path,
    )
)
register_path(
    FitPath(
        name="minibatch",
        label="--minibatch",
        accepts=(StoreSample,),
        methods={"advi": frozenset({"draws", "batch_size", "epochs", "full_rank"})},
        run=fit_minibatch_path,
        defaults=MINIBATCH_DEFAULTS,
    )
)


def fit_laplace(spec: ModelSpec, data: Any, options: FitOptions, manifest: dict[str, Any]) -> Any:
    """Nested Laplace over streaming passes (:mod:`skipmodel.scale.laplace`)."""
    from skipmodel.scale.laplace.path import fit_laplace_path

    return fit_laplace_path(spec, data, options, manifest)


register_path(
    FitPath(
        name="passes",
        label="--method laplace",
        accepts=(pd.DataFrame, pa.Table, StoreSample),
        methods={"laplace": METHOD_OPTIONS["laplace"] | ENGINE_OPTIONS},
        run=fit_laplace,
    )
)

__all__ = [
    "ENGINE_OPTIONS",
    "MINIBATCH_DEFAULTS",
    "engine_of",
    "fit_cells_path",
    "fit_laplace",
    "fit_minibatch_path",
]
