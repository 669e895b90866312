"""A trace in other formats: JSON lines, CSV, a Perfetto timeline, GraphML and a dynamic GEXF graph.

    export(trace, "perfetto", "run.json")   # open in https://ui.perfetto.dev
    export(trace, "gexf", "run.gexf")       # Gephi plays the training on its timeline

Every writer streams what it can and raises TraceError on bad input.  Each
column of the JSON lines and CSV holds one type, and the readers people use
read every number back as written:

    pandas.read_json(path, lines=True, precise_float=True)
    pandas.read_csv(path)  # before pandas 3: float_precision="round_trip"
    networkx.read_graphml(path), networkx.read_gexf(path)
"""
import csv
import itertools
import json
import math
import re
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import quoteattr

import networkx as nx
import numpy as np

from ..errors import TraceError
from ..core.events import Event
from .schema import LAYOUT

__all__ = ["EDGE_DYNAMIC", "FIELDS", "FORMATS", "GEXF_ATTRIBUTES", "GEXF_IDS", "NODE_DYNAMIC", "NODE_STATIC",
           "NOT_XML", "RENAMED", "STEP_FORMATS", "VALUES", "export", "plain", "record", "write_csv", "write_gexf",
           "write_graphml", "write_jsonl", "write_perfetto"]

FORMATS = ("jsonl", "csv", "perfetto", "graphml", "gexf")
STEP_FORMATS = ("jsonl", "csv", "perfetto", "graphml")  # the formats that can hold a single step
FIELDS = Event.FIELDS[:-1]  # what every event has; the last, its data, is spread into VALUES
# every number an event can carry, in one fixed column order for CSV
VALUES = tuple(dict.fromkeys(["role", "activation"] + [f for *_, fields in LAYOUT for f in fields] + ["delta"]))


def export(trace, fmt, path, *, step=None):
    """Write `trace` to `path` as `fmt` (jsonl, csv, perfetto, graphml or gexf).

    `step`: graphml writes that step's snapshot (default the last); jsonl, csv and
    perfetto write only that step's events when it is given; gexf, a timeline of
    the whole run, refuses one.
    """
    if fmt not in FORMATS:
        raise TraceError(f"{path}: unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if step is not None and fmt not in STEP_FORMATS:
        raise TraceError(f"{trace.path}: a {fmt} export holds the whole run and takes no step; "
                         f"write step {step} as graphml")
    if fmt == "graphml":
        write_graphml(trace, path, step=trace.last_step if step is None else step)
        return
    if fmt == "gexf":
        events = None
    else:
        events = trace.events(step=step)
    with _output(path) as out:
        if fmt == "jsonl":
            write_jsonl(events, out)
        elif fmt == "csv":
            write_csv(events, out)
        elif fmt == "perfetto":
            write_perfetto(trace, events, out)
        else:
            write_gexf(trace, out)


@contextmanager
def _output(path):
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            yield out
    except OSError as error:
        raise TraceError(f"{path}: cannot write: {error.strerror or error}") from None


# ---- events as records -------------------------------------------------------

def plain(value):
    """A JSON-safe value: arrays as lists, non-finite floats as the strings "nan", "inf", "-inf".

    JSON has no NaN or infinity; pandas reads these strings in a column of
    numbers back as the floats they stand for.
    """
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# data names that mean something else in one kind than in the others: run_begin's `loss` names the
# loss function where every other event's is a number, so it gets a name of its own
RENAMED = {("run_begin", "loss"): "loss_function"}


def record(event):
    """An event as the flat dict the JSON lines and CSV exports write, one meaning (and type) per key."""
    kind = event["kind"]
    return {RENAMED.get((kind, k), k): v for k, v in event.items()}


def write_jsonl(events, out):
    """One JSON object per line per event (see :func:`record` and :func:`plain`)."""
    for event in events:
        out.write(json.dumps({k: plain(v) for k, v in record(event).items()}, allow_nan=False))
        out.write("\n")


def write_csv(events, out):
    """A header, then one row per event: the fields, the numbers in fixed columns, the rest as JSON in `data`.

    Floats are written as the shortest text that reads back to the same
    float, non-finite ones as ``nan``, ``inf`` and ``-inf``; an empty cell is
    a value the event does not have.
    """
    writer = csv.writer(out)
    writer.writerow(FIELDS + VALUES + ("data",))
    known = set(FIELDS) | set(VALUES)
    for event in map(record, events):
        rest = {k: plain(v) for k, v in event.items() if k not in known}
        writer.writerow([_cell(event.get(k)) for k in FIELDS + VALUES]
                        + [json.dumps(rest, allow_nan=False) if rest else ""])


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(float(value))  # a numpy float's repr would carry its type's name
    return value


# ---- Perfetto / Chrome trace-event JSON ---------------------------------------

def write_perfetto(trace, events, out):
    """Chrome trace-event JSON: a track per neuron with a slice per firing, arrows for messages.

    Time is event order, not wall time: each firing and each message takes
    one microsecond, so slices follow the sweeps message by message.  A
    "training" track holds a slice per step with its forward, backward and
    update phases, and a loss counter.
    """
    tracks = {}
    out.write('{"displayTimeUnit": "ns", "traceEvents": [\n')
    name = trace.metadata.get("scenario") or trace.path.parent.name
    records = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": f"simnet {name}"}},
               {"ph": "M", "pid": 1, "tid": 0, "name": "thread_name", "args": {"name": "training"}}]
    out.write(",\n".join(json.dumps(r) for r in records))
    clock = 0
    for step, group in itertools.groupby(events, key=lambda e: e["step"]):
        records, clock = _perfetto_step(step, list(group), clock, tracks)
        for record in records:
            out.write(",\n" + json.dumps(record, allow_nan=False))
    out.write("\n]}\n")


