"""CPDAG of numeric features: the PC algorithm with a Gaussian CI test, matching R's pcalg.

Public API::

    pc(corr, n, *, names=..., alpha=0.01, ...) -> CPDAGResult
    correlation_from_store(store, ...) -> CorrelationResult
    correlation_from_csv(path, ...) -> CorrelationResult
"""

from __future__ import annotations

from skipmodel.cpdag.corr import (
    CorrelationResult,
    Transforms,
    correlation_from_csv,
    correlation_from_store,
)
from skipmodel.cpdag.pc import CPDAGResult, Edge, PCOptions, pc

__all__ = [
    "CPDAGResult",
    "CorrelationResult",
    "Edge",
    "PCOptions",
    "Transforms",
    "correlation_from_csv",
    "correlation_from_store",
    "pc",
]
