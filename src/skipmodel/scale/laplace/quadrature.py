"""Adaptive Gauss-Hermite quadrature of one-dimensional effects: a track's, a session's.

Given an effect's likelihood curve at its nodes (its current posterior mean + sd x node) and a
Gaussian prior, :func:`quadrature` gives its log integral, posterior mean and variance nearly
exactly (lme4's ``nAGQ``); the tracks (:mod:`~skipmodel.scale.laplace.gaussian`) and the
sessions (:mod:`~skipmodel.scale.laplace.sessions`) share it.
"""

from __future__ import annotations

import numpy as np

#: Gauss-Hermite nodes per level (probabilists' weight exp(-z^2 / 2)).
N_NODES = 9
#: The quadrature's variance of a level below this share of its Gaussian (curvature) variance
#: means its nodes missed the posterior (see :meth:`Expansion.levels`).
ADEQUATE = 0.2


def hermite_nodes(n: int = N_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` and log weights for ``int f(u) du = s * sum w_k exp(z_k^2 / 2) f(m + s z_k)``."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, np.log(w) + z**2 / 2


def normalised_weights(n: int = N_NODES) -> np.ndarray:
    """Gauss-Hermite weights summing to 1: averages over N(m, s^2) at ``m + s z_k``."""
    _, w = np.polynomial.hermite_e.hermegauss(n)
    return w / w.sum()


def quadrature(
    curve: np.ndarray,
    nodes: np.ndarray,
    node_mean: np.ndarray,
    node_scale: np.ndarray,
    log_w: np.ndarray,
    lam: float,
    g: np.ndarray,
    w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level (or session) at prior precision ``lam``: the log integral of its likelihood
    ``curve`` (at ``nodes`` = mean + scale x Gauss-Hermite node) times the prior, and its
    posterior mean and variance (the variance capped at ``1 / w``, where the dense curvature
    stays positive). ``g``, ``w``: its residual and weight sums, for the Gaussian fallback."""
    x = nodes
    log_f = curve - 0.5 * lam * x**2 + log_w
    top = log_f.max(axis=1, keepdims=True)
    weights = np.exp(log_f - top)
    total = weights.sum(axis=1)
    log_i = np.log(total) + top[:, 0] + np.log(node_scale) + 0.5 * np.log(lam / (2 * np.pi))
    mean = (weights * x).sum(axis=1) / total
    var = np.maximum((weights * x**2).sum(axis=1) / total - mean**2, 0.0)
    # Where the nodes missed the posterior (a thick level whose nodes were placed by a
    # flatter guess: the weight piles on one node and the variance collapses), take the
    # Gaussian answer instead: one Newton step from the nodes' centre and the curvature. The
    # next pass's nodes sit there, where the quadrature is right again.
    newton_var = 1.0 / (w + lam)
    missed = ~(var >= ADEQUATE * newton_var)
    if missed.any():
        step = (g - lam * node_mean) * newton_var
        mean = np.where(missed, node_mean + step, mean)
        var = np.where(missed, newton_var, var)
    var = np.minimum(var, 1.0 / np.maximum(w, 1e-300))
    return log_i, mean, var


__all__ = ["ADEQUATE", "N_NODES", "hermite_nodes", "normalised_weights", "quadrature"]
