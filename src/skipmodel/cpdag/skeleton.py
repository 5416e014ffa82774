"""The PC skeleton: order-independent ("stable") edge removal with separating sets, as pcalg.

Mirrors pcalg's ``skeleton(method = "stable")`` step by step, because the separating sets it
records decide the collider orientation later:

- levels ``ord = 0, 1, ...`` while some pair still has more than ``ord`` neighbours to condition
  on (and ``ord <= max_cond``);
- within a level the ordered pairs ``(x, y)`` of the current graph are visited sorted by ``x``
  then ``y``; a pair is skipped when its edge is already gone; the conditioning sets are the
  size-``ord`` subsets of ``adj(x) \\ {y}`` taken from the adjacency frozen at the start of the
  level ("stable"), in lexicographic order;
- the first set with ``p >= alpha`` removes the edge and is stored as ``sepset[(x, y)]`` (only
  in the direction tested; readers look at both directions);
- ``max_pvalue`` is the largest p-value over the tests performed on a pair (both directions),
  ``min_abs_pcor`` the smallest |partial correlation|.

Speed without changing the answer: at each level the first ``_PREFETCH`` conditioning sets of
every pair are tested in one vectorised call (the stable search knows them up front), and the
rest of a surviving pair's sets in growing chunks. Only the tests up to the first removing one
count, so edges, separating sets, ``max_pvalue`` and test counts equal pcalg's sequential loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, combinations, islice

import numpy as np

from skipmodel.cpdag.citest import gauss_ci_test

#: Sets per pair evaluated up front for all pairs of a level in one vectorised call (stable
#: search only: its neighbour sets are frozen, so the tests are known before the loop).
_PREFETCH = 128
#: Later chunks (pairs that survive the prefetched sets) grow from here up to ``_MAX_CHUNK``.
_FIRST_CHUNK = 256
_MAX_CHUNK = 8192
#: Subset index arrays up to this many rows are built once and cached.
_INDEX_LIMIT = 200_000

Tested = tuple[np.ndarray, np.ndarray, np.ndarray]  # sets, partial correlations, p-values


@dataclass(frozen=True)
class Skeleton:
    """The undirected skeleton and what the tests left behind.

    Attributes
    ----------
    adjacency
        Symmetric boolean ``p x p`` matrix.
    sepsets
        ``(x, y) -> S`` for each removed edge, keyed as pcalg stores it (``x`` is the variable
        whose neighbours were conditioned on).
    max_pvalue, min_abs_pcor
        Symmetric ``p x p``: the largest p-value and smallest |partial correlation| over the
        tests performed on each pair (``-inf`` / ``inf`` where never tested).
    n_tests
        Number of tests performed at each level.
    """

    adjacency: np.ndarray
    sepsets: dict[tuple[int, int], tuple[int, ...]]
    max_pvalue: np.ndarray
    min_abs_pcor: np.ndarray
    n_tests: tuple[int, ...]

    @property
    def max_order(self) -> int:
        """The largest conditioning-set size tried (pcalg's ``max.ord``)."""
        return len(self.n_tests) - 1

    def sepset(self, x: int, y: int) -> frozenset[int]:
        """Union of the sets stored for ``(x, y)`` and ``(y, x)`` (empty when none)."""
        return frozenset(self.sepsets.get((x, y), ())) | frozenset(self.sepsets.get((y, x), ()))


@lru_cache(maxsize=1024)
def _combination_index(k: int, size: int) -> np.ndarray | None:
    """All size-``size`` subsets of ``range(k)`` in lexicographic order (``None`` if huge).

    Built from smaller cached blocks (first element, then the subsets of what follows it), so
    even ~10^5 subsets take milliseconds.
    """
    if math.comb(k, size) > _INDEX_LIMIT:
        return None
    if size == 0:
        return np.zeros((1, 0), dtype=np.intp)
    blocks = []
    for first in range(k - size + 1):
        rest = _combination_index(k - first - 1, size - 1)
        assert rest is not None  # smaller than this one
        block = np.empty((len(rest), size), dtype=np.intp)
        block[:, 0] = first
        block[:, 1:] = rest + (first + 1)
        blocks.append(block)
    index = np.concatenate(blocks) if blocks else np.zeros((0, size), dtype=np.intp)
    index.flags.writeable = False
    return index


def _subsets(nbrs: np.ndarray, size: int, start: int, stop: int | None) -> np.ndarray:
    """Subsets ``start:stop`` (lexicographic) of ``nbrs`` of size ``size``, as rows."""
    index = _combination_index(nbrs.size, size)
    if index is not None:
        return nbrs[index[start:stop]]
    block = list(islice(combinations(nbrs.tolist(), size), start, stop))
    return np.array(block, dtype=np.intp).reshape(len(block), size)


def _lazy_chunks(
    corr: np.ndarray, n: float, x: int, y: int, nbrs: np.ndarray, size: int, start: int
) -> Iterator[Tested]:
    """Test the subsets of one pair from ``start`` on, in growing chunks."""
    total = math.comb(nbrs.size, size)
    chunk = _FIRST_CHUNK
    while start < total:
        sets = _subsets(nbrs, size, start, min(start + chunk, total))
        r, _z, pv = gauss_ci_test(corr, n, x, y, sets)
        yield sets, r, pv
        start += chunk
        chunk = min(2 * chunk, _MAX_CHUNK)


def _prefetch(
    corr: np.ndarray,
    n: float,
    pairs: list[tuple[int, int, np.ndarray]],
    size: int,
) -> list[Tested]:
    """The first ``_PREFETCH`` tests of every pair of a level, computed in one call."""
    heads = [_subsets(nbrs, size, 0, _PREFETCH) for _x, _y, nbrs in pairs]
    counts = np.array([len(h) for h in heads], dtype=np.intp)
    if not heads:
        return []
    sets = np.concatenate(heads, axis=0)
    xs = np.repeat(np.array([x for x, _y, _n in pairs], dtype=np.intp), counts)
    ys = np.repeat(np.array([y for _x, y, _n in pairs], dtype=np.intp), counts)
    r, _z, pv = gauss_ci_test(corr, n, xs, ys, sets)
    out: list[Tested] = []
    start = 0
    for count in counts.tolist():
        stop = start + count
        out.append((sets[start:stop], r[start:stop], pv[start:stop]))
        start = stop
    return out


def stable_skeleton(
    corr: np.ndarray,
    n: float,
    *,
    alpha: float,
    max_cond: int | None = None,
    stable: bool = True,
) -> Skeleton:
    """Estimate the skeleton with pcalg's order-independent PC search.

    Parameters
    ----------
    corr
        ``p x p`` correlation matrix.
    n
        Sample size behind ``corr``.
    alpha
        Significance level: an edge is removed when a test has ``p >= alpha``.
    max_cond
        Largest conditioning-set size (pcalg's ``m.max``); ``None`` for no limit.
    stable
        ``True`` for pcalg's ``method = "stable"`` (neighbour sets frozen per level),
        ``False`` for ``"original"``.

    Returns
    -------
    Skeleton
    """
    corr = np.asarray(corr, dtype=np.float64)
    p = corr.shape[0]
    graph = ~np.eye(p, dtype=bool)
    sepsets: dict[tuple[int, int], tuple[int, ...]] = {}
    max_p = np.full((p, p), -np.inf)
    np.fill_diagonal(max_p, 1.0)
    min_r = np.full((p, p), np.inf)
    np.fill_diagonal(min_r, 0.0)
    n_tests: list[int] = []
    order = 0
    done = False
    while not done and graph.any() and (max_cond is None or order <= max_cond):
        n_tests.append(0)
        done = True
        frozen = graph.copy()
        xs, ys = np.nonzero(graph)  # sorted by x, then y: pcalg's order(ind[, 1])
        candidates = []
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            nbr_mask = frozen[x].copy()
            nbr_mask[y] = False
            candidates.append((x, y, np.flatnonzero(nbr_mask)))
        testable = [c for c in candidates if c[2].size >= order]
        prefetched = iter(_prefetch(corr, n, testable, order) if stable else ())
        for x, y, nbrs in testable:
            head = next(prefetched, None)
            if not graph[y, x]:
                continue
            if not stable:
                nbr_mask = graph[x].copy()
                nbr_mask[y] = False
                nbrs = np.flatnonzero(nbr_mask)
                if nbrs.size < order:
                    continue
            if nbrs.size > order:
                done = False
            if head is None:
                chunks = _lazy_chunks(corr, n, x, y, nbrs, order, 0)
            else:
                chunks = chain([head], _lazy_chunks(corr, n, x, y, nbrs, order, len(head[0])))
            for sets, r, pv in chunks:
                hits = np.flatnonzero(pv >= alpha)
                used = hits[0] + 1 if hits.size else len(pv)
                n_tests[order] += int(used)
                max_p[x, y] = max(max_p[x, y], float(pv[:used].max()))
                min_r[x, y] = min(min_r[x, y], float(np.abs(r[:used]).min()))
                if hits.size:
                    graph[x, y] = graph[y, x] = False
                    sepsets[(x, y)] = tuple(sets[hits[0]].tolist())
                    break
        order += 1
    max_p = np.maximum(max_p, max_p.T)
    min_r = np.minimum(min_r, min_r.T)
    return Skeleton(
        adjacency=graph,
        sepsets=sepsets,
        max_pvalue=max_p,
        min_abs_pcor=min_r,
        n_tests=tuple(n_tests),
    )
