"""``skipmodel ingest PATH... --store DIR [--buckets N] [--column NAME:TYPE ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skipmodel.engine import add_engine_arguments, engine_options
from skipmodel.store.layout import DEFAULT_BUCKETS

#: Skipped files named on the console (all of them are listed in manifest.json).
SHOWN_SKIPPED = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help=".tar.gz/.tgz archives, folders, .csv, .csv.gz"
    )
    parser.add_argument(
        "--store",
        required=True,
        metavar="DIR",
        help="store folder to write: a path, a file:// URI, or a URI pyarrow.fs opens "
        "(s3://bucket/path, gs://, hdfs://)",
    )
    parser.add_argument(
        "--commit",
        choices=("rename", "manifest"),
        default=None,
        help="how a new store commits its writes: rename (default on a local disk and HDFS) or "
        "manifest (the manifest written last names every committed file; the default on "
        "object stores; for a shared folder whose renames or locks are not to be trusted)",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        default=None,
        metavar="N",
        help=f"session buckets of a new store (default {DEFAULT_BUCKETS}; fixed once created)",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=None,
        metavar="NAME:TYPE",
        help="keep your own column NAME of the session logs, TYPE number|boolean|string "
        "(repeatable; recorded by the store's first ingest of logs, reused when omitted)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="FILE.toml",
        help="declare the user columns to keep by the [[columns]] tables of a TOML file "
        "(a model spec will do)",
    )
    add_engine_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--no-compact",
        action="store_true",
        help="skip the final merge of each bucket into one sorted file (faster ingest, slower "
        "reads; the next ingest merges them)",
    )
    parser.add_argument(
        "--max-id-bytes",
        type=int,
        default=None,
        metavar="N",
        help="longest id or category value kept, in bytes (default 256); longer: rejected",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=None,
        metavar="N",
        help="longest line kept, in bytes (default 1 MiB); longer: rejected",
    )


def run(args: argparse.Namespace) -> int:
    from skipmodel.ingest import ingest
    from skipmodel.ingest.rules import RowLimits
    from skipmodel.store.user_columns import (
        check_declaration,
        columns_from_toml,
        describe,
        parse_column,
    )

    given = {"max_line_bytes": args.max_line_bytes, "max_id_bytes": args.max_id_bytes}
    limits = RowLimits(**{k: v for k, v in given.items() if v is not None})
    declared = None
    if args.column is not None or args.columns is not None:
        from_file = columns_from_toml(args.columns) if args.columns is not None else ()
        declared = check_declaration([*from_file, *map(parse_column, args.column or [])])
    report = ingest(
        args.paths,
        args.store,
        n_buckets=args.buckets,
        progress=not args.quiet,
        compact=not args.no_compact,
        limits=limits,
        columns=declared,
        engine=engine_options(args),
        commit=args.commit,
    )
    out = sys.stdout
    print(
        f"logs:   {report.log_rows_read:,} rows read, {report.log_rows_written:,} written, "
        f"{report.log_rows_rejected:,} rejected",
        file=out,
    )
    print(
        f"tracks: {report.track_rows_read:,} rows read, {report.track_rows_written:,} written, "
        f"{report.track_rows_rejected:,} rejected",
        file=out,
    )
    if report.challenge:
        for what in ("prehistory", "input"):
            read, written, rejected = (
                getattr(report, f"{what}_rows_{k}") for k in ("read", "written", "rejected")
            )
            print(
                f"challenge {what}: {read:,} rows read, {written:,} written, {rejected:,} rejected",
                file=out,
            )
        c = report.challenge
        print(
            f"challenge sessions: {c.get('input_sessions', 0):,} to predict; "
            f"{c.get('sessions_without_prehistory', 0):,} without prehistory, "
            f"{c.get('sessions_without_input', 0):,} without input (kept apart under "
            f"{Path(report.store) / 'challenge'}/)",
            file=out,
        )
    findings = ", ".join(
        f"{k.replace('_', ' ')}: {'n/a' if v is None else f'{v:,}'}"
        for k, v in report.integrity.items()
    )
    print(f"integrity (whole store, rows kept): {findings}", file=out)
    if report.user_columns:
        print(f"user columns kept: {describe(report.user_columns)}", file=out)
    if report.ignored_columns:
        listed = ", ".join(f"{k} ({v} file(s))" for k, v in report.ignored_columns.items())
        print(
            f"columns not kept (not declared; listed per source in manifest.json): {listed}",
            file=out,
        )
    already = report.already_ingested
    if already:
        more = f" and {len(already) - 3} more" if len(already) > 3 else ""
        print(
            "already in the store (counted once above, not written again): "
            f"{len(already)} input(s): {', '.join(already[:3])}{more}",
            file=out,
        )
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} file(s), listed with the reason in manifest.json:",
            file=out,
        )
        for name in report.skipped[:SHOWN_SKIPPED]:
            print(f"  {name}: {report.skip_reasons[name]}", file=out)
        if len(report.skipped) > SHOWN_SKIPPED:
            print(f"  ... and {len(report.skipped) - SHOWN_SKIPPED} more", file=out)
    rejected = (
        report.log_rows_rejected
        + report.track_rows_rejected
        + report.prehistory_rows_rejected
        + report.input_rows_rejected
    )
    if rejected:
        print(f"rejected rows (with line and reason): {report.rejected_dir}/", file=out)
    t = report.totals
    print(
        f"store {report.store} ({report.n_buckets} buckets): "
        f"{t['log_rows_written']:,} session rows, {t['track_rows_written']:,} track rows",
        file=out,
    )
    return 0
