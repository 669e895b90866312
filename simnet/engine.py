"""The actor engine: a scheduler that delivers messages between neuron actors.

The scheduler knows nothing of the arithmetic: it asks a ready neuron to
fire, takes the messages the neuron hands back and drops each into the inbox
at the other end of its connection.  A neuron becomes ready when its inbox
holds one message per connection it waits on.  Ready neurons fire first in,
first out, starting from the neurons that wait on nobody in insertion order,
so the firing order depends on the topology only and is the same every run.

Events go to ``net.bus``; when nobody subscribes none are built.
"""
from collections import deque

import numpy as np

from .errors import SimnetError


class ActorEngine:
    """Runs the forward and backward sweeps by message passing."""

    name = "actor"

    def forward(self, net, X, step=None):
        """Forward sweep for inputs X (batch, n_inputs); returns the outputs (batch, n_outputs)."""
        bus = net.bus if step is not None else None
        batch_size = X.shape[0]
        for n in net.neurons.values():
            n.inbox = []
        for column, n in zip(X.T, net.inputs):
            n.inbox.append(column)
        self._sweep(
            net, batch_size, bus, step, "forward",
            waits_on=lambda n: len(n.incoming) or (n.role == "input"),
            fire=lambda n: n.fire_forward(batch_size),
            deliver_to=lambda c: c.target,
            fired=lambda n: {"z": n.z, "a": n.value},
        )
        return np.column_stack([n.value for n in net.outputs])

    def backward(self, net, grad_outputs, step=None):
        """Backward sweep from dL/d(outputs) (batch, n_outputs); accumulates every .grad and .bias_grad."""
        bus = net.bus if step is not None else None
        batch_size = grad_outputs.shape[0]
        for n in net.neurons.values():
            n.inbox = []
        for column, n in zip(grad_outputs.T, net.outputs):
            n.inbox.append(column)  # the loss is the one thing an output sends back to
        self._sweep(
            net, batch_size, bus, step, "backward",
            waits_on=lambda n: len(n.outgoing) or (n.role == "output"),
            fire=lambda n: n.fire_backward(batch_size),
            deliver_to=lambda c: c.source,
            fired=lambda n: {"dL_da": n.dL_da, "dL_dz": n.dL_dz},
        )

    def update(self, net, optimizer, lr, l1, l2, step=None):
        """Apply the optimizer to every unfrozen weight and every non-input bias.

        L1 and L2 act on weights only: the gradient gains l1·sign(w) + l2·w.
        """
        bus = net.bus if step is not None else None
        tell_weight = bool(bus) and bus.wants("weight_update")
        tell_bias = bool(bus) and bus.wants("bias_update")
        optimizer.next_step()
        for c in net.connections:
            if c.frozen:
                continue
            w = c.weight
            grad = c.grad + l1 * ((w > 0) - (w < 0)) + l2 * w if (l1 or l2) else c.grad
            c.weight = optimizer.update(c, w, grad, lr)
            if tell_weight:
                bus.emit(step, "update", "weight_update", source=c.source.name, target=c.target.name,
                         data={"old": w, "new": c.weight, "delta": c.weight - w, "grad": grad})
        for n in net.neurons.values():
            if n.role == "input":
                continue
            b = n.bias
            n.bias = optimizer.update(n, b, n.bias_grad, lr)
            if tell_bias:
                bus.emit(step, "update", "bias_update", neuron=n.name,
                         data={"old": b, "new": n.bias, "delta": n.bias - b, "grad": n.bias_grad})

    @staticmethod
    def _sweep(net, batch_size, bus, step, phase, waits_on, fire, deliver_to, fired):
        expected = {n: waits_on(n) for n in net.neurons.values()}
        ready = deque(n for n, count in expected.items() if len(n.inbox) == count)
        tell_fire = bool(bus) and bus.wants("fire")
        tell_message = bool(bus) and bus.wants("message")
        while ready:
            neuron = ready.popleft()
            messages = fire(neuron)
            if tell_fire:
                bus.emit(step, phase, "fire", neuron=neuron.name, data=fired(neuron))
            for connection, message in messages:
                receiver = deliver_to(connection)
                if tell_message:
                    bus.emit(step, phase, "message", source=connection.source.name,
                             target=connection.target.name, data={"value": message})
                receiver.inbox.append(message)
                if len(receiver.inbox) == expected[receiver]:
                    ready.append(receiver)


def make_engine(name):
    """The engine called `name`: "actor" (message passing) or "fast" (compiled arrays)."""
    if name == "actor":
        return ActorEngine()
    if name == "fast":
        from .fast import FastEngine
        return FastEngine()
    raise SimnetError(f"unknown engine {name!r}; expected actor or fast")


def probe(net, X):
    """Every neuron's activation for X, as {name: (batch,)}, without touching state or emitting.

    Used to probe a network (decision surfaces, heatmaps): it computes the
    same z = Σ a·w + b, a = f(z) in the engine's firing order.
    """
    values = {n.name: column for n, column in zip(net.inputs, X.T)}
    for n in firing_order(net):
        if n.role == "input":
            continue
        z = n.bias + sum((values[c.source.name] * c.weight for c in n.incoming), np.zeros(X.shape[0]))
        values[n.name] = n._activation.f(z)
    return values


def firing_order(net):
    """Neurons in the order the forward sweep fires them."""
    waiting = {n: len(n.incoming) for n in net.neurons.values()}
    ready = deque(n for n, count in waiting.items() if count == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for c in n.outgoing:
            waiting[c.target] -= 1
            if waiting[c.target] == 0:
                ready.append(c.target)
    return order
