"""One pass's sums: gradient, curvature and per-level likelihood curves of a Bernoulli-logit.

At the expansion point (work-coordinate tables ``xw`` of the dense part), a row without a level
has ``r = y - p`` and ``w = p (1 - p)``. A row of level ``t`` has its level integrated out: at
each of the level's quadrature nodes ``u_k`` (its current posterior mean + sd x Gauss-Hermite
node), ``p_k = p(eta + u_k)``, and ``r, w`` are the Gauss-Hermite averages of ``y - p_k`` and
``p_k (1 - p_k)``; the row adds ``log p(y | eta + u_k)`` to the level's likelihood curve ``S[t,
k]``.

The dense part's gradient and curvature are summed in **code coordinates**, as mgcv's
``bam(discrete = TRUE)`` does: a gathered table is read through its codes (a weekday, an hour, a
point of a smooth's gather grid), so a row's curvature ``w x x'`` is, between two gathers, one
count in a cross table of their codes, and only slopes (and the basis values of a gather too
fine to tabulate) carry values. A row adds

* ``g[a] += v_a r`` and ``A[a, b] += w v_a v_b`` over its code-space pairs (``v = 1`` for a
  code): for ``full`` 22 pairs a row instead of its 36 work coordinates, 253 products instead of
  666;
* to its level: ``g_t += r``, ``W_t += w`` and the cross curvature ``H[t, a] += w v_a`` over its
  work coordinates (what couples the level to the dense part; kept per level, so in the
  coordinates with fewest columns).

After the pass the code-space sums map to latent coordinates through ``Q = M @ P`` (``M``:
code space to work coordinates, :class:`~skipmodel.scale.laplace.structure.RowFormat`). Every
sum is over rows, so the sums of two buckets add (:meth:`PassSums.add`); the kernel adds into
the arrays it is given. Compiled with Numba, one loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit  # type: ignore[import-untyped]

from skipmodel.scale.laplace.structure import LatentModel, RowBatch, RowFormat


@njit(cache=True, nogil=True)
def _accumulate(  # pragma: no cover - compiled
    codes, values, level, y, c_const, w_const, g_offset, g_row0, g_width, g_code, g_coded, mats,
    s_code, s_work, tab, nodes, weights, g, A, g_t, w_t, H, S, out,
):  # fmt: skip
    n = codes.shape[0]
    n_pairs = c_const.shape[0]
    for j in range(g_offset.shape[0]):
        n_pairs += 1 if g_coded[j] else g_width[j]
    idx = np.zeros(n_pairs, dtype=np.int64)
    val = np.zeros(n_pairs)
    n_slopes = s_code.shape[0]
    s0 = s_code[0] if n_slopes else 0
    vs = np.zeros(n_slopes)
    n_nodes = nodes.shape[1]
    ll = 0.0
    for i in range(n):
        # the row's code-space pairs before the slopes
        K = 0
        for c in range(c_const.shape[0]):
            idx[K] = c_const[c]
            val[K] = 1.0
            K += 1
        for j in range(g_offset.shape[0]):
            code = codes[i, j]
            if code < 0:
                continue
            if g_coded[j]:
                idx[K] = g_code[j] + code
                val[K] = 1.0
                K += 1
            else:
                row = g_row0[j] + code
                for m in range(g_width[j]):
                    idx[K] = g_code[j] + m
                    val[K] = mats[row, m]
                    K += 1
        eta = 0.0
        for k in range(K):
            eta += val[k] * tab[idx[k]]
        for s in range(n_slopes):
            vs[s] = values[i, s]
            eta += vs[s] * tab[s0 + s]
        yi = float(y[i])
        t = level[i]
        if t < 0:
            ex = np.exp(-abs(eta))
            p = 1.0 / (1.0 + ex) if eta >= 0 else ex / (1.0 + ex)
            r = yi - p
            w = p * (1.0 - p)
            ll += yi * eta - (max(eta, 0.0) + np.log1p(ex))
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
            # the cross curvature, in work coordinates
            for c in range(w_const.shape[0]):
                H[t, w_const[c]] += w
            for j in range(g_offset.shape[0]):
                code = codes[i, j]
                if code < 0:
                    continue
                if g_row0[j] < 0:
                    H[t, g_offset[j] + code] += w
                else:
                    row = g_row0[j] + code
                    for m in range(g_width[j]):
                        H[t, g_offset[j] + m] += w * mats[row, m]
            for s in range(s_work.shape[0]):
                H[t, s_work[s]] += w * values[i, s]
        # the slopes come last in code space, contiguous: their products are vector loops
        for k in range(K):
            a = idx[k]
            va = val[k]
            if va == 0.0:
                continue
            g[a] += va * r
            wa = w * va
            for m in range(k, K):
                A[a, idx[m]] += wa * val[m]
            for s in range(n_slopes):
                A[a, s0 + s] += wa * vs[s]
        for s in range(n_slopes):
            g[s0 + s] += vs[s] * r
            ws = w * vs[s]
            for s2 in range(s, n_slopes):
                A[s0 + s, s0 + s2] += ws * vs[s2]
    out[0] += ll
    out[1] += n


@dataclass
class PassSums:
    """The sums of one pass (see the module notes): ``g`` and ``A`` in code coordinates (``A``
    upper triangle; :meth:`gradient` and :meth:`curvature` give them in latent coordinates),
    ``H`` in work coordinates. ``ll``: log-likelihood of the rows without a level."""

    ll: float
    n_rows: int
    g: np.ndarray  # (C,)
    A: np.ndarray  # (C, C), upper triangle
    g_t: np.ndarray  # (L,)
    w_t: np.ndarray  # (L,)
    H: np.ndarray  # (L, W)
    S: np.ndarray  # (L, n_nodes)

    @classmethod
    def zeros(cls, fmt: RowFormat, width: int, n_levels: int, n_nodes: int) -> PassSums:
        n_codes = fmt.n_codes
        return cls(
            0.0,
            0,
            np.zeros(n_codes),
            np.zeros((n_codes, n_codes)),
            np.zeros(n_levels),
            np.zeros(n_levels),
            np.zeros((n_levels, width)),
            np.zeros((n_levels, n_nodes)),
        )

    def __add__(self, other: PassSums) -> PassSums:
        out = PassSums(self.ll, self.n_rows, *(getattr(self, n).copy() for n in _ARRAYS))
        out.add(other)
        return out

    def add(self, other: PassSums) -> None:
        """Add ``other`` into these sums, in place (no copies of the per-level arrays)."""
        self.ll += other.ll
        self.n_rows += other.n_rows
        for name in _ARRAYS:
            np.add(getattr(self, name), getattr(other, name), out=getattr(self, name))

    def gradient(self, model: LatentModel) -> np.ndarray:
        """The gradient in latent coordinates (levels at their nodes)."""
        return model.Q.T @ self.g

    def curvature(self, model: LatentModel) -> np.ndarray:
        """The symmetric curvature in latent coordinates."""
        full = self.A + self.A.T
        full[np.diag_indices_from(full)] = np.diag(self.A)
        return model.Q.T @ full @ model.Q

    def add_batch(
        self,
        batch: RowBatch,
        fmt: RowFormat,
        tab: np.ndarray,
        nodes: np.ndarray,
        weights: np.ndarray,
    ) -> None:
        """Add ``batch``'s rows (in ``fmt``) at the expansion point (``tab``: each code's share
        of the logit, ``M @ P @ c``; each level's quadrature nodes ``nodes`` (L, n_nodes) and
        the normalised Gauss-Hermite ``weights``)."""
        out = np.zeros(2)
        a = fmt.arrays
        _accumulate(
            batch.codes,
            batch.values,
            batch.level,
            batch.y,
            a["c_const"],
            a["w_const"],
            a["g_offset"],
            a["g_row0"],
            a["g_width"],
            a["g_code"],
            a["g_coded"],
            a["mats"],
            a["s_code"],
            a["s_work"],
            tab,
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


_ARRAYS = ("g", "A", "g_t", "w_t", "H", "S")

__all__ = ["PassSums"]
