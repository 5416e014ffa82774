"""``skipmodel fit``: fit a skip model to the train split of a store sample and save the run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skipmodel.errors import SkipmodelError
from skipmodel.model.spec import ADAPTATIONS, METHODS, SAMPLERS, resolve_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, type=Path, help="store directory (from ingest)")
    parser.add_argument(
        "--model", required=True, help="models/X.toml or a registered name (baseline, full, ...)"
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of sessions (0, 1]")
    parser.add_argument("--seed", type=int, default=0, help="sample and sampler seed (0)")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (spec: 1000)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain (1000)")
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
    from skipmodel.scale.cli import add_arguments as add_scale_arguments

    add_scale_arguments(parser)  # --aggregate [--bins] | --minibatch (full-data scale)


def run(args: argparse.Namespace) -> int:
    spec = resolve_model(args.model)  # fail on a bad spec before reading any data
    if args.adaptation is not None:
        spec = spec.with_inference(adaptation=args.adaptation)
    from skipmodel.model.data import load_plays, sample_manifest, sample_spec_for
    from skipmodel.model.fitting import fit, save_run

    if args.aggregate or args.minibatch:
        from skipmodel.scale.cli import fit_from_args

        result = fit_from_args(spec, args)
    else:
        if args.bins:
            raise SkipmodelError("--bins applies only with --aggregate")
        sample = sample_spec_for(spec, fraction=args.fraction, seed=args.seed, split="train")
        plays = load_plays(args.store, sample)
        result = fit(
            spec,
            plays,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            seed=args.seed,
            sampler=args.sampler,
            method=args.method,
            log_likelihood=args.log_likelihood,
            manifest=sample_manifest(args.store, sample),
        )
    save_run(result, args.out)
    print(result.summary())
    print(f"run saved to {args.out}", file=sys.stderr)
    return 0
