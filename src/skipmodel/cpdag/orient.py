"""From skeleton to CPDAG: colliders from the separating sets, then Meek's rules, as pcalg.

A partially directed graph is an ``int8`` matrix ``pdag`` with pcalg's internal coding (the
coding of ``udag2pdagRelaxed``): ``pdag[i, j] = 1, pdag[j, i] = 0`` is ``i --> j``; both 1 is
``i --- j``; both 2 is ``i <-> j`` (a conflict, only with ``solve_conflicts``); both 0 is no edge.

The loops follow pcalg's ``udag2pdagRelaxed`` literally, including its visiting order (R's
``which(..., arr.ind = TRUE)`` is column-major: pairs sorted by column, then row) and its
"search copy" that is refreshed after each step unless conflicts are being solved. That order
matters: without ``solve_conflicts`` a later collider overwrites an earlier, conflicting one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from itertools import combinations

import numpy as np

Triple = tuple[int, int, int]
SepsetLookup = Callable[[int, int], Collection[int]]

#: Meek's rules pcalg's ``pc()`` applies; rule 4 is only needed with background knowledge.
PCALG_RULES: tuple[int, ...] = (1, 2, 3)


def _which(mask: np.ndarray) -> Iterable[tuple[int, int]]:
    """R's ``which(mask, arr.ind = TRUE)``: (row, col) pairs in column-major order."""
    cols, rows = np.nonzero(mask.T)
    return zip(rows.tolist(), cols.tolist(), strict=True)


def _faithful(unfaithful: Collection[Triple], a: int, b: int, c: int) -> bool:
    return (a, b, c) not in unfaithful and (c, b, a) not in unfaithful


def orient_colliders(
    skeleton: np.ndarray,
    sepset: SepsetLookup,
    *,
    solve_conflicts: bool = False,
    unfaithful: Collection[Triple] = frozenset(),
) -> np.ndarray:
    """Orient every unshielded triple ``x - y - z`` with ``y`` outside ``sepset(x, z)``.

    Parameters
    ----------
    skeleton
        Symmetric 0/1 (or boolean) adjacency matrix.
    sepset
        ``sepset(x, z)`` -> the separating set of a removed pair (both stored directions).
    solve_conflicts
        pcalg's ``solve.confl``: an edge oriented both ways by two colliders becomes ``<->``
        instead of keeping the last orientation.
    unfaithful
        Triples ``(x, y, z)`` marked ambiguous by the conservative / majority rule: left alone.

    Returns
    -------
    numpy.ndarray
        The ``int8`` pdag.
    """
    g = np.asarray(skeleton).astype(np.int8)
    pdag = g.copy()
    for x, y in _which(g == 1):
        for z in np.flatnonzero(g[y] == 1).tolist():
            if z == x or g[x, z] != 0 or y in sepset(x, z):
                continue
            if unfaithful and not _faithful(unfaithful, x, y, z):
                continue
            if not solve_conflicts:
                pdag[x, y] = pdag[z, y] = 1
                pdag[y, x] = pdag[y, z] = 0
            else:
                for end in (x, z):  # pcalg's orientConflictCollider
                    if pdag[end, y] == 1:
                        pdag[y, end] = 0
                    else:
                        pdag[end, y] = pdag[y, end] = 2
    return pdag


def _rule1(pdag: np.ndarray, solve: bool, unfaithful: Collection[Triple]) -> np.ndarray:
    """a --> b --- c, a and c not adjacent: b --> c."""
    pdag = pdag.copy()
    search = pdag.copy()
    for a, b in list(_which((pdag == 1) & (pdag.T == 0))):
        is_c = (search[b] == 1) & (search[:, b] == 1) & (search[a] == 0) & (search[:, a] == 0)
        for c in np.flatnonzero(is_c).tolist():
            if unfaithful and not _faithful(unfaithful, a, b, c):
                continue
            if not solve or (pdag[b, c] == 1 and pdag[c, b] == 1):
                pdag[b, c] = 1
                pdag[c, b] = 0
            elif pdag[b, c] == 0 and pdag[c, b] == 1:
                pdag[b, c] = pdag[c, b] = 2
        if not solve:
            search = pdag.copy()
    return pdag


