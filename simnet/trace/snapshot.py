"""Per-step networkx snapshots of a run, built from its events.

:class:`SnapshotBuilder` subscribes to a network's bus and keeps, for the
steps it records, a ``networkx.DiGraph`` of the network right after that
step.  Renderers draw these graphs, never the live network, and a trace
rebuilds the very same graphs from its stored events
(``Trace.snapshot``), so a live run and a replay look alike to the bit.

:class:`NetworkState` is the bookkeeping both share: topology and parameters
as the events describe them, in the network's insertion order.
"""
import networkx as nx
import numpy as np

from ..core.functions import activation_names
from ..errors import TraceError, positive_int

__all__ = ["SNAPSHOT_KINDS", "NetworkState", "SnapshotBuilder", "StepData", "batch_means", "mean_rows"]

# what a snapshot needs: everything except the messages, script labels and the loss (step_end repeats it)
SNAPSHOT_KINDS = frozenset({
    "run_begin", "neuron_added", "neuron_removed", "connection_added", "connection_removed",
    "weight_set", "bias_set", "frozen", "unfrozen", "learning_rate_set",
    "step_begin", "fire", "weight_update", "bias_update", "step_end", "run_end",
})


def batch_means(vectors):
    """The batch mean of each vector in a list, as Python floats.

    Every recorder takes its means here (or from :func:`mean_rows`), so a mean
    computed live and one read back from a trace agree to the bit; numbers
    that already are means (what a trace stores) pass through unchanged.
    """
    if len(vectors) and isinstance(vectors[0], float):
        return list(vectors)
    return mean_rows(vectors).tolist()


def mean_rows(vectors):
    """The mean of each vector (a list of them, or the rows of a matrix) as a float64 array.

    Each mean equals ``np.mean(vector)`` to the bit.
    """
    if len(vectors) == 0:
        return np.empty(0)
    # rows of a C-ordered matrix are reduced exactly as a lone vector would be; np.mean is
    # this same sum and division behind a few microseconds of argument handling.  A product
    # with a vector of ones is twice as fast but not usable: BLAS sums a row in an order
    # that depends on where the row sits in the matrix, so its bits would too
    matrix = np.ascontiguousarray(vectors, dtype=np.float64)
    return np.add.reduce(matrix, axis=1) / matrix.shape[1]


class NetworkState:
    """Topology and parameters of a network as its events describe them.

    Neurons and connections keep the network's insertion order, so a
    state turns back into a Network (:meth:`to_network`) identical to the
    one that emitted the events.
    """

    __slots__ = ("kind", "bias", "weight", "frozen", "lr")

    def __init__(self):
        self.kind = {}    # name -> (role, activation function name)
        self.bias = {}    # name -> bias
        self.weight = {}  # (source, target) -> weight
        self.frozen = {}  # (source, target) -> bool
        self.lr = None

    def copy(self):
        other = NetworkState()
        other.kind, other.bias = dict(self.kind), dict(self.bias)
        other.weight, other.frozen = dict(self.weight), dict(self.frozen)
        other.lr = self.lr
        return other

    def __eq__(self, other):
        return (isinstance(other, NetworkState) and list(self.kind.items()) == list(other.kind.items())
                and list(self.bias.items()) == list(other.bias.items())
                and list(self.weight.items()) == list(other.weight.items())
                and list(self.frozen.items()) == list(other.frozen.items()))

    def apply(self, event):
        """Change the state as `event` says (events that change nothing are ignored)."""
        kind, data = event.kind, event.data
        if kind in ("weight_update", "weight_set"):
            self.weight[event.source, event.target] = data["new"]
        elif kind in ("bias_update", "bias_set"):
            self.bias[event.neuron] = data["new"]
        elif kind == "neuron_added":
            self.kind[event.neuron] = (data["role"], data["activation"])
            self.bias[event.neuron] = data["bias"]
        elif kind == "connection_added":
            self.add_connection((event.source, event.target), data["weight"], data["frozen"])
        elif kind == "connection_removed":
            del self.weight[event.source, event.target], self.frozen[event.source, event.target]
        elif kind == "neuron_removed":
            del self.kind[event.neuron], self.bias[event.neuron]
        elif kind in ("frozen", "unfrozen"):
            self.frozen[event.source, event.target] = kind == "frozen"
        elif kind == "learning_rate_set":
            self.lr = data["new"]

    def add_connection(self, key, weight, frozen):
        """Add the connection `key` ((source, target)) with its weight and frozen flag."""
        self.weight[key], self.frozen[key] = weight, bool(frozen)

    def to_network(self, *, seed, init="he", step=0):
        """A Network with exactly these neurons, connections, weights and biases, at `step`."""
        from ..core.graph import Network
        known = activation_names()
        unknown = sorted({activation for _, activation in self.kind.values()} - set(known))
        if unknown:
            raise TraceError(f"the trace uses the activation {unknown[0]!r}, which this process does not know: "
                             f"use simnet.Activation({unknown[0]!r}, f, df) in a network first")
        net = Network(seed=seed, init=init)
        for name, (role, activation) in self.kind.items():
            # inputs are created with bias 0; a bias set later must still come back
            net.add_neuron(name, role=role, activation=activation).bias = self.bias[name]
        for (source, target), weight in self.weight.items():
            net.connect(source, target, weight=weight, frozen=self.frozen[source, target])
        net.step, net.learning_rate = step, self.lr
        return net


