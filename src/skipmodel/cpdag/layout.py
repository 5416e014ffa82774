"""A readable, deterministic layout for a CPDAG drawing (no graph-drawing dependency).

1. Stress majorization (SMACOF, Gansner et al. 2004) on shortest-path distances of the skeleton,
   started from classical MDS: related features sit together, distances mean something.
2. The layout is rotated so that directed edges point down on average (causes above effects);
   without directed edges its long axis is laid horizontally.
3. Nodes are label boxes measured with the real font; the scale is set from the widest labels,
   and overlapping boxes are pushed apart along their smaller overlap until none overlap.
4. Each connected component is laid out on its own and the components are packed in rows
   (largest first); nodes without any edge go in a row underneath.

Units are inches, y up; the drawing and the HTML view share one layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skipmodel.cpdag.pc import DIRECTED, Edge

FONT_SIZE = 9.0
BOX_PAD_X = 0.10  # inches of padding around a label, each side
BOX_HEIGHT = 0.30
GAP_X = 0.18  # minimum clearance between boxes
GAP_Y = 0.22
COMPONENT_GAP = 0.6  # between packed components


@dataclass(frozen=True)
class Layout:
    """Box centres ``x``, ``y`` and sizes ``width``, ``height`` (inches) per node."""

    names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    width: np.ndarray
    height: float

    def bounds(self, margin: float = 0.3) -> tuple[float, float, float, float]:
        """``(xmin, xmax, ymin, ymax)`` of all boxes plus ``margin``."""
        if len(self.names) == 0:
            return (0.0, 1.0, 0.0, 1.0)
        return (
            float((self.x - self.width / 2).min() - margin),
            float((self.x + self.width / 2).max() + margin),
            float((self.y - self.height / 2).min() - margin),
            float((self.y + self.height / 2).max() + margin),
        )


#: Curvatures tried, in order, for an edge whose straight line would cross another box
#: (matplotlib's ``arc3`` convention: control point offset ``rad`` times the edge length).
CURVATURES = (0.0, 0.18, -0.18, 0.32, -0.32, 0.5, -0.5)
Point = tuple[float, float]


@dataclass(frozen=True)
class Curve:
    """A quadratic Bezier edge ``start -> control -> end``, already cut at both boxes."""

    start: Point
    control: Point
    end: Point

    def svg(self) -> str:
        (x0, y0), (cx, cy), (x1, y1) = self.start, self.control, self.end
        return f"M {x0:.2f} {y0:.2f} Q {cx:.2f} {cy:.2f} {x1:.2f} {y1:.2f}"

    def midpoint(self) -> Point:
        return _bezier(self.start, self.control, self.end, 0.5)


def _bezier(p0: Point, c: Point, p2: Point, t: float) -> Point:
    u = 1.0 - t
    return (
        u * u * p0[0] + 2 * u * t * c[0] + t * t * p2[0],
        u * u * p0[1] + 2 * u * t * c[1] + t * t * p2[1],
    )


def _inside(layout: Layout, k: int, pt: Point, gap: float) -> bool:
    return (
        abs(pt[0] - layout.x[k]) <= layout.width[k] / 2 + gap
        and abs(pt[1] - layout.y[k]) <= layout.height / 2 + gap
    )


def route_edge(layout: Layout, i: int, j: int, gap: float = 0.05) -> Curve:
    """The least-curved arc from box ``i`` to box ``j`` that avoids the other boxes."""
    p0 = (float(layout.x[i]), float(layout.y[i]))
    p2 = (float(layout.x[j]), float(layout.y[j]))
    dx, dy = p2[0] - p0[0], p2[1] - p0[1]
    others = [k for k in range(len(layout.names)) if k not in (i, j)]
    ts = np.linspace(0.0, 1.0, 41)
    best: tuple[int, Point] | None = None
    for rad in CURVATURES:
        ctrl = ((p0[0] + p2[0]) / 2 + rad * dy, (p0[1] + p2[1]) / 2 - rad * dx)
        pts = [_bezier(p0, ctrl, p2, float(t)) for t in ts]
        hits = sum(any(_inside(layout, k, pt, gap) for pt in pts) for k in others)
        if best is None or hits < best[0]:
            best = (hits, ctrl)
        if hits == 0:
            break
    assert best is not None
    ctrl = best[1]
    t0 = _boundary(lambda t: _inside(layout, i, _bezier(p0, ctrl, p2, t), gap), 0.0, 1.0)
    t1 = _boundary(lambda t: not _inside(layout, j, _bezier(p0, ctrl, p2, t), gap), 0.0, 1.0)
    if t1 <= t0:
        t0, t1 = 0.0, 1.0
    # control point of the sub-curve on [t0, t1] (the blossom of the quadratic at t0, t1)
    sub = (
        (1 - t0) * (1 - t1) * p0[0] + ((1 - t0) * t1 + t0 * (1 - t1)) * ctrl[0] + t0 * t1 * p2[0],
        (1 - t0) * (1 - t1) * p0[1] + ((1 - t0) * t1 + t0 * (1 - t1)) * ctrl[1] + t0 * t1 * p2[1],
    )
    return Curve(_bezier(p0, ctrl, p2, t0), sub, _bezier(p0, ctrl, p2, t1))


def _boundary(is_before, lo: float, hi: float) -> float:
    """Last ``t`` in ``[lo, hi]`` with ``is_before(t)`` true (it is true, then false)."""
    for _ in range(40):
        mid = (lo + hi) / 2
        if is_before(mid):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def label_widths(names: Sequence[str], font_size: float = FONT_SIZE) -> np.ndarray:
    """Box width (inches) of each label rendered in matplotlib's default font."""
    from matplotlib.textpath import TextPath

    widths = [TextPath((0, 0), name or " ", size=font_size).get_extents().width for name in names]
    return np.array(widths) / 72.0 + 2 * BOX_PAD_X


