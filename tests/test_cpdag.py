"""The PC algorithm against pcalg / bnlearn / causal-learn reference outputs, and Meek's rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skipmodel.cpdag import pc
from skipmodel.cpdag.citest import CUT_AT, gauss_ci_test
from skipmodel.cpdag.corr import correlation_from_csv
from skipmodel.cpdag.orient import apply_meek_rules, orient_colliders
from skipmodel.cpdag.pc import _canonical
from skipmodel.errors import SkipmodelError

GMG8_N = 5000


def _edges(path: Path) -> set[tuple[str, str, str]]:
    return {_canonical(*row) for row in pd.read_csv(path).itertuples(index=False)}


def _gmg8(pc_dir: Path) -> tuple[np.ndarray, list[str]]:
    frame = pd.read_csv(pc_dir / "gmG8_cor.csv", index_col=0)
    return frame.to_numpy(), list(frame.columns)


def _sets(members: list[int]) -> np.ndarray:
    return np.array([members], dtype=np.intp).reshape(1, len(members))


def test_gauss_ci_test_matches_pcalg_to_1e10(pc_dir: Path) -> None:
    corr, _ = _gmg8(pc_dir)
    table = pd.read_csv(
        pc_dir / "gmG8_gaussCItest_pvalues.csv", dtype={"S0": str}, keep_default_na=False
    )
    assert len(table) == 12
    for row in table.itertuples():
        members = [int(s) for s in row.S0.split()]
        r, z, p = gauss_ci_test(corr, GMG8_N, row.x0, row.y0, _sets(members))
        assert r[0] == pytest.approx(row.pcor, abs=1e-12)
        assert z[0] == pytest.approx(row.z, abs=1e-10)
        assert p[0] == pytest.approx(row.pvalue, rel=1e-10, abs=1e-300)


def test_zf_statistics_match_bnlearn(pc_dir: Path) -> None:
    data = correlation_from_csv(pc_dir / "gaussian_test_data.csv")
    names = list(data.names)
    table = pd.read_csv(pc_dir / "gaussian_test_zf_pvalues.csv", keep_default_na=False)
    for row in table.itertuples():
        members = [names.index(s) for s in row.S.split()]
        _, z, p = gauss_ci_test(
            data.corr, data.n, names.index(row.x), names.index(row.y), _sets(members)
        )
        assert z[0] == pytest.approx(row.zf_statistic, abs=1e-10)
        assert abs(p[0] - row.pvalue) < 1e-10


@pytest.mark.parametrize("alpha", [0.01, 0.05])
@pytest.mark.parametrize("variant", ["default", "solveconfl"])
def test_pc_matches_pcalg_edges(pc_dir: Path, alpha: float, variant: str) -> None:
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=alpha, solve_conflicts=variant == "solveconfl")
    assert fit.edge_set() == _edges(pc_dir / f"gmG8_pc_alpha{alpha}_{variant}_edges.csv")


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_pc_matches_pcalg_sepsets(pc_dir: Path, alpha: float) -> None:
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=alpha)
    table = pd.read_csv(pc_dir / f"gmG8_pc_alpha{alpha}_default_sepsets.csv", keep_default_na=False)
    expected = {(r.x, r.y): tuple(r.sepset.split()) for r in table.itertuples()}
    assert fit.sepsets == expected


def test_gmg8_differs_from_truth_only_where_pcalg_does(pc_dir: Path) -> None:
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=0.01)
    diff = fit.edge_set() ^ _edges(pc_dir / "gmG8_true_cpdag_edges.csv")
    assert diff == {("Bar", "V5", "-->"), ("Bar", "V5", "---")}


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_recovers_gaussian_test_true_cpdag(pc_dir: Path, alpha: float) -> None:
    data = correlation_from_csv(pc_dir / "gaussian_test_data.csv")
    fit = pc(data.corr, data.n, names=data.names, alpha=alpha)
    assert fit.edge_set() == _edges(pc_dir / "gaussian_test_true_cpdag_edges.csv")


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_recovers_causal_learn_simulated_cpdag(pc_dir: Path, alpha: float) -> None:
    data = correlation_from_csv(
        pc_dir / "test_pc_simulated_linear_gaussian_data.txt", delimiter=" "
    )
    fit = pc(data.corr, data.n, names=[str(i) for i in range(5)], alpha=alpha)
    truth = {("0", "3", "-->"), ("1", "3", "-->"), ("2", "3", "-->"), ("2", "4", "-->")}
    truth |= {("3", "4", "-->"), ("0", "1", "---"), ("1", "2", "---")}
    assert fit.edge_set() == truth


@pytest.mark.parametrize("option", ["conservative", "majority"])
def test_conservative_and_majority_leave_the_ambiguous_collider(pc_dir: Path, option: str) -> None:
    # The default run's V5 - V6 conflict comes from the triple Bar - V5 - V6, which both rules
    # find ambiguous; leaving it unoriented gives exactly the true CPDAG.
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=0.01, **{option: True})
    assert ("Bar", "V5", "V6") in fit.ambiguous
    assert fit.edge_set() == _edges(pc_dir / "gmG8_true_cpdag_edges.csv")


def test_max_cond_zero_is_the_marginal_graph(pc_dir: Path) -> None:
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=0.01, max_cond=0)
    assert len(fit.n_tests) == 1
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            _, _, p = gauss_ci_test(corr, GMG8_N, i, j, _sets([]))
            assert ((names[i], names[j]) in fit.sepsets) == (p[0] >= 0.01)


def test_strength_is_min_pcor_and_max_p_of_surviving_tests(pc_dir: Path) -> None:
    corr, names = _gmg8(pc_dir)
    fit = pc(corr, GMG8_N, names=names, alpha=0.01)
    edge = next(e for e in fit.edges if {e.source, e.target} == {"V6", "V7"})
    assert 0 < edge.min_abs_pcor <= abs(corr[5, 6])
    assert edge.max_pvalue < 0.01


def test_r_equal_one_is_clipped_like_pcalg() -> None:
    corr = np.array([[1.0, 1.0], [1.0, 1.0]])
    r, z, p = gauss_ci_test(corr, 100, 0, 1, np.empty((1, 0), dtype=np.intp))
    assert r[0] == CUT_AT and np.isfinite(z[0]) and p[0] < 1e-10
    # n too small for the set size: z is undefined -> 0 -> p = 1 (the edge goes)
    _, z, p = gauss_ci_test(np.eye(3) * 0.5 + 0.5, 4, 0, 1, np.array([[2]]))
    assert z[0] == 0.0 and p[0] == 1.0


def test_bad_options_are_one_line_errors() -> None:
    corr = np.eye(3)
    with pytest.raises(SkipmodelError, match="either"):
        pc(corr, 100, conservative=True, majority=True)
    with pytest.raises(SkipmodelError, match="alpha"):
        pc(corr, 100, alpha=1.5)
    with pytest.raises(SkipmodelError, match="name"):
        pc(corr, 100, names=["a", "a", "b"])


# --- Meek's rules on hand-built graphs (pdag coding: [i, j] = 1, [j, i] = 0 is i --> j) ---


def _pdag(p: int, directed=(), undirected=()) -> np.ndarray:
    g = np.zeros((p, p), dtype=np.int8)
    for i, j in directed:
        g[i, j] = 1
    for i, j in undirected:
        g[i, j] = g[j, i] = 1
    return g


def _is_directed(g: np.ndarray, i: int, j: int) -> bool:
    return g[i, j] == 1 and g[j, i] == 0


def test_rule1_orients_away_from_an_arrow() -> None:
    g = _pdag(3, directed=[(0, 1)], undirected=[(1, 2)])
    assert _is_directed(apply_meek_rules(g, rules=[1]), 1, 2)
    shielded = _pdag(3, directed=[(0, 1)], undirected=[(1, 2), (0, 2)])
    out = apply_meek_rules(shielded, rules=[1])
    assert out[1, 2] == 1 and out[2, 1] == 1  # a, c adjacent: nothing to do


def test_rule2_avoids_a_cycle() -> None:
    g = _pdag(3, directed=[(0, 2), (2, 1)], undirected=[(0, 1)])
    assert _is_directed(apply_meek_rules(g, rules=[2]), 0, 1)
    assert np.array_equal(apply_meek_rules(g, rules=[1]), g)


def test_rule3_two_colliding_parents() -> None:
    # a=0, b=1, c1=2, c2=3: a - b, a - c1, a - c2, c1 --> b <-- c2
    g = _pdag(4, directed=[(2, 1), (3, 1)], undirected=[(0, 1), (0, 2), (0, 3)])
    assert _is_directed(apply_meek_rules(g, rules=[3]), 0, 1)
    assert np.array_equal(apply_meek_rules(g, rules=[1, 2]), g)


def test_rule4_fires_only_when_asked() -> None:
    # a=0, b=1, c=2, d=3: a - b, a - c, a - d, c --> d --> b, b and c not adjacent
    g = _pdag(4, directed=[(2, 3), (3, 1)], undirected=[(0, 1), (0, 2), (0, 3)])
    assert np.array_equal(apply_meek_rules(g), g)  # pcalg's R1-R3 leave it alone
    assert _is_directed(apply_meek_rules(g, rules=[4]), 0, 1)


def test_collider_conflict_last_wins_or_bidirected() -> None:
    # chain 0 - 1 - 2 - 3 with colliders 0 -> 1 <- 2 and 1 -> 2 <- 3: they disagree on 1 - 2
    skel = _pdag(4, undirected=[(0, 1), (1, 2), (2, 3)])
    sepsets: dict[tuple[int, int], frozenset[int]] = {
        (0, 2): frozenset(),
        (1, 3): frozenset(),
        (0, 3): frozenset({1}),
    }

    def sepset(x: int, y: int) -> frozenset[int]:
        return sepsets.get((min(x, y), max(x, y)), frozenset())

    plain = orient_colliders(skel, sepset)
    assert _is_directed(plain, 0, 1) and _is_directed(plain, 3, 2)
    assert _is_directed(plain, 1, 2)  # the collider at 2 is visited last and wins
    solved = orient_colliders(skel, sepset, solve_conflicts=True)
    assert solved[1, 2] == 2 and solved[2, 1] == 2


def test_original_skeleton_updates_neighbours_within_a_level(pc_dir: Path) -> None:
    # pcalg's skel.method = "original": neighbour sets shrink as edges go, so fewer tests run;
    # on gmG8 the graph is the same.
    corr, names = _gmg8(pc_dir)
    stable = pc(corr, GMG8_N, names=names, alpha=0.01)
    original = pc(corr, GMG8_N, names=names, alpha=0.01, stable=False)
    assert original.edge_set() == stable.edge_set()
    assert sum(original.n_tests) < sum(stable.n_tests)


@pytest.mark.parametrize(("k", "size"), [(0, 0), (4, 0), (4, 1), (6, 3), (9, 4), (3, 5)])
def test_subset_index_is_lexicographic_like_pcalg_getnextset(k: int, size: int) -> None:
    from itertools import combinations

    from skipmodel.cpdag.skeleton import _combination_index

    expected = list(combinations(range(k), size))
    index = _combination_index(k, size)
    assert index is not None
    assert [tuple(row) for row in index.tolist()] == expected
