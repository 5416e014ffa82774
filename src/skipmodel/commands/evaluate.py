"""``skipmodel evaluate``: score a WSDM Cup 2019 submission against known second-half outcomes."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submission",
        type=Path,
        metavar="SUBMISSION",
        help="submission text file: one line of 0/1 predictions per test session",
    )
    parser.add_argument(
        "--truth",
        required=True,
        type=Path,
        action="append",
        metavar="FILE",
        help="known outcomes: CSV of session_id, session_position, skip_2, or a session log "
        "(.csv, .csv.gz; the second half is selected by session_length); repeat for more files",
    )
    parser.add_argument(
        "--order",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="the challenge's log_input_*.csv files, whose order of first appearance of "
        "session_id is the order of the lines (default: the order of the truth); takes every "
        "file up to the next option, so give SUBMISSION first",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from skipmodel.report.submission import (
        read_session_order,
        read_submission,
        read_truth,
        score_submission,
    )
    from skipmodel.store.layout import atomic_write_json

    lines = read_submission(args.submission)
    truth = read_truth(args.truth)
    order = read_session_order(args.order) if args.order else None
    scores = score_submission(lines, truth, order=order)
    if args.json is not None:
        atomic_write_json(
            args.json,
            {
                **scores.as_dict(),
                "submission": str(args.submission),
                "truth": [str(p) for p in args.truth],
                "order": [str(p) for p in args.order] if args.order else None,
            },
        )
    print(
        f"mean average accuracy {scores.mean_average_accuracy:.4f}, "
        f"first-prediction accuracy {scores.first_prediction_accuracy:.4f} "
        f"({scores.n_sessions:,} sessions, {scores.n_plays:,} plays)"
    )
    return 0
