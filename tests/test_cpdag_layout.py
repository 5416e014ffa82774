"""The drawing layout: no two labels overlap, edges avoid other boxes, output is deterministic."""

from __future__ import annotations

import numpy as np

from skipmodel.cpdag import pc
from skipmodel.cpdag.layout import _bezier, _inside, layout_graph, route_edge
from skipmodel.store.schema import TRACK_NUMERIC_FEATURES


def _random_dag_corr(p: int, prob: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.triu(rng.uniform(0.3, 0.7, (p, p)) * (rng.random((p, p)) < prob), 1)
    mix = np.linalg.inv(np.eye(p) - w.T)
    cov = mix @ mix.T
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)


def _overlaps(layout) -> list[tuple[str, str]]:  # noqa: ANN001 - Layout
    bad = []
    p = len(layout.names)
    for i in range(p):
        for j in range(i + 1, p):
            ox = (layout.width[i] + layout.width[j]) / 2 - abs(layout.x[i] - layout.x[j])
            oy = layout.height - abs(layout.y[i] - layout.y[j])
            if ox > 1e-9 and oy > 1e-9:
                bad.append((layout.names[i], layout.names[j]))
    return bad


def test_dense_graph_labels_do_not_overlap() -> None:
    names = list(TRACK_NUMERIC_FEATURES)
    fit = pc(_random_dag_corr(len(names), 0.25, 3), 100_000, names=names, alpha=1e-6)
    assert len(fit.edges) > 30
    layout = layout_graph(fit.names, fit.edges)
    assert _overlaps(layout) == []
    again = layout_graph(fit.names, fit.edges)
    assert np.array_equal(layout.x, again.x) and np.array_equal(layout.y, again.y)


def test_components_and_isolated_nodes_are_packed_without_overlap() -> None:
    names = [f"feature_{i}" for i in range(12)]
    corr = np.eye(12)
    for a, b in [(0, 1), (1, 2), (3, 4), (5, 6), (6, 7)]:
        corr[a, b] = corr[b, a] = 0.5
    fit = pc(corr, 10_000, names=names)
    layout = layout_graph(fit.names, fit.edges)
    assert _overlaps(layout) == []
    xmin, xmax, ymin, ymax = layout.bounds()
    assert xmax - xmin < 16 and ymax - ymin < 16  # packed, not spread over a poster


def test_edges_are_routed_around_other_boxes_when_possible() -> None:
    names = list(TRACK_NUMERIC_FEATURES)
    fit = pc(_random_dag_corr(len(names), 0.25, 3), 100_000, names=names, alpha=1e-6)
    layout = layout_graph(fit.names, fit.edges)
    index = {n: i for i, n in enumerate(fit.names)}
    crossing = 0
    for e in fit.edges:
        i, j = index[e.source], index[e.target]
        curve = route_edge(layout, i, j)
        pts = [_bezier(curve.start, curve.control, curve.end, t) for t in np.linspace(0, 1, 30)]
        others = set(range(len(names))) - {i, j}
        crossing += any(_inside(layout, k, pt, 0.0) for k in others for pt in pts)
    assert crossing <= len(fit.edges) // 10
