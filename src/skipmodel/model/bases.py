"""Numerical building blocks of term designs, and the data-driven parametrisation choices.

Random-walk and Fourier bases, HSGP (Hilbert-space GP) bases and spectral densities, and the
"auto" choice of which levels or modes to centre (data information against prior information).
No PyMC: the PyTensor twin of :func:`expquad_sqrt_psd` is the same function with ``lib=pt``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from skipmodel.model.spec import Priors, Smooth

#: "auto" parametrisation: a level (or random-walk mode) is centred when the data's information
#: about it is at least this many times the prior's (see :func:`information_ratio`): the data then
#: pin it down and the centred form mixes better; thin levels stay non-centred.
INFORMATIVE_RATIO = 4.0
#: Pools with fewer levels are never "mixed" (which gives up the sum-to-zero): all centred or all
#: non-centred; with few levels the intercept would trade off with the pool's mean (intercept bulk
#: ESS 45-70 of 600 at 10k plays, context_type).
MIXED_MIN_LEVELS = 50
#: Upper bound on the automatic HSGP basis size (the heuristic can ask for more on wide ranges).
HSGP_MAX_BASIS = 40
#: Points on which each smooth is also evaluated for reporting (``<column>_grid`` coords).
SMOOTH_GRID = 50
#: Points of the grid a smooth is evaluated on in the model: each row gathers its nearest grid
#: point's value, so a logp evaluation costs one small basis product, not one per distinct value
#: (max error: half a grid step, 1/2000 of the fitted range, far below any lengthscale allowed).
SMOOTH_GATHER_GRID = 1000


def information_ratio(plays: np.ndarray, rate: float, prior_scale: float) -> np.ndarray:
    """Data over prior information about a logit effect with ``plays`` Bernoulli trials.

    Fisher information of ``n`` plays at skip rate ``p`` is ``n p (1 - p)``; the prior's is
    ``1 / s^2`` with ``s`` a typical value of the effect's scale, half its HalfNormal prior scale.
    """
    rate = min(max(float(rate), 0.01), 0.99)
    return np.asarray(plays, dtype=float) * rate * (1 - rate) * (prior_scale / 2) ** 2


def small_pool_scale(counts: np.ndarray, skips: np.ndarray) -> float:
    """The sd of a small pool's level effects, estimated from the levels' own skip rates.

    The between-level variance of the levels' logit skip rates less their mean sampling variance
    (a method-of-moments estimate, 0 when the rates spread no more than sampling does). Raw rates
    ignore the other terms; this only chooses a parametrisation, from the data alone.
    """
    n = np.asarray(counts, dtype=float)
    seen = n > 0
    n, k = n[seen], np.asarray(skips, dtype=float)[seen]
    if len(n) < 2:
        return 0.0
    p = (k + 0.5) / (n + 1.0)  # continuity-corrected, finite at 0 and n
    logit = np.log(p / (1 - p))
    sampling = 1.0 / ((n + 1.0) * p * (1 - p))
    between = float(np.var(logit, ddof=1) - sampling.mean())
    return float(np.sqrt(between)) if between > 0 else 0.0


def pooled_parametrization(
    choice: str,
    counts: np.ndarray,
    rate: float,
    prior_scale: float,
    skips: np.ndarray | None = None,
) -> dict[str, Any]:
    """The settings of a pooled term: ``{"p": ..., "centered": [level indices]}``.

    ``auto`` centres the informative levels (:data:`INFORMATIVE_RATIO`) and leaves the thin ones
    non-centred; if that splits the levels, the term is ``mixed`` (see ``terms.build_pooled``).
    A pool of fewer than :data:`MIXED_MIN_LEVELS` levels is all centred or all non-centred, and
    its few levels say little of its sd: the posterior of the sd reaches down to small values,
    where a centred pool is a funnel (simulation-based calibration of the 6-level context_type
    pool: centred in 62 of 100 replications by the median level's information at the prior's
    typical scale, 24 of them divergent, the sd biased upwards). So with ``skips`` (outcomes per
    level) a small pool's median level is judged at the sd its levels' rates show
    (:func:`small_pool_scale`): levels that spread no more than sampling noise leave it
    non-centred however many plays they have. Without them (as before outcomes were read), at
    the prior's typical scale.
    """
    if choice == "centered":
        return {"p": "centered", "centered": list(range(len(counts)))}
    if choice == "noncentered" or len(counts) == 0:
        return {"p": "noncentered", "centered": []}
    ratio = information_ratio(counts, rate, prior_scale)
    thick = ratio >= INFORMATIVE_RATIO
    if len(counts) < MIXED_MIN_LEVELS:
        if skips is None:
            thick[:] = np.median(ratio) >= INFORMATIVE_RATIO
        else:  # the ratio takes half the scale it is given
            spread = information_ratio(counts, rate, 2 * small_pool_scale(counts, skips))
            thick[:] = np.median(spread) >= INFORMATIVE_RATIO
    if thick.all():
        return {"p": "centered", "centered": list(range(len(counts)))}
    if not thick.any():
        return {"p": "noncentered", "centered": []}
    return {"p": "mixed", "centered": [int(i) for i in np.flatnonzero(thick)]}


def random_walk_basis(n: int, *, cyclic: bool) -> np.ndarray:
    """Basis ``B`` (n, n-1) with ``B @ z``, z ~ N(0, I), a sum-to-zero first-order random walk.

    The random walk's precision is the (cyclic or path) graph Laplacian; its eigenvectors
    (Fourier modes on a cycle, cosines on a path) scaled by 1/sqrt(eigenvalue) give an exactly
    non-centred form without constraints. Columns are scaled so the average marginal variance is
    1, so the term's ``sigma`` is its typical size (Sorbye & Rue's scaling).
    """
    diff = np.eye(n, k=1)[: n if cyclic else n - 1] - np.eye(n)[: n if cyclic else n - 1]
    if cyclic:
        diff[n - 1, 0] = 1.0
    w, v = np.linalg.eigh(diff.T @ diff)
    keep = w > 1e-9
    basis = v[:, keep] / np.sqrt(w[keep])
    return basis / np.sqrt((basis**2).sum(axis=1).mean())


def fourier_basis(hours: np.ndarray, harmonics: int, period: float = 24.0) -> np.ndarray:
    """cos/sin pairs of harmonics 1..k (the periodic HSGP basis without its constant)."""
    k = np.arange(1, harmonics + 1)
    arg = 2 * np.pi * np.outer(hours, k) / period
    return np.concatenate([np.cos(arg), np.sin(arg)], axis=1)


def hsgp_basis(x: np.ndarray, *, center: float, half_width: float, m: int) -> np.ndarray:
    """Laplacian eigenfunctions on [center - L, center + L] (Solin & Sarkka), shape (len(x), m)."""
    sqrt_eig = np.pi * np.arange(1, m + 1) / (2 * half_width)
    return np.sqrt(1 / half_width) * np.sin(np.outer(x - center + half_width, sqrt_eig))


def hsgp_sqrt_eigenvalues(half_width: float, m: int) -> np.ndarray:
    return np.pi * np.arange(1, m + 1) / (2 * half_width)


#: sqrt(2 pi) as a Python float, so float32 models stay float32.
SQRT_2PI = float(np.sqrt(2 * np.pi))


def expquad_sqrt_psd(ls: Any, amp: Any, sqrt_eig: np.ndarray, lib: Any = np) -> Any:
    """Square root of the ExpQuad spectral density at the HSGP frequencies (NumPy or PyTensor).

    ``sqrt(sqrt(2 pi) ls exp(-(ls w)^2 / 2))``, with the square root taken inside the exp: the
    plain form's gradient is 0 * inf = NaN once exp(...) underflows (long lengthscales).
    """
    return amp * lib.sqrt(SQRT_2PI * ls) * lib.exp(-0.25 * (ls * sqrt_eig) ** 2)


def fixed_lengthscale(term: Smooth, priors: Priors) -> float | None:
    """The lengthscale a smooth is fixed at (standardised units), or None when it is free."""
    if term.lengthscale == "free":
        return None
    if term.lengthscale == "auto":
        return float(np.sqrt(priors.lengthscale_lower * priors.lengthscale_upper))
    return float(term.lengthscale)


def hsgp_box(
    x_min: float,
    x_max: float,
    priors: Priors,
    *,
    m: int | None,
    c: float | None,
    lengthscale: float | None = None,
):
    """Basis size and box factor from the data range, as PyMC's ``approx_hsgp_hyperparams``
    does for an ExpQuad kernel (Ruitort-Mayol et al. 2022), unless given: for the prior's
    lengthscale range, or for one fixed ``lengthscale``."""
    lower, upper = (
        (priors.lengthscale_lower, priors.lengthscale_upper)
        if lengthscale is None
        else (lengthscale, lengthscale)
    )
    half = max((x_max - x_min) / 2, 1e-6)
    c_auto = max(3.2 * upper / half, 1.2)
    c_used = c if c is not None else c_auto
    m_auto = int(1.75 * c_used / (lower / half))
    m_used = m if m is not None else int(min(max(m_auto, 8), HSGP_MAX_BASIS))
    return m_used, c_used, half


def smooth_modes(
    basis: np.ndarray, plays: np.ndarray, rate: float, prior_scale: float
) -> tuple[np.ndarray, list[int]]:
    """Rotation of a fixed-lengthscale smooth's modes, and the modes to centre.

    The smooth is ``basis @ (amplitude * w)`` with ``w ~ N(0, I)``; ``plays`` per basis row
    give ``w`` the information ``H = a^2 B' diag(plays p (1 - p)) B`` at a typical amplitude
    ``a`` (half its prior scale, as :func:`information_ratio`). Low-frequency HSGP modes are
    nearly collinear over the data, so ``H`` is far from diagonal, and NUTS with a diagonal mass
    matrix crawls along the correlations. With ``V`` the eigenvectors of ``H``, ``w = V u``
    leaves the prior unchanged (``V`` is orthogonal, the prior isotropic) and makes the data's
    information diagonal in ``u``. Modes (columns of ``B V``, most informed first) with
    information ratio >= :data:`INFORMATIVE_RATIO` are centred, the others non-centred.
    """
    weights = information_ratio(plays, rate, prior_scale)  # per basis row
    info = basis.T @ (basis * weights[:, None])
    info = (info + info.T) / 2
    # Modes the data barely inform (few distinct values: a binned column) have (near-)equal
    # eigenvalues, so their eigenvectors are arbitrary and would change with summation order
    # (cells against rows). A tiny ramp, largest for the smoothest mode, keeps them in the basis
    # order; it moves no eigenvalue by more than 1e-9 of the largest.
    m = info.shape[0]
    ramp = 1e-9 * max(float(np.abs(info).max()), 1e-300) * np.linspace(1.0, 0.5, m)
    eigenvalues, vectors = np.linalg.eigh(info + np.diag(ramp))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    # a fixed sign per mode (largest loading positive), so the rotation is reproducible
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(flip == 0, 1.0, flip)
    centered = [int(j) for j in np.flatnonzero(eigenvalues >= INFORMATIVE_RATIO)]
    return vectors, centered


def walk_parametrization(
    choice: str, plays: np.ndarray, basis: np.ndarray, rate: float, prior_scale: float
) -> list[int]:
    """Random-walk modes to centre: ``basis`` columns the data inform (``auto``), all, or none.

    Mode ``j`` adds ``a_j * basis[:, j]`` with ``a_j ~ N(0, sigma)``; ``plays`` per level give it
    information ``sum_l plays_l p (1 - p) basis[l, j]^2`` (:func:`information_ratio`).
    """
    if choice == "centered":
        return list(range(basis.shape[1]))
    if choice == "noncentered":
        return []
    per_mode = np.asarray(plays, dtype=float) @ basis**2
    ratio = information_ratio(per_mode, rate, prior_scale)
    return [int(j) for j in np.flatnonzero(ratio >= INFORMATIVE_RATIO)]
