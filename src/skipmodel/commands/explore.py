"""``skipmodel explore``: the standard exploratory figures and tables of a store."""

from __future__ import annotations

import argparse

from skipmodel.errors import SkipmodelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipmodel.explore.options import VIEWS

    parser.add_argument(
        "--store", required=True, help="store directory written by 'skipmodel ingest'"
    )
    parser.add_argument(
        "--out", required=True, help="output directory for PNGs, CSVs and index.html"
    )
    parser.add_argument(
        "--fraction", type=float, default=1.0, help="share of sessions to read (default 1.0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument(
        "--views",
        default=",".join(VIEWS),
        help=f"comma-separated views (default all: {','.join(VIEWS)})",
    )
    parser.add_argument(
        "--skip",
        default="skip_2",
        help="skip definition: skip_1, skip_2 (default), skip_3, not_skipped",
    )
    parser.add_argument(
        "--feature",
        default="danceability",
        help="feature of the memory-in-chains grid (default danceability)",
    )
    parser.add_argument(
        "--duration-feature",
        default="acousticness",
        help="feature plotted against duration (default acousticness)",
    )
    parser.add_argument(
        "--duration-step",
        type=float,
        default=10.0,
        help="duration rounding step in seconds (default 10)",
    )
    parser.add_argument(
        "--top-tracks",
        type=int,
        default=50,
        help="most played tracks in the transitions view (default 50)",
    )
    parser.add_argument(
        "--order-by",
        default=None,
        help="order the transitions view by this track feature instead of popularity",
    )
    parser.add_argument(
        "--min-count",
        type=int,
        default=30,
        help="memory-in-chains cells with fewer plays are masked (default 30)",
    )
    parser.add_argument(
        "--bins",
        type=int,
        default=10,
        help="bins per axis of the memory-in-chains grid (default 10)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="processes for the figures and, from 3 on, the log pass (default 0: one per CPU, "
        "at most 8; 1: all in this process); the results do not depend on it",
    )
    from skipmodel.engine import add_engine_arguments

    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from skipmodel.explore import ExploreOptions, explore

    views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    if not views:
        raise SkipmodelError("--views is empty; give at least one view name")
    options = ExploreOptions(
        views=views,
        skip=args.skip,
        feature=args.feature,
        duration_feature=args.duration_feature,
        duration_step=args.duration_step,
        top_tracks=args.top_tracks,
        order_by=args.order_by,
        min_count=args.min_count,
        bins=args.bins,
        fraction=args.fraction,
        seed=args.seed,
        jobs=args.jobs,
    )
    from skipmodel.engine import engine_options

    output = explore(args.store, args.out, options, progress=True, engine=engine_options(args))
    for line in output.summary.lines():
        print(line)
    skipped = f" ({len(output.skipped)} skipped, see above)" if output.skipped else ""
    print(f"wrote {len(output.images)} views to {output.index}{skipped}")
    return 0
