"""Bootstrap stability of a CPDAG: how often each edge and each orientation recurs.

The replicate correlation matrices come from the data pass (a Poisson bootstrap accumulated in
the same single pass, see :mod:`skipmodel.cpdag.corr`) or, for a bare ``--corr`` matrix, from a
parametric bootstrap: Wishart draws with ``n - 1`` degrees of freedom around the given matrix,
i.e. the sample correlation of ``n`` Gaussian rows with that correlation — the model the test
already assumes. The PC search is re-run on every replicate with the same options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import wishart

from skipmodel.cpdag.pc import BIDIRECTED, DIRECTED, UNDIRECTED, Edge, PCOptions, pc


@dataclass(frozen=True)
class BootstrapResult:
    """Edge-type frequencies over ``replicates`` re-estimates.

    ``counts[kind][i, j]``: for ``"-->"`` the number of replicates with ``i --> j``; for
    ``"---"`` and ``"<->"`` (symmetric) the number with that edge type between ``i`` and ``j``.
    """

    names: tuple[str, ...]
    replicates: int
    counts: dict[str, np.ndarray]

    def _ij(self, a: str, b: str) -> tuple[int, int]:
        return self.names.index(a), self.names.index(b)

    def adjacent(self, a: str, b: str) -> float:
        """Share of replicates where ``a`` and ``b`` are adjacent (any edge type)."""
        i, j = self._ij(a, b)
        c = self.counts
        total = c[DIRECTED][i, j] + c[DIRECTED][j, i] + c[UNDIRECTED][i, j] + c[BIDIRECTED][i, j]
        return float(total) / self.replicates

    def frequency(self, a: str, b: str, kind: str) -> float:
        """Share of replicates with exactly this edge (``a --> b`` for directed)."""
        i, j = self._ij(a, b)
        return float(self.counts[kind][i, j]) / self.replicates

    def same_type(self, edge: Edge) -> float:
        return self.frequency(edge.source, edge.target, edge.type)

    def rows(self) -> list[tuple[str, str, float, float, float, float, float]]:
        """Per unordered pair seen at least once: adjacent, a-->b, b-->a, ---, <-> shares."""
        out = []
        p = len(self.names)
        for i in range(p):
            for j in range(i + 1, p):
                a, b = self.names[i], self.names[j]
                adj = self.adjacent(a, b)
                if adj == 0:
                    continue
                out.append(
                    (
                        a,
                        b,
                        adj,
                        self.frequency(a, b, DIRECTED),
                        self.frequency(b, a, DIRECTED),
                        self.frequency(a, b, UNDIRECTED),
                        self.frequency(a, b, BIDIRECTED),
                    )
                )
        return out

    def csv(self) -> str:
        lines = ["x,y,adjacent,x_to_y,y_to_x,undirected,bidirected"]
        lines += [
            f"{a},{b},{adj:.4f},{f:.4f},{r:.4f},{u:.4f},{bi:.4f}"
            for a, b, adj, f, r, u, bi in self.rows()
        ]
        return "\n".join(lines) + "\n"


def parametric_replicates(
    corr: np.ndarray, n: float, replicates: int, *, seed: int = 0
) -> tuple[list[np.ndarray], list[float]]:
    """Correlation matrices of ``n`` Gaussian rows with correlation ``corr`` (Wishart draws)."""
    rng = np.random.default_rng(seed)
    df = max(int(round(n)) - 1, corr.shape[0])
    out = []
    for _ in range(replicates):
        cov = np.atleast_2d(wishart.rvs(df=df, scale=corr / df, random_state=rng))
        d = np.sqrt(np.diag(cov))
        out.append(cov / np.outer(d, d))
    return out, [float(n)] * replicates


def bootstrap_frequencies(
    replicates: Sequence[np.ndarray],
    replicate_n: Sequence[float],
    names: Sequence[str],
    options: PCOptions,
) -> BootstrapResult:
    """Re-run :func:`pc` with ``options`` on each replicate and count edge types."""
    p = len(names)
    counts = {kind: np.zeros((p, p), dtype=np.int64) for kind in (DIRECTED, UNDIRECTED, BIDIRECTED)}
    index = {name: i for i, name in enumerate(names)}
    for corr, n in zip(replicates, replicate_n, strict=True):
        fit = pc(
            corr,
            n,
            names=names,
            alpha=options.alpha,
            max_cond=options.max_cond,
            conservative=options.conservative,
            majority=options.majority,
            solve_conflicts=options.solve_conflicts,
            stable=options.stable,
            rules=options.rules,
        )
        for e in fit.edges:
            i, j = index[e.source], index[e.target]
            counts[e.type][i, j] += 1
            if e.type != DIRECTED:
                counts[e.type][j, i] += 1
    return BootstrapResult(names=tuple(names), replicates=len(replicates), counts=counts)
