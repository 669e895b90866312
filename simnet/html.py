"""The replay page: one self-contained HTML file to scrub, click and replay a recorded run.

:func:`write_page` reads a trace (snapshots of some steps, the loss history,
the scripted actions, the recorded sweeps) and writes a page that needs no
network to open: the script and style of ``replay_page.js`` and
``replay_page.css`` are inlined, and the run's numbers travel as base64
little-endian float64, so every value the page shows as exact is the trace's
own float, bit for bit.  The page is kept under :data:`PAGE_BUDGET` bytes by
sampling the recorded steps evenly; it says what it sampled.
"""
import base64
import html
import json
import math
import os
import re
from importlib import resources

import numpy as np

from .engine import probe
from .errors import TraceError
from .layout import Layout

PAGE_BUDGET = 4_500_000  # bytes; the promise is 5 MB, the rest is headroom
SWEEP_SHARE = 0.2  # of the budget, for sweeps recorded message by message
MAX_SURFACES = 200  # decision surfaces probed at most
SURFACE_GRID = 48  # probe points per side of a decision surface

NODE_FIELDS = ("bias", "activation", "preactivation", "gradient", "bias_grad")
EDGE_FIELDS = ("weight", "grad", "delta", "message")
STEP_FIELDS = ("loss", "accuracy", "lr")
# (phase, kind) of the events a sweep is made of, numbered as the page knows them
SWEEP_KINDS = (("forward", "fire"), ("forward", "message"), ("backward", "fire"),
               ("backward", "message"), ("update", "weight_update"), ("update", "bias_update"))


def write_page(trace, path, *, progress=None):
    """Write the replay page of `trace` to `path` (a file name); returns the path.

    `progress` is None or a callable progress(done, total) told as steps are read.
    The file appears whole or not at all: it is written beside `path` and renamed.
    """
    page = render_page(trace, progress=progress)
    path = os.fspath(path)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as out:
        out.write(page)
    os.replace(partial, path)
    return path


def render_page(trace, *, budget=PAGE_BUDGET, progress=None):
    """The replay page of `trace` as one HTML string of at most about `budget` bytes."""
    reader = _CachedReader(trace)
    recorded = list(trace.steps)
    if not recorded:
        raise TraceError("the trace holds no recorded step to show")
    keep = _steps_to_keep(recorded, trace.actions())
    count = len(recorded)
    while True:
        steps = _sample(recorded, keep, count)
        page = _fill_template(page_data(trace, steps, reader, sweep_budget=budget * SWEEP_SHARE,
                                        progress=progress))
        size = len(page.encode("utf-8"))
        if size <= budget or len(steps) <= len(keep) or len(steps) <= 2:
            return page
        # shrink in proportion to the overshoot, a little more so one retry is usually enough
        count = max(2, min(len(steps) - 1, int(len(steps) * budget / size * 0.97)))


def page_data(trace, steps, reader, *, sweep_budget, progress=None):
    """Everything the page shows, as a JSON-ready dict, for the recorded `steps` it keeps.

    `progress(done, total)` is told of each snapshot read and each surface probed.
    """
    graphs = []
    two_inputs = sum(role == "input" for _, role in reader.snapshot(steps[-1]).nodes(data="role")) == 2
    surface_steps = _surface_steps(steps) if two_inputs else []
    total = len(steps) + len(surface_steps)
    for s in steps:
        graphs.append(reader.snapshot(s))
        if progress is not None:
            progress(len(graphs), total)
    nodes, edges = _union(graphs)
    node_index = {name: i for i, name in enumerate(nodes)}
    edge_index = {key: i for i, key in enumerate(edges)}
    node_values = np.full((len(steps), len(nodes), len(NODE_FIELDS)), np.nan)
    edge_values = np.full((len(steps), len(edges), len(EDGE_FIELDS)), np.nan)
    step_values = np.full((len(steps), len(STEP_FIELDS)), np.nan)
    frozen = {}
    for k, G in enumerate(graphs):
        for name, attrs in G.nodes(data=True):
            node_values[k, node_index[name]] = [_number(attrs.get(f)) for f in NODE_FIELDS]
        for source, target, attrs in G.edges(data=True):
            j = edge_index[source, target]
            edge_values[k, j] = [_number(attrs.get(f)) for f in EDGE_FIELDS]
            if attrs.get("frozen"):
                frozen.setdefault(k, []).append(j)
        step_values[k] = [_number(G.graph.get(f)) for f in STEP_FIELDS]
    roles = {}
    for G in graphs:
        for name, attrs in G.nodes(data=True):
            roles.setdefault(name, (attrs.get("role", "hidden"), attrs.get("fn", "")))
    recorded = list(trace.steps)
    history = trace.history()
    config = _run_config(trace)
    data = {
        "title": _title(trace),
        "config": {k: v for k, v in config.items() if _jsonable(v)},
        "complete": bool(getattr(trace, "complete", True)),
        "lastStep": int(getattr(trace, "last_step", recorded[-1])),
        "recordedSteps": len(recorded),
        "recordEvery": _interval(recorded),
        "steps": [int(s) for s in steps],
        "nodes": [{"name": n, "role": roles[n][0], "fn": roles[n][1]} for n in nodes],
        "edges": [[node_index[s], node_index[t]] for s, t in edges],
        "positions": _positions(graphs, nodes),
        "nodeFields": list(NODE_FIELDS),
        "edgeFields": list(EDGE_FIELDS),
        "stepFields": list(STEP_FIELDS),
        "nodeValues": _pack(node_values),
        "edgeValues": _pack(edge_values),
        "stepValues": _pack(step_values),
        "frozen": {str(k): v for k, v in frozen.items()},
        "scales": _scales(node_values, edge_values),
        "colours": _colours(),
        "history": {key: _pack(np.asarray(history[key], dtype=np.float64)) for key in ("step", "loss", "accuracy")
                    if key in history},
        "actions": [{"step": int(a["step"]), "action": str(a.get("action", "")), "label": str(a.get("label", ""))}
                    for a in trace.actions()],
        "sweeps": _recorded_sweeps(steps, reader, node_index, edge_index, sweep_budget),
        "surface": _surfaces(trace, surface_steps, reader, config,
                             lambda done: progress and progress(len(steps) + done, total)),
    }
    return data


