"""The session pool in the passes: eliminated session by session as the rows go by.

A session term gives every session an effect ``v_s ~ N(0, sigma^2)``. The full release has 125
million sessions, so the passes never hold sums per session for long: a batch holds whole
sessions (:func:`whole_sessions`, :func:`session_batches`), the kernel sums each session's
likelihood curve at its quadrature nodes, its residual and weight, its plug-in log-likelihood
and its cross curvature with the dense part (work coordinates), and :meth:`SessionSums.reduce`
folds them at once, batch by batch, into

* for each scale on a grid around the current one (:data:`GRID_HALF_WIDTH`, :data:`GRID_POINTS`:
  log sigma +- 0.5 in 9 steps), the sessions' summed log integrals (adaptive Gauss-Hermite, as the
  tracks'), their Schur term ``B' diag(v) B`` and mean shift ``B' (m - m_pass)`` — sums over
  sessions, so they merge across batches, threads and buckets;
* each session's posterior mean and node scale at the current scale, kept for the next pass's
  nodes: two float32 per session (1 GB for 125 M sessions), nothing else.

Between passes the grid is interpolated (:class:`SessionCurve`: a cubic spline in log sigma),
so the hyperparameter search moves the session scale like any other, within the grid; the next
pass re-centres the grid.

**Mean field between the two pools.** A play's track is integrated at its session's centre (the
session's last posterior mean) and its session at the track's centre; the log marginal counts
each play once: ``ll0 + sum_t log I_t + sum_s (log I_s - ll_s)``, where ``ll_s`` is the
session's log-likelihood with both at their centres. The coupling of a session with its tracks
(and the move of a session's mean with the dense step) is left to the next pass: the passes
iterate, as backfitting does, until neither pool's means move.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

from skipmodel.scale.laplace.quadrature import hermite_nodes, quadrature
from skipmodel.scale.laplace.structure import LatentModel, RowBatch

#: Gauss-Hermite nodes per session (sessions hold 10 to 20 plays).
SESSION_NODES = 9
#: The grid of the session scale: ``log sigma`` of the pass +- this, in :data:`GRID_POINTS`.
GRID_HALF_WIDTH = 0.5
GRID_POINTS = 9


#: Nodes spread wider than this many posterior sds (of a grid point's prior) are too wide for it:
#: the session's integral there is taken from the likelihood's quadratic expansion.
WIDE_NODES = 2.0


def _gaussian(
    ll0: np.ndarray, g: np.ndarray, w: np.ndarray, centre: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log integral, mean and variance of ``exp(ll0 + g (v - c) - w (v - c)^2 / 2)`` times
    the prior N(0, 1 / lam), per session (``ll0``, ``g``, ``w``: the log-likelihood, residual
    and weight sums at the centre ``c``)."""
    precision = w + lam
    b = g + w * centre
    log_i = ll0 - g * centre - 0.5 * w * centre**2 + b**2 / (2 * precision)
    log_i = log_i + 0.5 * np.log(lam / precision)
    return log_i, b / precision, 1.0 / precision


def scale_grid(log_sigma: float) -> np.ndarray:
    """The log scales a pass sums the sessions at (centred on ``log_sigma``)."""
    return log_sigma + np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS)


