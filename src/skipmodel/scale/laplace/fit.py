"""Nested-Laplace fits by streaming passes: the loop, and the posterior it returns.

Each **pass** reads every row once (a data frame in memory, or a store sample streamed batch by
batch) and sums the log-likelihood's gradient and curvature at the current point
(:mod:`~skipmodel.scale.laplace.kernel`). Between passes, in memory:

1. the hyperparameters are set to the maximum of the nested-Laplace marginal of that
   expansion (:mod:`~skipmodel.scale.laplace.hyper`);
2. the dense effects take one Newton step to the mode at those hyperparameters, the levels of
   the eliminated pool integrated out (:meth:`~skipmodel.scale.laplace.gaussian.Expansion.solve`);
3. each level's quadrature nodes are re-centred on its posterior: its mean, and the sd its
   curvature gives (mean + sd x node).

A step that lowers the log posterior (checked by the next pass, at the same hyperparameters) is
halved and the pass repeated. **Convergence**: the largest step of any dense effect and the
largest move of any level's posterior mean are below ``tol`` posterior sds, and no
hyperparameter moved more than ``tol`` on the log scale; the starting point is the prior's
(effects 0, scales at half their prior scale) and each pass starts from the last. A fit that has
not converged after ``max_passes`` says so in its diagnostics.

**The posterior.** Hyperparameters: Gaussian on the log scale at the maximum, with the
marginal's curvature (empirical Bayes with first-order propagation of their uncertainty: the
effects' means move with them linearly, derivatives by central differences). Dense effects:
Gaussian, the Laplace covariance plus that propagation; drawn ``draws`` times. Levels of the
eliminated pool (tracks): a Gaussian summary per level — mean and sd from the quadrature,
widened by the dense part's and the hyperparameters' uncertainty — from which prediction draws
on demand.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from skipmodel.progress import Progress
from skipmodel.scale.laplace.gaussian import (
    N_NODES,
    Expansion,
    Solution,
    hermite_nodes,
    normalised_weights,
)
from skipmodel.scale.laplace.hyper import maximise, posterior_covariance
from skipmodel.scale.laplace.kernel import PassSums
from skipmodel.scale.laplace.sessions import SessionNodes, scale_grid
from skipmodel.scale.laplace.structure import LatentModel, RowBatch

#: Halvings of a step that lowered the log posterior before giving up on it.
MAX_HALVINGS = 6
#: With a session term, steps below this many posterior sds are not halved (see fit_passes).
SESSION_HALVING_STEP = 10.0


@dataclass(frozen=True)
class LaplaceOptions:
    max_passes: int = 30
    tol: float = 0.01
    draws: int = 1000
    seed: int = 0
    #: Threads summing batches (0: one per core).
    jobs: int = 0

    def threads(self) -> int:
        return self.jobs if self.jobs > 0 else max(1, len(os.sched_getaffinity(0)))


@dataclass
class PassRecord:
    seconds: float
    log_posterior: float
    max_step_sd: float
    max_hyper_step: float
    halved: bool = False


@dataclass
class LaplaceFit:
    """The fitted approximation (see the module notes)."""

    model: LatentModel
    log_theta: np.ndarray
    theta_cov: np.ndarray
    mode: np.ndarray  # dense part
    jacobian: np.ndarray  # d mode / d log theta (q, d)
    chol: np.ndarray  # lower Cholesky factor of the dense part's conditional precision
    level_mean: np.ndarray
    level_sd: np.ndarray
    passes: list[PassRecord] = field(default_factory=list)
    converged: bool = False
    n_rows: int = 0
    condition: float = float("nan")
    seconds: float = 0.0

    def theta(self) -> dict[str, float]:
        return self.model.theta(self.log_theta)

    def draws(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws of (log theta (n, d), dense part (n, q))."""
        rng = np.random.default_rng(seed)
        d = self.log_theta.size
        if d:
            phi = rng.multivariate_normal(self.log_theta, self.theta_cov, size=n)
        else:
            phi = np.zeros((n, 0))
        eps = rng.standard_normal((self.model.q, n))
        noise = solve_triangular(self.chol, eps, lower=True, trans="T").T
        c = self.mode + (phi - self.log_theta) @ self.jacobian.T + noise
        return phi, c


