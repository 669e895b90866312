"""Where each neuron goes in a picture: columns by depth, rows chosen to reduce crossings.

A neuron's column is the length of the longest path from the inputs to it
(inputs in column 0, outputs together in the last column), so every
connection points to the right.  Within a column the order starts from the
network's insertion order and is improved by barycentre sweeps (Sugiyama
style): each neuron moves towards the mean height of its neighbours, and the
order with the fewest crossings between adjacent columns is kept.

A :class:`Layout` remembers where it put every neuron.  Extending it with a
graph that has new neurons places only those: each goes between its
neighbours' columns and at their mean height, and the neurons already placed
keep their column and their order.  An animation lays out every frame's graph
in turn, so no neuron moves while the network grows.

:func:`geometry` turns the number of neurons in each column into pixel
sizes, and refuses a picture too large to draw; it needs no positions, so a
scenario can be refused before its network exists.
"""
import math
from dataclasses import dataclass

import networkx as nx

from ..errors import SimnetError

__all__ = ["BAR_PX", "BOTTOM_PX", "MAX_PIXELS", "MAX_SIDE_PX", "MIN_WIDTH_PX", "RING", "SURFACE_PX", "SWEEPS",
           "TITLE_PX", "Geometry", "Layout", "column_sizes", "crossings", "depth_columns", "geometry"]

SWEEPS = 8  # barycentre passes (alternately left-to-right and right-to-left)
TITLE_PX, BOTTOM_PX, BAR_PX, SURFACE_PX = 44, 46, 92, 250
MIN_WIDTH_PX = 600
RING = 3  # pixels of node colour around a heatmap tile
# a frame is drawn, copied and coded a few times over: beyond this a picture costs gigabytes (matplotlib's own
# limit is 65,536 pixels a side)
MAX_SIDE_PX, MAX_PIXELS = 30_000, 40_000_000


