"""The PC algorithm on a correlation matrix: pcalg's ``pc(indepTest = gaussCItest)`` in Python.

Defaults match pcalg's: ``skel.method = "stable"``, ``u2pd = "relaxed"``, no conservative or
majority rule, ``solve.confl = FALSE``, ``m.max = Inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from skipmodel.cpdag.orient import PCALG_RULES, Triple, skeleton_to_cpdag
from skipmodel.cpdag.skeleton import stable_skeleton
from skipmodel.cpdag.triples import ambiguous_triples
from skipmodel.errors import SkipmodelError

DIRECTED, UNDIRECTED, BIDIRECTED = "-->", "---", "<->"
EDGE_TYPES: tuple[str, ...] = (DIRECTED, UNDIRECTED, BIDIRECTED)


@dataclass(frozen=True)
class Edge:
    """One edge: ``source --> target``, or unordered for ``---`` and ``<->``."""

    source: str
    target: str
    type: str
    min_abs_pcor: float
    max_pvalue: float


@dataclass(frozen=True)
class PCOptions:
    """Options of :func:`pc` (pcalg's names in brackets)."""

    alpha: float = 0.01
    max_cond: int | None = None  # m.max
    conservative: bool = False  # conservative
    majority: bool = False  # maj.rule
    solve_conflicts: bool = False  # solve.confl
    stable: bool = True  # skel.method = "stable"
    rules: tuple[int, ...] = PCALG_RULES


@dataclass(frozen=True)
class CPDAGResult:
    """The estimated CPDAG with everything the search learnt on the way.

    Attributes
    ----------
    names
        Variable names, in the order of the matrices.
    adjacency
        ``int8`` matrix, ``adjacency[i, j] = 1, adjacency[j, i] = 0`` for ``i --> j``, both 1
        for ``i --- j``, both 2 for ``i <-> j``. This is R's ``as(fit@graph, "matrix")``
        (row = tail); pcalg's ``as(fit, "amat")`` ("amat.cpdag") is its transpose.
    edges
        One :class:`Edge` per adjacent pair, in variable order.
    sepsets
        ``(name_i, name_j) -> separating set`` for every non-adjacent pair (``i < j``).
    max_pvalue, min_abs_pcor
        ``p x p``: largest p-value and smallest |partial correlation| over the tests on a pair.
    n, options
        Sample size and options used.
    n_tests
        Tests performed per conditioning-set size.
    ambiguous
        Triples ``(a, b, c)`` (names) left unoriented by the conservative / majority rule.
    """

    names: tuple[str, ...]
    adjacency: np.ndarray
    edges: tuple[Edge, ...]
    sepsets: dict[tuple[str, str], tuple[str, ...]]
    max_pvalue: np.ndarray
    min_abs_pcor: np.ndarray
    n: float
    options: PCOptions
    n_tests: tuple[int, ...] = ()
    ambiguous: tuple[tuple[str, str, str], ...] = field(default=())

    def edge_set(self) -> set[tuple[str, str, str]]:
        """Edges as ``(from, to, type)`` with unordered types written in name-sorted order."""
        return {_canonical(e.source, e.target, e.type) for e in self.edges}


def _canonical(a: str, b: str, kind: str) -> tuple[str, str, str]:
    if kind != DIRECTED and b < a:
        a, b = b, a
    return (a, b, kind)


def edges_from_pdag(
    pdag: np.ndarray,
    names: Sequence[str],
    max_pvalue: np.ndarray | None = None,
    min_abs_pcor: np.ndarray | None = None,
) -> tuple[Edge, ...]:
    """The edge list of a pdag (pcalg's internal coding, see :mod:`skipmodel.cpdag.orient`)."""
    edges = []
    p = len(names)
    for i in range(p):
        for j in range(i + 1, p):
            a, b = int(pdag[i, j]), int(pdag[j, i])
            if a == 0 and b == 0:
                continue
            if a == 2 or b == 2:
                src, dst, kind = i, j, BIDIRECTED
            elif a == 1 and b == 1:
                src, dst, kind = i, j, UNDIRECTED
            elif a == 1:
                src, dst, kind = i, j, DIRECTED
            else:
                src, dst, kind = j, i, DIRECTED
            edges.append(
                Edge(
                    names[src],
                    names[dst],
                    kind,
                    float(min_abs_pcor[i, j]) if min_abs_pcor is not None else float("nan"),
                    float(max_pvalue[i, j]) if max_pvalue is not None else float("nan"),
                )
            )
    return tuple(edges)


def _check_inputs(corr: np.ndarray, n: float, names: Sequence[str], options: PCOptions) -> None:
    if corr.ndim != 2 or corr.shape[0] != corr.shape[1] or corr.shape[0] < 2:
        raise SkipmodelError(f"correlation matrix must be square with >= 2 rows, got {corr.shape}")
    if len(names) != corr.shape[0] or len(set(names)) != len(names):
        raise SkipmodelError("need one distinct name per variable of the correlation matrix")
    if not np.all(np.isfinite(corr)):
        raise SkipmodelError("correlation matrix has missing or non-finite entries")
    if not (n > 3):
        raise SkipmodelError(f"sample size n must be > 3, got {n}")
    if not (0.0 < options.alpha < 1.0):
        raise SkipmodelError(f"alpha must be in (0, 1), got {options.alpha}")
    if options.max_cond is not None and options.max_cond < 0:
        raise SkipmodelError(f"max_cond must be >= 0, got {options.max_cond}")
    if options.conservative and options.majority:
        raise SkipmodelError("choose either the conservative or the majority rule, not both")


def pc(
    corr: np.ndarray,
    n: float,
    *,
    names: Sequence[str] | None = None,
    alpha: float = 0.01,
    max_cond: int | None = None,
    conservative: bool = False,
    majority: bool = False,
    solve_conflicts: bool = False,
    stable: bool = True,
    rules: Sequence[int] = PCALG_RULES,
) -> CPDAGResult:
    """Estimate a CPDAG with the PC algorithm and Fisher's z test, as R's pcalg does.

    Parameters
    ----------
    corr
        ``p x p`` correlation matrix.
    n
        Sample size the correlations were computed from.
    names
        Variable names (default ``V1..Vp``).
    alpha
        Significance level; an edge is removed when ``p >= alpha``.
    max_cond
        Largest conditioning-set size (``None``: no limit).
    conservative, majority
        Conservative PC or majority-rule PC collider detection (pcalg's ``conservative``,
        ``maj.rule``).
    solve_conflicts
        Conflicting orientations become ``<->`` (pcalg's ``solve.confl``).
    stable
        Order-independent skeleton (pcalg's default ``skel.method = "stable"``).
    rules
        Meek rules to apply; pcalg applies 1-3.

    Returns
    -------
    CPDAGResult

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[1, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 1]])
    >>> [(e.source, e.target, e.type) for e in pc(c, 1000, names=["a", "b", "c"]).edges]
    [('a', 'b', '---'), ('b', 'c', '---')]
    """
    corr = np.asarray(corr, dtype=np.float64)
    names = tuple(names) if names is not None else tuple(f"V{i + 1}" for i in range(len(corr)))
    options = PCOptions(
        alpha=alpha,
        max_cond=max_cond,
        conservative=conservative,
        majority=majority,
        solve_conflicts=solve_conflicts,
        stable=stable,
        rules=tuple(rules),
    )
    _check_inputs(corr, n, names, options)
    skel = stable_skeleton(corr, n, alpha=alpha, max_cond=max_cond, stable=stable)
    sepsets = dict(skel.sepsets)
    ambiguous: frozenset[Triple] = frozenset()
    if conservative or majority:
        ambiguous, sepsets = ambiguous_triples(
            corr, n, skel.adjacency, sepsets, alpha=alpha, majority=majority
        )

    def sepset(x: int, y: int) -> frozenset[int]:
        return frozenset(sepsets.get((x, y), ())) | frozenset(sepsets.get((y, x), ()))

    pdag = skeleton_to_cpdag(
        skel.adjacency,
        sepset,
        solve_conflicts=solve_conflicts,
        unfaithful=ambiguous,
        rules=rules,
    )
    p = len(names)
    named_sepsets = {
        (names[i], names[j]): tuple(names[k] for k in sorted(sepset(i, j)))
        for i in range(p)
        for j in range(i + 1, p)
        if not skel.adjacency[i, j]
    }
    return CPDAGResult(
        names=names,
        adjacency=pdag,
        edges=edges_from_pdag(pdag, names, skel.max_pvalue, skel.min_abs_pcor),
        sepsets=named_sepsets,
        max_pvalue=skel.max_pvalue,
        min_abs_pcor=skel.min_abs_pcor,
        n=float(n),
        options=options,
        n_tests=skel.n_tests,
        ambiguous=tuple(sorted((names[a], names[b], names[c]) for a, b, c in ambiguous)),
    )