Source = Callable[[], Iterable[RowBatch]]


def run_pass(
    model: LatentModel,
    source: Source,
    c: np.ndarray,
    nodes: np.ndarray,
    progress: Progress | None,
    *,
    jobs: int = 1,
    sessions: tuple[SessionNodes, np.ndarray] | None = None,
    track_moments: tuple[np.ndarray, np.ndarray] | None = None,
) -> PassSums:
    """One pass over ``source`` at ``c``, the levels at their quadrature ``nodes`` (L, n);
    with a session term, ``sessions``: their nodes and the grid of scales to sum them at
    (:mod:`~skipmodel.scale.laplace.sessions`; every batch holds whole sessions) and the
    last pass's track moments that eliminate the tracks before them (None: not yet).

    With ``jobs > 1``, that many threads sum batches (the compiled kernel releases the GIL),
    each into its own :class:`PassSums`, merged at the end. Thread ``j`` takes batches ``j``,
    ``j + jobs``, ... whatever the timing, so the floating-point sums, and the fit, do not
    depend on how fast the store is read (a thread ahead of the others waits, at most
    ``2 * jobs`` batches ahead).
    """
    own = getattr(source, "run_pass", None)
    if own is not None:  # a source that runs its passes itself (on an engine: .tasks)
        return own(model, c, nodes, progress, sessions, track_moments)
    tab = model.Q @ c
    weights = normalised_weights(nodes.shape[1])
    batches = iter(source())
    lock = threading.Lock()

    session_nodes, grid = sessions if sessions is not None else (None, None)
    level_center = nodes @ weights if nodes.shape[0] else None  # each level's nodes' centre

    take = _StridedBatches(batches, jobs, lock)

    def work(first: int) -> PassSums:
        sums = PassSums.for_pass(model, model.n_levels, nodes.shape[1], grid, track_moments)
        try:
            for batch in take.every(first):
                sums.add_batch(
                    batch, model.format, tab, nodes, weights, session_nodes, level_center,
                    track_moments,
                )  # fmt: skip
                if progress is not None:
                    with lock:
                        progress.advance(batch.n_rows)
        finally:
            take.leave()
        return sums

    if jobs <= 1:
        return work(0)
    with ThreadPoolExecutor(jobs) as pool:
        parts = [pool.submit(work, j) for j in range(jobs)]
        total = parts[0].result()
        for part in parts[1:]:
            total.add(part.result())
    return total


class _StridedBatches:
    """A source's batches dealt to ``jobs`` threads by index (thread ``j`` gets ``j``,
    ``j + jobs``, ...), pulled in order under ``lock``, at most ``2 * jobs`` held waiting."""

    def __init__(self, batches: Iterator[Any], jobs: int, lock: threading.Lock) -> None:
        self.batches = batches
        self.jobs = max(1, jobs)
        self.ready = threading.Condition(lock)
        self.held: dict[int, Any] = {}
        self.pulled = 0
        self.ended = False
        self.active = self.jobs

    def every(self, first: int) -> Iterator[Any]:
        k = first
        while (batch := self._take(k)) is not None:
            yield batch
            k += self.jobs

    def _take(self, k: int) -> Any:
        with self.ready:
            while True:
                if k in self.held:
                    self.ready.notify_all()
                    return self.held.pop(k)
                if self.ended:
                    return None
                if len(self.held) < 2 * self.jobs or self.active < self.jobs:
                    batch = next(self.batches, None)
                    if batch is None:
                        self.ended = True
                    else:
                        self.held[self.pulled] = batch
                        self.pulled += 1
                    self.ready.notify_all()
                    continue
                self.ready.wait()

    def leave(self) -> None:
        """A thread is done (or failed): the others may pull past its batches."""
        with self.ready:
            self.active -= 1
            self.ready.notify_all()


