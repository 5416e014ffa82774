"""``skipmodel simulate --out DIR``: MSSD-format demo data with a known truth.

``--challenge-fraction F`` also writes a share F of the sessions as the WSDM Cup 2019 test set
(``DIR/test_set.tar.gz``, answers in ``DIR/challenge_truth.csv``) instead of as training logs.
``--session-sd S`` gives every session a logit-scale propensity drawn normal(0, S²) (the
listener's mood), added to the skip logit of each of its plays; the values are written to
``DIR/truth_sessions.parquet``. S = 0 (the default) writes the data of a run without it.
``--structure NAME`` shapes the data otherwise (see :mod:`skipmodel.simulate.structure`):
``strong`` (a strong previous-skip effect and danceability jump), ``heavy`` (Student-t track
effects, power-law plays per track, uniform session lengths), ``mixture`` (a two-component
track-effect mixture, a step duration effect, short sessions); ``default`` is the usual data.
"""

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
    parser.add_argument(
        "--challenge-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of sessions in [0, 1) written as the challenge's test set "
        "(test_set.tar.gz: log_prehistory_/log_input_ files per day) with their second-half "
        "skip_2 in challenge_truth.csv, instead of in the training logs (default 0)",
    )
    parser.add_argument(
        "--session-sd",
        type=float,
        default=0.0,
        metavar="S",
        help="sd of a per-session propensity on the logit scale, drawn normal(0, S^2) and added "
        "to every play of the session (the intercept is not re-calibrated, so the skip rate "
        "moves); values in truth_sessions.parquet (default 0: none)",
    )

    parser.add_argument(
        "--structure",
        default="default",
        choices=("default", "strong", "heavy", "mixture"),
        help="shape of the generator: track-effect distribution, plays per track, effect forms "
        "and sizes, session-length mix (default: default; recorded in truth.json)",
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
        challenge_fraction=args.challenge_fraction,
        session_sd=args.session_sd,
        structure=args.structure,
    )
    print(
        f"simulated {result.n_sessions:,} sessions, {result.n_plays:,} plays, "
        f"{result.n_tracks:,} tracks in {result.seconds:.1f} s "
        f"(skip_2 rate {result.skip_2_rate:.3f}; structure {args.structure})\n"
        f"  {result.training_set} ({result.n_log_files} log files)\n"
        f"  {result.track_features}\n"
        f"  {result.truth}"
    )
    if result.truth_sessions is not None:
        print(f"session propensity sd {result.session_sd:g}\n  {result.truth_sessions}")
    if result.test_set is not None:
        print(
            f"challenge: {result.n_challenge_sessions:,} sessions held out; plays: "
            f"{result.n_training_plays:,} training + {result.n_prehistory_plays:,} prehistory "
            f"+ {result.n_input_plays:,} input = {result.n_plays:,}\n"
            f"  {result.test_set} ({result.n_test_files} files)\n"
            f"  {result.challenge_truth}"
        )
    return 0
