"""Fisher's z test of conditional independence from a correlation matrix, as pcalg computes it.

pcalg's ``gaussCItest`` is the reference: the partial correlation of ``x`` and ``y`` given ``S``
comes from the correlation matrix alone (``pcorOrder``: the plain entry for ``|S| = 0``, the
closed form for ``|S| = 1``, the Moore-Penrose pseudo-inverse of the ``(x, y, S)`` submatrix for
``|S| >= 2``), is clipped to ``±0.9999999`` (``NaN`` becomes 0), and

    z = sqrt(n - |S| - 3) * 0.5 * log((1 + r) / (1 - r)),    p = 2 * Phi(-|z|)

with ``z = 0`` whenever it is undefined (e.g. ``n - |S| - 3 < 0``), so such a test removes the
edge. Everything here is vectorised over many tests with conditioning sets of one size.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

#: pcalg's ``pcorOrder(cut.at = 0.9999999)``: partial correlations are clipped to this.
CUT_AT = 0.9999999

IndexLike = int | np.ndarray


def log_q1pm(r: np.ndarray) -> np.ndarray:
    """``log((1 + r) / (1 - r))`` computed as pcalg does (``log1p(2 r / (1 - r))``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(2.0 * r / (1.0 - r))


def _pcor_pinv(corr: np.ndarray, x: np.ndarray, y: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """pcalg's formula: ``-P[1, 2] / sqrt(P[1, 1] P[2, 2])`` with ``P = pinv(C[(x, y, S)])``."""
    k, m = sets.shape
    idx = np.empty((k, m + 2), dtype=np.intp)
    idx[:, 0] = x
    idx[:, 1] = y
    idx[:, 2:] = sets
    sub = corr[idx[:, :, None], idx[:, None, :]]
    # numpy's default cutoff (max(M, N) * eps * largest singular value) is corpcor's
    # pseudoinverse() tolerance, which pcalg uses.
    pm = np.linalg.pinv(sub)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -pm[:, 0, 1] / np.sqrt(pm[:, 0, 0] * pm[:, 1, 1])


def _pcor_schur(corr: np.ndarray, x: np.ndarray, y: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Partial correlations for ``|S| >= 2`` via the Schur complement, pinv where singular.

    For an invertible ``C[S, S]`` the (x, y) block of ``pinv(C[(x, y, S)])`` is the inverse of
    the residual covariance ``R = C[xy, xy] - C[xy, S] C[S, S]^-1 C[S, xy]``, so
    ``-P12 / sqrt(P11 P22) = R12 / sqrt(R11 R22)``: the same number as pcalg's, from one small
    LU solve instead of an SVD. Tests whose ``C[S, S]`` is singular (or whose result is not a
    valid correlation) are recomputed with the pseudo-inverse exactly as pcalg does.
    """
    xy = np.stack([x, y], axis=1)  # (k, 2)
    s_block = corr[sets[:, :, None], sets[:, None, :]]  # (k, m, m)
    cross = corr[sets[:, :, None], xy[:, None, :]]  # (k, m, 2)
    try:
        solved = np.linalg.solve(s_block, cross)
    except np.linalg.LinAlgError:
        return _pcor_pinv(corr, x, y, sets)
    resid = corr[xy[:, :, None], xy[:, None, :]] - np.einsum("kmi,kmj->kij", cross, solved)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = resid[:, 0, 1] / np.sqrt(resid[:, 0, 0] * resid[:, 1, 1])
    bad = ~np.isfinite(r) | (np.abs(r) > 1.0) | (resid[:, 0, 0] <= 0) | (resid[:, 1, 1] <= 0)
    if bad.any():
        r[bad] = _pcor_pinv(corr, x[bad], y[bad], sets[bad])
    return r


def partial_correlations(
    corr: np.ndarray, x: IndexLike, y: IndexLike, sets: np.ndarray
) -> np.ndarray:
    """Partial correlations of ``x`` and ``y`` given each row of ``sets``.

    Parameters
    ----------
    corr
        The ``p x p`` correlation matrix.
    x, y
        Variable indices: scalars, or one per row of ``sets``.
    sets
        Integer array of shape ``(k, m)``: ``k`` conditioning sets of size ``m`` each.

    Returns
    -------
    numpy.ndarray
        ``k`` partial correlations, clipped to ``±CUT_AT`` and with ``NaN`` replaced by 0 as in
        pcalg's ``pcorOrder``.
    """
    sets = np.asarray(sets, dtype=np.intp)
    k, m = sets.shape
    x = np.broadcast_to(np.asarray(x, dtype=np.intp), (k,))
    y = np.broadcast_to(np.asarray(y, dtype=np.intp), (k,))
    with np.errstate(divide="ignore", invalid="ignore"):
        if m == 0:
            r = corr[x, y].astype(np.float64)
        elif m == 1:
            s = sets[:, 0]
            r = (corr[x, y] - corr[x, s] * corr[y, s]) / np.sqrt(
                (1.0 - corr[y, s] ** 2) * (1.0 - corr[x, s] ** 2)
            )
        else:
            r = _pcor_schur(corr, x, y, sets)
    r = np.where(np.isnan(r), 0.0, r)
    return np.clip(r, -CUT_AT, CUT_AT)


def fisher_z(r: np.ndarray, n: float, set_size: int) -> np.ndarray:
    """Fisher's z statistic ``sqrt(n - |S| - 3) * atanh(r)``; undefined values become 0."""
    with np.errstate(invalid="ignore"):
        z = np.sqrt(np.float64(n - set_size - 3)) * 0.5 * log_q1pm(np.asarray(r, dtype=float))
    return np.where(np.isnan(z), 0.0, z)


def p_values(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values ``2 * Phi(-|z|)``, accurate far into the tail."""
    return 2.0 * ndtr(-np.abs(z))


def gauss_ci_test(
    corr: np.ndarray, n: float, x: IndexLike, y: IndexLike, sets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Partial correlations, z statistics and p-values of ``x ⟂ y | S`` for each row of ``sets``.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> r, z, p = gauss_ci_test(c, 100, 0, 1, np.empty((1, 0), dtype=int))
    >>> round(float(r[0]), 3), round(float(z[0]), 3)
    (0.5, 5.41)
    """
    sets = np.asarray(sets, dtype=np.intp)
    r = partial_correlations(corr, x, y, sets)
    z = fisher_z(r, n, sets.shape[1])
    return r, z, p_values(z)
