"""Reports on fitted runs: trust diagnostics, effects, predictive checks, held-out metrics,
model comparison — one self-contained ``index.html``.

Layers (plain data between them):

- :mod:`~skipmodel.report.metrics` — log loss, Brier, AUC, accuracy, ECE, reliability curve,
  WSDM Cup 2019 mean average accuracy and first-prediction accuracy (NumPy only);
- :mod:`~skipmodel.report.submission` — WSDM Cup 2019 submission files: write, read, score;
- :mod:`~skipmodel.report.baselines` — overall rate, per-track rate (shrunk), repeat last skip;
- :mod:`~skipmodel.report.diagnostics` — the trust banner's rules (MCMC, or a nested-Laplace
  fit's mode) and the summary table; :mod:`~skipmodel.report.laplace` — how a nested-Laplace
  fit reached its mode (passes, hyperparameters);
- :mod:`~skipmodel.report.effects`, :mod:`~skipmodel.report.checks` — posterior effects on the
  probability scale, posterior predictive checks, memory-in-chains surfaces;
- :mod:`~skipmodel.report.compare` — PSIS-LOO (subsampled for large data) and comparison;
- :mod:`~skipmodel.report.figures`, :mod:`~skipmodel.report.html` — PNGs and the page;
- :mod:`~skipmodel.report.runs` — a ``RUN/`` directory and its store as
  :class:`~skipmodel.report.inputs.RunInputs`;
- :mod:`~skipmodel.report.sections` — one run's sections (diagnostics, effects, predictive
  checks); :mod:`~skipmodel.report.heldout` — the sections across runs (held-out metrics,
  comparison, summary);
- :mod:`~skipmodel.report.report` — ``report(runs, out)``, the orchestration.

Examples
--------
>>> from skipmodel.report import load_run_inputs, report          # doctest: +SKIP
>>> report([load_run_inputs("runs/markov")], "reports/markov")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReportOptions", "ReportResult", "RunInputs", "load_run_inputs", "report"]

_LAZY = {
    "ReportOptions": "skipmodel.report.report",
    "ReportResult": "skipmodel.report.report",
    "report": "skipmodel.report.report",
    "RunInputs": "skipmodel.report.inputs",
    "load_run_inputs": "skipmodel.report.runs",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the metrics need neither matplotlib nor ArviZ.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skipmodel.report' has no attribute {name!r}")
