"""Script actions: what each accepts, how it labels itself and the operations it performs on a network.

An action's operations are (key, callable) pairs, so that a failure is reported at the key it concerns.
"""
from dataclasses import dataclass

from ..core.functions import ACTIVATIONS
from ..errors import ScenarioError, SimnetError, TopologyError
from .tables import REQUIRED, array_of, boolean, choice, neuron_name, number

__all__ = ["ACTIONS", "perform"]


@dataclass(frozen=True)
class _ActionKind:
    """What an action accepts (key -> (check, default)), how it labels itself and what it does."""

    keys: dict
    label: object  # params -> str
    operations: object  # (net, params, rng) -> iterable of (key, callable)


def _edge(p):
    return f"{p['from']}->{p['to']}"


def _add_neuron(net, p, rng):
    name = p["name"]
    yield "name", lambda: net.add_neuron(name, activation=p["activation"], bias=p["bias"])
    for i, source in enumerate(p["connect_from"]):
        yield f"connect_from[{i}]", lambda s=source: net.connect(s, name, weight=p["weight"])
    for i, target in enumerate(p["connect_to"]):
        yield f"connect_to[{i}]", lambda t=target: net.connect(name, t, weight=p["weight"])


def _remove_neuron(net, p, rng):
    def remove():
        if net.neuron(p["name"]).role != "hidden":
            raise TopologyError(f"{p['name']!r} is an {net.neuron(p['name']).role} neuron; only hidden neurons "
                                "can be removed (the data set fixes the inputs and outputs)")
        net.remove_neuron(p["name"])
    yield "name", remove


def _perturb(net, p, rng):
    for i, name in enumerate(p["neurons"]):
        yield f"neurons[{i}]", lambda name=name: net.neuron(name)
    targets = set(p["neurons"])

    def perturb():
        for c in list(net.connections):
            if not targets or c.target.name in targets:
                net.set_weight(c.source, c.target, c.weight + p["noise"] * rng.standard_normal())
    yield "noise", perturb


_FROM_TO = {"from": (neuron_name, REQUIRED), "to": (neuron_name, REQUIRED)}


def _on_connection(change):
    """Operations of an action on the connection from -> to: both ends must exist, then `change(net, p)`."""
    def operations(net, p, rng):
        yield "from", lambda: net.neuron(p["from"])
        yield "to", lambda: net.neuron(p["to"])
        yield "to", lambda: change(net, p)
    return operations


ACTIONS = {
    "add_neuron": _ActionKind(
        {"name": (neuron_name, REQUIRED), "activation": (choice(tuple(ACTIVATIONS)), "relu"),
         "bias": (number(), None), "weight": (number(), None),
         "connect_from": (array_of(neuron_name), ()), "connect_to": (array_of(neuron_name), ())},
        lambda p: f"add {p['name']}", _add_neuron),
    "remove_neuron": _ActionKind({"name": (neuron_name, REQUIRED)}, lambda p: f"remove {p['name']}",
                                 _remove_neuron),
    "connect": _ActionKind(
        {**_FROM_TO, "weight": (number(), None), "frozen": (boolean, False)},
        lambda p: f"connect {_edge(p)}",
        _on_connection(lambda net, p: net.connect(p["from"], p["to"], weight=p["weight"], frozen=p["frozen"]))),
    "disconnect": _ActionKind(
        _FROM_TO, lambda p: f"disconnect {_edge(p)}",
        _on_connection(lambda net, p: net.disconnect(p["from"], p["to"]))),
    "set_weight": _ActionKind(
        {**_FROM_TO, "weight": (number(), REQUIRED)}, lambda p: f"set {_edge(p)} = {p['weight']:g}",
        _on_connection(lambda net, p: net.set_weight(p["from"], p["to"], p["weight"]))),
    "set_bias": _ActionKind(
        {"name": (neuron_name, REQUIRED), "bias": (number(), REQUIRED)},
        lambda p: f"bias {p['name']} = {p['bias']:g}",
        lambda net, p, rng: [("name", lambda: net.set_bias(p["name"], p["bias"]))]),
    "set_learning_rate": _ActionKind(
        {"value": (number(0, strict=True), REQUIRED)}, lambda p: f"lr = {p['value']:g}",
        lambda net, p, rng: [("value", lambda: net.set_learning_rate(p["value"]))]),
    "freeze": _ActionKind(
        _FROM_TO, lambda p: f"freeze {_edge(p)}",
        _on_connection(lambda net, p: net.set_frozen(p["from"], p["to"], True))),
    "unfreeze": _ActionKind(
        _FROM_TO, lambda p: f"unfreeze {_edge(p)}",
        _on_connection(lambda net, p: net.set_frozen(p["from"], p["to"], False))),
    "perturb": _ActionKind(
        {"noise": (number(0, strict=True), REQUIRED), "neurons": (array_of(neuron_name), ())},
        lambda p: f"perturb {p['noise']:g}", _perturb),
}


def perform(file, operations, suffix=""):
    """Run (key, callable) operations; a SimnetError becomes a ScenarioError at that key. Returns the last result."""
    result = None
    for key, operation in operations:
        try:
            result = operation()
        except SimnetError as e:
            raise ScenarioError(file, key, f"{e}{suffix}") from None
    return result
