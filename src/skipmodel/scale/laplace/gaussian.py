"""The algebra of one expansion point: for any hyperparameters, in memory.

The levels of the eliminated pool (tracks) are integrated out exactly, one at a time: given the
dense part ``c``, each level's posterior is one-dimensional, and adaptive Gauss-Hermite
quadrature at nodes placed on it (its mean + sd x node) gives its log integral, mean and
variance nearly exactly (lme4's ``nAGQ``). A Bernoulli likelihood over a level's few plays is far
from Gaussian; the plain Laplace approximation of these integrals underestimates the pool's
scale and shrinks whatever trades off with it (a prototype at 28k plays: the scale 3.1 posterior
sds low, the previous-skip effect 1.3 sds shrunk, against NUTS).

The dense part gets the Laplace approximation. A pass gives, at ``c0``, the gradient ``g`` of
``sum_t log p(y_t | c)`` (each level's residuals averaged over its nodes), the curvature ``A``,
and each level's cross curvature ``b_t`` (the rows of ``B = H P``); with the prior at hyperparameters ``theta``:

* the levels' log integrals ``I_t``, means ``m_t`` and variances ``v_t`` (quadrature at the
  pass's nodes; the prior term is the only part depending on ``theta``);
* the gradient ``g - B' (m - m_pass) - Lambda c0`` (a level's mean moving shifts its rows'
  residuals) and the precision ``S = A + Lambda - B' diag(v) B`` (the levels' posterior variance
  taken out, as a Schur complement would);
* one Newton step ``dc = S^-1 g``, and the log marginal
  ``ll0 + sum I_t - c0' Lambda c0 / 2 + (log|Lambda| - log|S|) / 2 + g' dc / 2``.

At a Gaussian likelihood all of it is the exact Gaussian integral; at the converged point, the
nested Laplace approximation with exact inner integrals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from skipmodel.errors import SkipmodelError
from skipmodel.scale.laplace.kernel import PassSums
from skipmodel.scale.laplace.quadrature import (
    N_NODES,
    hermite_nodes,
    normalised_weights,
    quadrature,
)
from skipmodel.scale.laplace.sessions import SessionCurve
from skipmodel.scale.laplace.structure import LatentModel


@dataclass(frozen=True)
class Solution:
    """The expansion's answer at one ``theta``."""

    log_marginal: float  # without the hyperparameters' prior
    dc: np.ndarray
    chol: tuple[np.ndarray, bool]  # of S, the dense part's posterior precision (levels out)
    level_mean: np.ndarray  # levels' posterior mean and variance, given c = c0 + dc
    level_var: np.ndarray

    def cov_dense(self) -> np.ndarray:
        """Posterior covariance of the dense part (levels integrated out)."""
        return cho_solve(self.chol, np.eye(self.chol[0].shape[0]))


class Expansion:
    """The sums of one pass at ``c0``, in latent coordinates (see the module notes)."""

    def __init__(
        self,
        model: LatentModel,
        sums: PassSums,
        c0: np.ndarray,
        node_mean: np.ndarray,
        node_scale: np.ndarray,
    ) -> None:
        self.model = model
        self.ll0 = sums.ll
        self.c0 = c0
        self.g_c = sums.gradient(model)
        self.A = sums.curvature(model)
        self.g_t, self.w_t = sums.g_t, sums.w_t
        # the levels' cross curvature in work coordinates; B = H @ P (L, q) is formed a chunk
        # at a time (one per-level matrix in memory, not two)
        self.H = sums.H
        z, self.log_w = hermite_nodes(sums.S.shape[1])
        self.node_mean = node_mean
        self.node_scale = node_scale
        self.nodes = node_mean[:, None] + node_scale[:, None] * z[None, :]
        self.curve = sums.S
        self._cache: dict[float, tuple[np.ndarray, ...]] = {}
        self.sessions = None if sums.sessions is None else SessionCurve(model, sums.sessions)

    def session_part(self, theta: dict[str, float]) -> tuple[float, np.ndarray, np.ndarray]:
        """The sessions' share at ``theta``: of the log marginal, of the dense precision (to
        subtract) and of the gradient (to subtract); zeros without a session term."""
        name = self.model.session_hyper
        if self.sessions is None or name is None:
            q = self.model.q
            return 0.0, np.zeros((q, q)), np.zeros(q)
        log_sigma = float(np.log(theta[name]))
        btvb, btdm = self.sessions.schur(log_sigma)
        return self.sessions.log_integral(log_sigma), btvb, btdm

    def levels(self, lam_u: float) -> tuple[np.ndarray, ...]:
        """Per level at prior precision ``lam_u``: log integral, mean, variance (capped at
        ``1 / W_t``, where the dense curvature stays positive); ``B' diag(v) B`` and ``B' (m -
        m_pass)`` (cached: every other hyperparameter leaves them alone)."""
        hit = self._cache.get(lam_u)
        if hit is not None:
            return hit
        log_i, mean, var = quadrature(
            self.curve, self.nodes, self.node_mean, self.node_scale, self.log_w, lam_u,
            self.g_t, self.w_t,
        )  # fmt: skip
        P = self.model.P
        htvh = np.zeros((P.shape[0], P.shape[0]))
        for part in _chunks(self.H.shape[0]):
            h = self.H[part]
            htvh += (h * var[part, None]).T @ h
        out = (log_i, mean, var, P.T @ htvh @ P, P.T @ (self.H.T @ (mean - self.node_mean)))
        if len(self._cache) > 16:
            self._cache.clear()
        self._cache[lam_u] = out
        return out

    def solve(self, theta: dict[str, float], *, moments: bool = True) -> Solution:
        """Newton step of the dense part and the log marginal at ``theta``; ``moments``: also
        move the levels' means with the step (an (L, q) product the marginal alone needs not)."""
        m = self.model
        lam, lam_u = m.prior_precision(theta)
        grad = self.g_c - lam * self.c0
        S = self.A + np.diag(lam)
        log_levels = 0.0
        mean = var = np.zeros(0)
        if m.n_levels:
            log_i, mean, var, btvb, shifted = self.levels(lam_u)
            grad = grad - shifted
            S = S - btvb
            log_levels = float(log_i.sum())
        if self.sessions is not None:
            log_sessions, btvb_s, shifted_s = self.session_part(theta)
            grad = grad - shifted_s
            S = S - btvb_s
            log_levels += log_sessions
        try:
            chol = cho_factor(S, lower=True)
        except np.linalg.LinAlgError:
            raise SkipmodelError(
                "--method laplace: the posterior curvature is not positive definite at "
                f"{_shown(theta)}; the model is not identified by these data"
            ) from None
        dc = cho_solve(chol, grad)
        logdet_s = 2 * float(np.log(np.diag(chol[0])).sum())
        log_marginal = (
            self.ll0
            + log_levels
            - 0.5 * float(lam @ self.c0**2)
            + 0.5 * (float(np.log(lam).sum()) - logdet_s)
            + 0.5 * float(grad @ dc)
        )
        if m.n_levels and moments:
            mean = mean - var * (self.H @ (m.P @ dc))  # a level's mean moves with the dense part
        return Solution(log_marginal, dc, chol, mean, var)


def _chunks(n: int, size: int = 65_536) -> list[slice]:
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _shown(theta: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in theta.items())


__all__ = [
    "N_NODES",
    "Expansion",
    "Solution",
    "hermite_nodes",
    "normalised_weights",
    "quadrature",
]
