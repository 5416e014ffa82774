"""Data with a known truth: MSSD-format files (:mod:`.mssd`, ``skipmodel simulate``), small
in-memory plays shaped like the loaders' output (:mod:`.plays`), and the helpers that judge
whether a fit recovers what was put in (:mod:`.recovery`).
"""

from skipmodel.simulate.mssd import SimulationResult, simulate

__all__ = ["SimulationResult", "simulate"]