def log_posterior(expansion: Expansion, theta: dict[str, float]) -> float:
    """The log posterior of the dense part at the expansion point (levels integrated out)."""
    model = expansion.model
    lam, lam_u = model.prior_precision(theta)
    out = expansion.ll0 - 0.5 * float(lam @ expansion.c0**2) + 0.5 * float(np.log(lam).sum())
    if model.n_levels:
        out += float(expansion.levels(lam_u)[0].sum())
    out += expansion.session_part(theta)[0]
    return out


def fit_passes(
    model: LatentModel,
    source: Source,
    options: LaplaceOptions,
    *,
    n_rows: int | None = None,
    progress: bool | None = None,
    on_pass: Callable[[int, PassRecord], None] | None = None,
) -> LaplaceFit:
    """Passes until convergence, then the posterior summary (see the module notes)."""
    start = time.perf_counter()
    phi = np.array([h.start() for h in model.hypers])
    c = np.zeros(model.q)
    lam_u0 = model.prior_precision(model.theta(phi))[1]
    node_mean = np.zeros(model.n_levels)
    node_scale = np.full(model.n_levels, 1 / np.sqrt(lam_u0) if model.n_levels else 1.0)
    z, _ = hermite_nodes(N_NODES)
    names = [h.name for h in model.hypers]
    j_s = names.index(model.session_hyper) if model.session_hyper is not None else None
    s_nodes = SessionNodes.prior(float(np.exp(phi[j_s]))) if j_s is not None else None
    track_moments: tuple[np.ndarray, np.ndarray] | None = None
    previous: tuple[np.ndarray, np.ndarray, SessionNodes | None, float, dict[str, float]] | None
    previous = None
    records: list[PassRecord] = []
    converged = False
    halvings = 0
    expansion: Expansion | None = None
    solution: Solution | None = None
    n_seen = 0
    for number in range(1, options.max_passes + 1):
        t0 = time.perf_counter()
        nodes = node_mean[:, None] + node_scale[:, None] * z[None, :]
        sessions = None
        if s_nodes is not None and j_s is not None:
            sessions = (s_nodes, scale_grid(float(phi[j_s])))
        expansion = None  # the last pass's per-level sums go before this one's are made
        with Progress(
            f"laplace pass {number}", unit="plays", total=n_rows, enabled=progress
        ) as bar:
            sums = run_pass(
                model, source, c, nodes, bar, jobs=options.threads(), sessions=sessions,
                track_moments=track_moments,
            )  # fmt: skip
        n_seen = sums.n_rows
        expansion = Expansion(model, sums, c, node_mean, node_scale)
        pass_sessions = sums.sessions
        del sums
        if previous is not None:
            c_prev, mean_prev, s_prev, lp_prev, theta_prev = previous
            lp = log_posterior(expansion, theta_prev)
            # With sessions the log posterior is the mean-field one (the plays' curves at the
            # other pool's centre) while the steps follow the gradient averaged over both pools:
            # below SESSION_HALVING_STEP sds its dips are not a step's fault, and halving them
            # would stall the passes short of the mode.
            noisy = (
                s_nodes is not None and records and records[-1].max_step_sd < SESSION_HALVING_STEP
            )
            if lp < lp_prev - 1e-9 * abs(lp_prev) and halvings < MAX_HALVINGS and not noisy:
                halvings += 1
                c = (c + c_prev) / 2
                node_mean = (node_mean + mean_prev) / 2
                if s_nodes is not None and s_prev is not None:
                    s_nodes = s_nodes.halfway(s_prev)
                records.append(PassRecord(time.perf_counter() - t0, lp, float("nan"), 0.0, True))
                continue
        halvings = 0
        new_phi = maximise(model, expansion, phi)
        theta = model.theta(new_phi)
        solution = expansion.solve(theta)
        sd_c = np.sqrt(np.diag(solution.cov_dense()))
        step = np.abs(solution.dc) / sd_c
        if model.n_levels:
            moved = np.abs(solution.level_mean - node_mean) / np.sqrt(
                np.maximum(solution.level_var, 1e-300)
            )
            step = np.concatenate([step, moved])
        if expansion.sessions is not None:
            step = np.append(step, expansion.sessions.max_move)
        max_step = float(step.max()) if step.size else 0.0
        hyper_step = float(np.abs(new_phi - phi).max()) if phi.size else 0.0
        lp_here = log_posterior(expansion, theta)
        record = PassRecord(time.perf_counter() - t0, lp_here, max_step, hyper_step)
        records.append(record)
        if on_pass is not None:
            on_pass(number, record)
        previous = (c, node_mean, s_nodes, lp_here, theta)
        phi = new_phi
        if max_step < options.tol and hyper_step < options.tol:
            converged = True
            break
        c = c + solution.dc
        if model.n_levels:
            # adaptive Gauss-Hermite: nodes on the level's posterior mean, spread by its
            # curvature (the quadrature's own variance collapses when the nodes are too wide)
            node_mean = solution.level_mean
            node_scale = 1.0 / np.sqrt(expansion.w_t + model.prior_precision(theta)[1])
        if pass_sessions is not None and j_s is not None:
            s_nodes = pass_sessions.nodes(float(np.exp(phi[j_s])))
            if model.n_levels:
                var = solution.level_var
                track_moments = (var[:, None] * expansion.H, var)
        pass_sessions = None
    assert expansion is not None and solution is not None
    fit = summarise(model, expansion, solution, phi)
    fit.passes, fit.converged, fit.n_rows = records, converged, n_seen
    fit.seconds = time.perf_counter() - start
    return fit


