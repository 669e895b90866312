"""Scenario files: TOML in, validated typed objects out, and the run they describe.

:func:`load` reads a scenario file and checks all of it before anything runs:
unknown keys, wrong types, values out of range, names that will not exist at
the step a script action or an expectation needs them, and sizes that would
not fit in memory.  Every problem is a :class:`ScenarioError` naming the
file, the key path (``training.learning_rate``, ``script[2].name``; array
entries count from 0) and what was found against what is allowed.

:func:`execute` trains the scenario's network on its data set, applying the
script at step boundaries, and checks its ``[expect]`` table on the whole
data set.  Scenario files are data: nothing in them is ever executed.
"""
import dataclasses
import difflib
import math
import os
import re
import time
import tomllib
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datasets
from ..core.engine import firing_order, probe
from ..core.functions import (ACTIVATIONS, CLASSIFICATION, LOSSES, SimnetWarning, accuracy as accuracy_of,
                              label_problem, loss_fit, loss_function)
from ..core.graph import INIT_RULES, MAX_SEED, ROLES, Network
from ..core.memory import budget, bytes_text, layered_size, network_bytes
from ..core.optim import OPTIMIZERS
from ..errors import DivergenceError, ScenarioError, SimnetError, TopologyError, excerpt
from .reading import read_bounded

ENGINES = ("actor", "fast")
GIFS = ("activations", "weights")
DETAILS = ("updates", "messages")
MAX_FILE_BYTES = 4 * 2**20
# A name becomes a directory under output/: one path component, no separators, no dot files.
SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NEURON_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_REQUIRED = object()


# ---- reading tables with key paths -----------------------------------------

class _Table:
    """A TOML table being read key by key; remembers its key path and which keys were read."""

    def __init__(self, file, path, table):
        self.file, self.path, self.table, self.used = file, path, table, set()

    def where(self, key):
        return f"{self.path}.{key}" if self.path else key

    def error(self, key, why):
        return ScenarioError(self.file, self.where(key) if key else self.path or "file", why)

    def get(self, key, check, default=_REQUIRED):
        """The value at `key` passed through `check(value) -> value` (which raises ValueError(why))."""
        self.used.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                # a required key that is missing is most often a misspelt one
                close = difflib.get_close_matches(key, [k for k in self.table if k not in self.used], n=1)
                if close:
                    raise self.error(close[0], f"unknown key; did you mean {key!r}?")
                raise self.error(key, f"missing; expected {check.expects}")
            return default
        try:
            return check(self.table[key])
        except ValueError as e:
            raise self.error(key, str(e)) from None

    def table_at(self, key, required=False):
        """The sub-table at `key` as a _Table (empty if absent and not required)."""
        value = self.get(key, _is_table, _REQUIRED if required else {})
        return _Table(self.file, self.where(key), value)

    def tables_at(self, key):
        """The array of tables at `key` as a list of _Table, with [i] in their paths."""
        values = self.get(key, _is_array_of_tables, [])
        return [_Table(self.file, f"{self.where(key)}[{i}]", v) for i, v in enumerate(values)]

    def finish(self):
        """Raise for the first key that was not read (an unknown key)."""
        allowed = sorted(self.used)
        for key in self.table:
            if key not in self.used:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"
                raise self.error(key, f"unknown key; {hint}")


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _found(value):
    text = repr(value) if isinstance(value, (int, float, str, bool)) else _type_name(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(text, accepts, then=None):
    """A check: `accepts(v)` must hold, else 'expected <text>'; `then(v)` may refine the value further."""
    def check(v):
        if not accepts(v):
            raise ValueError(f"expected {text}, got {_found(v)}")
        return then(v) if then else v
    check.expects = text
    return check


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_is_table = _typed("a table", lambda v: isinstance(v, dict))
_is_array_of_tables = _typed("an array of tables ([[...]] entries)",
                             lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v))
string = _typed("a string", lambda v: isinstance(v, str))
boolean = _typed("true or false", lambda v: isinstance(v, bool))