def _shortest_paths(adj: np.ndarray) -> np.ndarray:
    p = adj.shape[0]
    d = np.where(adj, 1.0, np.inf)
    np.fill_diagonal(d, 0.0)
    for k in range(p):  # Floyd-Warshall; p is small
        d = np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :])
    finite = d[np.isfinite(d)]
    return np.where(np.isfinite(d), d, (finite.max() if finite.size else 1.0) + 1.0)


def _classical_mds(d: np.ndarray) -> np.ndarray:
    p = d.shape[0]
    j = np.eye(p) - 1.0 / p
    b = -0.5 * j @ (d**2) @ j
    vals, vecs = np.linalg.eigh(b)
    top = np.argsort(vals)[::-1][:2]
    x = vecs[:, top] * np.sqrt(np.maximum(vals[top], 1e-9))
    # break exact symmetries deterministically
    return x + 1e-3 * np.column_stack([np.cos(np.arange(p)), np.sin(np.arange(p))])


def stress_layout(d: np.ndarray, iterations: int = 300) -> np.ndarray:
    """SMACOF stress majorization of target distances ``d`` (weights ``d^-2``)."""
    p = d.shape[0]
    if p == 1:
        return np.zeros((1, 2))
    x = _classical_mds(d)
    with np.errstate(divide="ignore"):
        w = np.where(d > 0, d**-2.0, 0.0)
    v = -w
    np.fill_diagonal(v, w.sum(axis=1))
    v_pinv = np.linalg.pinv(v)
    for _ in range(iterations):
        diff = x[:, None, :] - x[None, :, :]
        dist = np.sqrt((diff**2).sum(axis=2))
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(dist > 1e-12, -w * d / dist, 0.0)
        np.fill_diagonal(b, 0.0)
        np.fill_diagonal(b, -b.sum(axis=1))
        new = v_pinv @ (b @ x)
        if np.abs(new - x).max() < 1e-6:
            return new
        x = new
    return x


def _orient(x: np.ndarray, directed: Sequence[tuple[int, int]]) -> np.ndarray:
    x = x - x.mean(axis=0)
    if directed:
        v = np.sum([(x[j] - x[i]) / (np.linalg.norm(x[j] - x[i]) or 1.0) for i, j in directed], 0)
        if np.linalg.norm(v) > 1e-9:
            angle = -np.pi / 2 - np.arctan2(v[1], v[0])  # rotate v onto "down"
            c, s = np.cos(angle), np.sin(angle)
            return x @ np.array([[c, s], [-s, c]])
    _, vecs = np.linalg.eigh(np.cov(x.T) if len(x) > 2 else np.eye(2))
    return x @ vecs[:, ::-1]  # long axis horizontal


