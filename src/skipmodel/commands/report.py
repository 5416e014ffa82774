"""``skipmodel report RUN... --out DIR [--truth truth.json]``: diagnostics, effects, checks,
held-out metrics, comparison; with the truth of simulated data, the coverage of the true effects."""

from __future__ import annotations

import argparse
from pathlib import Path

from skipmodel.errors import SkipmodelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run directories written by 'skipmodel fit'"
    )
    parser.add_argument(
        "--out", required=True, help="output directory for index.html, figures and tables"
    )
    parser.add_argument(
        "--store",
        default=None,
        help="store to evaluate on (default: the store each run was fitted from)",
    )
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="split for the held-out metrics (default test: sessions never used in fitting)",
    )
    parser.add_argument(
        "--max-eval-sessions",
        type=int,
        default=2_000,
        help="cap on evaluated sessions per run, chosen deterministically (default 2000; 0 = all)",
    )
    parser.add_argument(
        "--truth",
        default=None,
        metavar="TRUTH_JSON",
        help="truth.json written by 'skipmodel simulate' (truth_tracks.parquet beside it): adds "
        "a section on how often each run's 50 %% and 90 %% intervals cover the true effects",
    )
    parser.add_argument("--title", default="skipmodel report", help="page title")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for replicated data and subsamples"
    )


def run(args: argparse.Namespace) -> int:
    from skipmodel.report.recovery import load_truth, recovery_inputs
    from skipmodel.report.report import ReportOptions, report
    from skipmodel.report.runs import load_run_inputs

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SkipmodelError(f"--out {out} is a file; give a directory for the report")
    if args.max_eval_sessions < 0:
        raise SkipmodelError("--max-eval-sessions must be >= 0")
    names = [Path(r).name or str(r) for r in args.runs]
    if len(set(names)) != len(names):
        raise SkipmodelError(f"run directories must have distinct names, got {names}")
    # a bad --truth fails before the runs take minutes to load
    truth = load_truth(args.truth) if args.truth is not None else None
    inputs = [
        load_run_inputs(
            run,
            store=args.store,
            split=args.split,
            max_eval_sessions=args.max_eval_sessions or None,
            seed=args.seed,
        )
        for run in args.runs
    ]
    recovery = (
        recovery_inputs(truth, {i.name: r for i, r in zip(inputs, args.runs, strict=True)})
        if truth is not None
        else None
    )
    options = ReportOptions(title=args.title, seed=args.seed)
    result = report(inputs, args.out, options=options, truth=recovery)
    untrusted = [name for name, ok in result.trusted.items() if not ok]
    print(f"wrote {result.index}")
    if untrusted:
        print(f"warning: diagnostics failed for {', '.join(untrusted)} (see the banner at the top)")
    return 0
