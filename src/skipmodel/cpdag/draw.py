"""Static drawing of a CPDAG (PNG and SVG) with matplotlib only.

Directed edges are dark arrows, undirected edges grey lines without heads, conflicts (``<->``)
red double-headed dashed arrows; line width grows with the edge's strength (smallest |partial
correlation| over its tests). With a bootstrap, line opacity is the share of replicates in
which the pair was adjacent and a small label gives the share with this exact edge type.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from skipmodel.cpdag.bootstrap import BootstrapResult

from skipmodel.cpdag.layout import Layout, route_edge
from skipmodel.cpdag.pc import BIDIRECTED, DIRECTED, CPDAGResult
from skipmodel.store.layout import atomic_path

#: With a bootstrap, edges recurring (with this type) in at least this share of replicates are
#: not labelled: the labels point at the uncertain part of the graph.
LABEL_BELOW = 0.95

STYLE = {
    DIRECTED: {"color": "#1f3b73", "arrowstyle": "-|>", "linestyle": "-"},
    "---": {"color": "#8a8a8a", "arrowstyle": "-", "linestyle": "-"},
    BIDIRECTED: {"color": "#c0392b", "arrowstyle": "<|-|>", "linestyle": "--"},
}


def edge_widths(result: CPDAGResult, lo: float = 0.8, hi: float = 4.0) -> np.ndarray:
    """Line widths (points) from edge strength, square-root scaled to ``[lo, hi]``."""
    s = np.array([e.min_abs_pcor for e in result.edges], dtype=float)
    if s.size == 0:
        return s
    s = np.nan_to_num(s, nan=0.0, posinf=0.0)
    top = s.max() or 1.0
    return lo + (hi - lo) * np.sqrt(np.clip(s / top, 0.0, 1.0))


def draw_cpdag(
    result: CPDAGResult,
    layout: Layout,
    paths: list[Path],
    *,
    bootstrap: BootstrapResult | None = None,
    title: str | None = None,
) -> list[Path]:
    """Draw ``result`` with ``layout`` into each of ``paths`` (format from the suffix)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    xmin, xmax, ymin, ymax = layout.bounds(margin=0.35)
    fig_w = max(xmax - xmin, 5.0)
    lines = textwrap.wrap(title, width=int(fig_w * 10)) if title else []
    header = 0.15 + 0.22 * len(lines) + (0.2 if lines else 0.0)
    n_handles = 5 if bootstrap is not None else 4
    legend_cols = n_handles if fig_w >= 12.0 else 2 if fig_w >= 7.5 else 1
    legend_h = 0.25 + 0.2 * -(-n_handles // legend_cols)
    fig_h = (ymax - ymin) + header + legend_h
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    cx = (xmin + xmax) / 2
    ax.set_xlim(cx - fig_w / 2, cx + fig_w / 2)
    ax.set_ylim(ymin - legend_h, ymax + header)
    ax.set_axis_off()
    index = {name: i for i, name in enumerate(result.names)}
    widths = edge_widths(result)
    for edge, lw in zip(result.edges, widths, strict=True):
        i, j = index[edge.source], index[edge.target]
        curve = route_edge(layout, i, j)
        style = STYLE[edge.type]
        alpha = 1.0
        if bootstrap is not None:
            alpha = 0.25 + 0.75 * bootstrap.adjacent(edge.source, edge.target)
        ax.add_patch(
            FancyArrowPatch(
                path=MplPath(
                    [curve.start, curve.control, curve.end],
                    [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3],
                ),
                arrowstyle=style["arrowstyle"],
                mutation_scale=10 + 2 * lw,
                linewidth=lw,
                linestyle=style["linestyle"],
                color=style["color"],
                alpha=alpha,
                zorder=1,
            )
        )
        if bootstrap is not None and bootstrap.same_type(edge) < LABEL_BELOW:
            ax.text(
                *curve.midpoint(),
                f"{bootstrap.same_type(edge):.0%}",
                fontsize=6.5,
                color="#333333",
                ha="center",
                va="center",
                zorder=2,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    for k, name in enumerate(layout.names):
        w, h = layout.width[k], layout.height
        ax.add_patch(
            FancyBboxPatch(
                (layout.x[k] - w / 2, layout.y[k] - h / 2),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor="#f7f9fc",
                edgecolor="#1f3b73",
                linewidth=0.9,
                zorder=3,
            )
        )
        ax.text(
            layout.x[k],
            layout.y[k],
            name,
            ha="center",
            va="center",
            fontsize=9,
            zorder=4,
            parse_math=False,  # names are data: "$" must not start mathtext
        )
    if lines:
        ax.text(
            cx,
            ymax + header / 2,
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=10.5,
            weight="bold",
            parse_math=False,
        )
    handles = [
        Line2D([], [], color=STYLE[DIRECTED]["color"], lw=2, marker=">", label="directed -->"),
        Line2D([], [], color=STYLE["---"]["color"], lw=2, label="undirected ---"),
        Line2D([], [], color=STYLE[BIDIRECTED]["color"], lw=2, ls="--", label="conflict <->"),
        Line2D([], [], color="none", label="width: min |partial r|"),
    ]
    if bootstrap is not None:
        handles.append(
            Line2D(
                [],
                [],
                color="none",
                label=f"bootstrap B={bootstrap.replicates}: opacity = adjacent, "
                f"% = same type (if < {LABEL_BELOW:.0%})",
            )
        )
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=legend_cols,
        fontsize=7.5,
        frameon=False,
        handlelength=2.2,
    )
    written = []
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=150)
        written.append(path)
    plt.close(fig)
    return written
