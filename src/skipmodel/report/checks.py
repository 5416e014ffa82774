"""Posterior predictive checks by group, and binned previous x current feature surfaces.

Replicated data are drawn play by play, ``y_rep ~ Bernoulli(p_s)`` for each posterior draw
``s``; a group's replicated skip rate is the mean of ``y_rep`` over its plays, giving one rate
per draw. The observed rate should sit inside the interval of the replicated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from skipmodel.report.effects import Interval, interval

__all__ = ["GroupCheck", "Surface", "binned_surface", "group_check"]


@dataclass(frozen=True)
class GroupCheck:
    """Observed vs replicated skip rate per level of one grouping (``labels``)."""

    name: str
    labels: tuple[object, ...]
    count: np.ndarray
    observed: np.ndarray
    replicated: np.ndarray  # (draws, levels)

    def summary(self) -> Interval:
        return interval(self.replicated)

    @property
    def coverage(self) -> float:
        """Share of levels whose observed rate lies inside the 94 % replicated interval."""
        s = self.summary()
        inside = (self.observed >= s.lower) & (self.observed <= s.upper)
        return float(inside.mean()) if inside.size else float("nan")


def group_check(
    name: str,
    groups: ArrayLike,
    y: ArrayLike,
    p_draws: np.ndarray,
    *,
    seed: int = 0,
    order: list[object] | None = None,
) -> GroupCheck:
    """Observed and replicated skip rates per group.

    Parameters
    ----------
    groups : (n,) labels of each play (e.g. hour of day); ``None`` -> one group "all plays".
    y : (n,) observed outcomes 0/1.
    p_draws : (S, n) posterior draws of each play's skip probability.
    """
    y_arr = np.asarray(y, dtype=float)
    p = np.asarray(p_draws, dtype=float)
    if p.ndim != 2 or p.shape[1] != y_arr.size:
        raise ValueError(f"p_draws must be (draws, {y_arr.size}); got {p.shape}")
    codes, uniques = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    levels = list(uniques)
    if order is not None:
        wanted = [lv for lv in order if lv in levels] + [lv for lv in levels if lv not in order]
        remap = np.asarray([wanted.index(lv) for lv in levels])
        codes, levels = remap[codes], wanted
    k = len(levels)
    count = np.bincount(codes, minlength=k).astype(float)
    observed = np.bincount(codes, weights=y_arr, minlength=k) / np.maximum(count, 1)
    rng = np.random.default_rng(seed)
    indicator = np.zeros((y_arr.size, k))
    indicator[np.arange(y_arr.size), codes] = 1.0
    replicated = np.empty((p.shape[0], k))
    step = max(1, 2_000_000 // max(y_arr.size, 1))  # bound memory: ~2e6 draws-by-plays at once
    for start in range(0, p.shape[0], step):
        block = p[start : start + step]
        y_rep = (rng.random(block.shape) < block).astype(float)
        replicated[start : start + step] = (y_rep @ indicator) / np.maximum(count, 1)
    return GroupCheck(name, tuple(levels), count.astype(int), observed, replicated)


@dataclass(frozen=True)
class Surface:
    """Skip rate over quantile bins of a feature before (rows) and now (columns)."""

    feature: str
    prev_edges: np.ndarray
    cur_edges: np.ndarray
    empirical: np.ndarray
    predicted: np.ndarray
    count: np.ndarray


def _quantile_edges(x: np.ndarray, bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    return edges if edges.size >= 2 else np.array([x.min(), x.max() + 1e-9])


def binned_surface(
    feature: str,
    prev_value: ArrayLike,
    value: ArrayLike,
    y: ArrayLike,
    p_mean: ArrayLike,
    *,
    bins: int = 6,
    min_count: int = 10,
) -> Surface:
    """Empirical and mean predicted skip rate per (previous, current) quantile-bin cell.

    Rows with a missing previous or current value are dropped; cells with fewer than
    ``min_count`` plays are NaN (too noisy to show).
    """
    prev = np.asarray(prev_value, dtype=float)
    cur = np.asarray(value, dtype=float)
    ok = np.isfinite(prev) & np.isfinite(cur)
    prev, cur = prev[ok], cur[ok]
    y_arr = np.asarray(y, dtype=float)[ok]
    p_arr = np.asarray(p_mean, dtype=float)[ok]
    if prev.size == 0:
        raise ValueError(f"no plays with both {feature} and prev_{feature}")
    pe, ce = _quantile_edges(prev, bins), _quantile_edges(cur, bins)
    i = np.clip(np.searchsorted(pe, prev, side="right") - 1, 0, pe.size - 2)
    j = np.clip(np.searchsorted(ce, cur, side="right") - 1, 0, ce.size - 2)
    shape = (pe.size - 1, ce.size - 1)
    flat = np.ravel_multi_index((i, j), shape)
    count = np.bincount(flat, minlength=np.prod(shape)).reshape(shape)
    emp = np.bincount(flat, weights=y_arr, minlength=np.prod(shape)).reshape(shape)
    pred = np.bincount(flat, weights=p_arr, minlength=np.prod(shape)).reshape(shape)
    thin = count < min_count
    with np.errstate(invalid="ignore", divide="ignore"):
        emp = np.where(thin, np.nan, emp / count)
        pred = np.where(thin, np.nan, pred / count)
    return Surface(feature, pe, ce, emp, pred, count)
