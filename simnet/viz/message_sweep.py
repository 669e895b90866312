"""The sweep GIF: one training step, message by message.

The forward wave lights the neurons up in the order they fired, each
sending its activation times the weight along its outgoing connections;
then the loss; then the backward wave, each neuron sending dL/dz times the
weight back along its incoming connections; then the weight updates.

The numbers come from the step's recorded ``fire`` and ``message`` events
when the trace kept them (``detail="messages"``).  Without them, any step
is computed again from the network before it and its batch, drawn again
from the seed (:func:`recompute`), when the trace gives its data set; failing
that, it is rebuilt from the step's snapshot: its batch means give every
value (the mean of a message a·w is mean(a)·w, up to rounding), and the
firing order follows from the topology the way the actor engine's scheduler
derives it.
"""
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..core.trainer import batch_indices
from ..errors import SimnetError, TraceError
from ..scenario.runinfo import loss_penalty, training_data
from ..trace import Recorder, open_trace
from .frames import (CHANGES, GRADIENTS, UNKNOWN, VALUES, as_number, max_abs, nice_scale, square_root_norm,
                     symmetric_norm)
from .gif import Counter, write_looks
from .layout import Layout
from .picture import Bar, Look, Picture

__all__ = ["FRAME_MS", "IDLE_EDGE", "LAST_FRAME_MS", "TEXTS_PER_FRAME", "WAVE_FRAMES", "Sweep", "SweepFilm",
           "firing_order", "from_snapshot", "read_sweep", "recompute", "sweep_gif"]

WAVE_FRAMES = 24  # at most this many frames per wave; bigger networks fire several neurons per frame
FRAME_MS, LAST_FRAME_MS = 700, 3000
TEXTS_PER_FRAME = 40
IDLE_EDGE = (0.75, 0.75, 0.75, 0.6)


@dataclass
class Sweep:
    """The numbers of one step in the order they happened (all values are batch means)."""
    step: int
    graph: object  # nx.DiGraph of the topology during the step (node attr role)
    forward: list  # [(neuron, activation)] in firing order
    backward: list  # [(neuron, dL/dz)] in firing order
    sent: dict = field(default_factory=dict)  # neuron -> [((source, target), forward message)]
    sent_back: dict = field(default_factory=dict)  # neuron -> [((source, target), backward message)]
    delta: dict = field(default_factory=dict)  # (source, target) -> weight change
    loss: float = math.nan
    accuracy: float = math.nan
    origin: str = "messages"  # or "recomputed", or "snapshot": where the numbers come from


def read_sweep(trace, step):
    """The Sweep of `step` from `trace` (anything with events, snapshot and steps); TraceError if it cannot.

    The step's recorded messages if the trace kept them; otherwise the step
    computed again from the network before it and its batch (see
    :func:`recompute`); otherwise rebuilt from the step's snapshot.
    """
    if step < 1 or step == getattr(trace, "first_step", None):
        raise TraceError(f"step {step}: the state the run starts from has no sweep; the sweep GIF shows a "
                         f"training step, from step {max(1, (getattr(trace, 'first_step', 0) or 0) + 1)} on")
    events = list(trace.events(step=step))
    if any(e["kind"] == "fire" for e in events) and any(e["kind"] == "message" for e in events):
        return _from_events(step, events, _topology(trace, step))
    if step not in set(trace.steps) and not hasattr(trace, "network_at"):  # a live run keeps some steps only
        kept = [s for s in sorted(trace.steps) if s >= 1][:3]
        raise TraceError(f"step {step}: neither its messages nor a snapshot of it were kept; record with "
                         f"detail=\"messages\" to draw any step, or pick a kept step ({', '.join(map(str, kept))}, ...)")
    G = trace.snapshot(step)
    return recompute(trace, step, G) or from_snapshot(G)


def recompute(trace, step, G):
    """The Sweep of `step` computed again, message by message, or None where the trace cannot give it exactly.

    The network after the step before (``trace.network_at``) takes the
    step's batch, drawn again from the run's seed as training drew it from
    the data set the trace gives (:func:`simnet.scenario.runinfo.training_data`), and
    runs it through the actor engine.  The weight changes and the loss come
    from the trace itself (an optimiser may keep state the trace does not).
    Refused (None) for a step with scripted actions, a step of an earlier
    run than the last, or when the activations computed differ from the
    batch means `G` (the step's snapshot) recorded.
    """
    import tempfile
    meta = getattr(trace, "metadata", None) or {}
    config, runs = meta.get("config") or {}, meta.get("runs") or []
    data = training_data(trace)
    if data is None or not runs or not runs[-1][0] < step or not hasattr(trace, "network_at") \
            or any(a["step"] == step for a in trace.actions()):
        return None
    X, Y = data
    start, samples, batch_size, seed = runs[-1][0], config.get("samples"), config.get("batch_size"), config.get("seed")
    if samples != len(X) or not isinstance(batch_size, int) or not isinstance(seed, int) or \
            not isinstance(config.get("loss"), str):
        return None
    batches = batch_indices(samples, batch_size, np.random.default_rng([seed, start]))
    for _ in range(step - start - 1):
        next(batches)
    index = next(batches)
    net = trace.network_at(step - 1)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            recorder = Recorder(scratch, detail="messages", samples=False)
            try:
                # the learning rate moves only the weights, whose changes come from the trace
                net.train(X[index], Y[index], steps=1, lr=1.0, loss=config["loss"], recorder=recorder)
            finally:
                recorder.close()
            with open_trace(scratch) as again:
                sweep = _from_events(step, list(again.events(step=step)), G)
    except SimnetError:
        return None
    recorded = {n: as_number(G.nodes[n].get("activation")) for n in G.nodes}
    if not all(math.isclose(a, recorded.get(n, math.nan), rel_tol=1e-9, abs_tol=1e-12) for n, a in sweep.forward):
        return None
    sweep.delta = {(s, t): a["delta"] for s, t, a in G.edges(data=True)}
    sweep.loss, sweep.accuracy = as_number(G.graph.get("loss")), as_number(G.graph.get("accuracy"))
    sweep.origin = "recomputed"
    return sweep


