"""``skipmodel simulate --out DIR``: MSSD-format demo data with a known truth."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--sessions", type=int, default=20_000, help="number of sessions (default 20000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--tracks",
        type=int,
        default=None,
        help="track catalogue size (default: 2 x sessions, within 1000..200000)",
    )
    parser.add_argument(
        "--start-date", default="2018-07-15", help="first day, YYYY-MM-DD (default 2018-07-15)"
    )
    parser.add_argument(
        "--days", type=int, default=7, help="number of days, one file group each (default 7)"
    )


def run(args: argparse.Namespace) -> int:
    from skipmodel.simulate.mssd import simulate

    result = simulate(
        args.out,
        sessions=args.sessions,
        seed=args.seed,
        tracks=args.tracks,
        start_date=args.start_date,
        days=args.days,
    )
    print(
        f"simulated {result.n_sessions:,} sessions, {result.n_plays:,} plays, "
        f"{result.n_tracks:,} tracks in {result.seconds:.1f} s "
        f"(skip_2 rate {result.skip_2_rate:.3f})\n"
        f"  {result.training_set} ({result.n_log_files} log files)\n"
        f"  {result.track_features}\n"
        f"  {result.truth}"
    )
    return 0