def _perfetto_step(step, events, clock, tracks):
    """Records for one step's events, starting at `clock`; returns them and the clock after."""
    records, start, fired, phases = [], clock, {}, {}

    def track(neuron):
        if neuron not in tracks:
            tracks[neuron] = len(tracks) + 1
            records.append({"ph": "M", "pid": 1, "tid": tracks[neuron], "name": "thread_name",
                            "args": {"name": neuron}})
            records.append({"ph": "M", "pid": 1, "tid": tracks[neuron], "name": "thread_sort_index",
                            "args": {"sort_index": tracks[neuron]}})
        return tracks[neuron]

    slices = []
    firing = None  # the slice of the neuron whose messages follow: it lasts until they are sent
    for e in events:
        kind, phase = e["kind"], e["phase"]
        if phase in ("forward", "backward", "update"):
            span = phases.setdefault(phase, [clock, clock])
        if kind != "message":
            firing = None
        if kind == "fire":
            numbers = {k: plain(v) for k, v in e.items() if k not in FIELDS and not k.endswith("_samples")}
            firing = {"ph": "X", "pid": 1, "tid": track(e["neuron"]), "ts": clock, "dur": 1,
                      "name": f"{phase} {e['neuron']}", "cat": phase, "args": {"step": step, **numbers}}
            slices.append(firing)
            fired[phase, e["neuron"]] = clock
            clock += 1
        elif kind == "message":
            if firing is not None:
                firing["dur"] += 1
            sender, receiver = (e["source"], e["target"]) if phase == "forward" else (e["target"], e["source"])
            slices.append(("flow", e, sender, receiver, clock))
            clock += 1
        elif kind in ("weight_update", "bias_update"):
            clock += 1
        elif kind == "loss":
            records.append({"ph": "C", "pid": 1, "tid": 0, "ts": clock, "name": "loss",
                            "args": {"loss": plain(e.get("loss"))}})
        if phase in ("forward", "backward", "update"):
            span[1] = clock
    for item in slices:
        if isinstance(item, dict):
            records.append(item)
            continue
        _, e, sender, receiver, ts = item
        arrive = fired.get((e["phase"], receiver))
        if arrive is None:
            continue
        common = {"pid": 1, "cat": "message", "name": "message", "id": e["seq"]}
        records.append({**common, "ph": "s", "tid": track(sender), "ts": ts + 0.5,
                        "args": {"value": plain(e.get("value"))}})
        records.append({**common, "ph": "f", "bp": "e", "tid": track(receiver), "ts": arrive})
    loss = next((e for e in events if e["kind"] == "step_end"), {})
    clock = max(clock, start + 1)
    records.append({"ph": "X", "pid": 1, "tid": 0, "ts": start, "dur": clock - start, "name": f"step {step}",
                    "cat": "step", "args": {"loss": plain(loss.get("loss")), "accuracy": plain(loss.get("accuracy"))}})
    for phase, (begin, end) in phases.items():
        if end > begin:
            records.append({"ph": "X", "pid": 1, "tid": 0, "ts": begin, "dur": end - begin, "name": phase,
                            "cat": phase})
    return records, clock


