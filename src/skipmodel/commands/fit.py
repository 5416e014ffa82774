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

from skipmodel.model.options import FitOptions
from skipmodel.model.spec import ADAPTATIONS, METHODS, SAMPLERS, resolve_model
from skipmodel.scale.cli import add_arguments as add_scale_arguments
from skipmodel.scale.cli import inference_of, parse_bins  # importing scale registers its paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, type=Path, help="store directory (from ingest)")
    parser.add_argument(
        "--model", required=True, help="models/X.toml or a registered name (baseline, full, ...)"
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of sessions (0, 1]")
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
    )


def run(args: argparse.Namespace) -> int:
    spec = resolve_model(args.model)  # fail on a bad spec before reading any data
    from skipmodel.model.data import StoreSample
    from skipmodel.model.fitting import fit, save_run

    data = StoreSample(args.store, fraction=args.fraction, seed=args.seed, split="train")
    result = fit(spec, data, options=options_from_args(args))
    save_run(result, args.out)
    print(result.summary())
    print(f"run saved to {args.out}", file=sys.stderr)
    return 0