def _topology(trace, step):
    if step in set(trace.steps):
        return trace.snapshot(step)
    return trace.network_at(step).to_networkx()


def _from_events(step, events, graph):
    sweep = Sweep(step, graph, [], [])
    current = None
    for e in events:
        kind, phase = e["kind"], e["phase"]
        if kind == "fire":
            current = e["neuron"]
            if phase == "forward":
                sweep.forward.append((current, as_number(e["a"])))
            else:
                sweep.backward.append((current, as_number(e["dL_dz"])))
        elif kind == "message":
            into = sweep.sent if phase == "forward" else sweep.sent_back
            into.setdefault(current, []).append(((e["source"], e["target"]), as_number(e["value"])))
        elif kind == "loss":
            sweep.loss, sweep.accuracy = as_number(e.get("loss")), as_number(e.get("accuracy"))
        elif kind == "weight_update":
            sweep.delta[e["source"], e["target"]] = as_number(e["delta"])
    return sweep


def from_snapshot(G):
    """A Sweep rebuilt from a snapshot's batch means, in the scheduler's firing order."""
    sweep = Sweep(G.graph["step"], G, [], [], loss=as_number(G.graph.get("loss")),
                  accuracy=as_number(G.graph.get("accuracy")), origin="snapshot")
    nodes = G.nodes
    for name in firing_order(G):
        sweep.forward.append((name, as_number(nodes[name].get("activation"))))
        if G.out_degree(name):
            sweep.sent[name] = [((name, t), as_number(G.edges[name, t].get("message"))) for t in G.successors(name)]
    for name in firing_order(G.reverse(copy=False)):
        gradient = as_number(nodes[name].get("gradient"))
        sweep.backward.append((name, gradient))
        if G.in_degree(name):
            sweep.sent_back[name] = [((s, name), gradient * (G.edges[s, name]["weight"] - G.edges[s, name]["delta"]))
                                     for s in G.predecessors(name)]
    sweep.delta = {(s, t): a["delta"] for s, t, a in G.edges(data=True)}
    return sweep


