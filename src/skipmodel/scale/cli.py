"""Options of ``skipmodel fit`` for full-data scale.

The CLI verbs are fixed, so scale adds options to ``fit`` rather than a verb::

    skipmodel fit --store DIR --model M --out RUN --aggregate --bins danceability=20,duration=50
    skipmodel fit --store DIR --model M --out RUN --minibatch [--batch-size 4096] [--epochs 3]

``fit``'s ``add_arguments`` calls :func:`add_arguments`; its ``run`` puts these options into the
one :class:`~skipmodel.model.options.FitOptions` with the others (``--aggregate`` is
``inference="cells"``, ``--minibatch`` is ``inference="minibatch"``) and calls the one fit entry,
which refuses an option the chosen path does not read.
"""

from __future__ import annotations

import argparse

from skipmodel.errors import SkipmodelError


def parse_bins(text: str | None) -> dict[str, int]:
    """``"danceability=20,energy=10"`` -> ``{"danceability": 20, "energy": 10}``."""
    out: dict[str, int] = {}
    for item in filter(None, (text or "").split(",")):
        column, _, n = item.partition("=")
        if not n.strip().isdigit() or int(n) < 1:
            raise SkipmodelError(
                f"--bins: expected COLUMN=N with N a positive integer, got {item!r}"
            )
        out[column.strip()] = int(n)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the scale options to ``skipmodel fit`` (unset defaults: the fit entry fills them)."""
    group = parser.add_argument_group("full-data scale")
    how = group.add_mutually_exclusive_group()
    how.add_argument(
        "--aggregate",
        action="store_true",
        help="fit on covariate cells (exact when every term is discrete or binned)",
    )
    how.add_argument(
        "--minibatch",
        action="store_true",
        help="streaming minibatch ADVI over the store (any model; approximate)",
    )
    group.add_argument(
        "--bins", default=None, metavar="COL=N,...", help="equal-width bins for --aggregate"
    )
    group.add_argument(
        "--batch-size", type=int, default=None, help="minibatch rows (--minibatch; 4096)"
    )
    group.add_argument(
        "--epochs", type=int, default=None, help="max minibatch epochs (--minibatch; 3)"
    )
    group.add_argument(
        "--full-rank",
        action="store_true",
        help="full-rank instead of mean-field Gaussian (--minibatch)",
    )


def inference_of(args: argparse.Namespace) -> str | None:
    """The inference path the scale flags select: ``cells``, ``minibatch``, or none (the first
    path offering ``--method``: rows, or the passes of ``--method laplace``)."""
    if args.aggregate:
        return "cells"
    return "minibatch" if args.minibatch else None


__all__ = ["add_arguments", "inference_of", "parse_bins"]