def summarise(
    model: LatentModel, expansion: Expansion, solution: Solution, phi: np.ndarray
) -> LaplaceFit:
    """The posterior at the last expansion (see the module notes)."""
    theta_cov = posterior_covariance(model, expansion, phi)
    d = phi.size
    jac_c = np.zeros((model.q, d))
    jac_u = np.zeros((model.n_levels, d))
    h = 0.05
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        hi = expansion.solve(model.theta(phi + e))
        lo = expansion.solve(model.theta(phi - e))
        jac_c[:, j] = (hi.dc - lo.dc) / (2 * h)
        jac_u[:, j] = (hi.level_mean - lo.level_mean) / (2 * h)
    cov_cond = solution.cov_dense()
    chol = np.tril(solution.chol[0])
    level_mean = level_sd = np.zeros(0)
    if model.n_levels:
        # the dense part's uncertainty reaches each level through d mean / d c = -v_t b_t
        spread = np.einsum("ld,de,le->l", jac_u, theta_cov, jac_u)
        for start in range(0, model.n_levels, 65_536):
            part = slice(start, start + 65_536)
            shift = (expansion.H[part] @ model.P) * solution.level_var[part, None]
            spread[part] += (solve_triangular(chol, shift.T, lower=True) ** 2).sum(axis=0)
        level_mean = solution.level_mean
        level_sd = np.sqrt(solution.level_var + spread)
    eig = np.linalg.eigvalsh(_correlation(np.linalg.inv(cov_cond)))
    return LaplaceFit(
        model=model,
        log_theta=phi,
        theta_cov=theta_cov,
        mode=expansion.c0 + solution.dc,
        jacobian=jac_c,
        chol=chol,
        level_mean=level_mean,
        level_sd=level_sd,
        condition=float(eig.max() / max(eig.min(), 1e-300)),
    )


def _correlation(precision: np.ndarray) -> np.ndarray:
    s = 1 / np.sqrt(np.diag(precision))
    return precision * s[:, None] * s[None, :]


def batches_of(batch: RowBatch, rows: int = 131_072) -> Iterator[RowBatch]:
    """An in-memory batch in slices (the progress display advances per slice)."""
    for lo in range(0, batch.n_rows, rows):
        hi = min(lo + rows, batch.n_rows)
        yield batch.slice(lo, hi)


__all__ = [
    "LaplaceFit",
    "LaplaceOptions",
    "PassRecord",
    "batches_of",
    "fit_passes",
    "log_posterior",
    "run_pass",
    "summarise",
]