# ---- graphs -------------------------------------------------------------------

# what XML 1.0 cannot hold (most control characters, lone surrogates, U+FFFE/U+FFFF), and the
# carriage return, which a parser reads back as a newline in text
NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(trace, value, what):
    """`value` as text for XML; TraceError naming `what` if XML cannot carry it unchanged."""
    text = str(value)
    bad = NOT_XML.search(text)
    if bad:
        raise TraceError(f"{trace.path}: {what} {text!r} holds the character U+{ord(bad.group()):04X}, "
                         f"which XML cannot carry; export the trace as jsonl or csv, which keep any name")
    return text


def _check_xml(trace, nodes, graph=None):
    """TraceError unless every neuron name and text attribute can go into XML unchanged.

    `nodes`: (name, attributes) pairs; `graph`: the graph's attributes.  Edges
    name only neurons, so they are checked with them.
    """
    for key, value in (graph or {}).items():
        if isinstance(value, str):
            _xml_text(trace, value, f"graph attribute {key}")
    for node, attrs in nodes:
        _xml_text(trace, node, "neuron name")
        for key, value in attrs.items():
            if isinstance(value, str):
                _xml_text(trace, value, f"{key} of neuron {node!r}")


def write_graphml(trace, path, *, step):
    """One step's snapshot as GraphML, with the run's seed and init rule on the graph.

    The attributes are the snapshot's, with their types; those that are None
    (the means of a step that has not run) are left out, as GraphML has no
    value for "none".  ``Network.from_networkx(networkx.read_graphml(path))``
    is the network after `step`.
    """
    G = trace.snapshot(step)
    meta = trace.metadata
    H = nx.DiGraph(**{k: v for k, v in G.graph.items() if v is not None},
                   **{k: meta[k] for k in ("seed", "init") if meta.get(k) is not None})
    for node, attrs in G.nodes(data=True):
        H.add_node(node, **{k: v for k, v in attrs.items() if v is not None})
    for u, v, attrs in G.edges(data=True):
        H.add_edge(u, v, **{k: v for k, v in attrs.items() if v is not None})
    _check_xml(trace, H.nodes(data=True), H.graph)
    try:
        nx.write_graphml(H, Path(path))
    except OSError as error:
        raise TraceError(f"{path}: cannot write: {error.strerror or error}") from None


NODE_STATIC = ("role", "fn")
NODE_DYNAMIC = ("activation", "preactivation", "gradient", "bias", "bias_grad")
EDGE_DYNAMIC = ("weight", "grad", "delta", "message")
# (class, mode, names); an attribute's id is its position in this list, its title its name.  Ids are
# not the names because networkx's reader takes the id "weight" for its own static edge weight
GEXF_ATTRIBUTES = (("node", "static", NODE_STATIC), ("node", "dynamic", NODE_DYNAMIC),
                   ("edge", "dynamic", EDGE_DYNAMIC))
GEXF_IDS = {(cls, name): str(i) for i, (cls, name) in
            enumerate((cls, name) for cls, _, names in GEXF_ATTRIBUTES for name in names)}


