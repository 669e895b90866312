"""simnet: a neural network simulated as a graph of neuron actors that pass messages.

    import simnet as sn
    net = sn.Network.layered([2, 8, 1], output="sigmoid", seed=0)
    history = net.train(X, Y, steps=500, lr=0.5, loss="bce")
"""
from .errors import DivergenceError, InputError, ScenarioError, SimnetError, TopologyError, TraceError
from .core.events import Event, EventBus, EventLog
from .core.functions import Activation
from .core.optim import SGD, Adam, Momentum
from .core.graph import Connection, Network, Neuron
from .core.trainer import History
from . import engines  # noqa: F401  (registers the actor and fast engines by name)

from .version import __version__

__all__ = [
    "Network", "Neuron", "Connection", "History", "Event", "EventBus", "EventLog",
    "Activation", "SGD", "Momentum", "Adam",
    "SimnetError", "TopologyError", "InputError", "ScenarioError", "TraceError", "DivergenceError",
    "Recorder", "open_trace", "Trace", "__version__", "sweep", "compare",
]

# The trace store pulls in sqlite3 and the renderers matplotlib; load them on first use.
_LAZY = {"Recorder": "trace", "open_trace": "trace", "Trace": "trace", "sweep": "experiments", "compare": "experiments"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'simnet' has no attribute {name!r}")
