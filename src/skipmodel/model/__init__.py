"""Hierarchical Bayesian logistic models of skips: spec -> design -> PyMC model -> fit -> predict.

Layers, with plain data between them:

- :mod:`.spec` — :class:`ModelSpec` and its terms (seasonal, markov, smooth, pooled, fixed, interaction), TOML
  load/dump with validation, the registry of named variants (``models/*.toml``). No PyMC.
- :mod:`.design` — plays -> :class:`Design`: integer codes, standardised floats, small basis
  tables, fitted :class:`Encoders`; the leakage rule. No PyMC.
- :mod:`.terms` — one module per term kind (design, PyMC piece, NumPy twin, gradient sums,
  aggregation, report drawing) behind one registry, ``KINDS``; :mod:`.encoders` the level rules.
- :mod:`.build` — the only place a ``pm.Model`` is created; swappable likelihood.
- :mod:`.options` — :class:`FitOptions`, the one options object of every fit, and the
  inference paths (rows here; cells and minibatch registered by :mod:`skipmodel.scale`).
- :mod:`.fitting` — :func:`fit`, the one fit entry: nutpie / PyMC NUTS, ADVI, Pathfinder; run
  directories; ``load_run``.
- :mod:`.prediction` — :func:`predict`: posterior skip probabilities (rows indexed as the
  caller's), unseen levels, sequential second halves; :func:`predict_draws`: the same per draw.

Examples
--------
>>> from skipmodel.model import FitOptions, fit, get_variant, predict
>>> result = fit(get_variant("markov"), train_plays, chains=4)  # doctest: +SKIP
>>> result = fit(spec, plays, options=FitOptions(chains=4))  # the same  # doctest: +SKIP
>>> table = predict(result, test_plays)  # doctest: +SKIP
>>> per_draw = predict_draws(result, test_plays, max_draws=200)  # (draw, obs)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from skipmodel.model.data import StoreSample
from skipmodel.model.design import Design, Encoders, build_design, check_leakage
from skipmodel.model.options import FitOptions
from skipmodel.model.spec import (
    VARIANTS,
    Fixed,
    Inference,
    Interaction,
    Markov,
    ModelSpec,
    Pooled,
    Priors,
    Seasonal,
    Session,
    Smooth,
    UserColumn,
    get_variant,
    register_variant,
    resolve_model,
)

# PyMC-dependent names load on first use, so reading a spec never imports PyMC. No submodule
# shares a function's name, so ``from skipmodel.model import fit, predict`` gives the functions.
_LAZY = {
    "build_model": "skipmodel.model.build",
    "fit": "skipmodel.model.fitting",
    "FitResult": "skipmodel.model.fitting",
    "predict": "skipmodel.model.prediction",
    "predict_draws": "skipmodel.model.prediction",
    "load_run": "skipmodel.model.fitting",
    "compute_log_likelihood": "skipmodel.model.ppc",
    "save_run": "skipmodel.model.fitting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skipmodel.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    # tab completion (a notebook's) lists the lazily loaded names too
    return sorted({*globals(), *_LAZY})


__all__ = [
    "VARIANTS",
    "Design",
    "Encoders",
    "FitOptions",
    "Fixed",
    "Inference",
    "Interaction",
    "Markov",
    "ModelSpec",
    "Pooled",
    "Priors",
    "Seasonal",
    "Session",
    "Smooth",
    "StoreSample",
    "UserColumn",
    "build_design",
    "check_leakage",
    "get_variant",
    "register_variant",
    "resolve_model",
    *_LAZY,
]
