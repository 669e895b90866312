"""The actor engine: a scheduler that delivers messages between neuron actors.

The scheduler knows nothing of the arithmetic: it asks a ready neuron to
fire, takes the value the neuron hands back and drops a message (w, value,
connection) into the inbox at the other end of each of its connections, w
being that connection's weight.  A neuron becomes ready when its inbox
holds one message per connection it waits on.  Ready neurons fire first in,
first out, starting from the neurons that wait on nobody in insertion order,
so the firing order depends on the topology only and is the same every run.

Events go to ``net.bus``; when nobody subscribes none are built.
"""
from collections import deque
from functools import partial

import numpy as np

from ..core.engine import Engine, link_names

__all__ = ["ActorEngine", "emit_updates", "message_values", "regularised"]


class ActorEngine(Engine):
    """Runs the forward and backward sweeps by message passing."""

    name = "actor"

    def __init__(self):
        self._ends = {}  # (neuron, forward) -> the names its messages go between, for one topology
        self._ends_of = None  # (network, version) they are for

    def forward(self, net, X, step=None):
        """Forward sweep for inputs X (batch, n_inputs); returns the outputs (batch, n_outputs)."""
        for n in net.neurons.values():
            n.inbox = []
        for column, n in zip(X.T, net.inputs):
            n.inbox.append((1.0, column, None))  # straight from the data
        expected = {n: len(n.incoming) or (n.role == "input") for n in net.neurons.values()}
        self._sweep(net, expected, X.shape[0], net.bus if step is not None else None, step, forward=True)
        return np.column_stack([n.value for n in net.outputs])

    def backward(self, net, grad_outputs, step=None):
        """Backward sweep from dL/d(outputs) (batch, n_outputs); accumulates every .grad and .bias_grad."""
        for n in net.neurons.values():
            n.inbox = []
        for column, n in zip(grad_outputs.T, net.outputs):
            n.inbox.append((1.0, column, None))  # the loss is the one thing an output sends back to
        expected = {n: len(n.outgoing) or (n.role == "output") for n in net.neurons.values()}
        self._sweep(net, expected, grad_outputs.shape[0], net.bus if step is not None else None, step,
                    forward=False)

    def update(self, net, optimizer, lr, l1, l2, step=None):
        """Apply the optimizer to every unfrozen weight and every non-input bias.

        L1 and L2 act on weights only: the gradient gains l1·sign(w) + l2·w.
        Returns True if every number it wrote is finite (the rest were already).
        """
        bus = net.bus if step is not None else None
        optimizer.next_step()
        connections = [c for c in net.connections if not c.frozen]
        old = np.array([c.weight for c in connections])
        grads = regularised(np.array([c.grad for c in connections]), old, l1, l2)
        new = optimizer.update(connections, old, grads, lr)
        finite = bool(np.isfinite(new).all())
        for c, w in zip(connections, new.tolist()):
            c.weight = w
        if bus and bus.wants("weight_update"):
            sources, targets = link_names(connections)
            emit_updates(bus, step, "weight_update", old, new, grads, sources=sources, targets=targets)
        neurons = [n for n in net.neurons.values() if n.role != "input"]
        old = np.array([n.bias for n in neurons])
        grads = np.array([n.bias_grad for n in neurons])
        new = optimizer.update(neurons, old, grads, lr)
        for n, b in zip(neurons, new.tolist()):
            n.bias = b
        if bus and bus.wants("bias_update"):
            emit_updates(bus, step, "bias_update", old, new, grads, neurons=[n.name for n in neurons])
        return finite and bool(np.isfinite(new).all())

    def _sweep(self, net, expected, batch_size, bus, step, forward):
        # a fired neuron sends one value along all its links: forward a along its outgoing
        # connections to their targets, backward dL/dz along its incoming ones to their sources
        phase = "forward" if forward else "backward"
        ready = deque(n for n, count in expected.items() if len(n.inbox) == count)
        tell_fire = bool(bus) and bus.wants("fire")
        tell_message = bool(bus) and bus.wants("message")
        while ready:
            neuron = ready.popleft()
            if forward:
                value, links = neuron.fire_forward(batch_size), neuron.outgoing
            else:
                value, links = neuron.fire_backward(batch_size), neuron.incoming
            if tell_fire:
                bus.emit(step, phase, "fire", neuron=neuron.name,
                         data={"z": neuron.z, "a": neuron.value} if forward
                         else {"dL_da": neuron.dL_da, "dL_dz": neuron.dL_dz})
            if tell_message and links:
                sources, targets = self._message_ends(net, neuron, links, forward)
                bus.emit_batch(step, phase, "message", sources=sources, targets=targets,
                               data={"value": partial(message_values, [c.weight for c in links], value)})
            for connection in links:
                receiver = connection.target if forward else connection.source
                receiver.inbox.append((connection.weight, value, connection))
                if len(receiver.inbox) == expected[receiver]:
                    ready.append(receiver)

    def _message_ends(self, net, neuron, links, forward):
        """(source names, target names) of the messages `neuron` sends along `links`.

        Built once per topology rather than at every firing: the same tuples serve every step until the
        network changes, and subscribers that keep the events share them.
        """
        if self._ends_of != (net, net.version):
            self._ends, self._ends_of = {}, (net, net.version)
        ends = self._ends.get((neuron, forward))
        if ends is None:
            ends = self._ends[neuron, forward] = link_names(links)
        return ends


def message_values(weights, value):
    """The messages value·w for each of `weights`, one row each.

    A product with an inner dimension of one is the same number as value·w and,
    for vectors this short, about twice as fast as numpy's broadcast multiply.
    """
    return np.dot(np.asarray(weights, dtype=float)[:, None], value[None, :])


def regularised(grads, weights, l1, l2):
    """Weight gradients with the L1 and L2 terms added: grad + l1·sign(w) + l2·w."""
    if l1:
        grads = grads + l1 * np.sign(weights)
    if l2:
        grads = grads + l2 * weights
    return grads


def emit_updates(bus, step, kind, old, new, grads, neurons=None, sources=None, targets=None):
    """One weight_update or bias_update batch from arrays of old values, new values and gradients."""
    bus.emit_batch(step, "update", kind, neurons=neurons, sources=sources, targets=targets,
                   data={"old": old, "new": new, "delta": new - old, "grad": grads})
