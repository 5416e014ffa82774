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

from skipmodel.scale.laplace.sessions import SESSION_NODES, SessionNodes, SessionSums
from skipmodel.scale.laplace.structure import LatentModel, RowBatch, RowFormat

_NO_INT = np.zeros(0, dtype=np.int64)
_NO_FLOAT = np.zeros(0)
_NO_MATRIX = np.zeros((0, 0))


@njit(cache=True, nogil=True, inline="always")
def _bernoulli(e, y):  # pragma: no cover - compiled
    """P(y = 1) at logit ``e`` and the log-likelihood of ``y``: one exp serves both."""
    ex = np.exp(-abs(e))
    p = 1.0 / (1.0 + ex) if e >= 0 else ex / (1.0 + ex)
    return p, y * e - (max(e, 0.0) + np.log1p(ex))


@njit(cache=True, nogil=True, inline="always")
def _add_cross(  # pragma: no cover - compiled
    out, weight, codes, values, w_const, g_offset, g_row0, g_width, mats, s_work
):  # fmt: skip
    """``out += weight * x`` over a row's work coordinates (``codes``, ``values``: the row's):
    a level's or a session's cross curvature with the dense part."""
    for c in range(w_const.shape[0]):
        out[w_const[c]] += weight
    for j in range(g_offset.shape[0]):
        code = codes[j]
        if code < 0:
            continue
        if g_row0[j] < 0:
            out[g_offset[j] + code] += weight
        else:
            row = g_row0[j] + code
            for m in range(g_width[j]):
                out[g_offset[j] + m] += weight * mats[row, m]
    for s in range(s_work.shape[0]):
        out[s_work[s]] += weight * values[s]


