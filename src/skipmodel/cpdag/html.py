"""A self-contained interactive view of a CPDAG: ``graph.html`` with inline SVG and script.

Nothing is fetched: styles, the SVG drawing (same layout as the PNG) and a small script live in
the one file. Hovering a node highlights it with its parents, children, undirected neighbours
and conflict partners, dims the rest and lists them (with edge strengths and, when present,
bootstrap frequencies) in a side panel; clicking pins the selection, clicking the background
clears it; ``graph.html#NAME`` opens with ``NAME`` selected. The page is well-formed XML (the script sits in a CDATA section).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from skipmodel.cpdag.bootstrap import BootstrapResult

from skipmodel.cpdag.draw import STYLE, edge_widths
from skipmodel.cpdag.layout import Layout, route_edge
from skipmodel.cpdag.pc import BIDIRECTED, DIRECTED, UNDIRECTED, CPDAGResult

PT = 72.0  # SVG units per inch

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; }
header { padding: 10px 16px; border-bottom: 1px solid #ddd; }
header h1 { font-size: 17px; margin: 0 0 4px 0; }
header p { font-size: 12px; margin: 0; color: #555; }
#wrap { display: flex; align-items: flex-start; }
#graph { flex: 1 1 auto; width: calc(100vw - 310px); height: calc(100vh - 100px); }
#panel { width: 270px; padding: 12px 14px; font-size: 13px; border-left: 1px solid #ddd;
         min-height: 300px; }
#panel h2 { font-size: 15px; margin: 0 0 8px 0; }
#panel h3 { font-size: 12px; margin: 10px 0 2px 0; text-transform: uppercase; color: #555; }
#panel ul { margin: 0; padding-left: 18px; }
.node rect { fill: #f7f9fc; stroke: #1f3b73; stroke-width: 1; }
.node text { font-size: 9px; dominant-baseline: central; text-anchor: middle; }
.node { cursor: pointer; }
.edge { fill: none; }
.dim { opacity: 0.12; }
.node.focus rect { fill: #ffe08a; stroke-width: 2; }
.node.parent rect { fill: #cfe3ff; }
.node.child rect { fill: #d6f5d6; }
.node.neighbour rect { fill: #eeeeee; }
.node.conflict rect { fill: #f8d0cb; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border: 1px solid #999; }
"""