class Layout:
    """Column and order of every neuron ever placed; see the module docstring.

    ``column[name]`` is a float (a neuron squeezed between two existing
    columns gets a half column); ``rank[name]`` orders neurons within a
    column, top first.
    """

    def __init__(self):
        self.column = {}
        self.rank = {}

    @classmethod
    def of(cls, graph):
        """The layout of one graph (a snapshot or ``Network.to_networkx()``)."""
        return cls().extend(graph)

    @classmethod
    def over(cls, graphs):
        """One layout for a sequence of graphs (the frames of an animation), placing neurons as they appear."""
        layout = cls()
        for graph in graphs:
            layout.extend(graph)
        return layout

    def extend(self, graph):
        """Place the neurons of `graph` not placed yet, leaving the others where they are; returns self."""
        new = [n for n in graph.nodes if n not in self.column]
        if not new:
            return self
        if not self.column:
            self._place_afresh(graph)
        else:
            self._insert(graph, new)
        return self

    def positions(self):
        """{name: (x, y)}: x is the column, y runs downwards from the top, columns centred on y = 0."""
        out = {}
        for column in self.columns().values():
            top = (len(column) - 1) / 2
            for i, name in enumerate(column):
                out[name] = (self.column[name], top - i)
        return out

    def columns(self):
        """{column: [names, top first]}, columns in ascending order."""
        by_column = {}
        for name in sorted(self.column, key=lambda n: (self.column[n], self.rank[n])):
            by_column.setdefault(self.column[name], []).append(name)
        return by_column

    # ---- a whole graph ---------------------------------------------------

    def _place_afresh(self, graph):
        self.column = depth_columns(graph)
        columns = {}
        for name in graph.nodes:  # insertion order is the starting order
            columns.setdefault(self.column[name], []).append(name)
        keys = sorted(columns)
        order = [columns[c] for c in keys]
        best, fewest = [list(c) for c in order], crossings(graph, order)
        for sweep in range(SWEEPS):
            forward = sweep % 2 == 0
            neighbours = graph.predecessors if forward else graph.successors
            for i in (range(1, len(order)) if forward else range(len(order) - 2, -1, -1)):
                heights = _heights(order)
                order[i] = _by_barycentre(order[i], neighbours, heights)
            count = crossings(graph, order)
            if count < fewest:
                best, fewest = [list(c) for c in order], count
        for column in best:
            for rank, name in enumerate(column):
                self.rank[name] = float(rank)

    # ---- new neurons in a placed graph -----------------------------------

    def _insert(self, graph, new):
        # heights of the neurons placed before this call: the new ones find their spots among these, and
        # new neurons that choose the same spot line up there in the order they were added
        heights = _heights_of(self)
        old = dict(self.column)
        unplaced = set(new)
        crowd = {}  # (column, gap) -> new neurons put there so far
        position = {n: i for i, n in enumerate(graph.nodes)}
        for name in nx.lexicographical_topological_sort(graph.subgraph(new), key=position.get):
            column = self._column_for(graph, name, unplaced)
            lo, hi = self._gap(graph, name, column, old, heights)
            k = crowd.get((column, lo), 0)
            crowd[column, lo] = k + 1
            self.rank[name] = lo + (hi - lo) * (k + 1) / (k + 2)
            self.column[name] = column
            unplaced.discard(name)

    def _column_for(self, graph, name, unplaced):
        role = graph.nodes[name].get("role")
        if role == "input":
            return 0.0
        before = [self.column[p] for p in graph.predecessors(name) if p not in unplaced]
        after = [self.column[s] for s in graph.successors(name) if s not in unplaced]
        lo = max(before, default=0.0)
        if role == "output":
            outputs = [c for n, c in self.column.items() if graph.nodes.get(n, {}).get("role") == "output"]
            return max(lo + 1, max(outputs, default=lo + 1))
        hi = min(after, default=math.inf)
        # squeeze between the neighbours rather than push anyone already placed
        return lo + 1 if lo + 1 < hi else (lo + hi) / 2

    def _gap(self, graph, name, column, old, heights):
        """(rank above, rank below) of the spot in `column` nearest the mean height of the neuron's neighbours.

        Only neurons placed before (`old`, at `heights`) count; with no placed
        neighbour the spot is at the bottom of the column.
        """
        ordered = sorted((n for n, c in old.items() if c == column), key=lambda n: self.rank[n])
        if not ordered:
            return 0.0, 1.0
        near = [heights[m] for m in nx.all_neighbors(graph, name) if m in heights]
        bottom = (self.rank[ordered[-1]], self.rank[ordered[-1]] + 1.0)
        if not near:
            return bottom
        target = sum(near) / len(near)
        # heights run downwards: the spot is just above the first neuron below the target
        below = next((i for i, n in enumerate(ordered) if heights[n] < target), None)
        if below is None:
            return bottom
        above = self.rank[ordered[below - 1]] if below > 0 else self.rank[ordered[below]] - 1.0
        return above, self.rank[ordered[below]]


def depth_columns(graph):
    """{name: column}: 0 for inputs, else 1 + the deepest predecessor; outputs share the last column.

    A neuron that nothing feeds (and is not an input) sits in column 1.
    """
    column = {}
    for name in nx.topological_sort(graph):
        if graph.nodes[name].get("role") == "input":
            column[name] = 0.0
        else:
            column[name] = 1.0 + max((column[p] for p in graph.predecessors(name)), default=0.0)
    outputs = [n for n in graph.nodes if graph.nodes[n].get("role") == "output"]
    if outputs:
        last = max(column.values())
        for name in outputs:
            column[name] = last
    return column


def crossings(graph, order):
    """Edge crossings between adjacent columns of `order` (a list of columns, each a list of names, top first)."""
    position = {}
    column_of = {}
    for c, names in enumerate(order):
        for i, name in enumerate(names):
            position[name], column_of[name] = i, c
    total = 0
    for c in range(len(order) - 1):
        pairs = sorted((position[u], position[v]) for u in order[c] for v in graph.successors(u)
                       if column_of.get(v) == c + 1)
        total += _inversions([v for _, v in pairs], len(order[c + 1]))
    return total


