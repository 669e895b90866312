"""The network as a graph of objects: Neuron actors joined by Connection objects.

A :class:`Neuron` is an actor: it collects messages in an inbox and fires
when it has heard from every connection it waits on.  Its two handlers,
:meth:`Neuron.fire_forward` and :meth:`Neuron.fire_backward`, are the whole
of backpropagation for one neuron.  Delivering the messages is the engine's
job (``simnet.engines.actor``); the network only keeps the graph valid and says
what changed on its event bus.
"""
from __future__ import annotations

import math
import numbers
import unicodedata
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import ArrayLike

from ..errors import SimnetError, TopologyError, excerpt
from .events import Event, EventBus
from .engine import Engine, make_engine
from .functions import Activation, activation as lookup_activation
from .memory import budget, bytes_text, layered_size, network_bytes
from .optim import SGD
from .validation import validate_grad_outputs, validate_inputs

if TYPE_CHECKING:
    import networkx as nx

    from .trainer import History

__all__ = ["INIT_RULES", "MAX_SEED", "ROLES", "Connection", "Network", "Neuron"]

ROLES = ("input", "hidden", "output")
INIT_RULES = ("he", "xavier", "uniform")


class Neuron:
    """One neuron: z = Σ inbox + b, a = f(z); backward dL/dz = dL/da · f'(z)."""

    __slots__ = ("name", "role", "bias", "bias_grad", "value", "z", "dL_da", "dL_dz",
                 "incoming", "outgoing", "inbox", "received", "received_along", "_activation")

    def __init__(self, name: str, role: str, activation: str | Activation, bias: float) -> None:
        self.name, self.role, self.bias = name, role, bias
        self.activation = activation
        self.bias_grad = 0.0
        self.value = self.z = self.dL_da = self.dL_dz = None
        self.incoming, self.outgoing = [], []
        self.inbox = []

    @property
    def activation(self):
        return self._activation.name

    @activation.setter
    def activation(self, name):
        self._activation = lookup_activation(name)

    def fire_forward(self, batch_size: int) -> np.ndarray:
        """z = Σ w·x over the inbox + b, a = f(z); returns a, to be sent along every outgoing connection.

        The inbox holds one message (w, x, connection) per incoming connection: the
        value x its source sent, along the connection, whose weight w makes it x·w.
        The neuron keeps the x it received for the backward sweep (dL/dw = dL/dz · x).
        """
        if self.inbox:
            weights, values, self.received_along = zip(*self.inbox)
            self.received = np.array(values)
            z = self.bias + np.dot(weights, self.received)
        else:
            z = self.bias + np.zeros(batch_size)
        a = self._activation.f(z)
        self.z, self.value = z, a
        return a

    def fire_backward(self, batch_size: int) -> np.ndarray:
        """dL/da = Σ w·δ over the inbox, dL/dz = dL/da · f'(z); returns dL/dz, to be sent back along
        every incoming connection.

        The inbox holds one message (w, δ, connection) per outgoing connection: δ =
        dL/dz of its target, w the connection's weight.  Along the way each incoming
        connection accumulates dL/dw = dL/dz · x, x what came along it forward, and
        the neuron dL/db = dL/dz, both summed over the batch.
        """
        if self.inbox:
            weights, deltas, _ = zip(*self.inbox)
            dL_da = np.dot(weights, deltas)
        else:
            dL_da = np.zeros(batch_size)
        dL_dz = dL_da * self._activation.df(self.z, self.value)
        self.dL_da, self.dL_dz = dL_da, dL_dz
        self.bias_grad += float(dL_dz.sum())
        if self.incoming:
            for c, dL_dw in zip(self.received_along, (self.received @ dL_dz).tolist()):
                c.grad += dL_dw
        return dL_dz

    def __repr__(self):
        return f"Neuron({self.name!r}, {self.role}, {self.activation}, bias={self.bias:.4g})"


class Connection:
    """A weighted edge source -> target; carries a·w forward and dL/dz·w back.

    A message travels as (w, value, connection): the engine hands the target (or,
    backward, the source) the connection's weight along with what was sent.
    """

    __slots__ = ("source", "target", "weight", "grad", "frozen")

    def __init__(self, source: Neuron, target: Neuron, weight: float, frozen: bool = False) -> None:
        self.source, self.target = source, target
        self.weight, self.grad, self.frozen = weight, 0.0, frozen

    @property
    def key(self):
        return self.source.name, self.target.name

    def __repr__(self):
        return f"Connection({self.source.name!r} -> {self.target.name!r}, weight={self.weight:.4g})"