def printable_text(*, lines=False):
    """A check for strings of printable text (tabs, and newlines if `lines`, allowed): it ends up in
    pictures, pages and exports, which control characters would break."""
    allowed = "\t\n" if lines else "\t"

    def printable(v):
        bad = next((ch for ch in v if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs")), None)
        if bad is not None:
            raise ValueError(f"{excerpt(v)} holds control character U+{ord(bad):04X}; expected printable text")
        return v
    return _typed("a string", lambda v: isinstance(v, str), printable)


def integer(low=None, high=None):
    """A check for integers in [low, high] (either end may be open)."""
    text = (f"an integer from {low} to {high}" if low is not None and high is not None else
            {1: "a positive integer", 0: "a non-negative integer"}.get(low, "an integer"))

    def in_range(v):
        if (low is not None and v < low) or (high is not None and v > high):
            raise ValueError(f"expected {text}, got {v}")
        return v
    return _typed(text, _is_int, in_range)


def number(low=None, *, strict=False, high=None):
    """A check for finite numbers > low (strict) or >= low, and <= high; gives a float."""
    text = ("a finite number" if low is None else
            ("a positive number" if strict else "a non-negative number") if low == 0 else
            f"a number {'>' if strict else '>='} {low}")
    if high is not None:
        text += f" no larger than {high}"

    def in_range(v):
        v = float(v)
        if (not math.isfinite(v) or (low is not None and (v <= low if strict else v < low))
                or (high is not None and v > high)):
            raise ValueError(f"expected {text}, got {v}")
        return v
    return _typed(text, _is_number, in_range)


def choice(options):
    text = f"one of {', '.join(options)}"

    def known(v):
        if v not in options:
            close = difflib.get_close_matches(v, options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {v!r}{hint}; expected {text}")
        return v
    return _typed(text, lambda v: isinstance(v, str), known)


def _matching(pattern, what, first):
    rule = f"{first}, then letters, digits, '_', '.' or '-', at most 64 characters"

    def valid(v):
        if not pattern.fullmatch(v):
            raise ValueError(f"{_found(v)} is not a valid {what}; expected {rule}")
        return v
    return _typed(f"a {what}", lambda v: isinstance(v, str), valid)


neuron_name = _matching(NEURON_NAME, "neuron name", "a letter or '_'")
scenario_name = _matching(SCENARIO_NAME, "scenario name", "a letter or a digit")


def array_of(check, *, min_length=0):
    """A check for arrays whose every entry passes `check`; gives a tuple."""
    def entries(v):
        if len(v) < min_length:
            raise ValueError(f"expected at least {min_length} entries, got {len(v)}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(check(item))
            except ValueError as e:
                raise ValueError(f"entry [{i}]: {e}") from None
        return tuple(out)
    return _typed(f"an array, each entry {check.expects}", lambda v: isinstance(v, list), entries)


# ---- the typed scenario ----------------------------------------------------

@dataclass(frozen=True)
class NeuronSpec:
    name: str
    role: str = "hidden"
    activation: str = "relu"
    bias: float | None = None


@dataclass(frozen=True)
class ConnectionSpec:
    source: str
    target: str
    weight: float | None = None
    frozen: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    """Either `layers` (with hidden/output activations) or explicit `neurons` and `connections`."""

    layers: tuple | None = None
    hidden: str = "relu"
    output: str = "linear"
    init: str = "he"
    neurons: tuple = ()
    connections: tuple = ()

    def size(self):
        """(neurons, connections) of the network this spec builds, without building it."""
        if self.layers:
            return layered_size(self.layers)
        return len(self.neurons), len(self.connections)

    def count(self, role):
        """How many neurons with `role` ("input" or "output") the network has, without naming them."""
        if self.layers:
            return self.layers[0] if role == "input" else self.layers[-1]
        return sum(n.role == role for n in self.neurons)

    def outputs(self):
        """(key path of its activation, name, activation) of every output neuron."""
        if self.layers:
            return [("network.output", name, self.output) for name in self.names("output")]
        return [(f"network.neurons[{i}].activation", n.name, n.activation)
                for i, n in enumerate(self.neurons) if n.role == "output"]

    def names(self, role):
        """Names of the neurons with `role` ("input" or "output"), in the order the network keeps them."""
        if self.layers:
            prefix, size = ("x", self.layers[0]) if role == "input" else ("y", self.layers[-1])
            return [f"{prefix}{i}" for i in range(size)]
        return [n.name for n in self.neurons if n.role == role]

    def operations(self, seed):
        """(key path, callable) pairs that build the network; the last callable returns it."""
        if self.layers:
            yield "network.layers", lambda: Network.layered(list(self.layers), hidden=self.hidden,
                                                            output=self.output, seed=seed, init=self.init)
            return
        net = Network(seed=seed, init=self.init)
        for i, n in enumerate(self.neurons):
            yield f"network.neurons[{i}]", lambda n=n: net.add_neuron(
                n.name, role=n.role, activation=n.activation, bias=n.bias)
        for i, c in enumerate(self.connections):
            yield f"network.connections[{i}]", lambda c=c: net.connect(
                c.source, c.target, weight=c.weight, frozen=c.frozen)
        yield "", lambda: net


@dataclass(frozen=True)
class DataSpec:
    kind: str
    samples: int = 200
    noise: float = 0.0
    path: Path | None = None  # kind = "csv": resolved against the scenario file's directory


@dataclass(frozen=True)
class TrainingSpec:
    steps: int
    learning_rate: float
    loss: str = "mse"
    optimizer: str = "sgd"
    batch_size: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    engine: str = "actor"


@dataclass(frozen=True)
class RecordSpec:
    every: int = 10
    gifs: tuple = GIFS
    detail: str = "updates"


@dataclass(frozen=True)
class Action:
    """One scripted action: `action` with its `params`, applied just before step `at`."""

    index: int  # position in the file's [[script]] array
    at: int
    action: str
    params: dict = field(compare=False)
    label: str = ""

    @property
    def where(self):
        return f"script[{self.index}]"

    def operations(self, net, seed):
        """(key, callable) pairs performing the action on `net`, each key naming the parameter it uses."""
        return ACTIONS[self.action].operations(net, self.params, self._rng(seed))

    def perform(self, net, seed, file):
        """Perform the action on `net`; a ScenarioError in `file`, at the parameter's key, if it cannot be done."""
        _perform(file, ((f"{self.where}.{key}", op) for key, op in self.operations(net, seed)),
                 suffix=f" (before step {self.at})")

    def _rng(self, seed):
        # each action draws from its own stream: the same noise whatever else the run does
        return np.random.default_rng([seed, self.at, self.index])


@dataclass(frozen=True)
class Checks:
    """Checks on the network's state after `step` (None: at the end of the run), on the whole data set."""

    where: str  # key path of the table, for messages
    step: int | None = None
    loss_max: float | None = None
    loss_min: float | None = None
    accuracy_min: float | None = None
    accuracy_max: float | None = None
    dead: tuple = ()
    alive: tuple = ()
    symmetric: tuple = ()  # groups of neuron names that must stay interchangeable

    @property
    def empty(self):
        return all(getattr(self, f) in (None, ()) for f in CHECK_KEYS)

    def neuron_names(self):
        """(key path, name) of every neuron these checks mention."""
        for key in ("dead", "alive"):
            for i, name in enumerate(getattr(self, key)):
                yield f"{self.where}.{key}[{i}]", name
        for g, group in enumerate(self.symmetric):
            for i, name in enumerate(group):
                yield f"{self.where}.symmetric[{g}][{i}]", name


CHECK_KEYS = ("loss_max", "loss_min", "accuracy_min", "accuracy_max", "dead", "alive", "symmetric")


@dataclass(frozen=True)
class Expect:
    final: Checks
    at_step: tuple = ()
    diverges: bool | None = None

    @property
    def empty(self):
        return self.final.empty and not self.at_step and self.diverges is None


@dataclass(frozen=True)
class Scenario:
    path: Path
    text: str
    name: str
    description: str
    seed: int
    network: NetworkSpec
    data: DataSpec
    training: TrainingSpec
    record: RecordSpec
    script: tuple
    expect: Expect

    def with_overrides(self, *, steps=None, seed=None, engine=None):
        """This scenario with the run's length, seed or engine replaced (None keeps the file's).

        A shorter run drops the script actions and step checks that fall after its end.
        """
        sc = self
        if steps is not None:
            steps = integer(1)(steps)
            sc = dataclasses.replace(
                sc, training=dataclasses.replace(sc.training, steps=steps),
                script=tuple(a for a in sc.script if a.at <= steps),
                expect=dataclasses.replace(sc.expect, at_step=tuple(c for c in sc.expect.at_step
                                                                    if c.step <= steps)))
        if seed is not None:
            sc = dataclasses.replace(sc, seed=integer(0, MAX_SEED)(seed))
        if engine is not None:
            sc = dataclasses.replace(sc, training=dataclasses.replace(sc.training, engine=choice(ENGINES)(engine)))
        _check_sizes(sc)
        return sc

    def build_network(self):
        """A fresh Network as the scenario describes it, before any step."""
        return _perform(self.path, self.network.operations(self.seed))

    def dataset(self):
        """(X, Y) for training: X (samples, inputs) in input-neuron order, Y (samples, outputs).

        Built-in sets are drawn from the scenario's seed; `cross_entropy` gets
        its labels one-hot.  ScenarioError if a CSV file does not fit the network.
        """
        inputs, outputs = self.network.names("input"), self.network.names("output")
        if self.data.kind == "csv":
            # checked again: the file system may have changed since the scenario was loaded
            _inside(self.path, self.data.path)
            if not self.data.path.is_file():
                raise ScenarioError(self.path, "data.path", f"{str(self.data.path)!r} "
                                    + ("is not a file" if self.data.path.exists() else "does not exist"))
            affordable = _csv_bytes(self)

            def too_big(size):
                found = f"{size:,} bytes" if size is not None else f"more than {affordable:,} bytes"
                return (f"is {found}; with this network and training, at most {affordable:,} bytes of CSV data "
                        f"fit in the memory this machine has available ({bytes_text(budget() * 2)})")

            def labels(table):
                # the label columns come after the inputs: report the column by its place in the table
                problem = label_problem(self.training.loss, table[:, len(inputs):])
                return problem and (problem[0], None if problem[1] is None else len(inputs) + problem[1], problem[2])

            table = datasets.read_csv(self.data.path, inputs + outputs, max_bytes=affordable, too_big=too_big,
                                      check=labels)
            _check_sizes(self, len(table))
            X, Y = table[:, :len(inputs)], table[:, len(inputs):]
        else:
            X, y = datasets.generate(self.data.kind, self.data.samples, self.data.noise, self.seed)
            Y = np.hstack([1.0 - y, y]) if self.training.loss == "cross_entropy" else y
        if self.training.batch_size is not None and self.training.batch_size > len(X):
            raise ScenarioError(self.path, "training.batch_size",
                                f"{self.training.batch_size} is larger than the data set ({len(X)} samples)")
        return X, Y


def recorded(metadata):
    """The Scenario a trace's `metadata` recorded, with the run's overrides, or None if it holds none.

    A run records the scenario's text and path and what its command line
    overrode, so that its data set can be drawn again exactly.
    """
    text = (metadata or {}).get("scenario_text")
    if not text:
        return None
    overrides = metadata.get("overrides") or {}
    return loads(text, metadata.get("scenario_path") or "<scenario>").with_overrides(
        **{key: overrides.get(key) for key in ("steps", "seed", "engine")})


# ---- script actions --------------------------------------------------------

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


_FROM_TO = {"from": (neuron_name, _REQUIRED), "to": (neuron_name, _REQUIRED)}


def _on_connection(change):
    """Operations of an action on the connection from -> to: both ends must exist, then `change(net, p)`."""
    def operations(net, p, rng):
        yield "from", lambda: net.neuron(p["from"])
        yield "to", lambda: net.neuron(p["to"])
        yield "to", lambda: change(net, p)
    return operations


ACTIONS = {
    "add_neuron": _ActionKind(
        {"name": (neuron_name, _REQUIRED), "activation": (choice(tuple(ACTIVATIONS)), "relu"),
         "bias": (number(), None), "weight": (number(), None),
         "connect_from": (array_of(neuron_name), ()), "connect_to": (array_of(neuron_name), ())},
        lambda p: f"add {p['name']}", _add_neuron),
    "remove_neuron": _ActionKind({"name": (neuron_name, _REQUIRED)}, lambda p: f"remove {p['name']}",
                                 _remove_neuron),
    "connect": _ActionKind(
        {**_FROM_TO, "weight": (number(), None), "frozen": (boolean, False)},
        lambda p: f"connect {_edge(p)}",
        _on_connection(lambda net, p: net.connect(p["from"], p["to"], weight=p["weight"], frozen=p["frozen"]))),
    "disconnect": _ActionKind(
        _FROM_TO, lambda p: f"disconnect {_edge(p)}",
        _on_connection(lambda net, p: net.disconnect(p["from"], p["to"]))),
    "set_weight": _ActionKind(
        {**_FROM_TO, "weight": (number(), _REQUIRED)}, lambda p: f"set {_edge(p)} = {p['weight']:g}",
        _on_connection(lambda net, p: net.set_weight(p["from"], p["to"], p["weight"]))),
    "set_bias": _ActionKind(
        {"name": (neuron_name, _REQUIRED), "bias": (number(), _REQUIRED)},
        lambda p: f"bias {p['name']} = {p['bias']:g}",
        lambda net, p, rng: [("name", lambda: net.set_bias(p["name"], p["bias"]))]),
    "set_learning_rate": _ActionKind(
        {"value": (number(0, strict=True), _REQUIRED)}, lambda p: f"lr = {p['value']:g}",
        lambda net, p, rng: [("value", lambda: net.set_learning_rate(p["value"]))]),
    "freeze": _ActionKind(
        _FROM_TO, lambda p: f"freeze {_edge(p)}",
        _on_connection(lambda net, p: net.set_frozen(p["from"], p["to"], True))),
    "unfreeze": _ActionKind(
        _FROM_TO, lambda p: f"unfreeze {_edge(p)}",
        _on_connection(lambda net, p: net.set_frozen(p["from"], p["to"], False))),
    "perturb": _ActionKind(
        {"noise": (number(0, strict=True), _REQUIRED), "neurons": (array_of(neuron_name), ())},
        lambda p: f"perturb {p['noise']:g}", _perturb),
}


def _perform(file, operations, suffix=""):
    """Run (key, callable) operations; a SimnetError becomes a ScenarioError at that key. Returns the last result."""
    result = None
    for key, operation in operations:
        try:
            result = operation()
        except SimnetError as e:
            raise ScenarioError(file, key, f"{e}{suffix}") from None
    return result


# ---- loading ---------------------------------------------------------------

def load(path):
    """The Scenario in the TOML file at `path`; ScenarioError saying what is wrong otherwise."""
    path = Path(path)
    return loads(read_bounded(path, MAX_FILE_BYTES, "a scenario file"), path)


def loads(raw, path="<scenario>"):
    """The Scenario in TOML text or bytes `raw`; `path` names it in errors and anchors relative paths."""
    path = Path(path)
    if isinstance(raw, bytes):
        if b"\x00" in raw:
            raise ScenarioError(path, "file", "is a binary file, not a TOML scenario")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError(path, "file", f"is not UTF-8 text (byte {e.object[e.start]:#04x} "
                                f"at offset {e.start})") from None
    try:
        document = tomllib.loads(raw)
    except RecursionError:
        raise ScenarioError(path, "file", "not valid TOML for a scenario: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        at = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)$", message)
        where = at.group(1) if at else "file"
        why = message[:at.start()] if at else message
        raise ScenarioError(path, where, f"not valid TOML: {why[:1].lower()}{why[1:]}") from None
    if not document:
        raise ScenarioError(path, "file", "is empty; a scenario needs at least [network], [data] and [training]")
    scenario = _parse(path, raw, _Table(path, "", document))
    _check_sizes(scenario)
    _check_drawable(scenario)
    _check_fit(scenario)
    _check_timeline(scenario)
    return scenario


def _parse(path, text, top):
    name = top.get("name", scenario_name, None)
    if name is None:
        try:
            name = scenario_name(path.stem)
        except ValueError as e:
            raise ScenarioError(path, "name", f"missing, and the file name cannot stand in: {e}") from None
    description = top.get("description", printable_text(lines=True), "")
    seed = top.get("seed", integer(0, MAX_SEED), 0)
    network = _parse_network(top.table_at("network", required=True))
    data = _parse_data(top.table_at("data", required=True), path)
    training = _parse_training(top.table_at("training", required=True))
    record = _parse_record(top.table_at("record"))
    script = tuple(_parse_action(t, i, training.steps) for i, t in enumerate(top.tables_at("script")))
    expect = _parse_expect(top.table_at("expect"), training)
    top.finish()
    return Scenario(path, text, name, description, seed, network, data, training, record, script, expect)


def _parse_network(t):
    layers = t.get("layers", array_of(integer(1), min_length=2), None)
    hidden = t.get("hidden", choice(tuple(ACTIVATIONS)), "relu")
    output = t.get("output", choice(tuple(ACTIVATIONS)), "linear")
    init = t.get("init", choice(INIT_RULES), "he")
    neuron_tables, connection_tables = t.tables_at("neurons"), t.tables_at("connections")
    if layers is not None and (neuron_tables or connection_tables):
        raise t.error("layers", "give either layers or explicit neurons and connections, not both")
    if layers is None and not neuron_tables:
        raise t.error(None, "missing layers; give either layers = [inputs, hidden..., outputs] "
                            "or [[network.neurons]] entries")
    if layers is None:
        for key in ("hidden", "output"):
            if key in t.table:
                raise t.error(key, "only applies with layers; explicit neurons give their own activation")
    neurons = tuple(_parse_neuron(n) for n in neuron_tables)
    connections = tuple(ConnectionSpec(c.get("from", neuron_name), c.get("to", neuron_name),
                                       c.get("weight", number(), None), c.get("frozen", boolean, False))
                        for c in connection_tables)
    for c in connection_tables:
        c.finish()
    t.finish()
    return NetworkSpec(layers, hidden, output, init, neurons, connections)


def _parse_neuron(t):
    name = t.get("name", neuron_name)
    role = t.get("role", choice(ROLES), "hidden")
    activation = t.get("activation", choice(tuple(ACTIVATIONS)), "linear" if role == "input" else "relu")
    bias = t.get("bias", number(), None)
    if role == "input" and activation != "linear":
        raise t.error("activation", f"input neurons pass their input on unchanged (linear), got {activation!r}")
    if role == "input" and bias not in (None, 0.0):
        raise t.error("bias", f"input neurons have no bias, got {bias}")
    t.finish()
    return NeuronSpec(name, role, activation, bias)


def _parse_data(t, scenario_path):
    kind = t.get("kind", choice(datasets.KINDS))
    if kind == "csv":
        for key in ("samples", "noise"):
            if key in t.table:
                raise t.error(key, "does not apply to kind = \"csv\"; the file gives the samples")
        relative = t.get("path", string)
        if not relative:
            raise t.error("path", "expected the path of a CSV file, got an empty string")
        t.finish()
        path = scenario_path.parent / relative
        _inside(scenario_path, path)
        return DataSpec(kind, path=path)
    if "path" in t.table:
        raise t.error("path", f"only applies to kind = \"csv\"; kind is {kind!r}")
    samples = t.get("samples", integer(1), 200)
    noise = t.get("noise", number(0), 0.0)
    t.finish()
    return DataSpec(kind, samples, noise)


def _inside(scenario_path, data_path):
    """ScenarioError unless `data_path`, symlinks followed, lies in the directory of the scenario file.

    A scenario is data someone may hand over; it reads its own directory's files, not the reader's others.
    """
    home = scenario_path.parent.resolve()
    try:
        target = data_path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ScenarioError(scenario_path, "data.path", f"cannot be followed: {e}") from None
    if not target.is_relative_to(home):
        given = os.path.relpath(data_path, scenario_path.parent)
        raise ScenarioError(scenario_path, "data.path", f"{excerpt(given, 80)} leads outside the "
                            f"scenario's directory (to {excerpt(str(target), 80)}); a scenario reads data from "
                            "its own directory only: put the CSV file beside it")


def _parse_training(t):
    training = TrainingSpec(
        steps=t.get("steps", integer(1)),
        learning_rate=t.get("learning_rate", number(0, strict=True)),
        loss=t.get("loss", choice(tuple(LOSSES)), "mse"),
        optimizer=t.get("optimizer", choice(tuple(OPTIMIZERS)), "sgd"),
        batch_size=t.get("batch_size", integer(1), None),
        l1=t.get("l1", number(0), 0.0),
        l2=t.get("l2", number(0), 0.0),
        engine=t.get("engine", choice(ENGINES), "actor"),
    )
    t.finish()
    return training


def _parse_record(t):
    every = t.get("every", integer(1), 10)
    gifs = t.get("gifs", array_of(choice(GIFS)), GIFS)
    detail = t.get("detail", choice(DETAILS), "updates")
    t.finish()
    return RecordSpec(every, tuple(dict.fromkeys(gifs)), detail)


def _parse_action(t, index, steps):
    at = t.get("at", integer(1))
    if at > steps:
        raise t.error("at", f"step {at} is beyond the run, which ends at step {steps} (training.steps)")
    kind = t.get("action", choice(tuple(ACTIONS)))
    label = t.get("label", printable_text(), None)
    spec = ACTIONS[kind]
    params = {key: t.get(key, check, default) for key, (check, default) in spec.keys.items()}
    t.finish()
    return Action(index, at, kind, params, label or spec.label(params))


def _parse_checks(t, step=None):
    names = array_of(neuron_name)
    checks = Checks(
        where=t.path, step=step,
        loss_max=t.get("loss_max", number(0), None),
        loss_min=t.get("loss_min", number(0), None),
        accuracy_min=t.get("accuracy_min", number(0, high=1), None),
        accuracy_max=t.get("accuracy_max", number(0, high=1), None),
        dead=t.get("dead", names, ()),
        alive=t.get("alive", names, ()),
        symmetric=t.get("symmetric", array_of(array_of(neuron_name, min_length=2)), ()),
    )
    return checks


def _parse_expect(t, training):
    final = _parse_checks(t)
    at_step = []
    for s in t.tables_at("at_step"):
        step = s.get("step", integer(0, training.steps))
        at_step.append(_parse_checks(s, step))
        s.finish()
        if at_step[-1].empty:
            raise s.error(None, f"no checks; expected some of {', '.join(CHECK_KEYS)}")
    diverges = t.get("diverges", boolean, None)
    t.finish()
    if diverges and not final.empty:
        key = next(k for k in CHECK_KEYS if getattr(final, k) not in (None, ()))
        raise t.error(key, "cannot be checked at the end of a run that is expected to diverge (diverges = true)")
    for checks in (final, *at_step):
        if training.loss not in CLASSIFICATION:
            for key in ("accuracy_min", "accuracy_max"):
                if getattr(checks, key) is not None:
                    raise ScenarioError(t.file, f"{checks.where}.{key}",
                                        f"accuracy applies to classification losses ({', '.join(sorted(CLASSIFICATION))})"
                                        f"; training.loss is {training.loss!r}")
    return Expect(final, tuple(at_step), diverges)


# ---- checks that need the whole scenario -----------------------------------

STEP_BYTES = 100  # one entry in each of the History lists
# Parsing a CSV file holds its bytes and their text at once: two bytes per byte read.
CSV_TEXT_BYTES = 2


def memory_estimate(scenario, samples=None):
    """{part: bytes} a run of `scenario` needs at least: the network's objects, the values one
    batch puts on them, the data set, the per-step history.

    `samples`: the data set's size where the file does not give it (a CSV file's rows).
    """
    neurons, connections = scenario.network.size()
    samples = _samples(scenario, samples)
    batch = _batch_size(scenario, samples)
    columns = scenario.network.count("input") + scenario.network.count("output")
    return {
        "network": network_bytes(neurons, connections),
        "batch": _per_sample(scenario) * batch,
        "data": samples * columns * 8 * 2,
        "history": scenario.training.steps * STEP_BYTES,
    }


def _per_sample(scenario):
    """Bytes one sample of a batch puts on the network while training."""
    neurons, connections = scenario.network.size()
    # every neuron keeps z, a, dL/da, dL/dz; every connection a message each way, per sample of the batch
    return neurons * 4 * 8 + connections * 2 * 8


def _samples(scenario, samples=None):
    return samples if samples is not None else scenario.data.samples if scenario.data.kind != "csv" else 0


def _batch_size(scenario, samples=None):
    """Samples per step as far as is known (a CSV file's length is not, before it is read)."""
    return min(scenario.training.batch_size or math.inf, _samples(scenario, samples)) or 1


def _check_sizes(scenario, samples=None):
    parts = memory_estimate(scenario, samples)
    total, limit = sum(parts.values()), budget()
    if total <= limit:
        return
    samples = _samples(scenario, samples)
    biggest = max(parts, key=parts.get)
    if biggest == "batch" and parts["network"] + parts["batch"] // _batch_size(scenario, samples) > limit:
        biggest = "network"  # too big even for one sample at a time: the network is what to shrink
    neurons, connections = scenario.network.size()
    network = f"a network of {neurons:,} neurons and {connections:,} connections"
    batch = scenario.training.batch_size
    data_key = "data.path" if scenario.data.kind == "csv" else "data.samples"
    where, what = {
        "network": ("network.layers" if scenario.network.layers else "network.neurons", network),
        "batch": ("training.batch_size", f"{network} with batches of {batch:,} samples") if batch else
                 (data_key, f"{network} with the whole data set of {samples:,} samples as one batch"),
        "data": (data_key, f"{samples:,} samples"),
        "history": ("training.steps", f"{scenario.training.steps:,} steps"),
    }[biggest]
    raise ScenarioError(scenario.path, where, f"too big: {what} needs about {bytes_text(total)} of memory; "
                        f"this machine has {bytes_text(limit * 2)} available")


def _csv_bytes(scenario):
    """The most bytes of CSV data `scenario` can afford to read, with how many rows they could hold at most.

    A row of n numbers takes at least 2n bytes ("0," per number, the last one's
    comma a line end), so the bytes read bound the rows before any is parsed.
    """
    parts, batch = memory_estimate(scenario, 0), scenario.training.batch_size
    fixed = parts["network"] + parts["history"] + (_per_sample(scenario) * batch if batch else 0)
    columns = scenario.network.count("input") + scenario.network.count("output")
    # without a batch size the whole data set is one batch: every row costs its share of it too
    per_row = columns * 8 * 2 + (0 if batch else _per_sample(scenario))
    per_byte = CSV_TEXT_BYTES + per_row / (2 * columns)
    return max(0, min(datasets.MAX_CSV_BYTES, int((budget() - fixed) / per_byte)))


def _check_drawable(scenario):
    """The GIFs a layered network asks for fit in a picture (explicit neurons are checked when drawn)."""
    layers = scenario.network.layers
    if layers and scenario.record.gifs:
        from ..viz.layout import geometry
        try:
            geometry(list(layers), surface=layers[0] == 2)
        except SimnetError as e:
            raise ScenarioError(scenario.path, "network.layers", f"{e}; set [record] gifs = [] to run "
                                "without GIFs") from None


def _check_fit(scenario):
    """The data set, the loss and the network's inputs and outputs fit together."""
    network = scenario.network
    where = "network.layers" if network.layers else "network.neurons"
    inputs, outputs = network.names("input"), network.names("output")
    if not inputs or not outputs:
        raise ScenarioError(scenario.path, where, f"the network needs at least one input and one output neuron "
                            f"(it has {len(inputs)} inputs and {len(outputs)} outputs)")
    if scenario.data.kind != "csv":
        _check_builtin_fit(scenario, inputs, outputs)
    _check_loss(scenario)


def _check_loss(scenario):
    """ScenarioError at training.loss if the output neurons cannot serve the loss; a warning if oddly."""
    outputs = scenario.network.outputs()
    error, odd = loss_fit(scenario.training.loss, [(name, activation) for _, name, activation in outputs])
    keys = ", ".join(dict.fromkeys(key for key, _, _ in outputs))
    if error:
        raise ScenarioError(scenario.path, "training.loss", f"{error} ({keys})")
    for why in odd:
        warnings.warn(f"{scenario.path}: training.loss: {why} ({keys})", SimnetWarning, stacklevel=3)


def _check_builtin_fit(scenario, inputs, outputs):
    """A built-in data set's columns and kind of labels fit the network and the loss."""
    network, kind, loss = scenario.network, scenario.data.kind, scenario.training.loss
    where = "network.layers" if network.layers else "network.neurons"
    columns, classes = datasets.SHAPES[kind]
    if not classes and loss in CLASSIFICATION:
        raise ScenarioError(scenario.path, "training.loss", f"{loss!r} is a classification loss, but data kind "
                            f"{kind!r} is a regression set; expected mse")
    wanted = 2 if loss == "cross_entropy" else 1
    if len(inputs) != columns:
        raise ScenarioError(scenario.path, where, f"data kind {kind!r} has {columns} input column"
                            f"{'s' * (columns > 1)}, but the network has {len(inputs)} input neurons")
    if len(outputs) != wanted:
        why = ("cross_entropy needs one output per class (2)" if loss == "cross_entropy"
               else f"data kind {kind!r} has one target column")
        raise ScenarioError(scenario.path, where, f"{why}, but the network has {len(outputs)} output neurons")


def _check_timeline(scenario):
    """Build the network and play the script on it in order; every name must exist when it is needed.

    Expectations are checked for names at the step they look at: the state
    after step k is the one before step k+1's actions.
    """
    net = scenario.build_network()
    moments = [((a.at, 1, a.index), a) for a in scenario.script]
    moments += [((c.step + 1, 0, i), c) for i, c in enumerate(scenario.expect.at_step)]
    moments.append(((scenario.training.steps + 1, 0, -1), scenario.expect.final))
    for _, item in sorted(moments, key=lambda m: m[0]):
        if isinstance(item, Action):
            item.perform(net, scenario.seed, scenario.path)
        else:
            when = "at the end of the run" if item.step is None else f"after step {item.step}"
            for where, name in item.neuron_names():
                if name not in net:
                    raise ScenarioError(scenario.path, where, f"unknown neuron {name!r}: it does not exist {when}")
                key = where.rsplit(".", 1)[1]
                activation = net.neurons[name].activation
                if key.startswith(("dead", "alive")) and activation != "relu":
                    raise ScenarioError(scenario.path, where, f"neuron {name!r} is a {activation} neuron; "
                                        "only relu neurons can be dead (never active on the data set)")


# ---- running ---------------------------------------------------------------

@dataclass
class CheckResult:
    where: str  # key path of the expectation
    ok: bool
    message: str
    actual: object = None  # the value checked (a loss, an accuracy, a neuron's dead flag...)


@dataclass
class Outcome:
    """What running a scenario did: the trained network, its history, the final evaluation, the checks."""

    scenario: Scenario
    network: Network
    history: object
    loss: float | None  # on the whole data set, after the last step (None if the run diverged)
    accuracy: float | None
    diverged: DivergenceError | None
    results: list
    wall_time: float

    @property
    def passed(self):
        return all(r.ok for r in self.results)

    @property
    def steps(self):
        return self.network.step


def evaluate(net, X, Y, loss):
    """(loss, accuracy, activations) of `net` on the whole data set, without emitting or touching state."""
    # a diverging network overflows here; the caller tells that from the non-finite loss
    with np.errstate(all="ignore"):
        values = probe(net, X)
        P = np.column_stack([values[n.name] for n in net.outputs])
        L = float(loss_function(loss)(P, Y)[0])
    acc = accuracy_of(loss, P, Y) if loss in CLASSIFICATION else None
    return L, acc, values


def check(checks, net, X, Y, loss, evaluation=None):
    """CheckResults of `checks` against `net`'s current state on the data set.

    evaluation: what ``evaluate(net, X, Y, loss)`` gives, if the caller has it already.
    """
    L, acc, values = evaluation or evaluate(net, X, Y, loss)
    when = "" if checks.step is None else f" after step {checks.step}"
    out = []

    def bound(key, actual, limit, holds, op, fmt):
        if limit is not None:
            ok = actual is not None and math.isfinite(actual) and holds(actual, limit)
            shown = "none" if actual is None else fmt(actual)
            out.append(CheckResult(f"{checks.where}.{key}", ok,
                                   f"{key.split('_')[0]}{when} {shown} {op if ok else _negate[op]} {fmt(limit)}",
                                   actual))

    def percent(x):
        return f"{x:.1%}"

    def plain(x):
        return f"{x:.4g}"

    bound("loss_max", L, checks.loss_max, lambda a, b: a <= b, "<=", plain)
    bound("loss_min", L, checks.loss_min, lambda a, b: a >= b, ">=", plain)
    bound("accuracy_min", acc, checks.accuracy_min, lambda a, b: a >= b, ">=", percent)
    bound("accuracy_max", acc, checks.accuracy_max, lambda a, b: a <= b, "<=", percent)
    for key, want_dead in (("dead", True), ("alive", False)):
        for i, name in enumerate(getattr(checks, key)):
            dead = not np.any(values[name] > 0)
            ok = dead == want_dead
            state = "dead (never active on the data set)" if dead else (
                f"active on {np.count_nonzero(values[name] > 0)} of {len(X)} samples")
            out.append(CheckResult(f"{checks.where}.{key}[{i}]", ok, f"{name}{when} is {state}", dead))
    for g, group in enumerate(checks.symmetric):
        difference = _asymmetry(net, group)
        out.append(CheckResult(f"{checks.where}.symmetric[{g}]", difference <= 1e-9,
                               f"{', '.join(group)}{when} " + ("interchangeable" if difference <= 1e-9 else
                                                               f"differ by up to {difference:.3g}"),
                               difference))
    return out


_negate = {"<=": ">", ">=": "<"}


def _asymmetry(net, group):
    """Largest difference between the first neuron of `group` and each other: bias, weights in and out.

    Infinite when they are not even wired alike (different sources or targets).
    """
    def signature(name):
        n = net.neurons[name]
        return n.bias, {c.source.name: c.weight for c in n.incoming}, {c.target.name: c.weight for c in n.outgoing}

    bias, incoming, outgoing = signature(group[0])
    worst = 0.0
    for name in group[1:]:
        other_bias, other_in, other_out = signature(name)
        if other_in.keys() != incoming.keys() or other_out.keys() != outgoing.keys():
            return math.inf
        worst = max(worst, abs(bias - other_bias), *(abs(w - other_in[k]) for k, w in incoming.items()),
                    *(abs(w - other_out[k]) for k, w in outgoing.items()))
    return worst


class Timeline:
    """The `before_step` of a scenario's run: step checks first, then the script actions due at this step."""

    def __init__(self, scenario, X, Y):
        self.scenario, self.X, self.Y = scenario, X, Y
        self.actions = {}
        for action in scenario.script:
            self.actions.setdefault(action.at, []).append(action)
        self.checks = {}
        for checks in scenario.expect.at_step:
            self.checks.setdefault(checks.step, []).append(checks)
        self.results = []

    def check_state_after(self, net, step):
        for checks in self.checks.get(step, ()):
            self.results += check(checks, net, self.X, self.Y, self.scenario.training.loss)

    def __call__(self, net, step):
        self.check_state_after(net, step - 1)
        for action in self.actions.get(step, ()):
            if net.bus:
                net.bus.emit(step, "script", "action",
                             data={"action": action.action, "label": action.label, "params": dict(action.params)})
            action.perform(net, self.scenario.seed, self.scenario.path)


def execute(scenario, *, data=None, recorder=None, progress=None):
    """Train `scenario`'s network on its data set and check its expectations; returns an Outcome.

    `data` is (X, Y) if already built; `recorder` and `progress` go to
    :meth:`Network.train`.  A run that diverges returns (with `.diverged`)
    instead of raising.
    """
    X, Y = data if data is not None else scenario.dataset()
    net = scenario.build_network()
    timeline = Timeline(scenario, X, Y)
    training = scenario.training
    start = time.perf_counter()
    diverged = None
    try:
        with warnings.catch_warnings():
            # the pairing of loss and outputs was warned about when the scenario was loaded
            warnings.simplefilter("ignore", SimnetWarning)
            history = net.train(X, Y, steps=training.steps, lr=training.learning_rate, loss=training.loss,
                                optimizer=training.optimizer, batch_size=training.batch_size, recorder=recorder,
                                engine=training.engine, l1=training.l1, l2=training.l2,
                                before_step=timeline, progress=progress)
    except DivergenceError as e:
        diverged, history = e, e.history
    wall_time = time.perf_counter() - start
    results = timeline.results
    loss = accuracy = None
    if diverged is None:
        evaluation = evaluate(net, X, Y, training.loss)
        if not math.isfinite(evaluation[0]):
            # the last update left weights that overflow on the data set: the run diverged at its end
            diverged = _diverged_at_the_end(net, evaluation)
            diverged.history = history
    if diverged is None:
        timeline.check_state_after(net, net.step)
        loss, accuracy, _ = evaluation
        results += check(scenario.expect.final, net, X, Y, training.loss, evaluation)
    results += _ending_results(scenario, diverged, history, net.step)
    return Outcome(scenario, net, history, loss, accuracy, diverged, results, wall_time)


def _diverged_at_the_end(net, evaluation):
    """The DivergenceError of a network whose state after its last step gives a non-finite loss on the data set."""
    _, _, values = evaluation
    where = next((f"neuron {n.name}" for n in firing_order(net) if not np.all(np.isfinite(values[n.name]))),
                 "the loss on the whole data set")
    return DivergenceError(net.step, where, "activation" if where.startswith("neuron") else "value")


def _ending_results(scenario, diverged, history, last_step):
    """Results about how the run ended: divergence (expected or not), interruption, checks never reached."""
    out = []
    if diverged is not None:
        stop, reason = diverged.step, f"the run diverged at step {diverged.step}"
    elif history.interrupted:
        stop, reason = last_step + 1, f"the run was interrupted after step {last_step}"
        out.append(CheckResult("expect", False, f"not checked: {reason}"))
    else:
        stop = None
    if stop is not None:
        out += [CheckResult(c.where, False, f"not checked: {reason}, before the state after step {c.step}")
                for c in scenario.expect.at_step if c.step >= stop]
    if diverged is not None:
        out.append(CheckResult("expect.diverges", bool(scenario.expect.diverges),
                               f"{reason}: {diverged.quantity} of {diverged.where} is not finite"))
    elif scenario.expect.diverges:
        out.append(CheckResult("expect.diverges", False, f"the run did not diverge in {len(history)} steps"))
    return out
