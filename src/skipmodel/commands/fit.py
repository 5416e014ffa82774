"""``skipmodel fit``: fit a skip model to the train split of a store sample and save the run.

Every flag goes into one :class:`~skipmodel.model.options.FitOptions` (the scale flags from
:mod:`skipmodel.scale.cli` too), and the one fit entry, :func:`skipmodel.model.fitting.fit`,
runs the path they select on a :class:`~skipmodel.model.data.StoreSample`; a flag the path does
not read is refused in one line before any data is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skipmodel.commands import store_location
from skipmodel.errors import SkipmodelError
from skipmodel.model.options import FitOptions
from skipmodel.model.spec import ADAPTATIONS, METHODS, SAMPLERS, resolve_model
from skipmodel.scale.cli import add_arguments as add_scale_arguments
from skipmodel.scale.cli import inference_of, parse_bins  # importing scale registers its paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", required=True, type=store_location, help="store directory (from ingest)"
    )
    parser.add_argument(
        "--model", required=True, help="models/X.toml or a registered name (baseline, full, ...)"
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--fraction", type=float, default=None, help="share of sessions (0, 1]")
    parser.add_argument(
        "--plays",
        type=int,
        default=None,
        metavar="N",
        help="whole sessions in the sampler's seeded order until at least N train plays",
    )
    parser.add_argument(
        "--accept-cost",
        action="store_true",
        help="run a NUTS fit estimated to take more than an hour (else it stops and says so)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sample and sampler seed (0)")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (spec: 1000)")
    parser.add_argument("--tune", type=int, default=None, help="NUTS tuning steps (spec: 1000)")
    parser.add_argument("--chains", type=int, default=None, help="chains (spec: 4)")
    parser.add_argument("--target-accept", type=float, default=None, help="NUTS target (0.8)")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None, help="NUTS backend")
    parser.add_argument("--method", choices=METHODS, default=None, help="nuts, or a quick fit")
    parser.add_argument(
        "--adaptation",
        choices=ADAPTATIONS,
        default=None,
        help="nutpie mass-matrix adaptation (spec: diag; low_rank for correlated posteriors)",
    )
    parser.add_argument(
        "--log-likelihood", action="store_true", help="store pointwise log-likelihood (for LOO)"
    )
    add_scale_arguments(parser)  # --aggregate [--bins] | --minibatch (full-data scale)
    from skipmodel.engine import add_engine_arguments

    add_engine_arguments(parser)  # the store passes of --aggregate and --method laplace


def options_from_args(args: argparse.Namespace) -> FitOptions:
    """The one :class:`FitOptions` of the command line (unset flags stay unset)."""
    return FitOptions(
        inference=inference_of(args),
        method=args.method,
        sampler=args.sampler,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        target_accept=args.target_accept,
        adaptation=args.adaptation,
        seed=args.seed,
        log_likelihood=args.log_likelihood,
        bins=parse_bins(args.bins) or None,
        batch_size=args.batch_size,
        epochs=args.epochs,
        full_rank=args.full_rank,
        # unset unless asked for: a path whose passes cannot run on Spark refuses them
        engine=None if args.engine == "local" else args.engine,
        spark_master=args.spark_master,
    )


def _train_plays(store: Path, fraction: float) -> float:
    """The train plays a fraction of the store holds, about (from the manifest's counts)."""
    from skipmodel.store.layout import open_store

    try:
        totals = open_store(store).read_manifest().get("totals", {})
    except SkipmodelError:
        return 0.0  # not a store: the fit says so, after the options are checked

    return float(totals.get("log_rows_written", 0)) * fraction * 0.8


def run(args: argparse.Namespace) -> int:
    spec = resolve_model(args.model)  # fail on a bad spec before reading any data
    from skipmodel.model.data import StoreSample
    from skipmodel.model.fitting import fit, save_run

    fraction = 1.0 if args.fraction is None else args.fraction
    if args.plays is not None and args.fraction is not None:
        raise SkipmodelError("give --fraction or --plays, not both")
    if args.plays is not None:
        from skipmodel.load.budget import fraction_for_plays

        fraction, held = fraction_for_plays(args.store, args.plays, seed=args.seed)
        plays = float(held)
        print(
            f"--plays {args.plays}: fraction {fraction:.6g} holds {held:,} plays", file=sys.stderr
        )
    else:
        plays = _train_plays(args.store, fraction)
    data = StoreSample(args.store, fraction=fraction, seed=args.seed, split="train")
    method = args.method or spec.inference.method
    if method == "nuts" and inference_of(args) is None:
        from skipmodel.model.cost import check_nuts_cost

        check_nuts_cost(
            plays,
            draws=args.draws or spec.inference.draws,
            tune=args.tune if args.tune is not None else spec.inference.tune,
            chains=args.chains or spec.inference.chains,
            accept=args.accept_cost,
        )
    result = fit(spec, data, options=options_from_args(args))
    save_run(result, args.out)
    print(result.summary())
    print(f"run saved to {args.out}", file=sys.stderr)
    return 0