class _CachedReader:
    """Reads snapshots, networks and sweep events of a trace once each, however often asked."""

    def __init__(self, trace):
        self.trace = trace
        self._snapshots, self._networks, self._sweeps = {}, {}, {}

    def snapshot(self, step):
        if step not in self._snapshots:
            self._snapshots[step] = self.trace.snapshot(step)
        return self._snapshots[step]

    def network(self, step):
        if step not in self._networks:
            self._networks[step] = self.trace.network_at(step)
        return self._networks[step]

    def sweep_events(self, step):
        """The fire, message and update events of `step`, in recorded order."""
        if step not in self._sweeps:
            self._sweeps[step] = [e for e in self.trace.events(step=step)
                                  if (e["phase"], e["kind"]) in SWEEP_KINDS]
        return self._sweeps[step]


def _steps_to_keep(recorded, actions):
    """The steps any sampling keeps: first, last, and the recorded steps around each scripted action."""
    keep = {recorded[0], recorded[-1]}
    positions = np.searchsorted(recorded, [a["step"] for a in actions])
    for p in positions:
        keep.update(recorded[i] for i in (p - 1, p) if 0 <= i < len(recorded))
    return sorted(keep)


def _sample(recorded, keep, count):
    """`count` of the recorded steps (at least those in `keep`), spread evenly."""
    if count >= len(recorded):
        return list(recorded)
    chosen = set(keep)
    for i in np.linspace(0, len(recorded) - 1, max(count - len(keep), 2)).round().astype(int):
        chosen.add(recorded[i])
    return sorted(chosen)


def _union(graphs):
    """Every neuron and connection of the graphs, in the order they first appear."""
    nodes, edges = {}, {}
    for G in graphs:
        nodes.update(dict.fromkeys(G.nodes))
        edges.update(dict.fromkeys(G.edges))
    return list(nodes), list(edges)


def _number(x):
    return np.nan if x is None else float(x)


def _pack(array):
    """float64 values as base64 little-endian bytes: exact, and about half the size of their reprs."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f8").tobytes()).decode("ascii")


def _pack_ints(values, dtype):
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def _scales(node_values, edge_values):
    """Colour scales fixed for the whole page: the largest magnitude of each quantity."""
    def largest(a):
        finite = np.abs(a[np.isfinite(a)])
        return float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    weights = edge_values[:, :, EDGE_FIELDS.index("weight")]
    change = np.diff(weights, axis=0) if len(weights) > 1 else np.zeros_like(weights)
    return {
        "activation": largest(node_values[:, :, NODE_FIELDS.index("activation")]),
        "gradient": largest(node_values[:, :, NODE_FIELDS.index("gradient")]),
        "weight": largest(weights),
        "change": largest(change),
    }


def _colours():
    """The diverging colour map of the GIFs as 256 CSS colours."""
    from matplotlib import colormaps
    cmap = colormaps["RdBu_r"]
    return ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in cmap(i)[:3]) for i in range(256)]


def _positions(graphs, nodes):
    """Each neuron's place as [x, y] in [0, 1], y downwards: the GIFs' layout, scaled to fit."""
    placed = Layout.over(graphs).positions()
    xs = [placed[n][0] for n in nodes]
    ys = [placed[n][1] for n in nodes]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    # a single column or row sits in the middle
    return [[(x - x0) / (x1 - x0) if x1 > x0 else 0.5, (y1 - y) / (y1 - y0) if y1 > y0 else 0.5]
            for x, y in zip(xs, ys)]


def _recorded_sweeps(steps, reader, node_index, edge_index, budget):
    """Sweeps recorded message by message, for as many kept steps as fit in `budget` bytes.

    Returns {step: {"codes", "subjects", "values"}} in base64; empty when the
    trace keeps no messages (the page then derives each sweep from snapshot values).
    """
    candidates = [s for s in steps if s > 0]
    if not candidates or not any(e["kind"] == "message" for e in reader.sweep_events(candidates[-1])):
        return {}
    per_step = len(reader.sweep_events(candidates[-1])) * 21 * 4 / 3  # code, subject, two float64
    fit = int(budget // per_step) if per_step else len(candidates)
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
            values.append(_sweep_values(e, code))
        if codes:
            sweeps[str(s)] = {"codes": _pack_ints(codes, "u1"), "subjects": _pack_ints(subjects, "<u4"),
                              "values": _pack(np.array(values, dtype=np.float64))}
    return sweeps


def _sweep_values(event, code):
    """The two numbers the page shows for a sweep event (batch means where the event holds vectors)."""
    names = {0: ("z", "a"), 1: ("value", None), 2: ("dL_da", "dL_dz"), 3: ("value", None),
             4: ("old", "new"), 5: ("old", "new")}[code]
    return [np.nan if n is None else float(np.mean(np.asarray(event[n], dtype=np.float64))) for n in names]


def _run_config(trace):
    """The run_begin configuration (loss, optimizer, lr ...) as the trace's metadata holds it."""
    meta = getattr(trace, "metadata", None) or {}
    config = dict(meta.get("run_begin") or meta.get("config") or {})
    for key in ("seed", "loss"):
        if key in meta and key not in config:
            config[key] = meta[key]
    return config


