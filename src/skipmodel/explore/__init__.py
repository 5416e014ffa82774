"""Exploration: the standard views of skip data, computed by streaming over a store.

``explore(store, out_dir, options)`` reads the store through the loaders in bounded memory
(see :mod:`.passes` for the pass plan and :mod:`.accumulators` for the memory bounds) and writes,
per view, ``<view>.png`` and the tables behind it as CSV, plus ``summary.txt``, ``summary.json``
and an ``index.html`` gallery.

Examples
--------
>>> from skipmodel.explore import ExploreOptions, explore
>>> explore("data/store", "reports/explore", ExploreOptions(fraction=0.1))  # doctest: +SKIP
"""

from __future__ import annotations

from skipmodel.explore.options import VIEWS, ExploreOptions
from skipmodel.explore.output import ExploreOutput, explore, write_outputs
from skipmodel.explore.passes import Results, StoreSources, compute

__all__ = [
    "VIEWS",
    "ExploreOptions",
    "ExploreOutput",
    "Results",
    "StoreSources",
    "compute",
    "explore",
    "write_outputs",
]
