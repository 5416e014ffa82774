"""The ``skipmodel`` command line: a thin layer over the Python API.

Each verb lives in ``skipmodel.commands.<verb>`` with two functions, ``add_arguments(parser)``
and ``run(args) -> int``; they are imported only when the verb is used, so ``skipmodel ingest``
never pays for importing PyMC. Every failure the user can fix is a :class:`SkipmodelError`,
printed as one line with exit status 2, and so is a refusal of the environment (a full disk,
a read-only or forbidden location: :func:`skipmodel.errors.environment_problem`). Anything
else is a bug of ours: one line, exit status 1; set ``SKIPMODEL_DEBUG=1`` to see tracebacks.

Options are spelt out in full (no parser accepts prefixes: ``--draw 10`` is not ``--draws``); an
unknown option is refused with the verb's usage and the closest valid spelling, exit status 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence

from skipmodel import __version__
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
    """The ``skipmodel`` parser with the subparsers of ``verbs`` (default: every verb)."""
    return _parsers(verbs)[0]


def _parsers(
    verbs: Sequence[str] | None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each verb's subparser, by verb."""
    parser = argparse.ArgumentParser(
        prog="skipmodel",
        description="How likely is a listener to skip this track? Models for MSSD-shaped data.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    by_verb = {}
    for verb in verbs if verbs is not None else VERBS:
        p = sub.add_parser(verb, help=VERBS[verb], description=VERBS[verb], allow_abbrev=False)
        by_verb[verb] = p
        try:
            module = _command_module(verb)
        except ModuleNotFoundError:
            p.set_defaults(_missing=True)
            continue
        module.add_arguments(p)
    return parser, by_verb


def _options(parser: argparse.ArgumentParser) -> list[str]:
    # argparse offers no public list of a parser's options
    return [s for action in parser._actions for s in action.option_strings]


def unknown_options(parser: argparse.ArgumentParser, args: Sequence[str]) -> list[str]:
    """The long options among ``args`` (before a bare ``--``) that ``parser`` does not define.

    Found before parsing, so a misspelt ``--stor`` is named rather than the ``--store`` it
    leaves missing.
    """
    valid = set(_options(parser))
    given = args[: args.index("--")] if "--" in args else args
    return [a for a in given if a.startswith("--") and a.split("=", 1)[0] not in valid]


def unrecognized(parser: argparse.ArgumentParser, extra: Sequence[str]) -> str:
    """The error of arguments ``parser`` does not know, with the closest valid option for each
    unknown option (``--chians`` -> ``--chains``)."""
    valid = _options(parser)
    close = {}
    for arg in extra:
        name = arg.split("=", 1)[0]
        if name.startswith("-") and not name[1:2].isdigit():
            match = difflib.get_close_matches(name, valid, n=1)
            if match:
                close[name] = match[0]
    message = f"unrecognized argument{'s' if len(extra) > 1 else ''}: {' '.join(extra)}"
    if len(close) == 1:
        message += f" (did you mean {next(iter(close.values()))}?)"
    elif close:
        message += f" (did you mean {', '.join(f'{v} for {k}' for k, v in close.items())}?)"
    return message


def store_locations(argv: list[str]) -> list[str]:
    """``argv`` with each ``--store`` given as a ``file://`` URI turned into its path; other
    URIs stay (a location pyarrow cannot open is refused in one line:
    :func:`skipmodel.store.location.store_path`)."""
    from skipmodel.store.fspath import FsPath
    from skipmodel.store.location import store_path

    def local(text: str) -> str:
        found = store_path(text)  # other filesystems: opened here, so a bad URI fails first
        return text if isinstance(found, FsPath) else str(found)

    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--store=") and "://" in arg:
            out[i] = "--store=" + local(arg.split("=", 1)[1])
        elif i > 0 and out[i - 1] == "--store" and "://" in arg:
            out[i] = local(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Build only the requested verb's parser so unrelated imports stay lazy.
    chosen = next((a for a in argv if a in VERBS), None)
    parser, by_verb = _parsers([chosen] if chosen else None)
    # what follows the verb is the verb's: refused with its usage (exit status 2)
    if chosen is not None:
        unknown = unknown_options(by_verb[chosen], argv[argv.index(chosen) + 1 :])
        if unknown:
            by_verb[chosen].error(unrecognized(by_verb[chosen], unknown))
    try:
        argv = store_locations(argv)
    except SkipmodelError as exc:
        print(f"skipmodel {chosen}: error: {exc}", file=sys.stderr)
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:
        verb_parser = by_verb.get(args.verb, parser)
        verb_parser.error(unrecognized(verb_parser, extra))
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
