"""Where a pass's tasks run: in this process, or as Spark tasks on a cluster.

The engine schedules skipmodel's own functions; it never re-implements a pass. A caller hands
:func:`run_tasks` a module-level function and a list of picklable items (input files, bucket
numbers) and merges the results itself. With ``--engine local`` the tasks run here, one after
another; with ``--engine spark`` each item is one Spark task (:mod:`skipmodel.engine.spark`),
and :func:`iter_tasks` hands results back in order as they finish.
"""

from skipmodel.engine.options import (
    DEFAULT_MASTER,
    ENGINES,
    EngineOptions,
    add_engine_arguments,
    engine_options,
)
from skipmodel.engine.tasks import iter_tasks, run_tasks

__all__ = [
    "DEFAULT_MASTER",
    "ENGINES",
    "EngineOptions",
    "add_engine_arguments",
    "engine_options",
    "iter_tasks",
    "run_tasks",
]
