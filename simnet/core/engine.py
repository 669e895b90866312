"""What an engine is to the rest of the model, and the registry that names engines.

The network and the trainer ask an engine for forward and backward sweeps and
updates; which engines exist is not theirs to know.  The engines register
themselves here by name (``simnet.engines`` does it for "actor" and "fast"), so
the model never imports them, and wherever an engine is accepted a name or an
:class:`Engine` object will do.  The firing order and the names at the ends of
connections, which every engine and recorder share, live here too.
"""
from collections import deque
from contextlib import nullcontext

import numpy as np

from ..errors import SimnetError

__all__ = ["Engine", "register_engine", "make_engine", "firing_order", "link_names", "probe"]

class Engine:
    """What the trainer asks of an engine besides forward, backward and update.

    The defaults suit an engine that works on the Network objects themselves;
    one that keeps the numbers elsewhere between calls (the fast engine keeps
    them in arrays) overrides them.
    """

    def zero_grad(self, net):
        net.zero_grad()

    def weights(self, net):
        """Every weight, in the order of net.connections."""
        return np.array([c.weight for c in net.connections])

    def sync(self, net):
        """Bring the Network objects up to date with the engine; from then on they are the truth."""

    def deferred(self, net):
        """A context within which the objects may lag behind the engine until `sync`; synced at its end."""
        return nullcontext()


_ENGINES = {}  # name -> a callable making a fresh engine


def register_engine(name, factory):
    """Make `factory()` the engine called `name` wherever an engine is named."""
    _ENGINES[name] = factory


def make_engine(engine):
    """A fresh engine for `engine`, a registered name ("actor", "fast"), or `engine` itself if it is an Engine."""
    if isinstance(engine, Engine):
        return engine
    try:
        return _ENGINES[engine]()
    except (KeyError, TypeError):
        raise SimnetError(f"unknown engine {engine!r}; expected {' or '.join(_ENGINES)} or an Engine") from None


def link_names(links):
    """(source names, target names) of the connections `links`, in order: whom their messages go between."""
    return tuple(c.source.name for c in links), tuple(c.target.name for c in links)


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


def firing_order(net, backward=False):
    """Neurons in the order the forward (or the backward) sweep fires them."""
    waiting = {n: len(n.outgoing if backward else n.incoming) for n in net.neurons.values()}
    ready = deque(n for n, count in waiting.items() if count == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for c in n.incoming if backward else n.outgoing:
            receiver = c.source if backward else c.target
            waiting[receiver] -= 1
            if waiting[receiver] == 0:
                ready.append(receiver)
    return order
