"""Evaluate a built model at a point with PyTensor's Python linker (no compilation): the joint
logp and gradient, and every variable's value, for tests that compare formulations."""

from __future__ import annotations

import functools
import operator

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode

PY_MODE = Mode(linker="py", optimizer=None)


def random_point(model: pm.Model, seed: int) -> dict[str, np.ndarray]:
    """The initial point moved by N(0, 0.7) noise, so no term sits at its symmetric centre."""
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0, 0.7, np.shape(v)) for k, v in model.initial_point().items()}


def logp_and_grad(model: pm.Model, point: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """Joint logp (with Jacobians) and its gradient, summed pairwise (no 32-operand Elemwise)."""
    terms = model.logp(sum=False, jacobian=True)
    total = functools.reduce(operator.add, [t.sum() for t in terms])
    grads = pt.grad(total, model.value_vars)
    fn = pytensor.function(
        model.value_vars, [total, *grads], mode=PY_MODE, on_unused_input="ignore"
    )
    out = fn(*(point[v.name] for v in model.value_vars))
    return float(out[0]), np.concatenate([np.ravel(g) for g in out[1:]])


def draws_at(model: pm.Model, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every free and deterministic variable at ``point``, as one posterior draw each."""
    variables = [model[v.name] for v in model.free_RVs + model.deterministics]
    # The random variables themselves would compile to fresh random draws: replace them by
    # their (back-transformed) values so the outputs are functions of the point.
    # Every value variable is used now; an unused one would be this bug again, so it raises.
    outputs = model.replace_rvs_by_values(variables)
    fn = pytensor.function(model.value_vars, outputs, mode=PY_MODE)
    values = fn(*(point[v.name] for v in model.value_vars))
    return {v.name: np.asarray(x)[None] for v, x in zip(variables, values, strict=True)}
