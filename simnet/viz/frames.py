"""From snapshots to frames: the numbers each picture shows and the colours that say them.

A :class:`Film` reads a sequence of per-step snapshots (from a trace or from
a live :class:`simnet.trace.snapshot.SnapshotBuilder`; both give the same graphs)
into arrays over every neuron and connection that appears in any of them,
lays them out once (:class:`simnet.viz.layout.Layout`), and fixes each colour
scale over the whole sequence, so a colour means the same number in every
frame.  ``film.picture(kind)`` builds the figure for a kind of animation and
``film.look(i, kind, picture)`` the colours of frame i.

Colour meaning, everywhere: red is positive, blue is negative, white (or
grey for connections) is zero.  Connections in the activations picture are
coloured by the sign of their weight and sized by its magnitude.

The weights picture shows levels (the bands of its colour bars) rather than
raw colours, and each level holds against flicker: a connection or neuron
keeps the level it showed in the previous frame until its value moves more
than :data:`HOLD` of a level beyond that level's bounds (:func:`held_levels`).
Values hovering at a band's edge would otherwise flip colour every frame,
and a GIF re-encodes every line that changes.  A connection's width follows
its colour level, so a level change redraws it once.
"""
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import FuncNorm, LinearSegmentedColormap, ListedColormap, Normalize, TwoSlopeNorm, to_rgba

from ..core.functions import softmax
from ..errors import SimnetError
from .layout import Layout, column_sizes, geometry
from .picture import Bar, Look, Picture, Surface
from .svg import MAX_WIDTH, MIN_WIDTH, NEGATIVE, POSITIVE, WIDE_EDGES, nice_scale
from .svg import UNKNOWN as UNKNOWN_HEX

__all__ = ["BLOW_UP", "CHANGES", "CHANGE_LEVELS", "CLASS_STRENGTH", "GRADIENTS", "HEAT_STRIDE", "HOLD", "KINDS",
           "LEVELS", "MAX_WIDTH", "MIN_WIDTH", "NEGATIVE", "POSITIVE", "PROBE_LIMIT", "SATURATE", "SURFACE_GRID",
           "UNKNOWN", "VALUES", "WIDE_EDGES", "Film", "Frame", "as_number", "blow_up", "class_colours", "class_shades",
           "class_surface", "held_levels", "max_abs", "mosaic", "nice_scale", "positive_class", "sample_greys",
           "square_root_norm", "symmetric_norm"]

KINDS = ("activations", "weights")
LEVELS = 15  # colours per map: odd, so that zero has a colour of its own
CHANGE_LEVELS = 9  # fewer for weight changes: every connection's colour may move every frame
UNKNOWN = to_rgba(UNKNOWN_HEX)  # a neuron with no value yet (the state before the first step)
# a few distinct levels read as well as a continuous map, and change far less often from frame to frame
VALUES = colormaps["RdBu_r"].resampled(LEVELS)
GRADIENTS = colormaps["PuOr"].resampled(LEVELS)
# a change of zero should still show the connection, so the middle of this map is grey, not white
CHANGES = LinearSegmentedColormap.from_list(
    "change", [VALUES(0.0), VALUES(0.2), "#c4c4c4", VALUES(0.8), VALUES(1.0)], N=CHANGE_LEVELS)
SURFACE_GRID = 64  # probe points per side for the decision surface
CLASS_STRENGTH = 0.55  # how far from white a class's colour goes on the surface where the network is sure
HEAT_STRIDE = 4  # every 4th probe point per side makes a node's 16x16 heatmap
PROBE_LIMIT = 2000  # connections; beyond this the surface costs more than it shows
SATURATE = 95  # percentile of the probed values that gets the darkest colour
HOLD = 0.25  # of a level: how far beyond its level's bounds a value may go before the weights picture shows it moved
# a frame whose values jump beyond this many times the largest of the frames before it has left training behind
# (a diverging run): the colour scales are set without it, or every earlier frame would look white
BLOW_UP = 100