def _rule2(pdag: np.ndarray, solve: bool) -> np.ndarray:
    """a --> c --> b with a --- b: a --> b."""
    pdag = pdag.copy()
    search = pdag.copy()
    for a, b in list(_which((search == 1) & (search.T == 1))):
        is_c = (search[a] == 1) & (search[:, a] == 0) & (search[:, b] == 1) & (search[b] == 0)
        for _c in np.flatnonzero(is_c).tolist():
            if not solve or (pdag[a, b] == 1 and pdag[b, a] == 1):
                pdag[a, b] = 1
                pdag[b, a] = 0
            elif pdag[a, b] == 0 and pdag[b, a] == 1:
                pdag[a, b] = pdag[b, a] = 2
        if not solve:
            search = pdag.copy()
    return pdag


def _rule3(pdag: np.ndarray, solve: bool, unfaithful: Collection[Triple]) -> np.ndarray:
    """a --- b, a --- c1 --> b, a --- c2 --> b, c1 and c2 not adjacent: a --> b."""
    pdag = pdag.copy()
    search = pdag.copy()
    for a, b in list(_which((search == 1) & (search.T == 1))):
        cs = np.flatnonzero(
            (search[a] == 1) & (search[:, a] == 1) & (search[:, b] == 1) & (search[b] == 0)
        ).tolist()
        for c1, c2 in combinations(cs, 2):
            if search[c1, c2] != 0 or search[c2, c1] != 0:
                continue
            if unfaithful and not _faithful(unfaithful, c1, a, c2):
                continue
            if not solve or (pdag[a, b] == 1 and pdag[b, a] == 1):
                pdag[a, b] = 1
                pdag[b, a] = 0
                if not solve:
                    search = pdag.copy()
                break
            if pdag[a, b] == 0 and pdag[b, a] == 1:
                pdag[a, b] = pdag[b, a] = 2
                break
    return pdag


def _rule4(pdag: np.ndarray, solve: bool) -> np.ndarray:
    """a --- b, a --- c --> d --> b, a adjacent to d, b and c not adjacent: a --> b.

    Not part of pcalg's ``pc()``; available for completeness (it matters only when
    orientations come from outside the data, e.g. background knowledge).
    """
    pdag = pdag.copy()
    search = pdag.copy()
    directed = (search == 1) & (search.T == 0)
    adjacent = (search != 0) | (search.T != 0)
    for a, b in list(_which((search == 1) & (search.T == 1))):
        for d in np.flatnonzero(directed[:, b] & adjacent[a]).tolist():
            cs = directed[:, d] & (search[a] == 1) & (search[:, a] == 1) & ~adjacent[b]
            cs[b] = False
            if not cs.any():
                continue
            if not solve or (pdag[a, b] == 1 and pdag[b, a] == 1):
                pdag[a, b] = 1
                pdag[b, a] = 0
            elif pdag[a, b] == 0 and pdag[b, a] == 1:
                pdag[a, b] = pdag[b, a] = 2
            break
        if not solve:
            search = pdag.copy()
            directed = (search == 1) & (search.T == 0)
    return pdag


def apply_meek_rules(
    pdag: np.ndarray,
    *,
    rules: Iterable[int] = PCALG_RULES,
    solve_conflicts: bool = False,
    unfaithful: Collection[Triple] = frozenset(),
) -> np.ndarray:
    """Apply the chosen rules in order, repeatedly, until the graph stops changing."""
    chosen = tuple(sorted(set(rules)))
    unknown = set(chosen) - {1, 2, 3, 4}
    if unknown:
        raise ValueError(f"unknown Meek rules {sorted(unknown)}; valid: 1, 2, 3, 4")
    pdag = np.asarray(pdag, dtype=np.int8).copy()
    if not pdag.any():
        return pdag
    while True:
        before = pdag
        for rule in chosen:
            if rule == 1:
                pdag = _rule1(pdag, solve_conflicts, unfaithful)
            elif rule == 2:
                pdag = _rule2(pdag, solve_conflicts)
            elif rule == 3:
                pdag = _rule3(pdag, solve_conflicts, unfaithful)
            else:
                pdag = _rule4(pdag, solve_conflicts)
        if np.array_equal(pdag, before):
            return pdag


def skeleton_to_cpdag(
    skeleton: np.ndarray,
    sepset: SepsetLookup,
    *,
    solve_conflicts: bool = False,
    unfaithful: Collection[Triple] = frozenset(),
    rules: Iterable[int] = PCALG_RULES,
) -> np.ndarray:
    """pcalg's ``udag2pdagRelaxed``: colliders, then Meek's rules to a fixed point."""
    pdag = orient_colliders(
        skeleton, sepset, solve_conflicts=solve_conflicts, unfaithful=unfaithful
    )
    return apply_meek_rules(
        pdag, rules=rules, solve_conflicts=solve_conflicts, unfaithful=unfaithful
    )
