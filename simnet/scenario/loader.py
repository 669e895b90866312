"""Loading scenario files: TOML in, a validated :class:`~simnet.scenario.model.Scenario` out.

:func:`load` reads a scenario file and checks all of it before anything runs:
unknown keys, wrong types, values out of range, names that will not exist at
the step a script action or an expectation needs them, and sizes that would
not fit in memory.  Every problem is a :class:`ScenarioError` naming the
file, the key path (``training.learning_rate``, ``script[2].name``; array
entries count from 0) and what was found against what is allowed.
Scenario files are data: nothing in them is ever executed.
"""
import re
import tomllib
import warnings
from pathlib import Path

from ..core.functions import ACTIVATIONS, CLASSIFICATION, LOSSES, SimnetWarning, loss_fit
from ..core.graph import INIT_RULES, MAX_SEED, ROLES
from ..core.optim import OPTIMIZERS
from ..errors import ScenarioError
from . import datasets
from .actions import ACTIONS
from .model import (ENGINES, GIFS, Action, Checks, CHECK_KEYS, ConnectionSpec, DataSpec, Expect, NetworkSpec,
                    NeuronSpec, RecordSpec, Scenario, SweepSpec, TrainingSpec)
from . import overrides as overriding
from .reading import confined, read_bounded
from .sizes import check_sizes
from .tables import (Table, array_of, boolean, choice, integer, neuron_name, number, printable_text,
                     scenario_name, string)

__all__ = ["DETAILS", "MAX_FILE_BYTES", "load", "loads", "recorded", "script_action"]

DETAILS = ("updates", "messages")
MAX_FILE_BYTES = 4 * 2**20


def load(path, overrides=()):
    """The Scenario in the TOML file at `path` with `overrides` set; ScenarioError saying what is wrong otherwise.

    overrides: (dotted key path, value) pairs, see :mod:`simnet.scenario.overrides`.
    """
    path = Path(path)
    return loads(read_bounded(path, MAX_FILE_BYTES, "a scenario file"), path, overrides)


def loads(raw, path="<scenario>", overrides=()):
    """The Scenario in TOML text or bytes `raw`; `path` names it in errors and anchors relative paths.

    With `overrides` ((key path, value) pairs) the scenario's text is the
    effective one: the document with them set, written out again as TOML.
    """
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
    overrides = tuple(overrides)
    if overrides:
        document = overriding.apply(document, overrides, path)
        raw = overriding.dumps(document)
    scenario = _parse(path, raw, Table(path, "", document))
    check_sizes(scenario)
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
    expect = _parse_expect(top.table_at("expect"), training, data)
    sweep = _parse_sweep(top.table_at("sweep")) if "sweep" in top.table else None
    top.finish()
    return Scenario(path, text, name, description, seed, network, data, training, record, script, expect, sweep)


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
    held_out = _parse_held_out(t)
    if kind == "csv":
        for key in ("samples", "noise", "classes"):
            if key in t.table:
                raise t.error(key, "does not apply to kind = \"csv\"; the file gives the samples")
        relative = t.get("path", string)
        if not relative:
            raise t.error("path", "expected the path of a CSV file, got an empty string")
        test_relative = t.get("test_path", string, None)
        if test_relative == "":
            raise t.error("test_path", "expected the path of a CSV file of held-out samples, got an empty string")
        if test_relative is not None and held_out["test_fraction"]:
            raise t.error("test_path", "give either test_fraction or test_path, not both")
        image = t.get("image", array_of(integer(1), min_length=2), None)
        if image is not None and len(image) != 2:
            raise t.error("image", f"expected [rows, columns], got {len(image)} numbers")
        t.finish()
        path = scenario_path.parent / relative
        confined(scenario_path, path)
        test_path = None
        if test_relative is not None:
            test_path = scenario_path.parent / test_relative
            confined(scenario_path, test_path)
        return DataSpec(kind, path=path, test_path=test_path, image=image and tuple(image), **held_out)
    for key in ("path", "test_path", "image"):
        if key in t.table:
            raise t.error(key, f"only applies to kind = \"csv\"; kind is {kind!r}")
    if kind in datasets.REAL:
        for key in ("samples", "noise", "classes"):
            if key in t.table:
                raise t.error(key, f"does not apply to kind = {kind!r}, a fixed data set")
        t.finish()
        X, _ = datasets.real(kind)
        return DataSpec(kind, len(X), classes=datasets.REAL[kind][1], image=datasets.IMAGES.get(kind), **held_out)
    samples = t.get("samples", integer(1), 200)
    noise = t.get("noise", number(0), 0.0)
    classes = t.get("classes", integer(2, 64), 2)
    if classes != 2 and kind not in datasets.MANY_CLASSES:
        raise t.error("classes", f"data kind {kind!r} has two classes; {', '.join(datasets.MANY_CLASSES)} "
                                 "can have more")
    t.finish()
    return DataSpec(kind, samples, noise, classes=classes, **held_out)


def _parse_held_out(t):
    """test_fraction and standardize, which apply to every kind of data."""
    fraction = t.get("test_fraction", number(0, high=0.9), 0.0)
    return {"test_fraction": float(fraction), "standardize": t.get("standardize", boolean, False)}


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
    if at > steps + 1:
        raise t.error("at", f"step {at} is beyond the run, which ends at step {steps} (training.steps; "
                      f"at = {steps + 1} acts on the network it ends with)")
    kind = t.get("action", choice(tuple(ACTIONS)))
    label = t.get("label", printable_text(), None)
    spec = ACTIONS[kind]
    params = {key: t.get(key, check, default) for key, (check, default) in spec.keys.items()}
    t.finish()
    return Action(index, at, kind, params, label or spec.label(params))


