"""The replay page: one self-contained HTML file to scrub, click and replay a recorded run.

:func:`write_page` reads a trace (snapshots of some steps, the loss history,
the scripted actions, the recorded sweeps) and writes a page that needs no
network to open: the script and style of ``replay_page.js`` and
``replay_page.css`` are inlined, and the run's numbers travel as base64
little-endian float64, so every value the page shows as exact is the trace's
own float, bit for bit.  Layout, colours and decision surfaces are the GIFs'
(:class:`simnet.viz.frames.Film`).  The page stays under :data:`PAGE_BUDGET`
bytes by keeping an even sample of the recorded steps; it says what it kept.
"""
import base64
import html
import json
import os
import re
from importlib import resources

import numpy as np
from matplotlib.colors import to_hex

from ..errors import TraceError
from ..files import written_whole
from .frames import (CHANGES, GRADIENTS, MAX_WIDTH, MIN_WIDTH, NEGATIVE, POSITIVE, SURFACE_GRID, UNKNOWN, VALUES,
                     Film, as_number, class_colours, class_surface, positive_class, sample_greys)
from ..scenario.runinfo import trace_image, training_data

__all__ = ["B64", "EDGE_FIELDS", "MAX_SURFACES", "NODE_FIELDS", "PAGE_BUDGET", "SAMPLE_SHARE", "STEP_FIELDS",
           "SWEEP_KINDS", "SWEEP_SHARE", "SWEEP_VALUES", "fill_placeholders", "pack", "page_data", "render_page",
           "script_json", "write_page"]

PAGE_BUDGET = 4_500_000  # bytes; the promise is 5 MB, the rest is headroom
SWEEP_SHARE = 0.2  # of the budget, for sweeps recorded message by message
SAMPLE_SHARE = 0.05  # of the budget, for the data set's samples an image run's page can show one by one
MAX_SURFACES = 100  # decision surfaces on a page at most
B64 = 4 / 3  # base64 makes bytes this much longer

NODE_FIELDS = ("bias", "activation", "preactivation", "gradient", "bias_grad")
EDGE_FIELDS = ("weight", "grad", "delta", "message")
STEP_FIELDS = ("loss", "accuracy", "lr")
# (phase, kind) of the events a sweep is made of, numbered as the page knows them
SWEEP_KINDS = (("forward", "fire"), ("forward", "message"), ("backward", "fire"),
               ("backward", "message"), ("update", "weight_update"), ("update", "bias_update"))
# which two numbers of each kind of sweep event the page shows (batch means of vectors)
SWEEP_VALUES = (("z", "a"), ("value", None), ("dL_da", "dL_dz"), ("value", None), ("old", "new"), ("old", "new"))


def write_page(trace, path, *, progress=None):
    """Write the replay page of `trace` to `path` (a file name); returns the path.

    `progress` is None or a callable progress(done, total) told as steps are read.
    The file appears whole or not at all: it is written beside `path` and renamed.
    """
    page = render_page(trace, progress=progress)
    path = os.fspath(path)
    with written_whole(path) as temp:
        temp.write_text(page, encoding="utf-8")
    return path


def render_page(trace, *, budget=PAGE_BUDGET, progress=None):
    """The replay page of `trace` as one HTML string of at most about `budget` bytes."""
    reader = _CachedReader(trace)
    recorded = list(trace.steps)
    if not recorded:
        raise TraceError("the trace holds no recorded step to show")
    keep = _steps_to_keep(recorded, trace.actions())
    count = _affordable_steps(reader, recorded, budget)
    while True:
        steps = _sample(recorded, keep, count)
        data = page_data(trace, steps, reader, progress=progress)
        size = len(_fill_template(data).encode("utf-8"))
        if size <= budget or len(steps) <= len(keep) or len(steps) <= 2:
            break
        # shrink in proportion to the overshoot, a little more so one retry is usually enough
        count = max(2, min(len(steps) - 1, int(len(steps) * budget / size * 0.97)))
    if data["surface"] is not None and "fields" in data["surface"]:
        size += _add_samples(data["surface"], reader.data(), trace_image(trace), budget * SAMPLE_SHARE)
    # recorded sweeps get what the steps leave, up to their share: a sweep can be derived, a step cannot
    data["sweeps"] = _recorded_sweeps(steps, reader, data, min(budget * SWEEP_SHARE, budget - size))
    data["messages"] = _has_messages(reader, steps)
    return _fill_template(data)