def firing_order(G):
    """Names in the order the scheduler fires them: first in, first out, from the nodes nothing feeds.

    On the reversed graph this is the backward sweep's order.
    """
    waiting = {n: G.in_degree(n) for n in G.nodes}
    ready = deque(n for n in G.nodes if waiting[n] == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for m in G.successors(n):
            waiting[m] -= 1
            if waiting[m] == 0:
                ready.append(m)
    return order


# ---- frames ----------------------------------------------------------------

class SweepFilm:
    """The frames of one Sweep on one Picture."""

    def __init__(self, sweep, penalty=""):
        self.sweep, self.penalty = sweep, penalty  # penalty: the L1/L2 penalty in the step's loss, in words
        G = sweep.graph
        self.nodes = list(G.nodes)
        self.edges = list(G.edges)
        self.node_index = {n: i for i, n in enumerate(self.nodes)}
        self.edge_index = {k: i for i, k in enumerate(self.edges)}
        forward = [v for _, v in sweep.forward] + [v for m in sweep.sent.values() for _, v in m]
        backward = [v for _, v in sweep.backward] + [v for m in sweep.sent_back.values() for _, v in m]
        self.norms = {"forward": symmetric_norm(nice_scale(max_abs(forward))),
                      "backward": square_root_norm(nice_scale(max_abs(backward))),
                      "update": square_root_norm(nice_scale(max_abs(list(sweep.delta.values()))))}

    def picture(self):
        roles = {n: self.sweep.graph.nodes[n].get("role", "hidden") for n in self.nodes}
        bars = [Bar("forward: activation, message a·w", VALUES, self.norms["forward"]),
                Bar("backward: dL/dz, message dL/dz·w", GRADIENTS, self.norms["backward"]),
                Bar("update: weight change", CHANGES, self.norms["update"])]
        legend = [("waiting", {"color": IDLE_EDGE, "linewidth": 2}),
                  ("bold outline: fires now", {"color": "#303030", "linewidth": 2.5})]
        return Picture(Layout.of(self.sweep.graph).positions(), self.nodes, roles, self.edges, bars=bars,
                       legend=legend, edge_text=True, node_text=True)

    def looks(self):
        """Every frame's Look, in order: forward wave, loss, backward wave, updates.

        A sweep rebuilt from a snapshot says so at the bottom of every frame.
        """
        caption = {"snapshot": "rebuilt from the step's snapshot (batch means); record with detail=\"messages\" "
                               "for the recorded messages",
                   "recomputed": "computed again from the network before the step and its batch (drawn again "
                                 "from the seed); not recorded"}.get(self.sweep.origin, "")
        for look in self._frames():
            look.caption = caption
            yield look

    def _frames(self):
        s = self.sweep
        head = f"step {s.step}"
        last = None
        for last in self._wave(s.forward, s.sent, VALUES, self.norms["forward"],
                               lambda k, names, plural: f"{head}   ·   forward {k}: {names} fire{'' if plural else 's'}"):
            yield last
        loss = f"batch loss {s.loss:.4g}" + (f" ({self.penalty})" if self.penalty else "") \
            + ("" if math.isnan(s.accuracy) else f", accuracy {s.accuracy:.1%}")
        outputs = np.array([s.graph.nodes[n].get("role") == "output" for n in self.nodes])
        yield Look(f"{head}   ·   {loss}: the outputs send dL/da back", last.node_color, last.node_shown,
                   last.edge_color, np.minimum(last.edge_width, 1.2), node_text=last.node_text, node_mark=outputs)
        for last in self._wave(s.backward, s.sent_back, GRADIENTS, self.norms["backward"],
                               lambda k, names, plural: f"{head}   ·   backward {k}: {names} "
                                                        f"send{'' if plural else 's'} dL/dz·w back"):
            yield last
        delta = np.array([s.delta.get(k, 0.0) for k in self.edges])
        norm = self.norms["update"]
        texts = [_fmt(d, signed=True) if s.delta.get(k) else None for k, d in zip(self.edges, delta)]
        yield Look(f"{head}   ·   update: every weight moves against its gradient", last.node_color,
                   last.node_shown, CHANGES(norm(delta)), 0.6 + 3.4 * np.abs(2 * norm(delta) - 1),
                   edge_text=_few(texts, largest=np.abs(delta)))

    def _wave(self, fired, sent, cmap, norm, title):
        """Looks of one wave: `fired` [(neuron, value)] in order, `sent` neuron -> [(edge, message)]."""
        N, E = len(self.nodes), len(self.edges)
        node_color, node_text = np.tile(UNKNOWN, (N, 1)), [None] * N
        edge_color, edge_width = np.tile(IDLE_EDGE, (E, 1)), np.full(E, 0.6)
        chunks = _chunks(fired)
        for k, chunk in enumerate(chunks, 1):
            edge_width[edge_width > 1] = 1.2  # messages already delivered stay coloured, thinner
            mark, edge_text = np.zeros(N, bool), [None] * E
            for name, value in chunk:
                i = self.node_index[name]
                mark[i], node_color[i], node_text[i] = True, _colour(cmap, norm, value), _fmt(value)
                for key, message in sent.get(name, ()):
                    j = self.edge_index[key]
                    edge_color[j], edge_width[j], edge_text[j] = _colour(cmap, norm, message), 2.2, _fmt(message)
            names = ", ".join(n for n, _ in chunk[:4]) + (" ..." if len(chunk) > 4 else "")
            yield Look(title(f"{k}/{len(chunks)}", names, len(chunk) > 1), node_color.copy(),
                       np.ones(N, bool), edge_color.copy(), edge_width.copy(), edge_text=_few(edge_text),
                       node_text=list(node_text), node_mark=mark)


def sweep_gif(trace, step, path, *, progress=None):
    """Write the sweep GIF of `step` to `path`; returns the path."""
    film = SweepFilm(read_sweep(trace, step), loss_penalty(trace))
    looks = list(film.looks())
    return write_looks(film.picture(), looks, path, Counter(progress, len(looks)), FRAME_MS, LAST_FRAME_MS)


def _chunks(fired):
    size = max(1, math.ceil(len(fired) / WAVE_FRAMES))
    return [fired[i:i + size] for i in range(0, len(fired), size)]


def _few(texts, largest=None):
    """Keep at most TEXTS_PER_FRAME texts (the largest values if given), so labels do not pile up."""
    present = [i for i, t in enumerate(texts) if t]
    if len(present) <= TEXTS_PER_FRAME:
        return texts
    keep = set(sorted(present, key=lambda i: -largest[i])[:TEXTS_PER_FRAME] if largest is not None
               else present[:TEXTS_PER_FRAME])
    return [t if i in keep else None for i, t in enumerate(texts)]


def _colour(cmap, norm, value):
    return UNKNOWN if math.isnan(value) else cmap(norm(value))


def _fmt(value, signed=False):
    if value is None or math.isnan(value):
        return None
    value += 0.0  # no "-0"
    return f"{value:+.2g}" if signed else f"{value:.2g}"