class StepData:
    """What one training step adds to a snapshot besides the parameters."""

    __slots__ = ("means", "updates", "bias_grads", "loss", "accuracy", "lr")

    def __init__(self, lr=None):
        self.means = {}       # neuron -> (mean z, mean a, mean dL/dz)
        self.updates = {}     # (source, target) -> (old weight, grad)
        self.bias_grads = {}  # neuron -> grad
        self.loss = self.accuracy = None
        self.lr = lr


class SnapshotBuilder:
    """A bus subscriber keeping a DiGraph per recorded step in ``.snapshots`` (step -> graph).

    Recorded steps: the step a run starts from, every `every`-th step and the
    last step of the run; or, given `steps`, exactly those.  Graph attributes: step, loss, accuracy, lr.  Node
    attributes: role, fn, order, bias, bias_grad and the batch means
    activation, preactivation and gradient (dL/dz), None at the start.  Edge
    attributes: order, weight, grad, delta, frozen and message (batch mean of
    the forward message, mean activation of the source times the weight it
    was sent with; None at the start).  ``order`` is the position in the
    network's insertion order, for nodes and edges alike.
    """

    kinds = SNAPSHOT_KINDS

    def __init__(self, every=1, *, steps=None):
        self.every = positive_int(every, "snapshot interval")
        self.steps = None if steps is None else frozenset(steps)  # exactly these, instead of the rule
        self.snapshots = {}
        self.state = NetworkState()
        self._announced = None  # the topology a run announces, until its first step
        self._stash = None      # (step, state, StepData) of the last step not kept yet
        self._ended = None      # (step, StepData) of the last step ended
        self._acted_since = False  # whether script actions came after it (before a run's end, they shape its last step)
        self._run_start = None
        self._begin_step()

    @classmethod
    def resume(cls, state, steps):
        """A builder that carries on from `state` (a NetworkState) and keeps exactly `steps`."""
        builder = cls(steps=steps)
        builder.state = state
        return builder

    # ---- events in ---------------------------------------------------------

    def __call__(self, event):
        if event.phase == "init":
            self._announce(event)
            return
        if self._announced is not None:
            self._start_run(event.step)
        handler = self._HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event)
        else:
            self.state.apply(event)
            self._acted_since = True

    def on_batch(self, batch):
        """Take an EventBatch whole: firings and updates column by column."""
        if batch.kind == "fire":
            names = list(batch.neurons)
            if batch.phase == "forward":
                self._forward_names.extend(names)
                self._z.extend(np.asarray(batch.data["z"]))
                self._a.extend(np.asarray(batch.data["a"]))
            else:
                self._backward_names.extend(names)
                self._dz.extend(np.asarray(batch.data["dL_dz"]))
            return
        if batch.kind == "weight_update":
            columns = (batch.data[name] for name in ("old", "new", "grad"))
            for source, target, old, new, grad in zip(batch.sources, batch.targets,
                                                      *(np.asarray(c).tolist() for c in columns)):
                self.state.weight[source, target] = new
                self._step.updates[source, target] = (old, grad)
            return
        for event in batch:
            self(event)

    def _announce(self, event):
        if event.kind == "run_begin":
            self._announced = NetworkState()
            self._announced.lr = event.data.get("lr")
            self._run_start = event.step
        elif self._announced is not None:
            self._announced.apply(event)

    def _start_run(self, step):
        self.state, self._announced = self._announced, None
        start = self._run_start
        if start not in self.snapshots and (self.steps is None or start in self.steps):
            self.snapshots[start] = self.graph(start, self.state, StepData(self.state.lr))
        self._stash = None

    def _begin_step(self, lr=None):
        self._step = StepData(lr)
        self._forward_names, self._z, self._a = [], [], []
        self._backward_names, self._dz = [], []

    def _on_step_begin(self, event):
        self._acted_since = False
        self._begin_step(event.data.get("lr"))

    def _on_fire(self, event):
        if event.phase == "forward":
            self._forward_names.append(event.neuron)
            self._z.append(event.data["z"])
            self._a.append(event.data["a"])
        else:
            self._backward_names.append(event.neuron)
            self._dz.append(event.data["dL_dz"])

    def _on_weight_update(self, event):
        self.state.apply(event)
        self._step.updates[event.source, event.target] = (event.data["old"], event.data["grad"])

    def _on_bias_update(self, event):
        self.state.apply(event)
        self._step.bias_grads[event.neuron] = event.data["grad"]

    def _on_step_end(self, event):
        step, data = event.step, self._step
        data.loss, data.accuracy = event.data.get("loss"), event.data.get("accuracy")
        gradients = dict(zip(self._backward_names, batch_means(self._dz)))
        for name, z, a in zip(self._forward_names, batch_means(self._z), batch_means(self._a)):
            data.means[name] = (z, a, gradients.get(name))
        if self.steps is not None:
            if step in self.steps:
                self.snapshots[step] = self.graph(step, self.state, data)
        elif step % self.every == 0:
            self.snapshots[step] = self.graph(step, self.state, data)
            self._stash = None
        else:
            self._stash = (step, self.state.copy(), data)
        self._ended, self._acted_since = (step, data), False
        self._begin_step()

    def _on_run_end(self, event):
        if self._announced is not None:  # a run that ended before its first step
            self._start_run(event.step)
        last = event.data.get("steps")
        if self._acted_since and self._ended is not None and self._ended[0] == last:
            # actions after the last step: the run ends with the network they made
            if self.steps is None or last in self.steps:
                self.snapshots[last] = self.graph(last, self.state, self._ended[1])
        elif self._stash is not None and self._stash[0] == last:
            step, state, data = self._stash
            self.snapshots[step] = self.graph(step, state, data)
        self._stash = self._ended = None
        self._begin_step()

    _HANDLERS = {
        "step_begin": _on_step_begin, "fire": _on_fire,
        "weight_update": _on_weight_update, "bias_update": _on_bias_update,
        "step_end": _on_step_end, "run_end": _on_run_end,
    }

    # ---- graphs out --------------------------------------------------------

    @staticmethod
    def graph(step, state, data):
        """The snapshot DiGraph of `state` after `step`, with that step's StepData."""
        G = nx.DiGraph(step=step, loss=data.loss, accuracy=data.accuracy, lr=data.lr)
        no_means = (None, None, None)
        for order, (name, bias) in enumerate(state.bias.items()):
            role, fn = state.kind[name]
            z, a, dz = data.means.get(name, no_means)
            G.add_node(name, role=role, fn=fn, order=order, bias=bias,
                       bias_grad=data.bias_grads.get(name, 0.0),
                       activation=a, preactivation=z, gradient=dz)
        for order, (key, weight) in enumerate(state.weight.items()):
            source, target = key
            old, grad = data.updates.get(key, (weight, 0.0))
            a = data.means.get(source, no_means)[1]
            G.add_edge(source, target, order=order, weight=weight, grad=grad, delta=weight - old,
                       frozen=state.frozen[key], message=None if a is None else a * old)
        return G
