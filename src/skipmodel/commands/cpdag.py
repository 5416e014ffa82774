"""``skipmodel cpdag``: the PC algorithm (Gaussian CI test, pcalg semantics) on numeric features.

Input is one of: a store (its track-features table, with the usual transforms: drop
``track_id`` and ``mode``, ``log(x + 1e-10)`` for the heavy-tailed features), any numeric CSV
with a header, or a correlation matrix with its sample size. See
:mod:`skipmodel.cpdag.outputs` for what is written to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from skipmodel.commands import store_location
from skipmodel.errors import SkipmodelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--store", type=store_location, help="store directory (uses its tracks table)"
    )
    source.add_argument("--csv", type=Path, help="numeric CSV file with a header row")
    source.add_argument(
        "--corr", type=Path, help="correlation matrix CSV (header of names; row names allowed)"
    )
    parser.add_argument("--n", type=float, help="sample size behind --corr")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="significance level; an edge is removed when p >= alpha (default 0.01; "
        "with millions of rows the usual track-features workflow uses 1e-10)",
    )
    parser.add_argument(
        "--max-cond", type=int, default=None, help="largest conditioning-set size (default: none)"
    )
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--conservative", action="store_true", help="conservative PC colliders")
    rule.add_argument("--majority", action="store_true", help="majority-rule PC colliders")
    parser.add_argument(
        "--solve-conflicts", action="store_true", help="show conflicting orientations as <->"
    )
    parser.add_argument("--log", default="", help="comma-separated columns to log-transform")
    parser.add_argument(
        "--no-log", default="", help="comma-separated columns NOT to log ('all' for none)"
    )
    parser.add_argument("--drop", default="", help="comma-separated columns to leave out")
    parser.add_argument("--delimiter", default=",", help="CSV field delimiter (default ',')")
    parser.add_argument(
        "--bootstrap", type=int, default=0, metavar="B", help="bootstrap replicates (default 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    from skipmodel.engine import add_engine_arguments

    add_engine_arguments(parser)  # the --store pass: one task per track file


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _transforms(args: argparse.Namespace, base):  # noqa: ANN001, ANN202 - Transforms
    from skipmodel.cpdag.corr import Transforms

    no_log = _columns(args.no_log)
    log = () if no_log == ("all",) else tuple(c for c in base.log if c not in no_log)
    log += tuple(c for c in _columns(args.log) if c not in log)
    drop = base.drop + tuple(c for c in _columns(args.drop) if c not in base.drop)
    return Transforms(drop=drop, log=log, log_offset=base.log_offset)


def _check(args: argparse.Namespace) -> None:
    if args.corr is not None:
        if args.n is None:
            raise SkipmodelError("--corr needs --n (the sample size behind the correlations)")
        if args.log or args.no_log:
            raise SkipmodelError("--log / --no-log need data (--store or --csv), not --corr")
    elif args.n is not None:
        raise SkipmodelError("--n goes with --corr only; with data the sample size is counted")
    if args.bootstrap < 0:
        raise SkipmodelError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if not 0 < args.alpha < 1:
        raise SkipmodelError(f"--alpha must be in (0, 1), got {args.alpha}")
    if len(args.delimiter) != 1:
        raise SkipmodelError(f"--delimiter must be one character, got {args.delimiter!r}")
    if getattr(args, "engine", "local") != "local" and args.store is None:
        raise SkipmodelError("--engine spark runs the --store pass; --csv and --corr run here")


def run(args: argparse.Namespace) -> int:
    from skipmodel.cpdag import pc
    from skipmodel.cpdag.bootstrap import bootstrap_frequencies, parametric_replicates
    from skipmodel.cpdag.corr import (
        STORE_TRANSFORMS,
        Transforms,
        correlation_from_csv,
        correlation_from_store,
    )
    from skipmodel.cpdag.io import read_correlation_csv
    from skipmodel.cpdag.outputs import describe, untested_removals, write_outputs
    from skipmodel.engine import engine_options
    from skipmodel.progress import Progress

    _check(args)
    engine = engine_options(args)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data_summary: dict = {}
    replicates: list[np.ndarray] = []
    replicate_n: list[float] = []
    if args.corr is not None:
        names, corr = read_correlation_csv(args.corr)
        drop = set(_columns(args.drop))
        unknown = drop - set(names)
        if unknown:
            raise SkipmodelError(f"--drop: unknown column(s) {', '.join(sorted(unknown))}")
        keep = [i for i, n in enumerate(names) if n not in drop]
        names, corr = tuple(names[i] for i in keep), corr[np.ix_(keep, keep)]
        n = args.n
        data_summary = {"source": str(args.corr), "n": n, "dropped_columns": sorted(drop)}
        if args.bootstrap:
            replicates, replicate_n = parametric_replicates(corr, n, args.bootstrap, seed=args.seed)
            data_summary["bootstrap"] = "parametric (Wishart, n - 1 degrees of freedom)"
    else:
        with Progress("cpdag data pass", unit="rows") as bar:
            if args.store is not None:
                data = correlation_from_store(
                    args.store,
                    transforms=_transforms(args, STORE_TRANSFORMS),
                    bootstrap=args.bootstrap,
                    seed=args.seed,
                    progress=bar,
                    engine=engine,
                )
            else:
                data = correlation_from_csv(
                    args.csv,
                    transforms=_transforms(args, Transforms()),
                    delimiter=args.delimiter,
                    bootstrap=args.bootstrap,
                    seed=args.seed,
                    progress=bar,
                )
        names, corr, n = data.names, data.corr, data.n
        replicates, replicate_n = list(data.replicates), list(data.replicate_n)
        data_summary = {"source": str(args.store or args.csv), **data.summary()}
        if args.bootstrap:
            data_summary["bootstrap"] = "Poisson(1) row weights, accumulated in the same pass"
    timings["data"] = time.perf_counter() - start
    t = time.perf_counter()
    result = pc(
        corr,
        n,
        names=names,
        alpha=args.alpha,
        max_cond=args.max_cond,
        conservative=args.conservative,
        majority=args.majority,
        solve_conflicts=args.solve_conflicts,
    )
    timings["search"] = time.perf_counter() - t
    boot = None
    if replicates:
        t = time.perf_counter()
        boot = bootstrap_frequencies(replicates, replicate_n, names, result.options)
        timings["bootstrap_search"] = time.perf_counter() - t
    t = time.perf_counter()
    files = write_outputs(
        result, corr, args.out, data_summary=data_summary, bootstrap=boot, timings=timings
    )
    timings["outputs"] = time.perf_counter() - t
    print(f"{describe(result)}; wrote {len(files)} files to {args.out}", file=sys.stderr)
    warning = untested_removals(result)
    if warning is not None:
        print(f"skipmodel cpdag: warning: {warning}", file=sys.stderr)
    return 0