@dataclass
class SessionNodes:
    """Each session's quadrature centre and scale for the next pass (float32; sessions past
    the arrays, not seen yet, sit at the prior: centre 0, ``default_scale``)."""

    mean: np.ndarray
    scale: np.ndarray
    default_scale: float

    @classmethod
    def prior(cls, sigma: float) -> SessionNodes:
        return cls(np.zeros(0, np.float32), np.zeros(0, np.float32), float(sigma))

    @property
    def n_sessions(self) -> int:
        return int(self.mean.size)

    def window(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Centres and scales (float64) of the sessions ``lo .. hi - 1``."""
        mean = np.zeros(hi - lo)
        scale = np.full(hi - lo, self.default_scale)
        known = max(0, min(hi, self.mean.size) - lo)
        mean[:known] = self.mean[lo : lo + known]
        scale[:known] = self.scale[lo : lo + known]
        return mean, scale

    def halfway(self, other: SessionNodes) -> SessionNodes:
        """The centres halfway to ``other``'s (a halved step)."""
        n = min(self.mean.size, other.mean.size)
        mean = self.mean.copy()
        mean[:n] = (self.mean[:n] + other.mean[:n]) / 2
        return SessionNodes(mean, self.scale, self.default_scale)


@dataclass
class SessionSums:
    """One pass's session sums (see the module notes); :meth:`add` merges two."""

    grid: np.ndarray  # (K,) log sigma
    log_i: np.ndarray  # (K,)
    btvb: np.ndarray  # (K, W, W), work coordinates
    btdm: np.ndarray  # (K, W)
    ll_plug: float = 0.0
    #: Whether the sessions' Schur term is summed (a first pass with a track pool has no
    #: track moments to eliminate the tracks first: its dense precision leaves it out).
    schur: bool = True
    max_move: float = 0.0
    n_sessions: int = 0
    pieces: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    @classmethod
    def zeros(cls, grid: np.ndarray, width: int, *, schur: bool = True) -> SessionSums:
        k = grid.size
        return cls(
            grid, np.zeros(k), np.zeros((k, width, width)), np.zeros((k, width)), schur=schur
        )

    @property
    def centre(self) -> int:
        return self.grid.size // 2

    def add(self, other: SessionSums) -> None:
        self.log_i += other.log_i
        self.btvb += other.btvb
        self.btdm += other.btdm
        self.ll_plug += other.ll_plug
        self.max_move = max(self.max_move, other.max_move)
        self.n_sessions = max(self.n_sessions, other.n_sessions)
        self.pieces += other.pieces

    def reduce(
        self,
        lo: int,
        curve: np.ndarray,
        g: np.ndarray,
        w: np.ndarray,
        h: np.ndarray,
        ll_plug: np.ndarray,
        centre: np.ndarray,
        scale: np.ndarray,
        corr: np.ndarray,
    ) -> None:
        """Fold the kernel's sums of the sessions ``lo ..`` (whole in this batch) in;
        ``corr``: each session's curvature taken by its tracks (eliminated first)."""
        z, log_w = hermite_nodes(curve.shape[1])
        nodes = centre[:, None] + scale[:, None] * z[None, :]
        self.ll_plug += float(ll_plug.sum())
        for k, log_sigma in enumerate(self.grid):
            lam = float(np.exp(-2.0 * log_sigma))
            log_i, mean, var = quadrature(curve, nodes, centre, scale, log_w, lam, g, w)
            narrow = scale > WIDE_NODES / np.sqrt(w + lam)
            if narrow.any():
                # a prior narrower than the nodes' spread (a small scale on the grid): the
                # quadrature would weigh the prior's peak by one node and overstate the
                # integral; there the posterior is the prior's, nearly Gaussian, and the
                # likelihood's quadratic expansion at the centre integrates it
                log_g, mean_g, var_g = _gaussian(ll_plug, g, w, centre, lam)
                log_i = np.where(narrow, log_g, log_i)
                mean = np.where(narrow, mean_g, mean)
                var = np.where(narrow, var_g, var)
            if self.schur:
                # the session's precision less what its tracks took (at most 90 % of it)
                var = 1.0 / np.maximum(1.0 / var - corr, 0.1 / var)
            self.log_i[k] += float(log_i.sum())
            self.btvb[k] += (h * var[:, None]).T @ h
            self.btdm[k] += h.T @ (mean - centre)
            if k == self.centre:
                move = np.abs(mean - centre) / np.sqrt(np.maximum(var, 1e-300))
                self.max_move = max(self.max_move, float(move.max(initial=0.0)))
                node_scale = 1.0 / np.sqrt(w + lam)
                self.pieces.append((lo, mean.astype(np.float32), node_scale.astype(np.float32)))
        self.n_sessions = max(self.n_sessions, lo + curve.shape[0])

    def shift(self, first: int) -> None:
        """Renumber these sums' sessions from ``first`` (a bucket's, after the buckets
        before it)."""
        self.pieces = [(lo + first, m, s) for lo, m, s in self.pieces]
        self.n_sessions += first

    def nodes(self, default_scale: float) -> SessionNodes:
        """Every session's centre and scale at the pass's scale (for the next pass)."""
        mean = np.zeros(self.n_sessions, np.float32)
        scale = np.full(self.n_sessions, default_scale, np.float32)
        for lo, m, s in self.pieces:
            mean[lo : lo + m.size] = m
            scale[lo : lo + s.size] = s
        return SessionNodes(mean, scale, default_scale)


class SessionCurve:
    """A pass's session sums as smooth functions of the session scale, in latent coordinates:
    the sessions' share of the log marginal, of the dense precision and of the gradient."""

    def __init__(self, model: LatentModel, sums: SessionSums) -> None:
        P = model.P
        self.grid = sums.grid
        self.max_move = sums.max_move
        self.n_sessions = sums.n_sessions
        self._log_i = CubicSpline(sums.grid, sums.log_i - sums.ll_plug)
        btvb = np.einsum("wq,kwv,vr->kqr", P, sums.btvb, P)
        if not sums.schur:
            btvb[:] = 0.0
        self._btvb = CubicSpline(sums.grid, btvb, axis=0)
        self._btdm = CubicSpline(sums.grid, sums.btdm @ P, axis=0)

    @property
    def bounds(self) -> tuple[float, float]:
        """The log scales the sums cover."""
        return float(self.grid[0]), float(self.grid[-1])

    def _clamped(self, log_sigma: float) -> float:
        return float(np.clip(log_sigma, self.grid[0], self.grid[-1]))

    def log_integral(self, log_sigma: float) -> float:
        """``sum_s (log I_s - ll_s)`` at the scale (see the module notes)."""
        return float(self._log_i(self._clamped(log_sigma)))

    def schur(self, log_sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """``B' diag(v) B`` (q, q) and ``B' (m - m_pass)`` (q,) at the scale."""
        x = self._clamped(log_sigma)
        btvb = np.asarray(self._btvb(x))
        return (btvb + btvb.T) / 2, np.asarray(self._btdm(x))


def session_batches(rows: RowBatch, size: int) -> Iterator[RowBatch]:
    """``rows`` (in session order) in batches of about ``size`` rows, cut between sessions."""
    if rows.session is None:
        for lo in range(0, rows.n_rows, size):
            yield rows.slice(lo, min(lo + size, rows.n_rows))
        return
    sessions = rows.session
    lo = 0
    while lo < rows.n_rows:
        hi = min(lo + size, rows.n_rows)
        if hi < rows.n_rows:
            # extend to the end of the session the cut falls in
            hi = int(np.searchsorted(sessions, sessions[hi - 1], side="right"))
        yield rows.slice(lo, hi)
        lo = hi


def whole_sessions(batches: Iterable[RowBatch]) -> Iterator[RowBatch]:
    """The same rows (in session order) with no session cut between two batches: each batch's
    last session is held back and joins the next batch (which it continues)."""
    held: RowBatch | None = None
    for batch in batches:
        if batch.session is None:
            yield batch
            continue
        if held is not None:
            batch = RowBatch.concat([held, batch])
            held = None
        sessions = batch.session
        if sessions is None or batch.n_rows == 0:
            continue
        cut = int(np.searchsorted(sessions, sessions[-1], side="left"))
        if cut == 0:
            held = batch
            continue
        held = batch.slice(cut, batch.n_rows)
        yield batch.slice(0, cut)
    if held is not None and held.n_rows:
        yield held


__all__ = [
    "GRID_HALF_WIDTH",
    "GRID_POINTS",
    "SESSION_NODES",
    "SessionCurve",
    "SessionNodes",
    "SessionSums",
    "scale_grid",
    "session_batches",
    "whole_sessions",
]
