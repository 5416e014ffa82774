"""Hierarchical Bayesian logistic models of skips: spec -> design -> PyMC model -> fit -> predict.

Layers, with plain data between them:

- :mod:`.spec` — :class:`ModelSpec` and its terms (seasonal, markov, smooth, pooled, fixed), TOML
  load/dump with validation, the registry of named variants (``models/*.toml``). No PyMC.
- :mod:`.design` — plays -> :class:`Design`: integer codes, standardised floats, small basis
  tables, fitted :class:`Encoders`; the leakage rule. No PyMC.
- :mod:`.terms` — each term's PyMC piece and its NumPy twin for prediction.
- :mod:`.build` — the only place a ``pm.Model`` is created; swappable likelihood.
- :mod:`.fitting` — :func:`fit`: nutpie / PyMC NUTS, ADVI, Pathfinder; run directories;
  ``load_run``.
- :mod:`.prediction` — :func:`predict`: posterior skip probabilities, unseen levels, sequential
  second halves.

Examples
--------
>>> from skipmodel.model import fit, get_variant, predict
>>> result = fit(get_variant("markov"), train_plays, chains=4)  # doctest: +SKIP
>>> table = predict(result, test_plays)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from skipmodel.model.design import Design, Encoders, build_design, check_leakage
from skipmodel.model.spec import (
    VARIANTS,
    Fixed,
    Inference,
    Markov,
    ModelSpec,
    Pooled,
    Priors,
    Seasonal,
    Smooth,
    get_variant,
    register_variant,
    resolve_model,
)

# PyMC-dependent names load on first use, so reading a spec never imports PyMC. No submodule
# shares a function's name, so ``from skipmodel.model import fit, predict`` gives the functions.
_LAZY = {
    "build_model": "skipmodel.model.build",
    "fit": "skipmodel.model.fitting",
    "FitOptions": "skipmodel.model.fitting",
    "FitResult": "skipmodel.model.fitting",
    "predict": "skipmodel.model.prediction",
    "load_run": "skipmodel.model.fitting",
    "save_run": "skipmodel.model.fitting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skipmodel.model' has no attribute {name!r}")


__all__ = [
    "VARIANTS",
    "Design",
    "Encoders",
    "Fixed",
    "Inference",
    "Markov",
    "ModelSpec",
    "Pooled",
    "Priors",
    "Seasonal",
    "Smooth",
    "build_design",
    "check_leakage",
    "get_variant",
    "register_variant",
    "resolve_model",
    *_LAZY,
]