@njit(cache=True, nogil=True)
def _accumulate(  # pragma: no cover - compiled
    codes, values, level, y, c_const, w_const, g_offset, g_row0, g_width, g_code, g_coded, mats,
    s_code, s_work, tab, nodes, weights, g, A, g_t, w_t, H, S, out,
    session, s_lo, s_center, s_scale, level_center, s_z, s_w, s_curve, s_g, s_wt, s_H, s_ll,
    track_proj, track_var, s_corr,
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
    has_s = session.shape[0] > 0
    has_proj = track_proj.shape[0] > 0
    n_snodes = s_z.shape[0]
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
        # the session at its plug-in centre for everything but its own curve (mean field)
        sl = 0
        sc = 0.0
        if has_s:
            sl = session[i] - s_lo
            sc = s_center[sl]
        if t < 0:
            e0 = eta + sc
            p, log_lik = _bernoulli(e0, yi)
            r = yi - p
            w = p * (1.0 - p)
            ll += log_lik
        else:
            # the level integrated out: residual and weight averaged over its quadrature nodes,
            # the likelihood curve summed at each node
            r = 0.0
            w = 0.0
            for k in range(n_nodes):
                e = eta + sc + nodes[t, k]
                p, log_lik = _bernoulli(e, yi)
                r += weights[k] * (yi - p)
                w += weights[k] * p * (1.0 - p)
                S[t, k] += log_lik
            g_t[t] += r
            w_t[t] += w
            # the cross curvature, in work coordinates
            _add_cross(
                H[t], w, codes[i], values[i], w_const, g_offset, g_row0, g_width, mats, s_work
            )
        if has_s:
            # the session integrated out at its nodes, the track at its centre: its curve, its
            # residual and weight, its plug-in log-likelihood and its cross curvature
            base = eta + (level_center[t] if t >= 0 else 0.0)
            e0 = base + sc
            p0, log_lik = _bernoulli(e0, yi)
            s_ll[sl] += log_lik
            rs = 0.0
            wsum = 0.0
            for k in range(n_snodes):
                e = e0 + s_scale[sl] * s_z[k]
                p, log_lik = _bernoulli(e, yi)
                rs += s_w[k] * (yi - p)
                wsum += s_w[k] * p * (1.0 - p)
                s_curve[sl, k] += log_lik
            s_g[sl] += rs
            s_wt[sl] += wsum
            # the dense part sees the row averaged over both effects: the track's average and
            # the session's, less the plug-in counted twice (exact to second order in the two
            # posterior variances; a plug-in session attenuates the effects, as any plug-in of a
            # random effect in a logistic model does: previous-skip 0.80 against 0.88, truth 0.9)
            if t >= 0:
                r += rs - (yi - p0)
                w = max(w + wsum - p0 * (1.0 - p0), 1e-12)
            else:
                r = rs
                w = wsum
            _add_cross(
                s_H[sl], wsum, codes[i], values[i], w_const, g_offset, g_row0, g_width, mats,
                s_work,
            )  # fmt: skip
            if has_proj and t >= 0:
                # the track eliminated first takes its share of the coupling and of the
                # session's curvature (its variance x cross curvature, from the last pass)
                for m in range(track_proj.shape[1]):
                    s_H[sl, m] -= wsum * track_proj[t, m]
                s_corr[sl] += wsum * wsum * track_var[t]
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
            w_slope = w * vs[s]
            for s2 in range(s, n_slopes):
                A[s0 + s, s0 + s2] += w_slope * vs[s2]
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
    #: With a session term: the sessions' sums, reduced batch by batch (see :mod:`.sessions`).
    sessions: SessionSums | None = None

    @classmethod
    def zeros(
        cls,
        fmt: RowFormat,
        width: int,
        n_levels: int,
        n_nodes: int,
        session_grid: np.ndarray | None = None,
        session_schur: bool = True,
    ) -> PassSums:
        n_codes = fmt.n_codes
        sessions = None
        if session_grid is not None:
            sessions = SessionSums.zeros(session_grid, width, schur=session_schur)
        return cls(
            0.0,
            0,
            np.zeros(n_codes),
            np.zeros((n_codes, n_codes)),
            np.zeros(n_levels),
            np.zeros(n_levels),
            np.zeros((n_levels, width)),
            np.zeros((n_levels, n_nodes)),
            sessions,
        )

    @classmethod
    def for_pass(
        cls,
        model: LatentModel,
        n_levels: int,
        n_nodes: int,
        session_grid: np.ndarray | None,
        track_moments: tuple[np.ndarray, np.ndarray] | None,
    ) -> PassSums:
        """Empty sums of a pass over ``n_levels`` levels (all, or a bucket's): the sessions'
        Schur term is summed once the tracks can be eliminated first (``track_moments``, from
        the last pass) or when there are no tracks."""
        schur = track_moments is not None or model.n_levels == 0
        return cls.zeros(model.format, model.width, n_levels, n_nodes, session_grid, schur)

    def __add__(self, other: PassSums) -> PassSums:
        out = PassSums(self.ll, self.n_rows, *(getattr(self, n).copy() for n in _ARRAYS))
        if self.sessions is not None:
            out.sessions = SessionSums.zeros(
                self.sessions.grid, self.H.shape[1], schur=self.sessions.schur
            )
            out.sessions.add(self.sessions)
        out.add(other)
        return out

    def add(self, other: PassSums) -> None:
        """Add ``other`` into these sums, in place (no copies of the per-level arrays)."""
        self.ll += other.ll
        self.n_rows += other.n_rows
        for name in _ARRAYS:
            np.add(getattr(self, name), getattr(other, name), out=getattr(self, name))
        if self.sessions is not None and other.sessions is not None:
            self.sessions.add(other.sessions)

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
        session_nodes: SessionNodes | None = None,
        level_center: np.ndarray | None = None,
        track_moments: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Add ``batch``'s rows (in ``fmt``) at the expansion point (``tab``: each code's share
        of the logit, ``M @ P @ c``; each level's quadrature nodes ``nodes`` (L, n_nodes) and
        the normalised Gauss-Hermite ``weights``). With a session term, the batch holds whole
        sessions, at ``session_nodes``, their tracks at ``level_center`` (L,), and
        ``track_moments`` (the last pass's ``var_t * H_t`` (L, W) and ``var_t``) eliminate the
        tracks before the sessions (None on a first pass)."""
        out = np.zeros(2)
        a = fmt.arrays
        session, lo = _NO_INT, 0
        s_center = s_scale = level_c = s_z = s_w = gs = ws = lls = _NO_FLOAT
        Cs = Hs = proj = _NO_MATRIX
        track_var = corr = _NO_FLOAT
        with_sessions = self.sessions is not None and batch.session is not None and batch.n_rows > 0
        if with_sessions:
            assert batch.session is not None and session_nodes is not None
            session = batch.session
            lo, hi = int(session.min()), int(session.max()) + 1
            s_center, s_scale = session_nodes.window(lo, hi)
            level_c = level_center if level_center is not None else _NO_FLOAT
            s_z, s_log_w = np.polynomial.hermite_e.hermegauss(SESSION_NODES)
            s_w = s_log_w / s_log_w.sum()
            n = hi - lo
            Cs, gs, ws = np.zeros((n, SESSION_NODES)), np.zeros(n), np.zeros(n)
            Hs, lls, corr = np.zeros((n, self.H.shape[1])), np.zeros(n), np.zeros(n)
            if track_moments is not None:
                proj, track_var = track_moments
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
            session,
            lo,
            s_center,
            s_scale,
            level_c,
            s_z,
            s_w,
            Cs,
            gs,
            ws,
            Hs,
            lls,
            proj,
            track_var,
            corr,
        )
        self.ll += float(out[0])
        self.n_rows += int(out[1])
        if with_sessions:
            assert self.sessions is not None
            self.sessions.reduce(lo, Cs, gs, ws, Hs, lls, s_center, s_scale, corr)


_ARRAYS = ("g", "A", "g_t", "w_t", "H", "S")

__all__ = ["PassSums"]
