"""Per-level effects kept as a Gaussian summary, drawn on demand.

A nested-Laplace fit (``--method laplace``) keeps the effects of its largest pool (tracks: up to
millions of levels) as a mean and an sd per level, in the run's ``levels`` group, instead of
``levels x draws`` numbers. :class:`GaussianLevels` stands in for the ``(draws, levels)`` table a
sampler would have written: indexing it with ``[:, codes]`` draws the levels asked for, and the
same level gets the same draw wherever it is asked for (every chunk of rows, every call), because
each (level, draw) number comes from a counter-based hash of the seed, the level and the draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

#: The DataTree group of a run holding per-level Gaussian summaries.
LEVELS_GROUP = "levels"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_normals(seed: int, levels: np.ndarray, n_draws: int) -> np.ndarray:
    """Standard normals (n_draws, len(levels)), a fixed function of (seed, level, draw)."""
    lv = np.asarray(levels, dtype=np.uint64)[None, :]
    dr = np.arange(1, n_draws + 1, dtype=np.uint64)[:, None]
    base = _mix(np.asarray([seed], dtype=np.uint64) * _GOLDEN + np.uint64(1)) + lv * _GOLDEN
    h1 = _mix(base + dr * np.uint64(0xD1B54A32D192ED03))
    h2 = _mix(h1 + _GOLDEN)
    scale = 2.0**-53
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) * scale
    u2 = (h2 >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


class GaussianLevels:
    """A ``(n_draws, n_levels)`` table of independent N(mean, sd) draws, made when indexed."""

    def __init__(
        self,
        mean: np.ndarray,
        sd: np.ndarray,
        n_draws: int,
        seed: int = 0,
        rows: np.ndarray | None = None,
    ) -> None:
        self.mean = np.asarray(mean, dtype=float)
        self.sd = np.asarray(sd, dtype=float)
        self.n_draws = int(n_draws)
        self.seed = int(seed)
        self.rows = rows  # a subset of the draws (:meth:`take`), else all

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_draws if self.rows is None else len(self.rows), self.mean.size)

    def take(self, rows: np.ndarray) -> GaussianLevels:
        """The draws ``rows`` of this table (the same numbers as indexing the whole)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows is not None:
            rows = self.rows[rows]
        return GaussianLevels(self.mean, self.sd, self.n_draws, self.seed, rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)):
            raise TypeError("GaussianLevels is indexed as [:, level_codes]")
        codes = np.asarray(key[1], dtype=np.int64)
        unique, inverse = np.unique(codes, return_inverse=True)
        z = hashed_normals(self.seed, unique, self.n_draws)
        if self.rows is not None:
            z = z[self.rows]
        table = self.mean[unique] + self.sd[unique] * z
        return table[:, inverse.reshape(codes.shape)]


def level_draws(tree: xr.DataTree, n_draws: int, seed: int) -> dict[str, GaussianLevels]:
    """The run's per-level summaries as draw-on-demand tables, by posterior variable name."""
    if LEVELS_GROUP not in tree.children:
        return {}
    ds = tree[LEVELS_GROUP].to_dataset()
    name = str(ds.attrs["variable"])
    return {
        name: GaussianLevels(ds[f"{name}_mean"].values, ds[f"{name}_sd"].values, n_draws, seed=seed)
    }


__all__ = ["LEVELS_GROUP", "GaussianLevels", "hashed_normals", "level_draws"]