class Network:
    """A directed acyclic graph of neurons that can change between any two steps.

    All randomness (initial weights, shuffling) comes from ``seed``; with no
    seed a fresh one is drawn and kept in ``net.seed`` so the run can be repeated.
    `init` names the rule that draws weights left unset: "he", "xavier" or "uniform".

    >>> import simnet as sn
    >>> net = sn.Network(seed=0)
    >>> x = net.add_neuron("x", role="input")
    >>> y = net.add_neuron("y", role="output", activation="linear", bias=0.5)
    >>> c = net.connect("x", "y", weight=2.0)
    >>> net.forward([[1.0], [3.0]])
    array([[2.5],
           [6.5]])
    """

    def __init__(self, seed: int | None = None, init: str = "he") -> None:
        if init not in INIT_RULES:
            raise SimnetError(f"unknown init rule {init!r}; expected one of {', '.join(INIT_RULES)}")
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else _seed(seed)
        self.init = init
        self.rng = np.random.default_rng(self.seed)
        self._neurons = {}
        self._connections = []
        self._by_key = {}
        self.bus = EventBus()
        self.step = 0  # weight updates done so far
        self.version = 0  # counts changes to the topology, so compiled copies know when to rebuild
        self.learning_rate = None  # set by train(), changeable between steps
        # set by train() for the run: the data set's columns are the inputs and outputs, so they stay
        self.ends_fixed = False
        self._ahead = None  # an engine whose numbers are newer than the objects' (see `defer_to`)

    # ---- reading the graph -------------------------------------------------

    @property
    def neurons(self):
        """Mapping name -> Neuron, in insertion order."""
        if self._ahead is not None:
            self.catch_up()
        return self._neurons

    @property
    def connections(self):
        """List of Connection, in insertion order."""
        if self._ahead is not None:
            self.catch_up()
        return self._connections

    def defer_to(self, engine: Engine) -> None:
        """Let the objects lag behind `engine` until the graph is next read or changed through the network.

        An engine that keeps weights in arrays (the fast engine) says so after a
        call; reading ``neurons`` or ``connections`` (and so every method that
        looks at the graph) first has it write its numbers back with ``engine.sync(net)``.
        """
        self._ahead = engine

    def catch_up(self) -> None:
        """Have the engine the objects lag behind, if any, write its numbers back to them."""
        engine, self._ahead = self._ahead, None
        if engine is not None:
            engine.sync(self)

    @property
    def inputs(self):
        return [n for n in self.neurons.values() if n.role == "input"]

    @property
    def outputs(self):
        return [n for n in self.neurons.values() if n.role == "output"]

    def neuron(self, ref: str | Neuron) -> Neuron:
        """The Neuron named `ref` (or `ref` itself if it is one of ours); TopologyError otherwise."""
        if isinstance(ref, Neuron):
            if self.neurons.get(ref.name) is not ref:
                raise TopologyError(f"neuron {ref.name!r} is not in this network")
            return ref
        try:
            return self.neurons[ref]
        except (KeyError, TypeError):
            raise TopologyError(f"unknown neuron {ref!r}") from None

    def connection(self, source: str | Neuron, target: str | Neuron) -> Connection:
        """The Connection source -> target; TopologyError if there is none."""
        s, t = self.neuron(source), self.neuron(target)
        try:
            return self._by_key[s.name, t.name]
        except KeyError:
            raise TopologyError(f"no connection {s.name!r} -> {t.name!r}") from None

    def __contains__(self, name):
        return name in self.neurons

    def __repr__(self):
        return (f"Network({len(self.inputs)} inputs, {len(self.neurons) - len(self.inputs) - len(self.outputs)}"
                f" hidden, {len(self.outputs)} outputs, {len(self.connections)} connections, step {self.step})")

    def _repr_png_(self):
        from ..viz.render import network_png  # matplotlib loads only when a notebook asks for the picture
        return network_png(self)

    def _repr_live_svg_(self, title=None):
        # the live picture of train(show=True): SVG text written directly, a few milliseconds to draw
        from ..viz.svg import network_svg
        return network_svg(self, title=title)

    def parameters(self) -> int:
        """Number of trainable numbers: weights plus biases of non-input neurons."""
        return len(self.connections) + sum(n.role != "input" for n in self.neurons.values())

    # ---- changing the graph ------------------------------------------------

    def _emit(self, kind, **fields):
        # mutations belong to the step they come before
        data = fields.pop("data", None)
        self.bus.emit(self.step + 1, "script", kind, data=data, **fields)

    def add_neuron(self, name: str, *, role: str = "hidden", activation: str | Activation = "relu",
                   bias: float | None = None) -> Neuron:
        """Add a neuron and return it; inputs are always linear with bias 0.

        `name`: unique in the network; `role`: "input", "hidden" or "output";
        `activation`: a name ("relu", "leaky_relu", "sigmoid", "tanh", "linear")
        or an :class:`simnet.Activation`; `bias`: a number, or None for the init
        rule's (zero).  Raises TopologyError for a bad name, a duplicate or an
        unknown role.

        >>> import simnet as sn
        >>> net = sn.Network(seed=0)
        >>> net.add_neuron("h", activation="tanh", bias=0.1)
        Neuron('h', hidden, tanh, bias=0.1)
        """
        if not isinstance(name, str) or not name:
            raise TopologyError(f"neuron name must be a non-empty string, got {name!r}")
        _check_name(name)
        if name in self.neurons:
            raise TopologyError(f"duplicate neuron name {name!r}")
        if role not in ROLES:
            raise TopologyError(f"neuron {name!r}: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if role != "hidden" and self.ends_fixed:
            raise TopologyError(f"cannot add {role} neuron {name!r} during training: the data set's columns "
                                "fix the inputs and outputs; add it before or after train()")
        if role == "input":
            activation, bias = "linear", 0.0
        elif bias is None:
            bias = 0.0  # every init rule starts biases at zero
        bias = _finite(bias, f"bias of neuron {name!r}")
        neuron = Neuron(name, role, activation, bias)
        self.neurons[name] = neuron
        self.version += 1
        if self.bus:
            self._emit("neuron_added", neuron=name,
                       data={"role": role, "activation": neuron.activation, "bias": bias})
        return neuron

    def init_weight(self, fan_in: int, fan_out: int) -> float:
        """One weight drawn by the network's init rule from its own generator."""
        if self.init == "he":
            return float(self.rng.normal(0.0, math.sqrt(2.0 / max(fan_in, 1))))
        if self.init == "xavier":
            return float(self.rng.normal(0.0, math.sqrt(2.0 / max(fan_in + fan_out, 1))))
        return float(self.rng.uniform(-1.0, 1.0))

    def connect(self, source: str | Neuron, target: str | Neuron, *, weight: float | None = None,
                frozen: bool = False) -> Connection:
        """Add the connection source -> target and return it.

        `source`, `target`: names or Neuron objects of this network.  With
        weight None the init rule draws one, using the fan-in and fan-out the
        two neurons have once this connection exists; a frozen connection keeps
        its weight through training.  Raises TopologyError for a duplicate, an
        unknown neuron or a cycle.

        >>> import simnet as sn
        >>> net = sn.Network(seed=0)
        >>> _ = net.add_neuron("x", role="input"), net.add_neuron("y", role="output")
        >>> net.connect("x", "y", weight=-0.5)
        Connection('x' -> 'y', weight=-0.5)
        """
        s, t = self.neuron(source), self.neuron(target)
        if (s.name, t.name) in self._by_key:
            raise TopologyError(f"duplicate connection {s.name!r} -> {t.name!r}")
        if t.role == "input":
            raise TopologyError(f"connection {s.name!r} -> {t.name!r} goes into input neuron {t.name!r}")
        if s.role == "output":
            raise TopologyError(f"connection {s.name!r} -> {t.name!r} comes out of output neuron {s.name!r}")
        if s is t:
            raise TopologyError(f"connection {s.name!r} -> {t.name!r} would close a cycle: {s.name} -> {s.name}")
        path = self._path(t, s)
        if path:
            cycle = " -> ".join([s.name] + [n.name for n in path])
            raise TopologyError(f"connection {s.name!r} -> {t.name!r} would close a cycle: {cycle}")
        if weight is None:
            weight = self.init_weight(len(t.incoming) + 1, len(s.outgoing) + 1)
        weight = _finite(weight, f"weight of {s.name!r} -> {t.name!r}")
        c = Connection(s, t, weight, bool(frozen))
        self.connections.append(c)
        self._by_key[s.name, t.name] = c
        s.outgoing.append(c)
        t.incoming.append(c)
        self.version += 1
        if self.bus:
            self._emit("connection_added", source=s.name, target=t.name,
                       data={"weight": weight, "frozen": c.frozen})
        return c

    def disconnect(self, source: str | Neuron, target: str | Neuron) -> None:
        """Remove the connection source -> target."""
        c = self.connection(source, target)
        self.connections.remove(c)
        del self._by_key[c.key]
        c.source.outgoing.remove(c)
        c.target.incoming.remove(c)
        self.version += 1
        if self.bus:
            self._emit("connection_removed", source=c.source.name, target=c.target.name,
                       data={"weight": c.weight})

    def remove_neuron(self, name: str | Neuron) -> None:
        """Remove a neuron together with all its connections."""
        n = self.neuron(name)
        if n.role != "hidden" and self.ends_fixed:
            raise TopologyError(f"cannot remove {n.role} neuron {n.name!r} during training: the data set's "
                                "columns fix the inputs and outputs; remove it before or after train()")
        for c in list(n.incoming) + list(n.outgoing):
            self.disconnect(c.source, c.target)
        del self.neurons[n.name]
        self.version += 1
        if self.bus:
            self._emit("neuron_removed", neuron=n.name)

    def set_weight(self, source: str | Neuron, target: str | Neuron, weight: float) -> None:
        c = self.connection(source, target)
        old, c.weight = c.weight, _finite(weight, f"weight of {c.source.name!r} -> {c.target.name!r}")
        if self.bus:
            self._emit("weight_set", source=c.source.name, target=c.target.name,
                       data={"old": old, "new": c.weight})

    def set_bias(self, name: str | Neuron, bias: float) -> None:
        n = self.neuron(name)
        old, n.bias = n.bias, _finite(bias, f"bias of neuron {n.name!r}")
        if self.bus:
            self._emit("bias_set", neuron=n.name, data={"old": old, "new": n.bias})

    def set_frozen(self, source: str | Neuron, target: str | Neuron, frozen: bool = True) -> None:
        """Freeze (or unfreeze) a connection: the optimizer leaves a frozen weight alone."""
        c = self.connection(source, target)
        c.frozen = bool(frozen)
        if self.bus:
            self._emit("frozen" if frozen else "unfrozen", source=c.source.name, target=c.target.name)

    def set_learning_rate(self, value: float) -> None:
        """Change the learning rate from the next step on (during or between `train` calls)."""
        new = _finite(value, "learning rate")
        if new <= 0:
            raise SimnetError(f"learning rate must be positive, got {value!r}")
        old, self.learning_rate = self.learning_rate, new
        if self.bus:
            self._emit("learning_rate_set", data={"old": old, "new": self.learning_rate})

    def _path(self, start, goal):
        """Neurons on a path start -> ... -> goal along connections, or [] if there is none."""
        parent = {start.name: None}
        stack = [start]
        while stack:
            n = stack.pop()
            if n is goal:
                path = []
                while n is not None:
                    path.append(n)
                    n = parent[n.name]
                return path[::-1]
            for c in n.outgoing:
                if c.target.name not in parent:
                    parent[c.target.name] = n
                    stack.append(c.target)
        return []

    def check(self) -> list[str]:
        """Warnings about hidden neurons that no input reaches or that reach no output."""
        reached = _reachable(self.inputs, lambda n: (c.target for c in n.outgoing))
        reaching = _reachable(self.outputs, lambda n: (c.source for c in n.incoming))
        warnings = []
        for n in self.neurons.values():
            if n.role != "hidden":
                continue
            if n.name not in reached:
                warnings.append(f"hidden neuron {n.name!r} cannot be reached from any input")
            if n.name not in reaching:
                warnings.append(f"hidden neuron {n.name!r} cannot reach any output")
        return warnings

    # ---- running -----------------------------------------------------------

    def forward(self, X: ArrayLike) -> np.ndarray:
        """Outputs for inputs X (batch, n_inputs) -> (batch, n_outputs); neurons keep their values."""
        return make_engine("actor").forward(self, validate_inputs(self, X))

    def backward(self, grad_outputs: ArrayLike) -> None:
        """Backward sweep from dL/d(outputs) (batch, n_outputs); accumulates .grad and .bias_grad."""
        return make_engine("actor").backward(self, validate_grad_outputs(self, grad_outputs))

    def zero_grad(self) -> None:
        for c in self.connections:
            c.grad = 0.0
        for n in self.neurons.values():
            n.bias_grad = 0.0

    def train(self, X: ArrayLike, Y: ArrayLike, *, steps: int | None, lr: float, loss: str = "mse",
              optimizer: str | SGD = "sgd", batch_size: int | None = None,
              recorder: Callable[[Event], object] | None = None, engine: str | Engine = "actor",
              l1: float = 0.0, l2: float = 0.0, before_step: Callable[[Network, int], object] | None = None,
              after_last_step: Callable[[Network, int], object] | None = None,
              progress: Callable[[int, float], object] | None = None, show: bool = False) -> History:
        """Train for `steps` weight updates (None: until `before_step` raises
        :class:`simnet.core.trainer.StopTraining`); returns a :class:`simnet.core.trainer.History`.

        `X` (samples, inputs) and `Y` (samples, outputs) follow the order of
        ``net.inputs`` and ``net.outputs``; `lr` is the learning rate; `loss` a
        name ("mse", "bce", "hinge", "cross_entropy"); `optimizer` a name or an
        object (``sn.Adam(beta1=0.5)``); `batch_size` None for the full batch;
        `recorder` a subscriber such as :class:`simnet.Recorder`; `engine`
        "actor", "fast" or an engine object; `l1`, `l2` weight penalties.
        `before_step(net, step)` runs before every step (scripted actions go there),
        `after_last_step(net, step)` once after the last (what it changes is the
        network the run ends with);
        `progress(step, loss)` after every step.  `show`: in a Jupyter notebook,
        one SVG picture of the network redrawn as it trains (at most four times
        a second, and as often as keeps drawing to a tenth of the time) under a
        progress bar.  See
        :func:`simnet.core.trainer.train`.

        >>> import simnet as sn
        >>> net = sn.Network.layered([2, 4, 1], output="sigmoid", seed=1)
        >>> X, Y = [[0, 0], [0, 1], [1, 0], [1, 1]], [[0], [1], [1], [0]]
        >>> history = net.train(X, Y, steps=300, lr=0.5, loss="bce", optimizer=sn.Adam())
        >>> len(history), history.loss[-1] < history.loss[0]
        (300, True)
        """
        from .trainer import History, train
        # a partial adds no Python frame: a warning from train() still points at the caller's line
        run = partial(train, self, X, Y, steps=steps, lr=lr, loss=loss, optimizer=optimizer, batch_size=batch_size,
                      recorder=recorder, engine=engine, l1=l1, l2=l2, before_step=before_step,
                      after_last_step=after_last_step)
        if not show:
            return run(progress=progress)
        from ..progress import live_view
        history = History()  # filled in as the run goes, for the picture's title

        def picture():
            title = f"step {self.step}"
            if history.loss:
                title += f" · batch loss {history.loss[-1]:.4g}"
            if history.accuracy and history.accuracy[-1] is not None:
                title += f" · accuracy {history.accuracy[-1]:.0%}"
            return self._repr_live_svg_(title)

        with live_view(picture, steps) as view:
            def both(step, L):
                view(step, L)
                if progress is not None:
                    progress(step, L)
            return run(progress=both, history=history)

    # ---- building and converting ------------------------------------------

    @classmethod
    def layered(cls, sizes: Iterable[int], *, hidden: str | Activation = "relu",
                output: str | Activation = "linear", seed: int | None = None, init: str = "he") -> Self:
        """Fully connected layers: inputs x0.., hidden h{layer}_{i}, outputs y0.."""
        sizes = list(sizes)
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise TopologyError(f"layer sizes must be at least two positive integers, got {excerpt(sizes, 80)}")
        sizes = [int(s) for s in sizes]
        # before a single name is built: a layer of a billion neurons would exhaust memory building them
        neurons, connections = layered_size(sizes)
        needed, limit = network_bytes(neurons, connections), budget()
        if needed > limit:
            raise SimnetError(f"layer sizes too big: a network of {neurons:,} neurons and {connections:,} "
                              f"connections needs about {bytes_text(needed)} of memory; this machine has "
                              f"{bytes_text(limit * 2)} available")
        net = cls(seed=seed, init=init)
        names = [[f"x{i}" for i in range(sizes[0])]]
        names += [[f"h{l}_{i}" for i in range(size)] for l, size in enumerate(sizes[1:-1], start=1)]
        names.append([f"y{i}" for i in range(sizes[-1])])
        last = len(names) - 1
        for l, layer in enumerate(names):
            role = "input" if l == 0 else "output" if l == last else "hidden"
            for name in layer:
                net.add_neuron(name, role=role, activation=output if l == last else hidden)
        for prev, layer in zip(names, names[1:]):
            for target in layer:
                for source in prev:
                    net.connect(source, target, weight=net.init_weight(len(prev), len(layer)))
        return net

    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph named as a trace's snapshots are: nodes carry role, fn (the activation function), bias
        and order; edges weight, frozen and order; the graph seed, init, step and lr (the learning rate)."""
        import networkx as nx
        G = nx.DiGraph(seed=self.seed, init=self.init, step=self.step, lr=self.learning_rate)
        for i, n in enumerate(self.neurons.values()):
            G.add_node(n.name, role=n.role, fn=n.activation, bias=n.bias, order=i)
        for i, c in enumerate(self.connections):
            G.add_edge(c.source.name, c.target.name, weight=c.weight, frozen=c.frozen, order=i)
        return G

    @classmethod
    def from_networkx(cls, G: nx.DiGraph, seed: int | None = None) -> Self:
        """A Network from a DiGraph named like :meth:`to_networkx`'s, such as ``trace.snapshot(k)``
        or a GraphML export read back (missing attributes take defaults).

        Other attributes (a snapshot's activation means, gradients...) are not
        the network's and are left alone; a graph without ``fn`` whose
        ``activation`` is a name, as earlier versions wrote it, is read as that name.
        """
        net = cls(seed=G.graph.get("seed") if seed is None else seed, init=G.graph.get("init", "he"))
        nodes = sorted(G.nodes(data=True), key=lambda item: item[1].get("order", 0))
        for name, attrs in nodes:
            legacy = attrs.get("activation")
            fn = attrs.get("fn", legacy if isinstance(legacy, str) else "relu")
            neuron = net.add_neuron(name, role=attrs.get("role", "hidden"), activation=fn, bias=attrs.get("bias"))
            if neuron.role == "input" and attrs.get("bias") is not None:
                # an input is added with bias 0; one set on it later must come back
                neuron.bias = _finite(attrs["bias"], f"bias of neuron {name!r}")
        edges = sorted(G.edges(data=True), key=lambda item: item[2].get("order", 0))
        for source, target, attrs in edges:
            net.connect(source, target, weight=attrs.get("weight"), frozen=attrs.get("frozen", False))
        net.step, net.learning_rate = G.graph.get("step", 0), G.graph.get("lr")
        return net

    def copy(self) -> Network:
        """An independent network with the same topology, weights, biases, step and learning rate (no subscribers)."""
        return Network.from_networkx(self.to_networkx())


# Seeds a trace, JSON and SQLite all hold exactly (int64), and numpy's seeding takes (non-negative).
MAX_SEED = 2**63 - 1


def _seed(seed):
    """`seed` as an int if it is one from 0 to MAX_SEED; SimnetError otherwise (a float is not truncated)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise SimnetError(f"seed must be an integer from 0 to {MAX_SEED}, got {excerpt(seed)}")
    if not 0 <= seed <= MAX_SEED:
        shown = seed if abs(seed).bit_length() <= 256 else f"an integer of {abs(seed).bit_length()} bits"
        raise SimnetError(f"seed must be an integer from 0 to {MAX_SEED}, got {shown}")
    return int(seed)


def _check_name(name):
    """TopologyError if `name` holds a character that no export format can carry (XML forbids them)."""
    for i, ch in enumerate(name):
        code = ord(ch)
        if (unicodedata.category(ch) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF
                or code & 0xFFFE == 0xFFFE):
            kind = ("a control character" if unicodedata.category(ch) == "Cc" else
                    "a lone surrogate" if unicodedata.category(ch) == "Cs" else "a noncharacter")
            raise TopologyError(f"neuron name {excerpt(name)} holds {kind} (U+{code:04X}) at position {i}; "
                                "names are printable text, as GraphML and GEXF exports need")


def _finite(x, what):
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise SimnetError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(value):
        raise SimnetError(f"{what} must be finite, got {x!r}")
    return value


def _reachable(starts, neighbours):
    seen = {n.name for n in starts}
    stack = list(starts)
    while stack:
        for m in neighbours(stack.pop()):
            if m.name not in seen:
                seen.add(m.name)
                stack.append(m)
    return seen