_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('cpdag-data').textContent);
  var svg = document.getElementById('graph');
  var nodes = svg.querySelectorAll('.node');
  var edges = svg.querySelectorAll('.edge');
  var panel = document.getElementById('info');
  var pinned = null;
  var groups = [['parents', 'Parents (-->)', 'parent'], ['children', 'Children (-->)', 'child'],
                ['undirected', 'Undirected neighbours (---)', 'neighbour'],
                ['conflicts', 'Conflicts (<->)', 'conflict']];
  function clear() {
    nodes.forEach(function (n) { n.setAttribute('class', 'node'); });
    edges.forEach(function (e) { e.classList.remove('dim'); });
    panel.innerHTML = '<p>Hover over or click a variable.</p>';
  }
  function item(name, other) {
    var li = document.createElement('li');
    var info = data.edges[name + '|' + other] || data.edges[other + '|' + name];
    li.textContent = other + (info ? ' (' + info + ')' : '');
    return li;
  }
  function show(name) {
    var rel = data.nodes[name];
    var role = {};
    role[name] = 'focus';
    groups.forEach(function (g) { rel[g[0]].forEach(function (o) { role[o] = g[2]; }); });
    nodes.forEach(function (n) {
      var r = role[n.getAttribute('data-name')];
      n.setAttribute('class', r ? 'node ' + r : 'node dim');
    });
    edges.forEach(function (e) {
      var touches = e.getAttribute('data-from') === name || e.getAttribute('data-to') === name;
      if (touches) { e.classList.remove('dim'); } else { e.classList.add('dim'); }
    });
    panel.innerHTML = '';
    var h = document.createElement('h2');
    h.textContent = name;
    panel.appendChild(h);
    groups.forEach(function (g) {
      var h3 = document.createElement('h3');
      h3.textContent = g[1] + ': ' + rel[g[0]].length;
      panel.appendChild(h3);
      var ul = document.createElement('ul');
      rel[g[0]].forEach(function (o) { ul.appendChild(item(name, o)); });
      panel.appendChild(ul);
    });
  }
  nodes.forEach(function (n) {
    var name = n.getAttribute('data-name');
    n.addEventListener('mouseenter', function () { if (!pinned) { show(name); } });
    n.addEventListener('mouseleave', function () { if (!pinned) { clear(); } });
    n.addEventListener('click', function (ev) {
      ev.stopPropagation();
      pinned = (pinned === name) ? null : name;
      if (pinned) { show(name); } else { clear(); }
    });
  });
  svg.addEventListener('click', function () { pinned = null; clear(); });
  clear();
  var wanted = decodeURIComponent(window.location.hash.slice(1));
  if (wanted && data.nodes[wanted]) { pinned = wanted; show(wanted); }
})();
"""


def _relations(result: CPDAGResult) -> dict[str, dict[str, list[str]]]:
    rel: dict[str, dict[str, list[str]]] = {
        n: {"parents": [], "children": [], "undirected": [], "conflicts": []} for n in result.names
    }
    for e in result.edges:
        if e.type == DIRECTED:
            rel[e.target]["parents"].append(e.source)
            rel[e.source]["children"].append(e.target)
        elif e.type == UNDIRECTED:
            rel[e.source]["undirected"].append(e.target)
            rel[e.target]["undirected"].append(e.source)
        else:
            rel[e.source]["conflicts"].append(e.target)
            rel[e.target]["conflicts"].append(e.source)
    return rel


def _edge_notes(result: CPDAGResult, bootstrap: BootstrapResult | None) -> dict[str, str]:
    notes = {}
    for e in result.edges:
        p = f"{e.max_pvalue:.2g}" if e.max_pvalue > 0 else "< 1e-300"
        text = f"min |r| {e.min_abs_pcor:.3f}, max p {p}"
        if bootstrap is not None:
            text += f"; bootstrap: adjacent {bootstrap.adjacent(e.source, e.target):.0%}, "
            text += f"this type {bootstrap.same_type(e):.0%}"
        notes[f"{e.source}|{e.target}"] = text
    return notes


def render_html(
    result: CPDAGResult,
    layout: Layout,
    *,
    title: str = "CPDAG",
    subtitle: str = "",
    bootstrap: BootstrapResult | None = None,
) -> str:
    """The complete ``graph.html`` text."""
    xmin, xmax, ymin, ymax = layout.bounds(margin=0.3)

    def sx(x: float) -> float:
        return (x - xmin) * PT

    def sy(y: float) -> float:
        return (ymax - y) * PT

    width, height = (xmax - xmin) * PT, (ymax - ymin) * PT
    index = {n: i for i, n in enumerate(result.names)}
    parts = [
        f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.1f} {height:.1f}"'
        f' width="{width:.0f}" height="{height:.0f}" role="img" aria-label="CPDAG drawing">',
        "<defs>",
    ]
    for kind, key in ((DIRECTED, "d"), (BIDIRECTED, "b")):
        color = STYLE[kind]["color"]
        parts.append(
            f'<marker id="head-{key}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
            f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            f'fill="{color}"/></marker>'
        )
    parts.append("</defs>")
    parts.append('<g id="edges">')
    for e, lw in zip(result.edges, edge_widths(result), strict=True):
        curve = route_edge(layout, index[e.source], index[e.target])
        (x0, y0), (cx, cy), (x1, y1) = curve.start, curve.control, curve.end
        d = f"M {sx(x0):.1f} {sy(y0):.1f} Q {sx(cx):.1f} {sy(cy):.1f} {sx(x1):.1f} {sy(y1):.1f}"
        style = STYLE[e.type]
        attrs = [
            f'class="edge {"directed" if e.type == DIRECTED else "undirected" if e.type == UNDIRECTED else "bidirected"}"',
            f"data-from={quoteattr(e.source)}",
            f"data-to={quoteattr(e.target)}",
            f'd="{d}"',
            f'stroke="{style["color"]}"',
            f'stroke-width="{lw:.2f}"',
        ]
        if e.type == DIRECTED:
            attrs.append('marker-end="url(#head-d)"')
        elif e.type == BIDIRECTED:
            attrs += ['marker-end="url(#head-b)"', 'marker-start="url(#head-b)"']
            attrs.append('stroke-dasharray="5 3"')
        if bootstrap is not None:
            attrs.append(
                f'stroke-opacity="{0.25 + 0.75 * bootstrap.adjacent(e.source, e.target):.2f}"'
            )
        parts.append(
            f"<path {' '.join(attrs)}><title>{escape(e.source)} {escape(e.type)} {escape(e.target)}</title></path>"
        )
    parts.append("</g>")
    parts.append('<g id="nodes">')
    for k, name in enumerate(layout.names):
        w, h = layout.width[k] * PT, layout.height * PT
        x, y = sx(layout.x[k]), sy(layout.y[k])
        parts.append(
            f'<g class="node" data-name={quoteattr(name)}>'
            f'<rect x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}" rx="4"/>'
            f'<text x="{x:.1f}" y="{y:.1f}">{escape(name)}</text></g>'
        )
    parts.append("</g></svg>")
    payload = json.dumps(
        {"nodes": _relations(result), "edges": _edge_notes(result, bootstrap)}, sort_keys=True
    )
    # safe as raw <script> text and as XML: no '<', '>' or '&' characters at all
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        payload = payload.replace(char, code)
    legend = (
        '<p><span class="swatch" style="background:#ffe08a"></span>selected '
        '<span class="swatch" style="background:#cfe3ff"></span>parents '
        '<span class="swatch" style="background:#d6f5d6"></span>children '
        '<span class="swatch" style="background:#eeeeee"></span>undirected '
        '<span class="swatch" style="background:#f8d0cb"></span>conflict</p>'
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
            '<head><meta charset="utf-8"/>',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style></head>",
            "<body>",
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p>{legend}</header>",
            '<div id="wrap">',
            *parts,
            '<aside id="panel"><div id="info"></div></aside>',
            "</div>",
            f'<script type="application/json" id="cpdag-data">{payload}</script>',
            f"<script>//<![CDATA[{_SCRIPT}//]]></script>",
            "</body></html>",
            "",
        ]
    )