def page_data(trace, steps, reader, *, progress=None):
    """Everything the page shows but recorded sweeps, as a JSON-ready dict, for the recorded `steps` it keeps.

    `progress(done, total)` is told of each snapshot read and, last, of the
    film (layout, colour scales, surfaces) being made from them.
    """
    graphs = []
    for s in steps:
        graphs.append(reader.snapshot(s))
        if progress is not None:
            progress(len(graphs), len(steps) + 1)
    film = Film(graphs, data=reader.data(), image=trace_image(trace))
    if progress is not None:
        progress(len(steps) + 1, len(steps) + 1)
    nodes, edges = _union(graphs)
    node_index = {name: i for i, name in enumerate(nodes)}
    edge_index = {key: i for i, key in enumerate(edges)}
    node_values = np.full((len(steps), len(nodes), len(NODE_FIELDS)), np.nan)
    edge_values = np.full((len(steps), len(edges), len(EDGE_FIELDS)), np.nan)
    step_values = np.full((len(steps), len(STEP_FIELDS)), np.nan)
    frozen = {}
    for k, G in enumerate(graphs):
        for name, attrs in G.nodes(data=True):
            node_values[k, node_index[name]] = [as_number(attrs.get(f)) for f in NODE_FIELDS]
        for source, target, attrs in G.edges(data=True):
            j = edge_index[source, target]
            edge_values[k, j] = [as_number(attrs.get(f)) for f in EDGE_FIELDS]
            if attrs.get("frozen"):
                frozen.setdefault(str(k), []).append(j)
        step_values[k] = [as_number(G.graph.get(f)) for f in STEP_FIELDS]
    recorded = list(trace.steps)
    history = trace.history()
    positions = film.layout.positions()
    held_out = trace.held_out() if hasattr(trace, "held_out") else {"step": ()}
    # only a run with a held-out set has the key: the pages of other runs stay as they were
    extra = {"heldOut": {key: pack(np.asarray(held_out[key], dtype=np.float64))
                         for key in ("step", "loss", "accuracy")}} if len(held_out["step"]) else {}
    return {
        **extra,
        "title": _title(trace),
        "complete": bool(getattr(trace, "complete", True)),
        "lastStep": int(getattr(trace, "last_step", recorded[-1])),
        "recordedSteps": len(recorded),
        "recordEvery": _interval(recorded),
        "steps": [int(s) for s in steps],
        "nodes": [{"name": n, "role": film.roles[n], "fn": film.fns[n] or ""} for n in nodes],
        "edges": [[node_index[s], node_index[t]] for s, t in edges],
        "positions": _fit([positions[n] for n in nodes]),
        "nodeFields": list(NODE_FIELDS),
        "edgeFields": list(EDGE_FIELDS),
        "stepFields": list(STEP_FIELDS),
        "nodeValues": pack(node_values),
        "edgeValues": pack(edge_values),
        "stepValues": pack(step_values),
        "frozen": frozen,
        "scales": {name: float(value) for name, value in film.scales.items()},
        "look": _look(),
        "history": {key: pack(np.asarray(history[key], dtype=np.float64)) for key in ("step", "loss", "accuracy")
                    if key in history},
        "actions": [{"step": int(a["step"]), "action": str(a.get("action", "")), "label": str(a.get("label", ""))}
                    for a in trace.actions()],
        "sweeps": {},
        "surface": _surfaces(film, steps, reader.data()),
    }


class _CachedReader:
    """Reads the snapshots, sweep events and training data of a trace once each, however often asked."""

    def __init__(self, trace):
        self.trace = trace
        self._snapshots, self._sweeps = {}, {}
        self._data = None
        self._data_read = False

    def snapshot(self, step):
        if step not in self._snapshots:
            self._snapshots[step] = self.trace.snapshot(step)
        return self._snapshots[step]

    def sweep_events(self, step):
        """The fire, message and update events of `step`, in recorded order."""
        if step not in self._sweeps:
            self._sweeps[step] = [e for e in self.trace.events(step=step)
                                  if (e["phase"], e["kind"]) in SWEEP_KINDS]
        return self._sweeps[step]

    def data(self):
        """The training set (X, Y) rebuilt from the scenario the trace recorded, or None."""
        if not self._data_read:
            self._data, self._data_read = training_data(self.trace), True
        return self._data


def _steps_to_keep(recorded, actions):
    """The steps any sampling keeps: first, last, and the recorded steps around each scripted action."""
    keep = {recorded[0], recorded[-1]}
    positions = np.searchsorted(recorded, [a["step"] for a in actions])
    for p in positions:
        keep.update(recorded[i] for i in (p - 1, p) if 0 <= i < len(recorded))
    return sorted(keep)