def _inversions(values, size):
    """Pairs i < j with values[i] > values[j] (values are ints in range(size)), by a Fenwick tree."""
    tree = [0] * (size + 1)
    seen = count = 0
    for v in values:
        i = v + 1
        not_greater = 0
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        count += seen - not_greater
        i = v + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
        seen += 1
    return count


def _heights(order):
    heights = {}
    for names in order:
        top = (len(names) - 1) / 2
        for i, name in enumerate(names):
            heights[name] = top - i
    return heights


def _heights_of(layout):
    return {name: y for name, (_, y) in layout.positions().items()}


def _by_barycentre(names, neighbours, heights):
    """`names` reordered by the mean height of their neighbours (ties and loners keep their place)."""
    def key(item):
        i, name = item
        around = [heights[m] for m in neighbours(name) if m in heights]
        own = heights[name]
        return (-(sum(around) / len(around)) if around else -own, i)
    return [name for _, name in sorted(enumerate(names), key=key)]


# ---- pixels ------------------------------------------------------------------

@dataclass
class Geometry:
    """Pixel sizes derived from the layout: how tall a row is, how wide a column, how big a node."""
    row_px: float
    column_px: float
    node_px: float
    font_pt: float
    labels: bool
    heat: bool
    width_px: int = 0
    height_px: int = 0
    net_w: int = 0  # the network panel's width


def column_sizes(positions):
    """How many neurons each column of `positions` ({name: (x, y)}) holds, columns left to right."""
    per_column = {}
    for x, _ in positions.values():
        per_column[x] = per_column.get(x, 0) + 1
    return [per_column[x] for x in sorted(per_column)]


def geometry(columns, *, heat_possible=False, surface=False, bars=2):
    """Choose sizes so that names stay legible and nodes never overlap, within a bounded figure.

    columns: the number of neurons in each column; surface: whether the
    decision-surface panel is drawn; bars: how many colour bars.  Raises
    SimnetError for a picture larger than MAX_SIDE_PX a side or MAX_PIXELS.
    """
    rows = max(columns, default=1)
    row_px = min(max(560 / max(rows, 1), 9.0), 48.0)
    gaps = len(columns) - 1
    column_px = min(max(900 / max(gaps, 1), 40.0), 170.0) if gaps > 0 else 170.0
    heat = heat_possible and row_px >= 30 and column_px >= 90
    # a heatmap tile has a coloured ring and an outline around it, and a gap to its neighbours
    node_px = min(0.78 * row_px - (2 * (RING + 2) if heat else 0), 0.3 * column_px, 40.0 if heat else 22.0)
    labels = row_px >= 14
    font_pt = min(max(row_px * 0.3, 7.0), 9.0)
    net_w = int(max(gaps, 0) * column_px + 150)  # room left of the inputs and for the labels right of the outputs
    net_h = rows * row_px + 16
    width = int(net_w + (SURFACE_PX + 40 if surface else 0) + BAR_PX * bars)
    if width < MIN_WIDTH_PX:  # room for the title and the legend: the network spreads out
        net_w, width = net_w + MIN_WIDTH_PX - width, MIN_WIDTH_PX
    height = int(TITLE_PX + max(net_h, SURFACE_PX + 60 if surface else 0, 260) + BOTTOM_PX)
    width, height = width + width % 2, height + height % 2
    if max(width, height) > MAX_SIDE_PX or width * height > MAX_PIXELS:
        raise SimnetError(f"too large to draw: a picture of {rows:,} neurons in a column and {len(columns):,} "
                          f"columns would be {width:,} x {height:,} pixels (at most {MAX_SIDE_PX:,} a side and "
                          f"{MAX_PIXELS // 1_000_000} million in all)")
    return Geometry(row_px, column_px, node_px, font_pt, labels, heat, width, height, net_w)