def _title(trace):
    meta = getattr(trace, "metadata", None) or {}
    return str(meta.get("name") or meta.get("scenario_name") or "simnet run")


def _interval(recorded):
    gaps = np.diff(recorded)
    return int(np.median(gaps)) if len(gaps) else 1


def _jsonable(value):
    return value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


def _surface_steps(steps):
    """The kept steps that get a decision surface: all of them, or MAX_SURFACES spread evenly."""
    if len(steps) <= MAX_SURFACES:
        return list(steps)
    return sorted({steps[i] for i in np.linspace(0, len(steps) - 1, MAX_SURFACES).round().astype(int)})


def _surfaces(trace, chosen, reader, config, progress):
    """Decision surfaces of a two-input network at the `chosen` steps, or None.

    One output: its value on a grid, as bytes 0..255 over a scale fixed for the
    whole page and centred on the decision threshold.  Several outputs: the
    index of the largest.  The grid spans the data when the trace knows it.
    """
    if not chosen:
        return None
    first = reader.network(chosen[-1])
    if len(first.inputs) != 2 or not first.outputs:
        return None
    points = _data_points(trace)
    extent = _extent(points)
    xs = np.linspace(extent[0], extent[1], SURFACE_GRID)
    ys = np.linspace(extent[3], extent[2], SURFACE_GRID)  # top row first, as an image
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    outputs = []
    for done, s in enumerate(chosen, start=1):
        net = reader.network(s)
        values = probe(net, grid)
        outputs.append(np.column_stack([values[n.name] for n in net.outputs]))
        progress(done)
    surface = {"steps": [int(s) for s in chosen], "extent": extent, "n": SURFACE_GRID,
               "outputs": [n.name for n in first.outputs]}
    if outputs[0].shape[1] > 1:
        surface["kind"] = "class"
        surface["data"] = [_pack_ints(o.argmax(axis=1), "u1") for o in outputs]
    else:
        threshold = {"hinge": 0.0}.get(config.get("loss"), 0.5)
        stacked = np.array([o[:, 0] for o in outputs])
        finite = stacked[np.isfinite(stacked)]
        half = float(np.max(np.abs(finite - threshold))) if finite.size else 1.0
        half = half if half > 0 else 1.0
        scaled = np.clip(np.nan_to_num((stacked - threshold) / half, nan=0.0), -1, 1)
        surface.update(kind="value", threshold=threshold, half=half)
        surface["data"] = [_pack_ints(np.round((row + 1) * 127.5), "u1") for row in scaled]
    if points is not None:
        surface["points"] = [[round(float(x), 4), round(float(y), 4), int(label)] for x, y, label in points]
    return surface


def _data_points(trace):
    """The training set's (x0, x1, label) rows if the trace says how to rebuild it, else None."""
    return None


def _extent(points):
    """[xmin, xmax, ymin, ymax] around the data with a margin, or a default square."""
    if points is None:
        return [-2.0, 2.0, -2.0, 2.0]
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    pad = 0.1 * (hi - lo) + 0.1
    return [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]


def _fill_template(data):
    """The page: template with style, data and script inlined."""
    assets = resources.files(__package__)
    template = assets.joinpath("replay_page.html").read_text(encoding="utf-8")
    # "</" inside a script element would end it early; "<\/" means the same in JSON
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    parts = {
        "TITLE": html.escape(data["title"]),
        "STYLE": assets.joinpath("replay_page.css").read_text(encoding="utf-8"),
        "SCRIPT": assets.joinpath("replay_page.js").read_text(encoding="utf-8"),
        "DATA": payload,
    }
    # one pass, so nothing inserted is ever read as a placeholder
    return re.sub(r"\{\{(TITLE|STYLE|SCRIPT|DATA)\}\}", lambda m: parts[m.group(1)], template)