def _affordable_steps(reader, recorded, budget):
    """About how many steps fit in `budget` beside the loss history, surfaces, script and style."""
    nodes, edges = _union([reader.snapshot(recorded[0]), reader.snapshot(recorded[-1])])
    per_step = B64 * 8 * (len(nodes) * len(NODE_FIELDS) + len(edges) * len(EDGE_FIELDS) + len(STEP_FIELDS))
    fixed = B64 * 8 * 3 * (recorded[-1] - recorded[0] + 1) + B64 * MAX_SURFACES * SURFACE_GRID ** 2 + 100_000
    return max(2, int((budget - fixed) // per_step))


def _sample(recorded, keep, count):
    """`count` of the recorded steps (at least those in `keep`), spread evenly."""
    if count >= len(recorded):
        return list(recorded)
    chosen = set(keep)
    for i in np.linspace(0, len(recorded) - 1, max(count - len(keep), 2)).round().astype(int):
        chosen.add(recorded[i])
    return sorted(chosen)


def _union(graphs):
    """Every neuron and connection of the graphs, in the network's insertion order as they first appear.

    networkx lists edges source by source; the ``order`` attribute gives the
    network's own order, the one the engine updates connections in.
    """
    nodes, edges = {}, {}
    for G in graphs:
        nodes.update(dict.fromkeys(sorted(G.nodes, key=lambda n: G.nodes[n].get("order", 0))))
        edges.update(dict.fromkeys(sorted(G.edges, key=lambda e: G.edges[e].get("order", 0))))
    return list(nodes), list(edges)


def pack(array):
    """float64 values as base64 little-endian bytes: exact, and about half the size of their reprs (a str)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f8").tobytes()).decode("ascii")


def _pack_ints(values, dtype):
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def _look():
    """The GIFs' colour maps (256 colours each), edge colours and widths, for the page to draw alike."""
    return {
        "values": _lut(VALUES), "gradients": _lut(GRADIENTS), "changes": _lut(CHANGES),
        "positive": to_hex(POSITIVE), "negative": to_hex(NEGATIVE), "unknown": to_hex(UNKNOWN),
        "minWidth": MIN_WIDTH, "maxWidth": MAX_WIDTH,
    }


def _lut(cmap):
    return [to_hex(cmap(i / 255)) for i in range(256)]


def _fit(points):
    """Layout positions (x right, y up) as [x, y] in [0, 1], y downwards as on a page."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    # a single column or row sits in the middle
    return [[(x - x0) / (x1 - x0) if x1 > x0 else 0.5, (y1 - y) / (y1 - y0) if y1 > y0 else 0.5]
            for x, y in zip(xs, ys)]


def _recorded_sweeps(steps, reader, data, budget):
    """Sweeps recorded message by message, for as many kept steps as fit in `budget` bytes.

    Returns {step: {"codes", "subjects", "values"}} in base64, neurons and
    connections numbered as in `data` (the page's); empty when the trace keeps
    no messages (the page then derives each sweep from snapshot values).
    """
    candidates = [s for s in steps if s > 0]
    if not _has_messages(reader, candidates):
        return {}
    names = [n["name"] for n in data["nodes"]]
    node_index = {name: i for i, name in enumerate(names)}
    edge_index = {(names[s], names[t]): j for j, (s, t) in enumerate(data["edges"])}
    per_step = B64 * 21 * len(reader.sweep_events(candidates[-1]))  # code, subject, two float64 per event
    fit = int(budget // per_step)
    if fit < 1:
        return {}
    chosen = candidates if fit >= len(candidates) else \
        sorted({candidates[i] for i in np.linspace(len(candidates) - 1, 0, fit).round().astype(int)})
    sweeps = {}
    for s in chosen:
        codes, subjects, values = [], [], []
        for e in reader.sweep_events(s):
            code = SWEEP_KINDS.index((e["phase"], e["kind"]))
            codes.append(code)
            subjects.append(node_index[e["neuron"]] if e["kind"] in ("fire", "bias_update")
                            else edge_index[e["source"], e["target"]])
            values.append([np.nan if name is None else as_number(e[name])
                           for name in SWEEP_VALUES[code]])
        if codes:
            sweeps[str(s)] = {"codes": _pack_ints(codes, "u1"), "subjects": _pack_ints(subjects, "<u4"),
                              "values": pack(np.array(values, dtype=np.float64))}
    return sweeps


def _add_samples(surface, data, image, budget):
    """Put the first samples of the data set that fit in `budget` bytes into the `surface` of a run whose inputs
    form an `image` (rows, columns), each in
    the greys the GIFs draw it in (:func:`~simnet.viz.frames.sample_greys`), as bytes 0..255 a pixel; returns
    the bytes added.  Nothing without data."""
    if data is None:
        return 0
    X = np.asarray(data[0], dtype=float)
    count = min(len(X), int(budget // (B64 * X.shape[1])))
    if count < 1:
        return 0
    greys = np.concatenate([sample_greys(x)[:, 0] for x in X[:count]])
    surface.update({"samples": _pack_ints(np.round(greys * 255), "u1"), "sampleCount": count,
                    "dataSize": len(X), "image": [int(image[0]), int(image[1])]})
    return len(surface["samples"]) + 60


def _has_messages(reader, steps):
    """True if the trace kept the messages of the last of `steps` that is a training step."""
    trained = [s for s in steps if s > 0]
    return bool(trained) and any(e["kind"] == "message" for e in reader.sweep_events(trained[-1]))


def _surfaces(film, steps, data):
    """The GIFs' decision surfaces at up to MAX_SURFACES of the kept steps, or None without them.

    Each is the film's surface through its fixed norm, as bytes 0..255 (an
    index into the page's copy of the colour map), top row first.
    """
    if not film.probing and film.fields is None:
        return None
    chosen = range(len(steps)) if len(steps) <= MAX_SURFACES else \
        sorted(set(np.linspace(0, len(steps) - 1, MAX_SURFACES).round().astype(int).tolist()))
    if film.fields is not None:
        # an image's input and the first layer's receptive fields, as the GIF's panel shows them, top row first
        tiles = [film.fields_mosaic(film.frames[k])[::-1, :, :3] for k in chosen]
        weight = film.field_scale()
        return {"steps": [int(steps[k]) for k in chosen], "fields": len(film.fields[1]), "n": tiles[0].shape[0],
                "w": tiles[0].shape[1], "data": [_pack_ints(t.ravel(), "u1") for t in tiles],
                "norm": [-weight, 0.0, weight], "what": "receptive fields"}
    if film.classes:
        # K classes: each point of the plane in the colour of the class picked, RGB top row first
        images = [_pack_ints(class_surface(film.output_planes(film.frames[k]))[::-1, :, :3].ravel(), "u1")
                  for k in chosen]
        surface = {"classes": [to_hex(c) for c in class_colours(film.classes)],
                   "names": [n for n in film.nodes if film.roles[n] == "output"], "what": "the class picked"}
    else:
        images = []
        for k in chosen:
            shade = np.asarray(film.surface_norm(film._surface_values(film.frames[k])), dtype=np.float64)
            images.append(_pack_ints(np.round(np.nan_to_num(shade, nan=0.5)[::-1] * 255), "u1"))
        surface = {"norm": _norm_ends(film.surface_norm), "what": film.surface_output()}
    surface.update({"steps": [int(steps[k]) for k in chosen], "extent": [float(e) for e in film.extent],
                    "n": SURFACE_GRID, "data": images})
    if data is not None:
        X, Y = data
        labels = np.asarray(Y).argmax(axis=1) if film.classes else positive_class(Y)
        surface["points"] = [[float(x), float(y), int(c)] for (x, y), c in zip(np.asarray(X)[:, :2], labels)]
    return surface


def _norm_ends(norm):
    """The values a norm maps to 0, 0.5 and 1: what blue, white and red stand for."""
    low, high = float(norm.vmin), float(norm.vmax)
    return [low, float(getattr(norm, "vcenter", (low + high) / 2)), high]


def _title(trace):
    meta = getattr(trace, "metadata", None) or {}
    return str(meta.get("scenario") or meta.get("name") or "simnet run")


def _interval(recorded):
    gaps = np.diff(recorded)
    return int(np.median(gaps)) if len(gaps) else 1


def _fill_template(data):
    """The page: template with style, data and script inlined."""
    assets = resources.files(__package__)
    return fill_placeholders(assets.joinpath("replay_page.html").read_text(encoding="utf-8"), {
        "TITLE": html.escape(data["title"]),
        "STYLE": assets.joinpath("replay_page.css").read_text(encoding="utf-8"),
        "SCRIPT": assets.joinpath("replay_page.js").read_text(encoding="utf-8"),
        "DATA": script_json(data, separators=(",", ":"), allow_nan=False),
    })


def script_json(value, **options):
    """`value` as JSON (`options` as json.dumps takes them) to inline in a ``<script>`` element: without any
    "<", so that nothing in it ("</script>", "<!--") can confuse the HTML parser.

    >>> script_json({"name": "</script>"})
    '{"name": "\\\\u003c/script>"}'
    """
    return json.dumps(value, **options).replace("<", "\\u003c")


def fill_placeholders(template, parts):
    """`template` with each ``{{NAME}}`` placeholder replaced by ``parts[NAME]``, in one pass, so that nothing
    inserted is ever read as a placeholder.

    >>> fill_placeholders("<h1>{{TITLE}}</h1>", {"TITLE": "{{TITLE}}"})
    '<h1>{{TITLE}}</h1>'
    """
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], template)
