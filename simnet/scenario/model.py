"""The typed scenario: frozen dataclasses for the network, the data, training, recording, the script
and the expectations, as :func:`simnet.scenario.load` builds them from a checked file."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.functions import class_index_problem, label_problem, one_hot
from ..core.graph import MAX_SEED, Network
from ..core.memory import budget, bytes_text, layered_size
from ..errors import ScenarioError
from . import datasets
from .actions import ACTIONS, perform
from .reading import confined
from .sizes import check_sizes, csv_bytes
from .tables import choice, integer

__all__ = ["CHECK_KEYS", "ENGINES", "GIFS", "Action", "Checks", "ConnectionSpec", "DataParts", "DataSpec", "Expect",
           "NetworkSpec", "NeuronSpec", "RecordSpec", "Scenario", "SweepSpec", "TrainingSpec"]

ENGINES = ("actor", "fast")
GIFS = ("activations", "weights")


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
    classes: int = 2  # spiral, gaussians, circle: how many classes to draw; iris and digits: theirs
    test_fraction: float = 0.0  # held out of training, drawn by the scenario's seed
    standardize: bool = False  # inputs to mean 0 and scale 1, as measured on the training part
    test_path: Path | None = None  # kind = "csv": a held-out set of its own
    image: tuple | None = None  # (rows, columns) when the inputs are the pixels of an image

    @property
    def held_out(self):
        """True if the run evaluates a held-out test set."""
        return self.test_fraction > 0 or self.test_path is not None


@dataclass(frozen=True)
class DataParts:
    """A scenario's data as a run uses it: the training part, the held-out part (or None), the standardisation."""

    train: tuple  # (X, Y)
    test: tuple | None  # (X, Y)
    mean: np.ndarray | None = None  # what standardize subtracted from each input, None without it
    scale: np.ndarray | None = None  # what it then divided by


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
        perform(file, ((f"{self.where}.{key}", op) for key, op in self.operations(net, seed)),
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
    test_loss_max: float | None = None  # on the held-out set
    test_accuracy_min: float | None = None

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


CHECK_KEYS = ("loss_max", "loss_min", "accuracy_min", "accuracy_max", "dead", "alive", "symmetric", "test_loss_max",
              "test_accuracy_min")


@dataclass(frozen=True)
class Expect:
    final: Checks
    at_step: tuple = ()
    diverges: bool | None = None

    @property
    def empty(self):
        return self.final.empty and not self.at_step and self.diverges is None


@dataclass(frozen=True)
class SweepSpec:
    """A scenario's [sweep] table: the seeds (None: the scenario's own) and the grid, (key path, values) pairs."""

    seeds: tuple | None = None
    grid: tuple = ()


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
    sweep: SweepSpec | None = None

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
        check_sizes(sc)
        return sc

    def build_network(self):
        """A fresh Network as the scenario describes it, before any step."""
        return perform(self.path, self.network.operations(self.seed))

    def dataset(self):
        """(X, Y) for training: X (samples, inputs) in input-neuron order, Y (samples, outputs).

        Built-in sets are drawn from the scenario's seed; `cross_entropy` gets
        its labels one-hot.  With a held-out set, the training part only; see
        :meth:`parts`.  ScenarioError if a CSV file does not fit the network.
        """
        return self.parts().train

    def parts(self):
        """The DataParts of this scenario: training and held-out (X, Y), standardised as the scenario says."""
        if self.data.kind == "csv":
            X, Y = self._read_csv(self.data.path, "data.path")
            test = self._read_csv(self.data.test_path, "data.test_path") if self.data.test_path else None
        else:
            X, y = datasets.generate(self.data.kind, self.data.samples, self.data.noise, self.seed, self.data.classes)
            outputs = self.network.count("output")
            Y = one_hot(y, outputs) if self.training.loss == "cross_entropy" else y
            test = None
        if self.data.test_fraction > 0:
            train, held = datasets.split(len(X), self.data.test_fraction, self.seed)
            X, Y, test = X[train], Y[train], (X[held], Y[held])
        if self.training.batch_size is not None and self.training.batch_size > len(X):
            raise ScenarioError(self.path, "training.batch_size",
                                f"{self.training.batch_size} is larger than the "
                                f"{'training part of the ' * self.data.held_out}data set ({len(X)} samples)")
        if not self.data.standardize:
            return DataParts((X, Y), test)
        mean = X.mean(axis=0)
        spread = X.std(axis=0)
        # an input that never changes (a digit's corner pixel) stays 0 rather than dividing by 0
        scale = np.where(spread > 0, spread, 1.0)
        test = None if test is None else ((test[0] - mean) / scale, test[1])
        return DataParts(((X - mean) / scale, Y), test, mean, scale)

    def _read_csv(self, path, key):
        """(X, Y) of the csv file at `path` (the scenario's `key`): one column per output, or a `label` column."""
        inputs, outputs = self.network.names("input"), self.network.names("output")
        # checked again: the file system may have changed since the scenario was loaded
        confined(self.path, path)
        if not path.is_file():
            raise ScenarioError(self.path, key,
                                f"{str(path)!r} " + ("is not a file" if path.exists() else "does not exist"))
        affordable = csv_bytes(self)
        labelled = self._labelled(path)
        columns = inputs + (["label"] if labelled else outputs)

        def too_big(size):
            found = f"{size:,} bytes" if size is not None else f"more than {affordable:,} bytes"
            return (f"is {found}; with this network and training, at most {affordable:,} bytes of CSV data "
                    f"fit in the memory this machine has available ({bytes_text(budget() * 2)})")

        def labels(table):
            # the label columns come after the inputs: report the column by its place in the table
            if labelled:
                problem = class_index_problem(table[:, -1], len(outputs))
                return problem and (problem[0], len(inputs), problem[1])
            problem = label_problem(self.training.loss, table[:, len(inputs):])
            return problem and (problem[0], None if problem[1] is None else len(inputs) + problem[1], problem[2])

        table = datasets.read_csv(path, columns, max_bytes=affordable, too_big=too_big, check=labels)
        check_sizes(self, len(table))
        X, Y = table[:, :len(inputs)], table[:, len(inputs):]
        return X, (one_hot(Y, len(outputs)) if labelled else Y)

    def _labelled(self, path):
        """True if the csv file's header has a `label` column of class indices (for cross_entropy over K outputs)."""
        if self.training.loss != "cross_entropy" or "label" in self.network.names("output"):
            return False
        with open(path, "rb") as f:
            header = f.readline(1 << 16).decode("utf-8", "replace")
        return "label" in [name.strip() for name in header.split(",")]
