"""The hyperparameters: maximise the nested-Laplace marginal, and its curvature.

On the log scale ``phi = log theta``, the objective is the Laplace marginal of the expansion
(:meth:`~skipmodel.scale.laplace.gaussian.Expansion.solve`, the levels integrated by
quadrature) plus the hyperparameters' log prior (with the Jacobian of the log). It is maximised
in memory, without passes, by L-BFGS-B with central-difference gradients; its curvature at the
maximum (central differences again) gives a Gaussian approximation of ``phi``'s posterior, whose
uncertainty the fit propagates to the effects to first order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from skipmodel.scale.laplace.gaussian import Expansion
from skipmodel.scale.laplace.structure import LatentModel

#: log-scale bounds of every hyperparameter (1e-4 .. 50 on the natural scale).
BOUNDS = (np.log(1e-4), np.log(50.0))
#: Central-difference step on the log scale.
STEP = 1e-3


def objective(model: LatentModel, expansion: Expansion) -> Callable[[np.ndarray], float]:
    """``phi -> log p(y | theta) + log p(phi)``, relative to the expansion's log-likelihood."""
    offset = expansion.ll0

    def f(phi: np.ndarray) -> float:
        theta = model.theta(phi)
        prior = sum(h.log_prior(v) for h, v in zip(model.hypers, phi, strict=True))
        return expansion.solve(theta, moments=False).log_marginal - offset + prior

    return f


def gradient(f: Callable[[np.ndarray], float], phi: np.ndarray, h: float = STEP) -> np.ndarray:
    out = np.empty_like(phi)
    for j in range(phi.size):
        e = np.zeros_like(phi)
        e[j] = h
        out[j] = (f(phi + e) - f(phi - e)) / (2 * h)
    return out


def hessian(f: Callable[[np.ndarray], float], phi: np.ndarray, h: float = 1e-2) -> np.ndarray:
    """Central-difference Hessian (step ``h`` on the log scale)."""
    d = phi.size
    out = np.empty((d, d))
    f0 = f(phi)
    for i in range(d):
        ei = np.zeros(d)
        ei[i] = h
        out[i, i] = (f(phi + ei) - 2 * f0 + f(phi - ei)) / h**2
        for j in range(i):
            ej = np.zeros(d)
            ej[j] = h
            out[i, j] = out[j, i] = (
                f(phi + ei + ej) - f(phi + ei - ej) - f(phi - ei + ej) + f(phi - ei - ej)
            ) / (4 * h**2)
    return out


def maximise(model: LatentModel, expansion: Expansion, start: np.ndarray) -> np.ndarray:
    """The hyperparameters (log scale) maximising the marginal, from ``start``.

    The eliminated pool's scale is the only hyperparameter whose change costs a pass over the
    levels (their quadrature and ``B' diag(v) B``); the others only change the dense prior. So
    its scale is searched in one dimension (bounded Brent, within 1 of ``start`` on the log
    scale) with the others maximised for each value it takes (L-BFGS-B, cheap).
    """
    if start.size == 0:
        return start
    f = objective(model, expansion)
    j = _levels_hyper(model)
    bounds = _bounds(model, expansion, start.size)
    if j is None:
        return _lbfgs(f, start, bounds)
    rest = np.array([i for i in range(start.size) if i != j], dtype=int)
    best = {"rest": start[rest]}

    def inner(x: float) -> float:
        if rest.size == 0:
            return -f(np.array([x]))

        def g(sub: np.ndarray) -> float:
            phi = np.empty_like(start)
            phi[j], phi[rest] = x, sub
            return f(phi)

        sub = _lbfgs(g, best["rest"], [bounds[i] for i in rest])
        best["rest"] = sub
        return -g(sub)

    lo, hi = max(start[j] - 1.0, BOUNDS[0]), min(start[j] + 1.0, BOUNDS[1])
    found = minimize_scalar(inner, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    out = start.copy()
    out[j] = float(found.x)
    inner(out[j])
    out[rest] = best["rest"]
    return out


def _levels_hyper(model: LatentModel) -> int | None:
    """Index of the eliminated pool's scale among the hyperparameters (None without one)."""
    if model.levels is None or not model.levels.hypers:
        return None
    names = [h.name for h in model.hypers]
    return names.index(model.levels.hypers[0])


def _bounds(model: LatentModel, expansion: Expansion, d: int) -> list[tuple[float, float]]:
    """Every hyperparameter within :data:`BOUNDS`; the session scale within the grid its pass
    summed the sessions at (the next pass re-centres it)."""
    out = [BOUNDS] * d
    name = model.session_hyper
    if expansion.sessions is not None and name is not None:
        lo, hi = expansion.sessions.bounds
        j = [h.name for h in model.hypers].index(name)
        out[j] = (max(lo, BOUNDS[0]), min(hi, BOUNDS[1]))
    return out


def _lbfgs(
    f: Callable[[np.ndarray], float], start: np.ndarray, bounds: list[tuple[float, float]]
) -> np.ndarray:
    start = np.clip(start, [b[0] for b in bounds], [b[1] for b in bounds])
    result = minimize(
        lambda phi: -f(phi),
        start,
        jac=lambda phi: -gradient(f, phi),
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 200, "ftol": 1e-12, "gtol": 1e-6},
    )
    return np.asarray(result.x)


def posterior_covariance(model: LatentModel, expansion: Expansion, phi: np.ndarray) -> np.ndarray:
    """Covariance of ``phi``'s Gaussian approximation (inverse negative Hessian); a direction
    the marginal does not curve in (a flat prior-dominated scale) keeps the prior's spread."""
    if phi.size == 0:
        return np.zeros((0, 0))
    neg = -hessian(objective(model, expansion), phi)
    neg = (neg + neg.T) / 2
    w, v = np.linalg.eigh(neg)
    w = np.maximum(w, 1.0)  # at most sd 1 on the log scale along any direction
    return (v / w) @ v.T


__all__ = ["BOUNDS", "gradient", "hessian", "maximise", "objective", "posterior_covariance"]
