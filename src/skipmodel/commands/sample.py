"""``skipmodel sample``: write a deterministic session sample (with track and lag features) as Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

from skipmodel.commands import store_location
from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import TRACK_FEATURES, WEEKDAY, SampleSpec, iter_batches, output_schema
from skipmodel.load.spec import store_user_fields
from skipmodel.progress import Progress
from skipmodel.store.layout import atomic_path
from skipmodel.store.schema import LOG_COLUMNS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", required=True, type=store_location, help="store directory (from ingest)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output Parquet file")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of sessions (0, 1]")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument(
        "--split", choices=("train", "test"), default=None, help="keep only one side of the split"
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of sessions held out (0.2)"
    )
    parser.add_argument("--from", dest="date_from", default=None, help="first date, YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", default=None, help="last date, YYYY-MM-DD")
    parser.add_argument(
        "--columns",
        default=None,
        help="comma-separated session-log columns, 'weekday' and/or track features to keep "
        "(session id, position, length and track id are always kept; naming track features "
        "joins only those)",
    )
    parser.add_argument(
        "--lags", type=int, choices=(0, 1, 2), default=1, help="levels of lag columns (1)"
    )


def spec_from_args(args: argparse.Namespace) -> SampleSpec:
    """The :class:`SampleSpec` the command-line options describe."""
    columns = None
    features: tuple[str, ...] | bool = True
    if args.columns is not None:
        names = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not names:
            raise SkipmodelError("--columns is empty; give comma-separated column names")
        user = tuple(f.name for f in store_user_fields(args.store))  # kept by ingest --column
        valid = (*LOG_COLUMNS, WEEKDAY, *user, *TRACK_FEATURES)
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise SkipmodelError(
                f"unknown column(s) {', '.join(map(repr, unknown))} in --columns; valid: "
                f"{', '.join(valid)}"
            )
        features_named = tuple(n for n in names if n in TRACK_FEATURES)
        columns = tuple(n for n in names if n not in TRACK_FEATURES)
        if features_named:
            features = features_named
    date_range = None
    if args.date_from is not None or args.date_to is not None:
        date_range = (args.date_from, args.date_to)
    spec = SampleSpec(
        fraction=args.fraction,
        seed=args.seed,
        split=args.split,
        test_fraction=args.test_fraction,
        date_range=date_range,
        columns=columns,
        features=features,
        lags=args.lags,
    )
    output_schema(spec, store=args.store)  # validates every option before any file is touched
    return spec


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    batches = iter_batches(args.store, spec)
    if args.out.is_dir():
        raise SkipmodelError(f"--out {args.out} is a directory; give a file name ending .parquet")
    rows = sessions = 0
    with (
        atomic_path(args.out) as tmp,
        pq.ParquetWriter(tmp, output_schema(spec, store=args.store), compression="zstd") as writer,
        Progress("sample", unit="rows", stream=sys.stderr) as bar,
    ):
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
            sessions += len(batch.column(0).unique())  # a session never spans two batches
            bar.advance(batch.num_rows)
    print(f"wrote {rows:,} rows of {sessions:,} sessions to {args.out}")
    return 0
