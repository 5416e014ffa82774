"""The ``skipmodel`` command line: a thin layer over the Python API.

Each verb lives in ``skipmodel.commands.<verb>`` with two functions, ``add_arguments(parser)``
and ``run(args) -> int``; they are imported only when the verb is used, so ``skipmodel ingest``
never pays for importing PyMC. Every failure the user can fix is a :class:`SkipmodelError`,
printed as one line with exit status 2, and so is a refusal of the environment (a full disk,
a read-only or forbidden location: :func:`skipmodel.errors.environment_problem`). Anything
else is a bug of ours: one line, exit status 1; set ``SKIPMODEL_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from skipmodel.errors import SkipmodelError, environment_problem

#: verb -> one-line help. Order is the order of the data flow.
VERBS: dict[str, str] = {
    "simulate": "write MSSD-format synthetic data with known effects (and the truth as JSON)",
    "ingest": "turn raw MSSD files (tar.gz, folders, csv, csv.gz) into a Parquet store",
    "compact": "merge each bucket of a store into one sorted file (ingest ends with this)",
    "sample": "write a deterministic session sample with track and lag features as Parquet",
    "explore": "standard exploratory figures and tables from a store",
    "cpdag": "PC algorithm (Gaussian CI test) on track features",
    "fit": "fit a Bayesian skip model from a store",
    "predict": "posterior skip probabilities for plays in a store",
    "evaluate": "score a WSDM Cup 2019 submission (mean average accuracy, first-prediction)",
    "report": "diagnostics, effects, checks and comparison for fitted runs",
}


def _command_module(verb: str):  # noqa: ANN202 - a module
    return importlib.import_module(f"skipmodel.commands.{verb}")


def build_parser(verbs: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skipmodel",
        description="How likely is a listener to skip this track? Models for MSSD-shaped data.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in verbs if verbs is not None else VERBS:
        p = sub.add_parser(verb, help=VERBS[verb], description=VERBS[verb])
        try:
            module = _command_module(verb)
        except ModuleNotFoundError:
            p.set_defaults(_missing=True)
            continue
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Build only the requested verb's parser so unrelated imports stay lazy.
    chosen = next((a for a in argv if a in VERBS), None)
    parser = build_parser([chosen] if chosen else None)
    args = parser.parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"skipmodel {args.verb}: error: not available in this version", file=sys.stderr)
        return 2
    try:
        return int(_command_module(args.verb).run(args) or 0)
    except SkipmodelError as exc:
        print(f"skipmodel {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skipmodel {args.verb}: interrupted; re-run to resume safely", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: still one line, with a way to see more
        if os.environ.get("SKIPMODEL_DEBUG"):
            raise
        problem = environment_problem(exc)
        if problem is not None:  # not a bug: the system refused (disk full, read-only, ...)
            print(f"skipmodel {args.verb}: error: {problem}", file=sys.stderr)
            return 2
        print(
            f"skipmodel {args.verb}: internal error: {type(exc).__name__}: {exc} "
            "(re-run with SKIPMODEL_DEBUG=1 for a traceback and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
