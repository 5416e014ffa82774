"""Conservative and majority-rule collider detection (pcalg's ``pc.cons.intern``).

For each unshielded triple ``a - b - c`` (``a < c``), every subset of ``adj(a)`` and every
subset of ``adj(c)`` in the estimated skeleton is tested for ``a ⟂ c | S``. Among the separating
subsets found, if ``b`` is in none the triple is a collider (``b`` is dropped from the stored
separating sets), if in all it is not (``b`` is added); otherwise the triple is *ambiguous*
(conservative) — or, with the majority rule, a collider when ``b`` is in fewer than half of
them, not a collider when in more, ambiguous at exactly half. As in pcalg's ``pc()``
(``version.unf = c(2, 1)``), the skeleton's own separating set is not counted, and a triple whose
ends no neighbour subset separates is marked ambiguous too. Ambiguous triples are then left
unoriented by the collider step and by Meek's rules 1 and 3.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from skipmodel.cpdag.citest import gauss_ci_test
from skipmodel.cpdag.orient import Triple


def _separating_memberships(
    corr: np.ndarray, n: float, a: int, b: int, c: int, nbrs: np.ndarray, alpha: float
) -> list[bool]:
    """For every subset S of ``nbrs`` with ``p(a ⟂ c | S) >= alpha``: is ``b`` in S?"""
    found: list[bool] = []
    for size in range(nbrs.size + 1):
        subsets = list(combinations(nbrs.tolist(), size))
        sets = np.array(subsets, dtype=np.intp).reshape(len(subsets), size)
        _r, _z, pv = gauss_ci_test(corr, n, a, c, sets)
        found.extend((sets[pv >= alpha] == b).any(axis=1).tolist())
    return found


def ambiguous_triples(
    corr: np.ndarray,
    n: float,
    adjacency: np.ndarray,
    sepsets: dict[tuple[int, int], tuple[int, ...]],
    *,
    alpha: float,
    majority: bool = False,
) -> tuple[frozenset[Triple], dict[tuple[int, int], tuple[int, ...]]]:
    """Mark ambiguous triples and update separating sets like pcalg's ``pc.cons.intern``.

    Returns
    -------
    (ambiguous, sepsets)
        The ambiguous triples ``(a, b, c)`` and the updated ``(x, y) -> S`` mapping.
    """
    g = np.asarray(adjacency, dtype=bool)
    out = {k: tuple(v) for k, v in sepsets.items()}
    ambiguous: set[Triple] = set()
    cols, rows = np.nonzero(g.T)  # which(g == 1, arr.ind = TRUE): column-major
    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        for c in np.flatnonzero(g[b]).tolist():
            if c == a or g[a, c] or a > c:
                continue
            found = _separating_memberships(corr, n, a, b, c, np.flatnonzero(g[:, a]), alpha)
            found += _separating_memberships(corr, n, a, b, c, np.flatnonzero(g[:, c]), alpha)
            never_separated = not found
            share = sum(found) / len(found) if found else 0.0
            if found and all(found):
                decision = "not_collider"
            elif not any(found):
                decision = "collider"
            elif not majority or share == 0.5:
                decision = "ambiguous"
            else:
                decision = "collider" if share < 0.5 else "not_collider"
            if decision == "ambiguous" or never_separated:
                ambiguous.add((a, b, c))
            for key in ((a, c), (c, a)):
                current = out.get(key, ())
                if decision == "not_collider" and b not in current:
                    out[key] = (*current, b)
                elif decision == "collider" and b in current:
                    out[key] = tuple(s for s in current if s != b)
    return frozenset(ambiguous), out