def remove_overlaps(
    x: np.ndarray, y: np.ndarray, width: np.ndarray, height: float, max_rounds: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Push overlapping boxes apart along their smaller overlap until no two overlap."""
    x, y = x.astype(float).copy(), y.astype(float).copy()
    p = len(x)
    for _ in range(max_rounds):
        moved = False
        for i in range(p):
            for j in range(i + 1, p):
                ox = (width[i] + width[j]) / 2 + GAP_X - abs(x[i] - x[j])
                oy = height + GAP_Y - abs(y[i] - y[j])
                if ox <= 0 or oy <= 0:
                    continue
                moved = True
                if ox / (width[i] + width[j]) < oy / (2 * height):
                    sign = 1.0 if x[i] >= x[j] else -1.0
                    x[i] += sign * ox / 2
                    x[j] -= sign * ox / 2
                else:
                    sign = 1.0 if y[i] >= y[j] else -1.0
                    y[i] += sign * oy / 2
                    y[j] -= sign * oy / 2
        if not moved:
            break
    return x, y


def _components(adj: np.ndarray) -> list[np.ndarray]:
    """Connected components with at least one edge, largest first (ties: first node)."""
    seen = np.zeros(len(adj), dtype=bool)
    comps = []
    for start in np.flatnonzero(adj.any(axis=1)).tolist():
        if seen[start]:
            continue
        members = {start}
        frontier = [start]
        while frontier:
            nxt = np.flatnonzero(adj[frontier].any(axis=0) & ~seen)
            seen[nxt] = True
            frontier = [k for k in nxt.tolist() if k not in members]
            members.update(frontier)
        seen[list(members)] = True
        comps.append(np.array(sorted(members)))
    return sorted(comps, key=lambda c: (-len(c), c[0]))


def _place_component(
    nodes: np.ndarray,
    adj: np.ndarray,
    directed: Sequence[tuple[int, int]],
    width: np.ndarray,
) -> np.ndarray:
    """Stress layout of one component, oriented and scaled (inches), overlaps removed."""
    sub = adj[np.ix_(nodes, nodes)]
    remap = {int(k): i for i, k in enumerate(nodes)}
    pos = stress_layout(_shortest_paths(sub))
    pos = _orient(pos, [(remap[i], remap[j]) for i, j in directed if i in remap])
    ii, jj = np.nonzero(np.triu(sub))
    lengths = np.linalg.norm(pos[ii] - pos[jj], axis=1)
    unit = float(np.median(lengths)) if lengths.size else 1.0
    target = max(1.3, float(np.median(width[nodes])) + 0.5)
    # dense graphs need more room per edge: grow with the mean degree
    target *= float(np.clip(np.sqrt(len(ii) / len(nodes)), 1.0, 2.0))
    pos = pos * (target / (unit or 1.0))
    x, y = remove_overlaps(pos[:, 0], pos[:, 1], width[nodes], BOX_HEIGHT)
    return np.column_stack([x, y])


def layout_graph(
    names: Sequence[str], edges: Sequence[Edge], *, font_size: float = FONT_SIZE
) -> Layout:
    """Place the nodes of a CPDAG for drawing (see the module docstring).

    Each connected component is laid out on its own; components are then packed in rows,
    largest first, and nodes without edges go in a last row.
    """
    names = tuple(names)
    p = len(names)
    index = {n: i for i, n in enumerate(names)}
    adj = np.zeros((p, p), dtype=bool)
    directed = []
    for e in edges:
        i, j = index[e.source], index[e.target]
        adj[i, j] = adj[j, i] = True
        if e.type == DIRECTED:
            directed.append((i, j))
    width = label_widths(names, font_size)
    x = np.zeros(p)
    y = np.zeros(p)
    placed = []
    for nodes in _components(adj):
        pos = _place_component(nodes, adj, directed, width)
        left = (pos[:, 0] - width[nodes] / 2).min()
        top = pos[:, 1].max() + BOX_HEIGHT / 2
        pos = pos - np.array([left, top])  # top-left corner at the origin
        w = float((pos[:, 0] + width[nodes] / 2).max())
        h = float(-(pos[:, 1] - BOX_HEIGHT / 2).min())
        placed.append((nodes, pos, w, h))
    # shelf packing: rows no wider than the widest component or a square-ish total
    area = sum(w * h for _n, _p, w, h in placed)
    row_limit = max([w for _n, _p, w, _h in placed] + [float(np.sqrt(area) * 1.4)])
    cursor_x = cursor_y = row_h = 0.0
    for nodes, pos, w, h in placed:
        if cursor_x > 0 and cursor_x + w > row_limit:
            cursor_x, cursor_y, row_h = 0.0, cursor_y - row_h - COMPONENT_GAP, 0.0
        x[nodes] = pos[:, 0] + cursor_x
        y[nodes] = pos[:, 1] + cursor_y
        cursor_x += w + COMPONENT_GAP
        row_h = max(row_h, h)
    lonely = np.flatnonzero(~adj.any(axis=1))
    if lonely.size:
        cursor_x = 0.0
        cursor_y = (cursor_y - row_h - COMPONENT_GAP + BOX_HEIGHT / 2) if placed else 0.0
        limit = max(row_limit if placed else 0.0, 8.0)
        for k in lonely.tolist():
            if cursor_x > 0 and cursor_x + width[k] > limit:
                cursor_x, cursor_y = 0.0, cursor_y - BOX_HEIGHT - GAP_Y
            x[k] = cursor_x + width[k] / 2
            y[k] = cursor_y
            cursor_x += width[k] + GAP_X
    return Layout(names=names, x=x, y=y, width=width, height=BOX_HEIGHT)
