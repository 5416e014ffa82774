"""Hierarchical Bayesian logistic models of skips: spec -> design -> PyMC model -> fit -> predict.

Layers, with plain data between them:

- :mod:`.spec` — :class:`ModelSpec` and its terms (seasonal, markov, smooth, pooled, fixed), TOML
  load/dump with validation, the registry of named variants (``models/*.toml``). No PyMC.
- :mod:`.design` — plays -> :class:`Design`: integer codes, standardised floats, small basis
  tables, fitted :class:`Encoders`; the leakage rule. No PyMC.
- :mod:`.terms` — each term's PyMC piece and its NumPy twin for prediction.
- :mod:`.build` — the only place a ``pm.Model`` is created; swappable likelihood.
- :mod:`.fit` — nutpie / PyMC NUTS, ADVI, Pathfinder; run directories; ``load_run``.
- :mod:`.predict` — posterior skip probabilities, unseen levels, sequential second halves.

Examples
--------
>>> from skipmodel.model import get_variant
>>> from skipmodel.model.fit import fit, load_run                      # doctest: +SKIP
>>> from skipmodel.model.predict import predict                        # doctest: +SKIP
>>> result = fit(get_variant("markov"), train_plays, chains=4)         # doctest: +SKIP
>>> table = predict(result, test_plays)                                # doctest: +SKIP
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

# PyMC-dependent names load on first use, so reading a spec never imports PyMC. (The functions
# fit / predict / build share their submodules' names: import them from the submodules.)
_LAZY = {
    "build_model": "skipmodel.model.build",
    "FitResult": "skipmodel.model.fit",
    "load_run": "skipmodel.model.fit",
    "save_run": "skipmodel.model.fit",
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
