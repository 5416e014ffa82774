"""``skipmodel predict``: posterior skip probabilities per play from a fitted run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skipmodel.store.layout import atomic_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipmodel.model.prediction import REVEALS

    parser.add_argument("run", type=Path, help="run directory written by 'skipmodel fit'")
    parser.add_argument("--store", required=True, type=Path, help="store directory (from ingest)")
    parser.add_argument("--out", required=True, type=Path, help="output Parquet file")
    parser.add_argument(
        "--split", choices=("train", "test", "all"), default="test", help="which sessions (test)"
    )
    parser.add_argument(
        "--fraction", type=float, default=None, help="share of sessions (default: the run's)"
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="predict each session's second half from its first, rolling outcomes forward",
    )
    parser.add_argument(
        "--reveal",
        choices=REVEALS,
        default="wsdm",
        help="with --sequential: what a second-half play reveals — wsdm (default): what the WSDM "
        "Cup did, its track, position and length (other columns integrated over the first "
        "half); context: its own columns too (optimistic); all: every earlier outcome too",
    )
    parser.add_argument(
        "--max-draws", type=int, default=1000, help="posterior draws used at most (1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for draws and simulations (0)")


def run(args: argparse.Namespace) -> int:
    from skipmodel.errors import SkipmodelError
    from skipmodel.model.data import load_plays, sample_from_manifest
    from skipmodel.model.fitting import load_run
    from skipmodel.model.prediction import predict

    if args.max_draws is not None and args.max_draws < 1:
        raise SkipmodelError("--max-draws must be a positive integer")
    result = load_run(args.run)
    changes: dict[str, object] = {"split": None if args.split == "all" else args.split}
    if args.fraction is not None:
        changes["fraction"] = args.fraction
    if "sample" not in result.manifest:
        raise SkipmodelError(f"{args.run} was not fitted from a store; use the Python API")
    try:
        sample = sample_from_manifest(result.manifest, **changes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SkipmodelError(
            f"run folder {args.run} is damaged: data.json's sample spec cannot be read ({exc}); "
            "re-run skipmodel fit to write it again"
        ) from None
    plays = load_plays(args.store, sample)
    if args.reveal != "wsdm" and not args.sequential:
        raise SkipmodelError("--reveal applies only with --sequential")
    table = predict(
        result,
        plays,
        sequential=args.sequential,
        reveal=args.reveal,
        max_draws=args.max_draws,
        seed=args.seed,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp)
    print(
        f"{len(table)} plays predicted (mean p_skip {table['p_skip'].mean():.3f}) -> {args.out}",
        file=sys.stderr,
    )
    return 0