def write_gexf(trace, out):
    """A dynamic GEXF 1.2 graph over the trace's snapshot steps.

    Time is the step number.  Each snapshot's values hold from its step until
    the next snapshot step; neurons and connections have spells for when they
    exist; the edge attribute titled ``weight`` is dynamic, so Gephi can size
    edges by it while playing the timeline, and ``networkx.read_gexf`` gives
    it as a list of (value, start, end).
    """
    steps = trace.steps
    if not steps:
        raise TraceError(f"{trace.path}: no finished step to export")
    ends = {s: nxt - 1 for s, nxt in zip(steps, steps[1:])}
    ends[steps[-1]] = steps[-1]
    nodes, edges = {}, {}  # name or key -> {"static": {...}, "present": [steps], attr: [(value, step)]}
    for step, G in trace.snapshots(steps):
        for name, attrs in G.nodes(data=True):
            _remember(nodes, name, step, attrs, NODE_DYNAMIC, {k: attrs[k] for k in NODE_STATIC})
        for u, v, attrs in G.edges(data=True):
            _remember(edges, (u, v), step, attrs, EDGE_DYNAMIC, {})
    _check_xml(trace, ((name, record["static"]) for name, record in nodes.items()))  # before the first byte
    creator = _text(_xml_text(trace, f"simnet {trace.metadata.get('version', '')}", "version"))
    description = _text(_xml_text(trace, trace.metadata.get("scenario") or trace.path, "scenario name"))
    w = out.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n'
      '<gexf xmlns="http://www.gexf.net/1.2draft" version="1.2">\n'
      f'  <meta><creator>{creator}</creator><description>{description}</description></meta>\n'
      f'  <graph mode="dynamic" defaultedgetype="directed" timeformat="integer" '
      f'start="{steps[0]}" end="{steps[-1]}">\n')
    for cls, mode, names in GEXF_ATTRIBUTES:
        w(f'    <attributes class="{cls}" mode="{mode}">\n')
        for name in names:
            kind = "string" if mode == "static" else "double"
            w(f'      <attribute id="{GEXF_IDS[cls, name]}" title="{name}" type="{kind}"/>\n')
        w('    </attributes>\n')
    w('    <nodes>\n')
    for name, record in nodes.items():
        w(f'      <node id={quoteattr(name)} label={quoteattr(name)}>\n')
        _write_values(w, "node", record, NODE_DYNAMIC, ends)
        w('      </node>\n')
    w('    </nodes>\n    <edges>\n')
    for i, ((u, v), record) in enumerate(edges.items()):
        w(f'      <edge id="{i}" source={quoteattr(u)} target={quoteattr(v)}>\n')
        _write_values(w, "edge", record, EDGE_DYNAMIC, ends)
        w('      </edge>\n')
    w('    </edges>\n  </graph>\n</gexf>\n')


def _remember(table, key, step, attrs, dynamic, static):
    record = table.setdefault(key, {"static": static, "present": []})
    record["present"].append(step)
    for name in dynamic:
        if attrs.get(name) is not None:
            record.setdefault(name, []).append((attrs[name], step))


def _write_values(w, cls, record, dynamic, ends):
    w('        <attvalues>\n')
    for name, value in record["static"].items():
        w(f'          <attvalue for="{GEXF_IDS[cls, name]}" value={quoteattr(str(value))}/>\n')
    for name in dynamic:
        for value, step in record.get(name, ()):
            w(f'          <attvalue for="{GEXF_IDS[cls, name]}" value="{_number(value)}" '
              f'start="{step}" end="{ends[step]}"/>\n')
    w('        </attvalues>\n        <spells>\n')
    for start, end in _spells(record["present"], ends):
        w(f'          <spell start="{start}" end="{end}"/>\n')
    w('        </spells>\n')


def _spells(present, ends):
    """Runs of consecutive snapshot steps as (first step, last step covered)."""
    runs = []
    for step in present:
        if runs and runs[-1][1] + 1 == step:
            runs[-1][1] = ends[step]
        else:
            runs.append([step, ends[step]])
    return runs


def _number(value):
    value = float(value)
    return repr(value) if math.isfinite(value) else {"inf": "INF", "-inf": "-INF"}.get(str(value), "NaN")


def _text(s):
    return quoteattr(s)[1:-1]
