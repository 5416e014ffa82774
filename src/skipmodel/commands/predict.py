"""``skipmodel predict``: posterior skip probabilities per play from a fitted run, or a WSDM Cup
2019 submission for the challenge's test sessions in a store (``--challenge STORE``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skipmodel.commands import store_location
from skipmodel.store.layout import atomic_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skipmodel.model.prediction import INTERVAL, REVEALS

    parser.add_argument("run", type=Path, help="run directory written by 'skipmodel fit'")
    parser.add_argument("--store", type=store_location, help="store directory (from ingest)")
    parser.add_argument(
        "--challenge",
        type=Path,
        metavar="STORE",
        help="instead of --store: write the WSDM Cup 2019 submission for the challenge's test "
        "sessions ingested into STORE (log_prehistory_* and log_input_* files)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output Parquet file (submission text file)"
    )
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
        "--interval",
        type=float,
        default=None,
        metavar="W",
        help=f"width of the central interval p_lo .. p_hi, 0 < W < 1 ({INTERVAL})",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=None,
        metavar="N",
        help="also write P(skip) of each play under N posterior draws (a random subset, seeded "
        "by --seed), as columns p_draw_0 .. p_draw_{N-1} after p_hi",
    )
    parser.add_argument(
        "--max-draws", type=int, default=1000, help="posterior draws used at most (1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for draws and simulations (0)")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from skipmodel.errors import SkipmodelError
    from skipmodel.model.data import load_plays, run_sample
    from skipmodel.model.fitting import load_run
    from skipmodel.model.prediction import INTERVAL, check_interval, predict, predict_draws

    if args.max_draws is not None and args.max_draws < 1:
        raise SkipmodelError("--max-draws must be a positive integer")
    if args.interval is not None:
        check_interval(args.interval, "--interval")
    if args.draws is not None and args.draws < 1:
        raise SkipmodelError(f"--draws must be a positive integer, got {args.draws}")
    if (args.store is None) == (args.challenge is None):
        raise SkipmodelError("give --store DIR (plays) or --challenge STORE (a submission)")
    result = load_run(args.run)
    if args.challenge is not None:
        return _challenge(args, result)
    changes: dict[str, object] = {"split": None if args.split == "all" else args.split}
    if args.fraction is not None:
        changes["fraction"] = args.fraction
    try:
        # a run fitted from Python on a frame reads the store's sessions its spec needs
        sample = run_sample(result.manifest, result.spec, **changes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SkipmodelError(
            f"run folder {args.run} is damaged: data.json's sample spec cannot be read ({exc}); "
            "re-run skipmodel fit to write it again"
        ) from None
    if args.reveal != "wsdm" and not args.sequential:
        raise SkipmodelError("--reveal applies only with --sequential")
    if args.draws is not None:
        posterior = result.posterior["posterior"]
        available = posterior.sizes["chain"] * posterior.sizes["draw"]
        if args.draws > available:
            raise SkipmodelError(
                f"--draws {args.draws}: {args.run} holds {available} posterior draws; "
                f"ask for at most {available}"
            )
    plays = load_plays(args.store, sample, result.spec)
    how = {"sequential": args.sequential, "reveal": args.reveal, "seed": args.seed}
    interval = INTERVAL if args.interval is None else args.interval
    table = predict(result, plays, interval=interval, max_draws=args.max_draws, **how)
    if args.draws is not None:
        p = predict_draws(result, plays, max_draws=args.draws, **how)
        columns = [f"p_draw_{k}" for k in range(args.draws)]
        table = table.join(pd.DataFrame(p.values.T, index=table.index, columns=columns))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp)
    print(
        f"{len(table)} plays predicted (mean p_skip {table['p_skip'].mean():.3f}) -> {args.out}",
        file=sys.stderr,
    )
    return 0


def _challenge(args: argparse.Namespace, result: object) -> int:
    """The submission: each challenge session's second half predicted from its first half as
    the challenge revealed it, bucket by bucket; one line per session in ``log_input`` order."""
    import pandas as pd

    from skipmodel.errors import SkipmodelError
    from skipmodel.load.challenge import iter_challenge_parts, submission_order
    from skipmodel.model.prediction import predict
    from skipmodel.progress import Progress

    if args.sequential or args.reveal != "wsdm" or args.fraction is not None:
        raise SkipmodelError(
            "--challenge predicts every test session as the challenge revealed it: "
            "drop --sequential, --reveal and --fraction"
        )
    if args.interval is not None or args.draws is not None:
        raise SkipmodelError(
            "--challenge writes 0/1 per play (P >= 0.5): drop --interval and --draws"
        )
    if args.split != "test":
        raise SkipmodelError("--split does not apply with --challenge")
    lines: dict[str, str] = {}
    firsts = []
    n_plays = 0
    with Progress("challenge sessions", unit="buckets") as bar:
        for plays, first in iter_challenge_parts(args.challenge):
            firsts.append(first)
            frame = plays.to_pandas()
            if not len(frame):
                continue
            pred = predict(
                result,  # type: ignore[arg-type]
                frame,
                sequential=True,
                max_draws=args.max_draws,
                seed=args.seed,
            )
            pred = pred.sort_values(["session_id", "session_position"], kind="mergesort")
            digits = pd.Series(
                (pred["p_skip"].to_numpy() >= 0.5).astype(int).astype(str), index=pred.index
            )
            lines.update(digits.groupby(pred["session_id"].to_numpy(), sort=False).agg("".join))
            n_plays += len(pred)
            bar.advance(1)
    order = submission_order(firsts)
    missing = [s for s in order if s not in lines]
    if missing:
        raise SkipmodelError(
            f"{len(missing)} challenge sessions got no second-half prediction "
            f"(first: {missing[0]}); is their log_input complete?"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp, open(tmp, "w", encoding="ascii") as fh:
        fh.writelines(lines[s] + "\n" for s in order)
    print(
        f"{len(order):,} sessions, {n_plays:,} second-half plays predicted "
        f"(skip share {sum(v.count('1') for v in lines.values()) / max(n_plays, 1):.3f}) "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0
