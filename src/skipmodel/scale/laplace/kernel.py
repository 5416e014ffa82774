"""One pass's sums: gradient, curvature and per-level likelihood curves of a Bernoulli-logit.

At the expansion point (work-coordinate tables ``xw`` of the dense part), a row without a level
has ``r = y - p`` and ``w = p (1 - p)``. A row of level ``t`` has its level integrated out: at
each of the level's quadrature nodes ``u_k`` (its current posterior mean + sd x Gauss-Hermite
node), ``p_k = p(eta + u_k)``, and ``r, w`` are the Gauss-Hermite averages of ``y - p_k`` and
``p_k (1 - p_k)``; the row adds ``log p(y | eta + u_k)`` to the level's likelihood curve ``S[t,
k]``. Every row then adds

* to the dense part: the gradient ``g[a] += v_a r`` and curvature ``A[a, b] += w v_a v_b`` over
  its (index, value) pairs;
* to its level: the gradient ``g_t += r``, the curvature ``W_t += w`` and the cross curvature ``H[t, a] += w v_a`` (what
  couples the level to the dense part).

Every sum is over rows, so the sums of two buckets add (:meth:`PassSums.__add__`); the kernel
adds into the arrays it is given. Compiled with Numba, one loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit  # type: ignore[import-untyped]

from skipmodel.scale.laplace.structure import RowBatch, RowFormat


@njit(cache=True, nogil=True)
def _softplus(x: float) -> float:
    if x > 0:
        return x + np.log1p(np.exp(-x))
    return np.log1p(np.exp(x))


@njit(cache=True, nogil=True)
def _pairs(  # pragma: no cover - compiled
    i, codes, values, constants, g_offset, g_row0, g_width, mats, slopes, idx, val
):
    """Row ``i``'s (index, value) pairs into ``idx`` / ``val``; the number written."""
    k = 0
    for c in range(constants.shape[0]):
        idx[k] = constants[c]
        val[k] = 1.0
        k += 1
    for j in range(g_offset.shape[0]):
        code = codes[i, j]
        if g_row0[j] < 0:
            if code >= 0:
                idx[k] = g_offset[j] + code
                val[k] = 1.0
                k += 1
        elif code >= 0:
            row = g_row0[j] + code
            for m in range(g_width[j]):
                idx[k] = g_offset[j] + m
                val[k] = mats[row, m]
                k += 1
    for j in range(slopes.shape[0]):
        idx[k] = slopes[j]
        val[k] = values[i, j]
        k += 1
    return k


@njit(cache=True, nogil=True)
def _accumulate(  # pragma: no cover - compiled
    codes, values, level, y, constants, g_offset, g_row0, g_width, mats, slopes, n_pairs,
    xw, nodes, weights, g, A, g_t, w_t, H, S, out,
):  # fmt: skip
    n = codes.shape[0]
    idx = np.zeros(n_pairs, dtype=np.int64)
    val = np.zeros(n_pairs)
    n_nodes = nodes.shape[1]
    ll = 0.0
    for i in range(n):
        K = _pairs(i, codes, values, constants, g_offset, g_row0, g_width, mats, slopes, idx, val)
        yi = float(y[i])
        eta = 0.0
        for k in range(K):
            eta += val[k] * xw[idx[k]]
        t = level[i]
        if t < 0:
            p = 1.0 / (1.0 + np.exp(-eta))
            r = yi - p
            w = p * (1.0 - p)
            ll += yi * eta - _softplus(eta)
        else:
            # the level integrated out: residual and weight averaged over its quadrature nodes,
            # the likelihood curve summed at each node
            r = 0.0
            w = 0.0
            for k in range(n_nodes):
                e = eta + nodes[t, k]
                ex = np.exp(-abs(e))  # one exp for both the probability and the softplus
                p = 1.0 / (1.0 + ex) if e >= 0 else ex / (1.0 + ex)
                r += weights[k] * (yi - p)
                w += weights[k] * p * (1.0 - p)
                S[t, k] += yi * e - (max(e, 0.0) + np.log1p(ex))
            g_t[t] += r
            w_t[t] += w
        for k in range(K):
            a = idx[k]
            va = val[k]
            if va == 0.0:
                continue
            g[a] += va * r
            wa = w * va
            for m in range(k, K):
                A[a, idx[m]] += wa * val[m]
            if t >= 0:
                H[t, a] += wa
    out[0] += ll
    out[1] += n


@dataclass
class PassSums:
    """The sums of one pass (see the module notes); ``A`` holds each pair once (upper and lower
    triangle mixed): :meth:`curvature` symmetrises it. ``ll``: log-likelihood of the rows
    without a level."""

    ll: float
    n_rows: int
    g: np.ndarray  # (W,)
    A: np.ndarray  # (W, W), unsymmetrised
    g_t: np.ndarray  # (L,)
    w_t: np.ndarray  # (L,)
    H: np.ndarray  # (L, W)
    S: np.ndarray  # (L, n_nodes)

    @classmethod
    def zeros(cls, width: int, n_levels: int, n_nodes: int) -> PassSums:
        return cls(
            0.0,
            0,
            np.zeros(width),
            np.zeros((width, width)),
            np.zeros(n_levels),
            np.zeros(n_levels),
            np.zeros((n_levels, width)),
            np.zeros((n_levels, n_nodes)),
        )

    def __add__(self, other: PassSums) -> PassSums:
        return PassSums(
            self.ll + other.ll,
            self.n_rows + other.n_rows,
            self.g + other.g,
            self.A + other.A,
            self.g_t + other.g_t,
            self.w_t + other.w_t,
            self.H + other.H,
            self.S + other.S,
        )

    def add(self, other: PassSums) -> None:
        """Add ``other`` into these sums, in place (no copies of the per-level arrays)."""
        self.ll += other.ll
        self.n_rows += other.n_rows
        for name in ("g", "A", "g_t", "w_t", "H", "S"):
            np.add(getattr(self, name), getattr(other, name), out=getattr(self, name))

    def curvature(self) -> np.ndarray:
        """The symmetric curvature of the work coordinates."""
        return self.A + self.A.T - np.diag(np.diag(self.A))

    def add_batch(
        self,
        batch: RowBatch,
        fmt: RowFormat,
        xw: np.ndarray,
        nodes: np.ndarray,
        weights: np.ndarray,
    ) -> None:
        """Add ``batch``'s rows (in ``fmt``) at the expansion point (tables ``xw``; each level's
        quadrature nodes ``nodes`` (L, n_nodes) and the normalised Gauss-Hermite ``weights``)."""
        out = np.zeros(2)
        a = fmt.arrays
        _accumulate(
            batch.codes,
            batch.values,
            batch.level,
            batch.y,
            a["constants"],
            a["g_offset"],
            a["g_row0"],
            a["g_width"],
            a["mats"],
            a["slopes"],
            fmt.pairs,
            xw,
            nodes,
            weights,
            self.g,
            self.A,
            self.g_t,
            self.w_t,
            self.H,
            self.S,
            out,
        )
        self.ll += float(out[0])
        self.n_rows += int(out[1])


__all__ = ["PassSums"]