def script_action(entry, index, at, file="<action>"):
    """The Action a ``[[script]]`` entry `entry` (a dict, without ``at``) would be as entry `index` of a
    file, taking effect before step `at`; ScenarioError at ``script[index].<key>`` for a bad key or value.

    Checked exactly as the loader checks the file's own entries: an action given
    this way and the same entry in a file are the same Action.

    >>> script_action({"action": "set_learning_rate", "value": 0.1}, 0, 5).label
    'lr = 0.1'
    """
    if not isinstance(entry, dict):
        raise ScenarioError(file, f"script[{index}]", "expected a table of an action's keys")
    if "at" in entry:
        raise ScenarioError(file, f"script[{index}].at", "is where the action takes effect: the next step, "
                            "not given with the action")
    return _parse_action(Table(file, f"script[{index}]", {**entry, "at": at}), index, at)


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
        test_loss_max=t.get("test_loss_max", number(0), None),
        test_accuracy_min=t.get("test_accuracy_min", number(0, high=1), None),
    )
    return checks


def _parse_expect(t, training, data):
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
        for key in ("test_loss_max", "test_accuracy_min"):
            if getattr(checks, key) is not None and not data.held_out:
                raise ScenarioError(t.file, f"{checks.where}.{key}", "there is no held-out set to check; "
                                    "set [data] test_fraction (or test_path for csv)")
        if training.loss not in CLASSIFICATION:
            for key in ("accuracy_min", "accuracy_max", "test_accuracy_min"):
                if getattr(checks, key) is not None:
                    raise ScenarioError(t.file, f"{checks.where}.{key}",
                                        f"accuracy applies to classification losses ({', '.join(sorted(CLASSIFICATION))})"
                                        f"; training.loss is {training.loss!r}")
    return Expect(final, tuple(at_step), diverges)


def _parse_sweep(t):
    """[sweep]: `seeds` (a count, or an array of seeds) and [sweep.grid] (dotted key path -> array of values)."""
    seeds = t.get("seeds", _seeds, None)
    grid_table = t.table_at("grid")
    grid = []
    for key, values in _flattened(grid_table.table):
        where = grid_table.where(f'"{key}"' if "." in key or "[" in key else key)
        try:
            overriding.key_parts(key)
        except ScenarioError as e:
            raise ScenarioError(t.file, where, e.why) from None
        if not isinstance(values, list):
            raise ScenarioError(t.file, where, f"expected an array of the values to sweep, got {values!r}"[:200])
        if not values:
            raise ScenarioError(t.file, where, "is empty; expected at least one value to sweep")
        if key == "seed":
            raise ScenarioError(t.file, where, "seeds are swept with [sweep] seeds, not in the grid")
        grid.append((key, tuple(values)))
    grid_table.used.update(grid_table.table)
    t.finish()
    return SweepSpec(seeds, tuple(grid))


def _flattened(table, prefix=""):
    """(dotted key, value) of a table whose TOML dotted keys made nested tables: training.learning_rate = [...]."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _seeds(value):
    """[sweep] seeds: a count n (seeds 0 to n-1) or a non-empty array of distinct seeds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(integer(1, 100_000)(value)))
    seeds = array_of(integer(0, MAX_SEED), min_length=1)(value)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seed {next(s for s in seeds if seeds.count(s) > 1)} is given twice")
    return seeds


_seeds.expects = "a number of seeds or an array of seeds"


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
    elif scenario.data.image is not None and scenario.data.image[0] * scenario.data.image[1] != len(inputs):
        rows, cols = scenario.data.image
        raise ScenarioError(scenario.path, "data.image", f"a {rows}×{cols} image has {rows * cols} pixels, but the "
                            f"network has {len(inputs)} input neurons")
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
    network, kind, loss, classes = scenario.network, scenario.data.kind, scenario.training.loss, scenario.data.classes
    where = "network.layers" if network.layers else "network.neurons"
    columns, labelled = datasets.SHAPES[kind]
    if not labelled and loss in CLASSIFICATION:
        raise ScenarioError(scenario.path, "training.loss", f"{loss!r} is a classification loss, but data kind "
                            f"{kind!r} is a regression set; expected mse")
    if classes > 2 and loss != "cross_entropy":
        key = "data.classes" if kind in datasets.MANY_CLASSES else "training.loss"
        raise ScenarioError(scenario.path, key, f"{classes} classes need cross_entropy over {classes} outputs, "
                            f"one per class; training.loss is {loss!r}")
    wanted = classes if loss == "cross_entropy" else 1
    if len(inputs) != columns:
        raise ScenarioError(scenario.path, where, f"data kind {kind!r} has {columns} input column"
                            f"{'s' * (columns > 1)}, but the network has {len(inputs)} input neurons")
    if len(outputs) != wanted:
        why = (f"cross_entropy needs one output per class ({classes})" if loss == "cross_entropy"
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
    # the final expectations look at the network the run ends with, after the actions past its last step
    moments.append(((scenario.training.steps + 1, 2, -1), scenario.expect.final))
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
