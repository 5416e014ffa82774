"""Where a pass runs: the ``--engine local|spark`` and ``--spark-master URL`` options."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from skipmodel.errors import SkipmodelError

#: The engines a pass can run on.
ENGINES = ("local", "spark")
#: The Spark master used when neither ``--spark-master`` nor ``$SPARK_MASTER`` names one.
DEFAULT_MASTER = "local[*]"


@dataclass(frozen=True)
class EngineOptions:
    """Which engine runs the tasks of a pass, and (for Spark) on which cluster.

    Attributes
    ----------
    name
        ``"local"``: every task in this process, one after another; ``"spark"``: one Spark task
        per item, on the executors of ``master``.
    master
        The Spark master URL (``--spark-master``); None means ``$SPARK_MASTER``, else
        ``local[*]`` (see :meth:`spark_master`).
    """

    name: str = "local"
    master: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise SkipmodelError(
                f"unknown engine {self.name!r}; choose one of {', '.join(ENGINES)}"
            )

    def spark_master(self) -> str:
        """The master URL a Spark run connects to: the option, ``$SPARK_MASTER``, ``local[*]``."""
        return self.master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine local|spark`` and ``--spark-master URL`` to a verb's parser."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where the work runs: this process (local, default) or a Spark cluster "
        "(spark; needs pip install 'skipmodel[spark]' and Java 17+)",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help=f"Spark master for --engine spark (default $SPARK_MASTER, else {DEFAULT_MASTER}); "
        "e.g. spark://host:7077 or local[4]",
    )


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` of parsed arguments (``--spark-master`` needs ``--engine
    spark``)."""
    name = getattr(args, "engine", "local") or "local"
    master = getattr(args, "spark_master", None)
    if master is not None and name != "spark":
        raise SkipmodelError("--spark-master needs --engine spark")
    return EngineOptions(name=name, master=master)
