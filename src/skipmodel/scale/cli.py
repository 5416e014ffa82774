"""Options of ``skipmodel fit`` for full-data scale, and the fit they select.

The CLI verbs are fixed, so scale adds options to ``fit`` rather than a verb::

    skipmodel fit --store DIR --model M --out RUN --aggregate --bins danceability=20,duration=50
    skipmodel fit --store DIR --model M --out RUN --minibatch [--batch-size 4096] [--epochs 3]

``fit``'s ``add_arguments`` calls :func:`add_arguments`, and its ``run`` hands over to
:func:`fit_from_args` when either flag is set; the result is the model's ``FitResult``, saved
with ``save_run`` like any other fit (the manifest records rows, cells and binning).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from skipmodel.errors import SkipmodelError
from skipmodel.model.spec import ModelSpec


def parse_bins(text: str | None) -> dict[str, int]:
    """``"danceability=20,energy=10"`` -> ``{"danceability": 20, "energy": 10}``."""
    out: dict[str, int] = {}
    for item in filter(None, (text or "").split(",")):
        column, _, n = item.partition("=")
        if not n.strip().isdigit() or int(n) < 1:
            raise SkipmodelError(
                f"--bins: expected COLUMN=N with N a positive integer, got {item!r}"
            )
        out[column.strip()] = int(n)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the scale options to ``skipmodel fit``."""
    group = parser.add_argument_group("full-data scale")
    how = group.add_mutually_exclusive_group()
    how.add_argument(
        "--aggregate",
        action="store_true",
        help="fit on covariate cells (exact when every term is discrete or binned)",
    )
    how.add_argument(
        "--minibatch",
        action="store_true",
        help="streaming minibatch ADVI over the store (any model; approximate)",
    )
    group.add_argument(
        "--bins", default=None, metavar="COL=N,...", help="equal-width bins for --aggregate"
    )
    group.add_argument("--batch-size", type=int, default=4096, help="minibatch rows (4096)")
    group.add_argument("--epochs", type=int, default=3, help="max minibatch epochs (3)")
    group.add_argument("--full-rank", action="store_true", help="full-rank instead of mean-field")


def fit_from_args(spec: ModelSpec, args: argparse.Namespace) -> Any:
    """Run the fit the scale flags select; returns a :class:`skipmodel.model.fit.FitResult`."""
    from skipmodel.model.data import sample_manifest, sample_spec_for

    if args.aggregate:
        from skipmodel.scale.aggregate import aggregate, sample_for_cells
        from skipmodel.scale.binomial import fit_cells

        sample = sample_for_cells(spec, fraction=args.fraction, seed=args.seed, split="train")
        cells = aggregate(args.store, spec, bins=parse_bins(args.bins), sample=sample)
        return fit_cells(
            spec,
            cells,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            seed=args.seed,
            sampler=args.sampler,
            manifest=sample_manifest(args.store, sample),
        )
    if args.minibatch:
        sample = sample_spec_for(spec, fraction=args.fraction, seed=args.seed, split="train")
        return fit_minibatch_run(
            args.store,
            spec,
            sample=sample,
            batch_size=args.batch_size,
            epochs=args.epochs,
            full_rank=args.full_rank,
            draws=args.draws,
            seed=args.seed,
            manifest=sample_manifest(args.store, sample),
        )
    raise SkipmodelError("neither --aggregate nor --minibatch was given")


def fit_minibatch_run(
    store: Any,
    spec: ModelSpec,
    *,
    sample: Any,
    batch_size: int = 4096,
    epochs: int = 3,
    full_rank: bool = False,
    draws: int | None = None,
    seed: int = 0,
    manifest: dict[str, Any] | None = None,
) -> Any:
    """Streaming minibatch ADVI, packaged as a ``FitResult`` that ``save_run`` writes."""
    from skipmodel.model import fitting as model_fit
    from skipmodel.scale.minibatch import MinibatchOptions, fit_minibatch

    opts = model_fit.resolve_options(spec, method="advi", draws=draws, chains=1, seed=seed)
    options = MinibatchOptions(
        batch_size=batch_size,
        max_epochs=epochs,
        full_rank=full_rank,
        draws=opts.draws,
        seed=seed,
    )
    result = fit_minibatch(store, spec, sample=sample, options=options)
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
        **(manifest or {}),
        "n_rows": result.n_rows,
        "likelihood": "bernoulli-minibatch",
        "minibatch": dataclasses.asdict(options),
        "outcome": spec.outcome,
    }
    tree = model_fit.clean_tree(result.posterior)
    return model_fit.FitResult(spec, result.encoders, tree, diagnostics, opts, info)


__all__ = ["add_arguments", "fit_from_args", "fit_minibatch_run", "parse_bins"]
