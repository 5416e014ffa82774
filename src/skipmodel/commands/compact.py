"""``skipmodel compact --store DIR``: merge each bucket of a store into one sorted file.

``skipmodel ingest`` already ends with this step; the verb is for stores written with
``ingest(..., compact=False)`` or by an older version, and to finish a compaction that was
interrupted. Safe to run any number of times.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="DIR", help="store folder to compact")


def run(args: argparse.Namespace) -> int:
    from skipmodel.ingest.compact import compact

    report = compact(args.store)
    print(
        f"store {report.store}: {report.buckets_compacted} bucket(s) merged from "
        f"{report.parts_replaced} part file(s), {report.buckets_unchanged} already compact; "
        f"whole sessions: {report.duplicate_session_positions:,} duplicate positions, "
        f"{report.incomplete_sessions:,} incomplete",
        file=sys.stdout,
    )
    return 0
