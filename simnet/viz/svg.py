"""The network as SVG text, written directly: the live picture of ``Network.train(show=True)``.

A matplotlib figure of the network costs about half a second to build, too
much for a picture redrawn while a run of a few seconds goes on.  This one
is a few milliseconds: the neurons where the GIFs put them (computed once per
topology), each a circle coloured by its batch-mean activation on the
activations GIF's scale, each connection a line red for a positive weight and
blue for a negative one, as wide as the weight is large, and a one-line title.
It needs neither matplotlib nor anything but the network.
"""
import math
from html import escape

import networkx as nx
import numpy as np

from .layout import Layout

__all__ = ["ACTIVATION_COLOURS", "HEIGHT_PX", "MAX_WIDTH", "MIN_WIDTH", "NEGATIVE", "POSITIVE", "UNKNOWN",
           "WIDE_EDGES", "WIDTH_PX", "activation_colour", "network_svg", "nice_scale"]

# the activations GIF's colour map (simnet.viz.frames.VALUES: RdBu_r in 15 levels), low to high, as hex:
# written out so that a picture redrawn while training needs no matplotlib (a test checks they agree)
ACTIVATION_COLOURS = ("#053061", "#195797", "#3079b6", "#4e9ac7", "#87beda", "#b6d7e8", "#dceaf2", "#f7f7f7",
                      "#fbe3d5", "#f9c4a9", "#f09b7a", "#da6a55", "#c1373a", "#9d1128", "#67001f")
POSITIVE, NEGATIVE = "#b2182b", "#2166ac"  # the sign of a weight, here and in the GIFs
UNKNOWN = "#d9d9d9"  # a neuron with no value yet, as in the GIFs
WIDTH_PX, HEIGHT_PX = 600, 420
MIN_WIDTH, MAX_WIDTH = 0.4, 4.0  # of a connection's line: points in the GIFs, pixels here
WIDE_EDGES = 400  # up to this many connections the thickest line is MAX_WIDTH
NAME_PX = 10  # a name is written in its neuron when it fits at this size
TITLE_PX = 24

# the places of the last topology drawn: (names, connection keys) -> (positions, radius); one at most
_PLACED = {}


def activation_colour(value, scale):
    """The activations GIF's colour of `value` on [-scale, scale] (clipped), UNKNOWN for None or NaN.

    >>> activation_colour(0.0, 1.0), activation_colour(5.0, 1.0), activation_colour(None, 1.0)
    ('#f7f7f7', '#67001f', '#d9d9d9')
    """
    if value is None or math.isnan(value):
        return UNKNOWN
    where = min(max((value + scale) / (2 * scale), 0.0), 1.0)
    return ACTIVATION_COLOURS[min(int(where * len(ACTIVATION_COLOURS)), len(ACTIVATION_COLOURS) - 1)]


def nice_scale(x):
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least x (1 for nothing to scale)."""
    if not x > 0 or not math.isfinite(x):
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    return next((m * power for m in (1, 2, 2.5, 5) if x <= m * power * (1 + 1e-12)), 10 * power)


def network_svg(net, title=None, width=WIDTH_PX, height=HEIGHT_PX):
    """SVG text of `net` as it is now: neurons coloured by batch-mean activation, connections by weight.

    `title`: one line above the picture (default: the network's step).  The
    colour scales fit this picture (a round number at least the largest
    magnitude), so they may change from one picture to the next.

    >>> import simnet as sn
    >>> import xml.etree.ElementTree as ET
    >>> svg = network_svg(sn.Network.layered([2, 3, 1], seed=0), title="step 0")
    >>> root = ET.fromstring(svg)
    >>> len(root.findall(".//{http://www.w3.org/2000/svg}circle")), len(root.findall(".//{http://www.w3.org/2000/svg}line"))
    (6, 9)
    """
    neurons, connections = list(net.neurons.values()), list(net.connections)
    positions, radius, room = _places(neurons, connections, width, height)
    means = [None if n.value is None or not np.size(n.value) else float(np.mean(n.value)) for n in neurons]
    weights = [c.weight for c in connections]
    activation_scale = nice_scale(max((abs(m) for m in means if m is not None and math.isfinite(m)), default=0.0))
    weight_scale = nice_scale(max((abs(w) for w in weights if math.isfinite(w)), default=0.0))
    # thousands of connections drawn thick would hide each other
    thickest = max(1.0, MAX_WIDTH * min(1.0, math.sqrt(WIDE_EDGES / max(len(connections), 1))))
    title = f"step {net.step}" if title is None else title
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="{TITLE_PX - 8}" text-anchor="middle" font-size="13">{escape(title)}</text>',
           '<g stroke-opacity="0.85">']
    for c, w in zip(connections, weights):
        (x1, y1), (x2, y2) = positions[c.source.name], positions[c.target.name]
        line_width = MIN_WIDTH + (thickest - MIN_WIDTH) * min(abs(w) / weight_scale, 1.0) if math.isfinite(w) \
            else thickest
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                   f'stroke="{NEGATIVE if w < 0 else POSITIVE}" stroke-width="{line_width:.2f}"/>')
    out.append('</g><g stroke="#444" stroke-width="0.6">')
    for n, mean in zip(neurons, means):
        x, y = positions[n.name]
        name = escape(n.name)
        shown = "no value yet" if mean is None else f"{mean:.4g}"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" '
                   f'fill="{activation_colour(mean, activation_scale)}"><title>{name}: {shown}</title></circle>')
        if len(n.name) * NAME_PX * 0.6 <= room:  # above its neuron, when the rows and columns leave room
            out.append(f'<text x="{x:.1f}" y="{y - radius - 2:.1f}" text-anchor="middle" font-size="{NAME_PX}" '
                       f'stroke="none" fill="#333">{name}</text>')
    out.append(f'</g><text x="6" y="{height - 6}" font-size="10" fill="#555">colour: batch-mean activation, '
               f'scale ±{activation_scale:g}; line: weight (red &gt; 0, blue &lt; 0), width ~ |weight| up to '
               f'{weight_scale:g}</text></svg>')
    return "".join(out)


def _places(neurons, connections, width, height):
    """({name: (x, y)} in pixels, neuron radius, room for a name in pixels: 0 for none) from the GIFs' layout,
    computed once per topology."""
    key = (tuple(n.name for n in neurons), tuple((c.source.name, c.target.name) for c in connections),
           width, height)
    if key not in _PLACED:
        graph = nx.DiGraph()
        graph.add_nodes_from((n.name, {"role": n.role}) for n in neurons)
        graph.add_edges_from(key[1])
        layout = Layout.of(graph)
        columns = sorted(set(layout.column.values()))
        tallest = max((len(c) for c in layout.columns().values()), default=1)
        top, bottom, side = TITLE_PX + NAME_PX + 4, 22, 40
        row = (height - top - bottom) / max(tallest, 1)
        radius = max(1.5, min(row * 0.3, 12.0))
        last = max(columns[-1] - columns[0], 1.0) if columns else 1.0
        gap = (width - 2 * side) / last * min((b - a for a, b in zip(columns, columns[1:])), default=last)
        room = 0.9 * gap if row >= 2 * radius + NAME_PX + 2 else 0.0
        middle = (top + height - bottom) / 2
        places = {name: (side + (column - columns[0]) / last * (width - 2 * side), middle + y * row)
                  for name, (column, y) in layout.positions().items()}
        _PLACED.clear()
        _PLACED[key] = places, radius, room
    return _PLACED[key]