@dataclass
class Frame:
    """One snapshot as arrays over the film's nodes (N) and edges (E); NaN where there is no value."""
    step: int
    loss: float
    accuracy: float
    node_shown: np.ndarray
    edge_shown: np.ndarray
    activation: np.ndarray
    gradient: np.ndarray
    weight: np.ndarray
    outputs: np.ndarray = None  # (N, g, g) float32 neuron outputs over the input plane, or None
    change: np.ndarray = None  # weight change since the previous frame (filled in by Film)


class Film:
    """The frames of a run, one per snapshot, with one layout and fixed colour scales.

    snapshots: iterable of DiGraphs with the attributes of simnet.trace.snapshot.
    data: (X, Y) of the training set, or None; with two inputs its points are
    drawn over the decision surface and its extent bounds the probed plane.
    data_note: why there are no data points, said on the surface panel.
    penalty: the L1/L2 penalty the recorded losses hold, in words, for the titles.
    image: (rows, columns) when the inputs are the pixels of an image: the panel beside
    the network then shows the input (batch mean) and each first-layer neuron's
    receptive field, its incoming weights laid out as the image (see :meth:`fields`).
    sample: (index, input values in pixel order) of one sample of the data set: with an image, the
    panel's input shows that sample (:func:`sample_greys`) instead of the batch mean.
    """

    def __init__(self, snapshots, *, data=None, data_note="", penalty="", image=None, sample=None):
        self.image = None if image is None else tuple(image)
        self.sample = sample
        self.layout = Layout()
        self.nodes, self.edges = [], []
        self._node, self._edge = {}, {}
        self.roles, self.fns = {}, {}
        self.frames = []
        self.data, self.data_note, self.penalty = data, data_note, penalty
        self.extent = _extent(data)
        graphs = list(snapshots)
        if not graphs:
            raise SimnetError("no snapshots to draw: the run recorded no steps")
        self.probing = all(_probeable(G) for G in graphs)
        largest = max(G.number_of_edges() for G in graphs)
        # a two-input network too large to probe: the panel it would have is missing, and the picture says why
        self.probe_note = "" if self.probing or not all(_probeable(G, math.inf) for G in graphs) else \
            f"no decision surface or heatmaps: {largest:,} connections (they are drawn up to {PROBE_LIMIT:,})"
        self._probed_shape = self._probed = None  # the topology and Network of the last probe
        for G in graphs:
            self._read(G)
        self._finish()

    def __len__(self):
        return len(self.frames)

    # ---- reading ---------------------------------------------------------

    def _read(self, G):
        self.layout.extend(G)
        for name, attrs in G.nodes(data=True):
            if name not in self._node:
                self._node[name] = len(self.nodes)
                self.nodes.append(name)
            self.roles[name], self.fns[name] = attrs.get("role", "hidden"), attrs.get("fn")
        for key in G.edges:
            if key not in self._edge:
                self._edge[key] = len(self.edges)
                self.edges.append(key)
        N, E = len(self.nodes), len(self.edges)
        node = [self._node[n] for n in G.nodes]
        edge = [self._edge[k] for k in G.edges]

        def on_nodes(attr):
            out = np.full(N, np.nan)
            out[node] = [as_number(a.get(attr)) for _, a in G.nodes(data=True)]
            return out

        def on_edges(attr):
            out = np.full(E, np.nan)
            out[edge] = [as_number(a.get(attr)) for _, _, a in G.edges(data=True)]
            return out

        node_shown, edge_shown = np.zeros(N, bool), np.zeros(E, bool)
        node_shown[node], edge_shown[edge] = True, True
        frame = Frame(int(G.graph.get("step", len(self.frames))), as_number(G.graph.get("loss")),
                      as_number(G.graph.get("accuracy")), node_shown, edge_shown,
                      on_nodes("activation"), on_nodes("gradient"), on_edges("weight"))
        if self.probing:
            frame.outputs = self._probe(G, node)
        self.frames.append(frame)

    def _probe(self, G, node):
        from ..core.engine import probe
        values = probe(self._probe_network(G), self._grid)
        out = np.full((len(self.nodes), SURFACE_GRID, SURFACE_GRID), np.nan, dtype=np.float32)
        for i, name in zip(node, G.nodes):
            out[i] = values[name].reshape(SURFACE_GRID, SURFACE_GRID)
        return out

    def _probe_network(self, G):
        """A Network of G's neurons, connections and numbers, to probe; kept while the topology stays."""
        from ..core.graph import Network
        shape = (tuple((name, attrs["role"], attrs.get("fn")) for name, attrs in G.nodes(data=True)), tuple(G.edges))
        if shape != self._probed_shape:
            net = Network(seed=0)
            for name, role, fn in shape[0]:
                net.add_neuron(name, role=role, activation=fn or "linear")
            for s, t in shape[1]:
                net.connect(s, t)
            self._probed_shape, self._probed = shape, net
        net = self._probed
        for name, attrs in G.nodes(data=True):
            net.neurons[name].bias = attrs["bias"]
        for connection, (_, _, attrs) in zip(net.connections, G.edges(data=True)):
            connection.weight = attrs["weight"]
        return net

    @cached_property
    def _grid(self):
        return self.grid()

    def grid(self):
        """The probed points of the input plane, (g*g, 2), row by row from the bottom."""
        x0 = np.linspace(self.extent[0], self.extent[1], SURFACE_GRID)
        x1 = np.linspace(self.extent[2], self.extent[3], SURFACE_GRID)
        a, b = np.meshgrid(x0, x1)
        return np.column_stack([a.ravel(), b.ravel()])

    def _finish(self):
        N, E = len(self.nodes), len(self.edges)
        previous = None
        for f in self.frames:
            for name in ("node_shown", "edge_shown"):
                setattr(f, name, _pad(getattr(f, name), N if name == "node_shown" else E, False))
            for name in ("activation", "gradient"):
                setattr(f, name, _pad(getattr(f, name), N, np.nan))
            f.weight = _pad(f.weight, E, np.nan)
            if f.outputs is not None and len(f.outputs) < N:
                f.outputs = np.concatenate([f.outputs, np.full((N - len(f.outputs),) + f.outputs.shape[1:], np.nan,
                                                               dtype=np.float32)])
            # a connection that has just appeared has not changed yet
            f.change = np.zeros(E) if previous is None else np.where(
                np.isnan(previous.weight) | np.isnan(f.weight), 0.0, f.weight - previous.weight)
            previous = f
        self.cut = blow_up(self.frames)
        self.scales = self._scales()
        # thousands of connections drawn thick would hide each other (and take long to draw)
        self.thickest = max(1.0, MAX_WIDTH * min(1.0, math.sqrt(WIDE_EDGES / max(E, 1))))
        self.surface_norm = self._surface_norm() if self.probing else None

    def _scales(self):
        """The fixed colour scales, fitted to the frames before any blows up (see :func:`blow_up`)."""
        fitted = self.frames[:self.cut]
        stack = lambda name: np.concatenate([getattr(f, name) for f in fitted])
        activation = nice_scale(max_abs(stack("activation")))
        if self.probing:
            hidden = [i for i, n in enumerate(self.nodes) if self.roles[n] != "input"]
            heat = np.concatenate([self._tiles(f)[hidden].ravel() for f in fitted])
            heat = np.abs(heat[np.isfinite(heat)])
            if heat.size:  # large values far from the data should not wash out the rest
                activation = max(activation, nice_scale(float(np.percentile(heat, SATURATE))))
        return {"activation": activation, "weight": nice_scale(max_abs(stack("weight"))),
                "change": nice_scale(max_abs(stack("change"))), "gradient": nice_scale(max_abs(stack("gradient")))}

    # ---- drawing ---------------------------------------------------------

    def picture(self, kind):
        """The figure for `kind` ("activations" or "weights"), built once for every frame."""
        positions = self.layout.positions()
        s = self.scales
        if kind == "activations":
            bars = [Bar("activation (batch mean)", VALUES, symmetric_norm(s["activation"]))]
            legend = [("weight > 0", {"color": POSITIVE, "linewidth": 2.5}),
                      ("weight < 0", {"color": NEGATIVE, "linewidth": 2.5}),
                      (f"width ~ |weight|, max {s['weight']:g}", {"color": "#777777", "linewidth": 4})]
            surface = self._surface() if self.probing else self._fields_panel(kind)
            heat = self.probing
            caption = "squares: each neuron's output over the input plane; frame: its batch-mean activation"
        elif kind == "weights":
            bars = [Bar("weight change since previous frame", CHANGES, square_root_norm(s["change"])),
                    Bar("gradient dL/dz (batch mean)", GRADIENTS, square_root_norm(s["gradient"]))]
            legend = [(f"width ~ |change| band, max {s['change']:g}", {"color": "#777777", "linewidth": 4})]
            surface, heat, caption = self._fields_panel(kind), False, ""
        else:
            raise ValueError(f"unknown picture kind {kind!r}")
        columns, unlabelled = None, ()
        if self.fields is not None:
            positions, columns = self._image_positions(positions)
            unlabelled = [self.nodes[i] for i in self.fields[0]]
        return Picture(positions, self.nodes, self.roles, self.edges, bars=bars, legend=legend, surface=surface,
                       heat_possible=heat, heat_caption=caption, note=self.probe_note if kind == "activations" else "",
                       columns=columns, unlabelled=unlabelled)

    def _image_positions(self, positions):
        """The positions with the input neurons as the pixels of their image, its right edge on the input
        column, a pixel as wide as a row is high; and the neurons per column the picture is sized by."""
        rows, cols = self.image
        names = [self.nodes[i] for i in self.fields[0]]
        x_in = positions[names[0]][0]
        columns = [rows] + column_sizes({n: xy for n, xy in positions.items() if n not in names})
        g = geometry(columns, surface=True)
        dx = g.row_px / g.column_px
        out = dict(positions)
        for p, name in enumerate(names):
            r, c = divmod(p, cols)
            out[name] = (x_in - (cols - 1 - c) * dx, r - (rows - 1) / 2)
        return out, columns

    @cached_property
    def classes(self):
        """K when the outputs are K classes (one-hot data, or three or more outputs without data), else None."""
        outputs = sum(self.roles[n] == "output" for n in self.nodes)
        if self.data is None:
            return outputs if outputs >= 3 else None
        Y = np.asarray(self.data[1], float)
        one_hot = Y.ndim == 2 and Y.shape[1] == outputs >= 2 and np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(1) == 1)
        return outputs if one_hot else None

    def _surface(self):
        outputs = [n for n in self.nodes if self.roles[n] == "output"]
        inputs = [n for n in self.nodes if self.roles[n] == "input"]
        if self.classes:
            title = "class picked over the inputs (paler: less sure)"
            colours = class_colours(self.classes)
            points = None
            if self.data is not None:
                X, Y = self.data
                points = (np.asarray(X, float), colours[np.asarray(Y).argmax(axis=1)])
            bar = Bar("class picked (output neuron)", ListedColormap(colours[:, :3]),
                      Normalize(-0.5, self.classes - 0.5), ticks=tuple(outputs),
                      shades=ListedColormap(class_shades(self.classes).reshape(-1, 3)))
            return Surface(self.extent, bar, title, points, tuple(inputs[:2]),
                           note="" if points is not None else self.data_note)
        title = f"{outputs[0]} over the inputs" + (f" (first of {len(outputs)} outputs)" if len(outputs) > 1 else "")

        points = None
        if self.data is not None:
            X, Y = self.data
            points = (np.asarray(X, float), np.array([to_rgba(POSITIVE if c else NEGATIVE) for c in positive_class(Y)]))
        return Surface(self.extent, Bar(title, VALUES, self.surface_norm), title, points, tuple(inputs[:2]),
                       note="" if points is not None else self.data_note)

    @cached_property
    def fields(self):
        """(input node indices in pixel order, [(first-layer node index, its edges in pixel order, -1: none)]),
        or None when the inputs are no image (or the network is small enough for a decision surface)."""
        inputs = [self._node[n] for n in self.nodes if self.roles[n] == "input"]
        if self.image is None or self.probing or len(inputs) != self.image[0] * self.image[1]:
            return None
        edge = {pair: e for e, pair in enumerate(self.edges)}
        names = [self.nodes[i] for i in inputs]
        first = [n for n in self.nodes if self.roles[n] != "input" and any((x, n) in edge for x in names)]
        return inputs, [(self._node[n], np.array([edge.get((x, n), -1) for x in names])) for n in first]

    def _fields_panel(self, kind):
        """The Surface that shows the input image and the receptive fields, or None without an image."""
        if self.fields is None:
            return None
        count = len(self.fields[1])
        shown = "batch mean" if self.sample is None else f"sample {self.sample[0]}"
        if kind == "activations":
            bar = Bar("weight into the first hidden layer", VALUES, symmetric_norm(self._field_scales["weight"]))
            title = f"input ({shown}), then {count} receptive fields"
        else:
            bar = Bar("weight change into the first hidden layer", CHANGES,
                      square_root_norm(self._field_scales["change"]))
            title = f"input ({shown}), then {count} fields' changes"
        rows, cols = self.image
        side = math.ceil(math.sqrt(count + 1))
        shape = (side * (rows + 1) - 1, side * (cols + 1) - 1)
        return Surface((0, shape[1], 0, shape[0]), bar, title, axis_names=("", ""), ticks=False)

    def fields_mosaic(self, frame):
        """(h, w, 4) uint8, bottom row first: the input image and the receptive fields at `frame`, as the
        activations picture's panel shows them."""
        return self._fields_look(frame, "activations")

    def field_scale(self):
        """The weight the receptive fields' darkest red (and blue, negated) stands for."""
        return float(self._field_scales["weight"])

    def _fields_look(self, frame, kind):
        """(g, g, 4) uint8: the input image in greys, then each receptive field coloured as the panel's bar says."""
        inputs, fields = self.fields
        tiles = [self._greys(frame.activation[inputs]) if self.sample is None else sample_greys(self.sample[1])]
        if kind == "activations":
            values, cmap, norm = frame.weight, VALUES, symmetric_norm(self._field_scales["weight"])
        else:
            values, cmap, norm = frame.change, CHANGES, square_root_norm(self._field_scales["change"])
        for _, edges in fields:
            v = np.where(edges >= 0, values[np.maximum(edges, 0)], np.nan)
            colours = cmap(norm(np.nan_to_num(v)))
            colours[np.isnan(v)] = UNKNOWN
            tiles.append(colours)
        return mosaic(tiles, self.image)

    @cached_property
    def _field_scales(self):
        """Colour scales of the receptive fields' weights and changes alone: the weights further on
        (often larger) would leave them pale."""
        edges = np.concatenate([e[e >= 0] for _, e in self.fields[1]])
        fitted = self.frames[:self.cut]
        return {name: nice_scale(float(np.percentile(np.abs(np.concatenate(
            [np.nan_to_num(getattr(f, name)[edges]) for f in fitted])), 99)) or 1.0)
            for name in ("weight", "change")}

    def _greys(self, pixels):
        """RGBA of input values: white the smallest input of the film, black the largest."""
        low, high = self._input_range
        grey = 1.0 - np.clip((np.nan_to_num(pixels, nan=low) - low) / max(high - low, 1e-12), 0.0, 1.0)
        return np.column_stack([grey, grey, grey, np.ones_like(grey)])

    @cached_property
    def _input_range(self):
        """The smallest and largest input (batch mean) over the film: the input image's greys are fixed by them."""
        inputs = self.fields[0]
        values = np.concatenate([f.activation[inputs] for f in self.frames])
        values = values[np.isfinite(values)]
        return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)

    def _surface_norm(self):
        if self.classes:
            return None  # the class surface has colours of its own (see :func:`class_surface`)
        fn = self.fns.get(self.surface_output())
        if fn == "sigmoid":
            return TwoSlopeNorm(0.5, 0.0, 1.0)
        if fn == "tanh":
            return TwoSlopeNorm(0.0, -1.0, 1.0)
        values = np.abs(np.concatenate([self._surface_values(f).ravel() for f in self.frames[:self.cut]]))
        return symmetric_norm(nice_scale(float(np.percentile(values[np.isfinite(values)], SATURATE))))

    def surface_output(self):
        """The output the decision surface shows: the first."""
        return next(n for n in self.nodes if self.roles[n] == "output")

    def output_planes(self, frame):
        """Every output over the probed plane, (outputs, g, g): what the class surface is made of."""
        return frame.outputs[[self._node[n] for n in self.nodes if self.roles[n] == "output"]].astype(float)

    def _surface_values(self, frame):
        """The first output over the probed plane, (g, g)."""
        return frame.outputs[self._node[self.surface_output()]].astype(float)

    def look(self, i, kind, picture):
        """The colours of frame i for `picture` (built by ``self.picture(kind)``)."""
        f = self.frames[i]
        s = self.scales
        if kind == "activations":
            node_color = _colours(VALUES, symmetric_norm(s["activation"])(np.nan_to_num(f.activation)), f.activation)
            edge_color = np.array([to_rgba(POSITIVE, 0.85), to_rgba(NEGATIVE, 0.85)])[(f.weight < 0).astype(int)]
            edge_width = _widths(f.weight, s["weight"], f.edge_shown, self.thickest)
        else:
            node_color = _colours(GRADIENTS, _centres(self.held["gradient"][i], LEVELS), f.gradient)
            change = self.held["change"][i]
            edge_color = CHANGES(_centres(change, CHANGE_LEVELS))
            middle = CHANGE_LEVELS // 2
            edge_width = _widths(change - middle, middle, f.edge_shown, self.thickest)
        if self.fields is not None and kind == "activations":
            # the input layer is the image: its pixels in greys, as in the panel's first tile
            node_color[self.fields[0]] = self._greys(f.activation[self.fields[0]])
        look = Look(self.title(i, kind), node_color, f.node_shown, edge_color, edge_width, caption=self.clipped())
        if self.fields is not None and picture.surface_axes is not None:
            look.surface = self._fields_look(f, kind)
        if kind == "activations" and f.outputs is not None:
            norm = symmetric_norm(s["activation"])
            if picture.geo.heat:
                look.heat = VALUES(norm(self._tiles(f)), bytes=True)
            if picture.surface_axes is not None and self.classes:
                look.surface = class_surface(self.output_planes(f))
            elif picture.surface_axes is not None:
                look.surface = VALUES(self.surface_norm(self._surface_values(f)), bytes=True)
        return look

    def clipped(self):
        """What the picture must say when its colour scales leave frames out (a run that blew up), or ""."""
        if self.cut == len(self.frames):
            return ""
        fitted, first = self.frames[self.cut - 1].step, self.frames[self.cut].step
        return (f"the run blows up at step {first}: colour scales fit steps up to {fitted}, "
                f"larger values show in the darkest colours")

    @cached_property
    def held(self):
        """The levels the weights picture shows, held against flicker (see :func:`held_levels`).

        Returns {"change": (frames, E), "gradient": (frames, N)} level numbers
        of CHANGES and GRADIENTS on their fixed square-root scales.
        """
        change, gradient = square_root_norm(self.scales["change"]), square_root_norm(self.scales["gradient"])
        return {"change": held_levels(np.array([change(f.change) for f in self.frames], float), CHANGE_LEVELS),
                "gradient": held_levels(np.array([gradient(np.nan_to_num(f.gradient)) for f in self.frames], float),
                                        LEVELS)}

    @staticmethod
    def _tiles(frame):
        """The neurons' outputs on the coarse grid of the heatmap tiles, (N, 16, 16)."""
        return frame.outputs[:, HEAT_STRIDE // 2::HEAT_STRIDE, HEAT_STRIDE // 2::HEAT_STRIDE]

    def title(self, i, kind):
        """The frame's title: step, batch loss and accuracy (and, for weights, the step the changes are counted from)."""
        f = self.frames[i]
        parts = [f"step {f.step}" + (" (before training)" if f.step == 0 and math.isnan(f.loss) else "")]
        if not math.isnan(f.loss):
            parts.append(f"batch loss {f.loss:.4g}" + (f" ({self.penalty})" if self.penalty else ""))
        if not math.isnan(f.accuracy):
            parts.append(f"accuracy {f.accuracy:.1%}")
        if kind == "weights" and i > 0:
            parts.append(f"changes since step {self.frames[i - 1].step}")
        return "   ·   ".join(parts)


def sample_greys(pixels):
    """RGBA of one sample's input values: white its smallest, black its largest (as `inspect --sample`)."""
    pixels = np.asarray(pixels, dtype=float)
    low, high = pixels.min(), pixels.max()
    grey = 1.0 - (pixels - low) / max(high - low, 1e-12)
    return np.column_stack([grey, grey, grey, np.ones_like(grey)])


def mosaic(tiles, shape, gap=(0.85, 0.85, 0.85, 1.0)):
    """The RGBA `tiles` (each rows × columns of RGBA in 0..1, pixel by pixel) in a square grid, one pixel apart.

    Returns (height, width, 4) uint8 with its rows from the bottom, as a Surface is painted.
    """
    rows, cols = shape
    side = math.ceil(math.sqrt(len(tiles)))
    out = np.empty((side * (rows + 1) - 1, side * (cols + 1) - 1, 4))
    out[:] = gap
    for k, tile in enumerate(tiles):
        top, left = (k // side) * (rows + 1), (k % side) * (cols + 1)
        out[top:top + rows, left:left + cols] = np.asarray(tile).reshape(rows, cols, 4)
    return np.round(out[::-1] * 255).astype(np.uint8)


def class_colours(classes):
    """(classes, 4) RGBA colours, one per class, distinct for up to 20 classes (matplotlib's tab10 and tab20)."""
    palette = colormaps["tab10"] if classes <= 10 else colormaps["tab20"]
    return np.array([palette(k % palette.N) for k in range(classes)])


def class_shades(classes):
    """(classes, levels, 3) RGB in 0..1: each class's colour from near white to its strongest on the surface.

    levels × classes stays under 64, so that a GIF's palette, which samples a
    colour map 64 times, holds every shade (see :func:`simnet.viz.gif.build_palette`).
    """
    levels = 63 // classes
    strength = np.linspace(0.0, CLASS_STRENGTH, levels)[None, :, None]
    return 1.0 - strength * (1.0 - class_colours(classes)[:, None, :3])


def class_surface(outputs):
    """(g, g, 4) uint8 RGBA of the class picked at each point of the plane, its confidence as the colour's strength.

    outputs: (K, g, g), each output neuron over the plane.  The class is the largest
    output; its softmax probability p sets how far the colour is from white, in
    the levels of :func:`class_shades`: white where the network is no surer than
    a guess (p = 1/K), pale at p = 1, so that the data points drawn over it in
    full colour stand out (as scikit-learn's classifier comparison draws them).
    """
    classes = len(outputs)
    shades = class_shades(classes)
    p = softmax(outputs, axis=0)
    picked = np.nan_to_num(p, nan=0.0).argmax(axis=0)
    sure = np.nan_to_num(p.max(axis=0), nan=1.0 / classes)
    strength = np.clip((sure - 1.0 / classes) / (1.0 - 1.0 / classes), 0.0, 1.0)
    level = np.round(strength * (shades.shape[1] - 1)).astype(int)
    rgb = shades[picked, level]
    return np.concatenate([np.round(rgb * 255), np.full(rgb.shape[:2] + (1,), 255.0)], axis=-1).astype(np.uint8)


def blow_up(frames, factor=BLOW_UP):
    """The index of the first frame whose activations, gradients, weights or weight changes exceed `factor`
    times the largest of the frames before it (all frames: len(frames)); at least 1."""
    first = len(frames)
    for name in ("activation", "gradient", "weight", "change"):
        largest = 0.0
        for i, f in enumerate(frames[:first]):
            value = max_abs(getattr(f, name))
            if largest > 0 and value > factor * largest:
                first = i
                break
            largest = max(largest, value)
    return max(first, 1)


def _probeable(G, limit=PROBE_LIMIT):
    roles = [a.get("role") for _, a in G.nodes(data=True)]
    return roles.count("input") == 2 and "output" in roles and G.number_of_edges() <= limit


def _extent(data):
    """(x0 lo, x0 hi, x1 lo, x1 hi) around the data with a margin; a default square without data."""
    if data is None or np.asarray(data[0]).ndim != 2 or np.asarray(data[0]).shape[1] != 2:
        return (-1.5, 1.5, -1.5, 1.5)
    X = np.asarray(data[0], float)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    return (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])


def positive_class(Y):
    """True where the first target column is positive: above 0.5 for 0/1 labels, above 0 for ±1 (or values)."""
    y = np.asarray(Y, float).reshape(len(Y), -1)[:, 0]
    return y > (0.5 if y.min() >= 0 else 0.0)


def as_number(x):
    """A snapshot value as a float: NaN for None; vectors (a whole batch) by their mean."""
    if x is None:
        return math.nan
    if isinstance(x, float):
        return x
    return float(np.mean(x))


def _pad(a, n, fill):
    return a if len(a) == n else np.concatenate([a, np.full(n - len(a), fill, dtype=a.dtype)])


def max_abs(a):
    """The largest finite magnitude in `a`, 0.0 if it has none."""
    a = np.abs(np.asarray(a, float))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else 0.0


def symmetric_norm(m):
    """A linear norm on [-m, m], clipped."""
    return Normalize(-m, m, clip=True)


def square_root_norm(m):
    """A symmetric norm on [-m, m] that spreads small magnitudes (where most changes and gradients are)."""
    return FuncNorm((lambda x: np.sign(x) * np.sqrt(np.abs(x)), lambda y: np.sign(y) * y * y), vmin=-m, vmax=m,
                    clip=True)


def _colours(cmap, where, values):
    """cmap's colours at `where` (positions in [0, 1]), UNKNOWN where `values` is NaN."""
    out = cmap(where)
    out[np.isnan(values)] = UNKNOWN
    return out


def held_levels(where, levels, hold=HOLD):
    """The level (band of `levels` equal bands of [0, 1]) to show for each value of each frame, with hysteresis.

    where: (frames, K) positions in [0, 1] (a norm's output), frames in order.
    The first frame shows each value's own band.  Later, a value keeps the
    level shown in the frame before as long as it stays within `hold` of a
    band beyond that level's bounds; past that it shows its own band.  The
    result depends only on the sequence, so a run and its replay agree.
    Returns (frames, K) ints in [0, levels).
    """
    where = np.asarray(where, float)
    own = np.minimum((where * levels).astype(int), levels - 1)  # the bands a colour map with N=levels picks
    shown = own.copy()
    for t in range(1, len(own)):
        before = shown[t - 1]
        near = (where[t] >= (before - hold) / levels) & (where[t] <= (before + 1 + hold) / levels)
        shown[t] = np.where(near, before, own[t])
    return shown


def _centres(level, levels):
    """The position in [0, 1] of the middle of each band `level` of `levels`."""
    return (np.asarray(level) + 0.5) / levels


def _widths(values, scale, shown, thickest=MAX_WIDTH):
    """Line widths for |values| up to `scale`, in steps of half a point (steady lines compress well in a GIF)."""
    w = MIN_WIDTH + (thickest - MIN_WIDTH) * np.minimum(np.abs(np.nan_to_num(values)) / scale, 1.0)
    return np.where(shown, np.maximum(np.round(w * 2) / 2, MIN_WIDTH), 0.0)
