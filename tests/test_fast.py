"""The fast engine against the actor engine: same events, same numbers, same network at the end.

Random DAGs (skip connections, mixed activations, frozen connections, every
loss and optimizer, L1/L2, mini-batches) are trained by both engines, with
scripted topology and parameter changes between steps; the two event streams
must agree event by event (seq, kind, subject; numbers within 1e-12 of the
event's largest magnitude, since the engines add up in different orders) and
so must the networks they leave behind.
"""
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import simnet as sn
from simnet.engines import fast
from simnet.engines.actor import ActorEngine
from simnet.core.events import KINDS, EventLog
from simnet.engines.fast import FastEngine
from simnet.core.functions import ACTIVATIONS, LOSSES
from simnet.core.optim import OPTIMIZERS, optimizer

# the random networks pair losses with any output activation, odd pairings included, on purpose
pytestmark = pytest.mark.filterwarnings("ignore::simnet.core.functions.SimnetWarning")
RTOL = 1e-12


def fed_from_inputs(net):
    """Whether every neuron but the inputs has an incoming connection.

    The random networks keep to this.  A neuron with no incoming connection has
    the same activation for every sample, and with hinge loss (whose dL/dP is
    ±1/batch) a weight out of it can get a gradient that is zero in exact
    arithmetic but left at ±1e-19 by a fused multiply-add, with a different sign
    in each engine's order of summation; Adam, which divides a gradient by its
    own size, then moves that weight by up to lr·1e-19/eps in either direction.
    That is rounding amplified, not a disagreement between the engines.
    """
    return all(n.incoming for n in net.neurons.values() if n.role != "input")


@st.composite
def dags(draw, min_outputs=1):
    """A random DAG: inputs, hidden neurons in some topological order, outputs, forward edges into every neuron."""
    n_in, n_hidden, n_out = draw(st.integers(1, 4)), draw(st.integers(0, 12)), draw(st.integers(min_outputs, 3))
    inputs = [f"x{i}" for i in range(n_in)]
    hidden = [f"h{i}" for i in range(n_hidden)]
    outputs = [f"y{i}" for i in range(n_out)]
    edges = []
    for j, target in enumerate(hidden + outputs):
        sources = inputs + hidden[:j]
        chosen = draw(st.lists(st.booleans(), min_size=len(sources), max_size=len(sources)))
        chosen[draw(st.integers(0, len(sources) - 1))] = True  # every neuron is fed: see fed_from_inputs
        edges += [(source, target) for source, keep in zip(sources, chosen) if keep]
    return {
        "neurons": draw(st.permutations(inputs + hidden + outputs)),  # insertion order
        "edges": draw(st.permutations(edges)),
        "activations": draw(st.lists(st.sampled_from(sorted(ACTIVATIONS)), min_size=n_hidden + n_out,
                                     max_size=n_hidden + n_out)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "outputs": outputs,
    }


ACTIONS = ("add", "disconnect", "remove", "set_weight", "freeze", "activation", "bias", "lr")


@st.composite
def runs(draw):
    loss = draw(st.sampled_from(sorted(LOSSES)))
    spec = draw(dags(min_outputs=2 if loss == "cross_entropy" else 1))  # one output per class
    steps = draw(st.integers(1, 6))
    return {
        "spec": spec,
        "loss": loss,
        "optimizer": draw(st.sampled_from(sorted(OPTIMIZERS))),
        "l1": draw(st.sampled_from([0.0, 1e-3])),
        "l2": draw(st.sampled_from([0.0, 1e-2])),
        "samples": draw(st.integers(1, 9)),
        "batch_size": draw(st.one_of(st.none(), st.integers(1, 9))),
        "steps": steps,
        "script": draw(st.lists(st.tuples(st.integers(1, steps), st.sampled_from(ACTIONS), st.integers(0, 10**6)),
                                max_size=4)),
    }


def build(spec, loss):
    rng = np.random.default_rng(spec["seed"])
    net = sn.Network(seed=spec["seed"])
    activations = iter(spec["activations"])
    for name in spec["neurons"]:
        role = {"x": "input", "h": "hidden", "y": "output"}[name[0]]
        activation = "linear" if role == "input" else next(activations)
        if role == "output" and loss == "bce":
            activation = "sigmoid"  # bce wants probabilities
        elif role == "output" and loss == "hinge" and activation in ("relu", "sigmoid"):
            activation = "linear"  # hinge wants outputs that can be negative
        net.add_neuron(name, role=role, activation=activation, bias=float(rng.normal(0, 0.3)))
    for source, target in spec["edges"]:
        net.connect(source, target, weight=float(rng.normal(0, 0.7)), frozen=bool(rng.random() < 0.15))
    return net


def data(spec, loss, samples):
    rng = np.random.default_rng(spec["seed"] + 1)
    n_in, n_out = sum(n[0] == "x" for n in spec["neurons"]), len(spec["outputs"])
    X = rng.normal(0, 1, (samples, n_in))
    if loss == "mse":
        Y = rng.normal(0, 1, (samples, n_out))
    elif loss == "cross_entropy":
        Y = np.eye(n_out)[rng.integers(0, n_out, samples)]
    else:
        Y = (rng.random((samples, n_out)) < 0.5).astype(float)
    return X, Y


def act(net, action, pick):
    """One scripted change, chosen by `pick` among what the network has; the same on either engine's copy."""
    hidden = [n for n in net.neurons.values() if n.role == "hidden"]
    if action == "add":
        name = f"new{pick}"
        if name not in net:
            net.add_neuron(name, activation=sorted(ACTIVATIONS)[pick % len(ACTIVATIONS)], bias=0.1)
            sources = [n for n in net.neurons.values() if n.role != "output" and n.name != name]
            net.connect(sources[pick % len(sources)], name)  # weight from the init rule
            # into outputs only, so no cycle can close
            net.connect(name, net.outputs[pick % len(net.outputs)], weight=0.5)
    elif action == "disconnect":
        spare = [c for c in net.connections if len(c.target.incoming) > 1]  # keeps every neuron fed
        if spare:
            c = spare[pick % len(spare)]
            net.disconnect(c.source, c.target)
    elif action == "remove":
        spare = [n for n in hidden if all(len(c.target.incoming) > 1 for c in n.outgoing)]
        if spare:
            net.remove_neuron(spare[pick % len(spare)].name)
    elif action == "set_weight" and net.connections:
        c = net.connections[pick % len(net.connections)]
        net.set_weight(c.source, c.target, c.weight * 0.5 + 0.01)
    elif action == "freeze" and net.connections:
        c = net.connections[pick % len(net.connections)]
        net.set_frozen(c.source, c.target, not c.frozen)
    elif action == "activation" and hidden:
        hidden[pick % len(hidden)].activation = sorted(ACTIVATIONS)[pick % len(ACTIVATIONS)]
    elif action == "bias":
        n = list(net.neurons.values())[pick % len(net.neurons)]
        net.set_bias(n.name, n.bias - 0.2)
    elif action == "lr":
        net.set_learning_rate(net.learning_rate * 0.5)


def train(run, engine, log=None):
    """Train a fresh copy of the run's network with `engine`; returns (network, events, readings)."""
    spec = run["spec"]
    net = build(spec, run["loss"])
    X, Y = data(spec, run["loss"], run["samples"])
    log = EventLog() if log is None else log
    readings = []  # what user code sees of the network before each step

    def before_step(net, step):
        readings.append(([(c.key, c.weight, c.grad) for c in net.connections],
                         [(n.name, n.bias, n.value) for n in net.neurons.values()]))
        for at, action, pick in run["script"]:
            if at == step:
                act(net, action, pick)
        assert fed_from_inputs(net)

    net.train(X, Y, steps=run["steps"], lr=0.05, loss=run["loss"], optimizer=run["optimizer"],
              batch_size=run["batch_size"], l1=run["l1"], l2=run["l2"], recorder=log, engine=engine,
              before_step=before_step)
    return net, log.events, readings


def magnitude(value):
    if isinstance(value, np.ndarray):
        return float(np.abs(value).max(initial=0.0))
    if isinstance(value, float):
        return abs(value)
    return 0.0


def same_numbers(a, b, scale):
    """a and b equal, numbers within RTOL of `scale` (NaN matching NaN)."""
    if isinstance(a, (np.ndarray, float)):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and bool(np.all((np.abs(a - b) <= RTOL * scale) | (np.isnan(a) & np.isnan(b))
                                                  | (a == b)))
    return a == b


def scales(records, fields):
    """The largest magnitude of each field over the records, per group.

    Numbers are compared relative to these: a z that nearly cancels out (1e-4
    out of terms near 1) keeps the rounding of its terms, so it is measured
    against the z of its step, not against itself.
    """
    largest = {}
    for group, values in records:
        for field, value in zip(fields(group), values):
            largest[field] = max(largest.get(field, 1e-300), magnitude(value))
    return largest


def assert_same_events(actor, fast_events):
    assert len(actor) == len(fast_events)
    subject = lambda e: (e.seq, e.step, e.phase, e.kind, e.neuron, e.source, e.target)  # noqa: E731
    fields = lambda e: [(e.step, e.phase, e.kind, key) for key in e.data]  # noqa: E731
    scale = scales([(e, list(e.data.values())) for e in actor + fast_events], fields)
    for a, f in zip(actor, fast_events):
        assert subject(a) == subject(f)
        assert a.data.keys() == f.data.keys(), subject(a)
        for key, field in zip(a.data, fields(a)):
            if a.kind == "run_begin" and key == "engine":
                assert (a.data[key], f.data[key]) == ("actor", "fast")
            else:
                assert same_numbers(a.data[key], f.data[key], scale[field]), (subject(a), key, a.data[key],
                                                                               f.data[key])


NEURON_FIELDS = ("bias", "bias_grad", "z", "value", "dL_da", "dL_dz")


def assert_same_network(a, b):
    assert list(a.neurons) == list(b.neurons)
    assert [c.key for c in a.connections] == [c.key for c in b.connections]
    assert (a.step, a.learning_rate, a.version) == (b.step, b.learning_rate, b.version)
    pairs = list(zip(a.neurons.values(), b.neurons.values()))
    scale = scales([(None, [getattr(n, f) for f in NEURON_FIELDS]) for pair in pairs for n in pair],
                   lambda _: NEURON_FIELDS)
    for n, m in pairs:
        assert (n.role, n.activation) == (m.role, m.activation)
        for field in NEURON_FIELDS:
            x, y = getattr(n, field), getattr(m, field)
            assert (x is None) == (y is None), (n.name, field)
            assert x is None or same_numbers(x, y, scale[field]), (n.name, field, x, y)
    pairs = list(zip(a.connections, b.connections))
    scale = scales([(None, [c.weight, c.grad]) for pair in pairs for c in pair], lambda _: ("weight", "grad"))
    for c, d in pairs:
        assert c.frozen == d.frozen
        assert same_numbers(c.weight, d.weight, scale["weight"]) and same_numbers(c.grad, d.grad, scale["grad"])


def assert_same_readings(actor, fast_readings):
    assert len(actor) == len(fast_readings)
    for (weights, neurons), (fast_weights, fast_neurons) in zip(actor, fast_readings):
        for a, f, fields in ((weights, fast_weights, ("weight", "grad")), (neurons, fast_neurons, ("bias", "value"))):
            assert [entry[0] for entry in a] == [entry[0] for entry in f]
            scale = scales([(None, entry[1:]) for entry in a + f], lambda _: fields)
            for x, y in zip(a, f):
                assert all((u is None and v is None) or same_numbers(u, v, scale[field])
                           for u, v, field in zip(x[1:], y[1:], fields)), (x, y)


@pytest.mark.parametrize("fill, cells", [(fast.DENSE_FILL, fast.GATHER_CELLS), (0.0, fast.GATHER_CELLS),
                                         (2.0, fast.GATHER_CELLS), (2.0, 3)],
                         ids=["default", "masked", "sparse", "sparse in pieces"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=runs())
def test_fast_engine_gives_the_actor_engines_events_and_network(fill, cells, run):
    # fill 0.0 multiplies every partial block as a filled matrix; 2.0 gathers every one sparsely,
    # and 3 cells at a time gathers a few connections (a target or a source, or more) at a time
    with mock.patch.object(fast, "DENSE_FILL", fill), mock.patch.object(fast, "GATHER_CELLS", cells):
        try:
            actor = train(run, "actor")
        except sn.DivergenceError:
            with pytest.raises(sn.DivergenceError):
                train(run, "fast")
            return
        assume(well_conditioned(run, actor[1]))
        fast_run = train(run, "fast")
    assert_same_events(actor[1], fast_run[1])
    assert_same_network(actor[0], fast_run[0])
    assert_same_readings(actor[2], fast_run[2])


def exactly(events):
    """Events as comparable records, their vectors as bytes: equal records hold the same numbers, bit for bit."""
    return [(e.seq, e.kind, e.neuron, e.source, e.target,
             {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in e.data.items()}) for e in events]


@settings(max_examples=25, deadline=None)
@given(run=runs(), cells=st.integers(1, 40))
def test_a_sparse_wave_gives_the_same_numbers_piece_by_piece_as_all_at_once(run, cells):
    with mock.patch.object(fast, "DENSE_FILL", 2.0):
        try:
            whole = train(run, "fast")
        except sn.DivergenceError:
            return
        with mock.patch.object(fast, "GATHER_CELLS", cells):
            pieces = train(run, "fast")
    assert exactly(pieces[1]) == exactly(whole[1])


@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=40), size=st.integers(1, 60))
def test_runs_take_whole_groups_in_order_until_they_hold_enough(sizes, size):
    starts = np.cumsum([0, *sizes[:-1]])
    runs = fast._runs(starts, sum(sizes), size)
    assert [first for first, *_ in runs] == [0] + [end for _, end, *_ in runs[:-1]] and runs[-1][1] == len(sizes)
    assert [lo for _, _, lo, _ in runs] == [0] + [hi for *_, hi in runs[:-1]] and runs[-1][3] == sum(sizes)
    for first, end, lo, hi in runs:
        assert lo == starts[first] and hi == (starts[end] if end < len(sizes) else sum(sizes))
        assert starts[end - 1] - lo < size  # no more groups than it takes
    assert all(hi - lo >= size for *_, lo, hi in runs[:-1])


def well_conditioned(run, events):
    """False when Adam meets a gradient near its eps (1e-8).

    Adam's first step moves by lr * g / (|g| + eps), which multiplies the
    rounding of such a g (summed in another order by the other engine) by up
    to 1/eps: the two engines are then both right and far apart.
    """
    if run["optimizer"] != "adam":
        return True
    grads = np.array([e.data["grad"] for e in events if e.kind in ("weight_update", "bias_update")])
    return not np.any((grads != 0) & (np.abs(grads) < 1e-6))


class NoMessages(EventLog):
    """A log that listens to everything but messages, so the fast engine emits whole phases at once."""

    kinds = tuple(kind for kind in KINDS if kind != "message")


@settings(max_examples=25, deadline=None)
@given(run=runs())
def test_without_messages_the_fast_engine_emits_whole_phases_with_the_actors_numbering(run):
    try:
        actor = train(run, "actor", NoMessages())
    except sn.DivergenceError:
        return
    assume(well_conditioned(run, actor[1]))
    fast_log = NoMessages()
    batches = []
    fast_log.on_batch = lambda batch: (batches.append(batch.kind), EventLog.on_batch(fast_log, batch))
    fast_run = train(run, "fast", fast_log)
    assert_same_events(actor[1], fast_run[1])
    assert_same_network(actor[0], fast_run[0])
    assert "message" not in {e.kind for e in fast_run[1]}
    assert batches.count("fire") == 2 * run["steps"]  # one forward and one backward batch a step


def test_every_kind_of_wave_is_compiled():
    net = sn.Network(seed=0)
    for i in range(60):
        net.add_neuron(f"x{i}", role="input")
    for i in range(60):
        net.connect(f"x{i}", net.add_neuron(f"a{i}"))  # 60 of 3,600 cells: gathered sparsely
    for i in range(3):
        net.add_neuron(f"b{i}")
        for j in range(60):
            net.connect(f"a{j}", f"b{i}")  # every cell: a view of the weights
    net.add_neuron("y0", role="output")
    for source in [f"a{j}" for j in range(60)] + ["b0", "b2"]:
        net.connect(source, "y0")  # 62 of 63 cells: filled each step
    assert [wave.kind for wave in fast.Compiled(net).waves] == [None, "sparse", "dense", "masked"]


@settings(max_examples=25, deadline=None)
@given(spec=dags(), opt=st.sampled_from(sorted(OPTIMIZERS)))
def test_engine_calls_outside_training_leave_the_objects_as_the_actor_does(spec, opt):
    # no deferral here: every call must leave weights, gradients and neuron values on the objects
    a, f = build(spec, "mse"), build(spec, "mse")
    X, Y = data(spec, "mse", 5)
    actor, fast_engine = ActorEngine(), FastEngine()
    optimizers = optimizer(opt), optimizer(opt)
    for step in range(3):
        for net, engine, o in zip((a, f), (actor, fast_engine), optimizers):
            P = engine.forward(net, X)
            engine.backward(net, P - Y)  # accumulates on top of the last step's gradients
            engine.backward(net, P - Y)
            engine.update(net, o, 0.05, 1e-3, 1e-2)
            if step == 1 and net.connections:  # changes between calls are seen by the next call
                net.set_weight(net.connections[0].source, net.connections[0].target, 0.3)
                net.connections[-1].grad = 0.0
        assert_same_network(a, f)


def test_the_same_seed_gives_the_same_fast_trace_bit_for_bit():
    def run():
        net = sn.Network.layered([2, 6, 5, 1], output="sigmoid", seed=3)
        net.connect("x1", "y0", weight=0.2)
        X = np.random.default_rng(0).normal(size=(20, 2))
        log = EventLog()
        net.train(X, (X[:, :1] > 0).astype(float), steps=5, lr=0.3, loss="bce", optimizer="adam",
                  batch_size=7, engine="fast", recorder=log, l2=1e-3)
        return [(e.seq, e.kind, e.neuron, e.source, e.target,
                 {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in e.data.items()})
                for e in log.events]
    assert run() == run()


def test_user_code_between_steps_sees_and_changes_the_live_network():
    net = sn.Network.layered([2, 3, 1], seed=1)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[1.0], [1.0], [0.0]])
    seen = []

    def before_step(net, step):
        seen.append(net.connection("h1_0", "y0").weight)
        if step == 3:
            net.connection("h1_0", "y0").weight = 2.0  # a plain assignment, not through a method

    def progress(step, loss):
        seen.append(net.connection("h1_0", "y0").weight)

    net.train(X, Y, steps=4, lr=0.1, engine="fast", before_step=before_step, progress=progress)
    reference = sn.Network.layered([2, 3, 1], seed=1)
    expected = []
    reference.train(X, Y, steps=4, lr=0.1, before_step=lambda net, step: (
        expected.append(net.connection("h1_0", "y0").weight),
        step == 3 and setattr(net.connection("h1_0", "y0"), "weight", 2.0)),
        progress=lambda step, loss: expected.append(reference.connection("h1_0", "y0").weight))
    assert np.allclose(seen, expected, rtol=1e-12, atol=0)
    assert seen[4] != 2.0 and abs(seen[5] - 2.0) < 0.5  # step 3 trained from the assigned weight


def test_subscribers_and_objects_held_from_before_see_what_the_actor_engine_leaves():
    def run(engine):
        net = sn.Network.layered([2, 4, 1], seed=2)
        held = net.connections[0]
        X = np.random.default_rng(1).normal(size=(8, 2))
        seen = []
        net.bus.subscribe(lambda e: seen.append((net.neurons["h1_0"].value.copy(), net.connections[3].weight)),
                          kinds=["step_end"])
        net.train(X, X[:, :1] * 0.5, steps=5, lr=0.1, engine=engine)
        return seen, held.weight, held.grad
    actor, fast_run = run("actor"), run("fast")
    for (value, weight), (fast_value, fast_weight) in zip(actor[0], fast_run[0]):
        assert np.allclose(value, fast_value, rtol=1e-12, atol=1e-15)
        assert math.isclose(weight, fast_weight, rel_tol=1e-12)
    assert np.allclose(actor[1:], fast_run[1:], rtol=1e-12, atol=0)


def test_a_call_that_fails_leaves_the_objects_the_truth():
    net = sn.Network.layered([2, 3, 1], seed=2)
    X = np.random.default_rng(2).normal(size=(4, 2))
    engine = FastEngine()
    engine.forward(net, X)
    with pytest.raises(sn.SimnetError):
        engine.backward(net, np.ones((3, 1)))  # a batch of another size than the forward sweep's
    net.set_weight("x0", "h1_0", 5.0)
    net.set_bias("y0", -1.5)
    engine.forward(net, X)
    assert net.connection("x0", "h1_0").weight == 5.0 and net.neurons["y0"].bias == -1.5
    expected = ActorEngine().forward(net.copy(), X)
    assert np.allclose(engine.forward(net, X), expected, rtol=1e-12, atol=0)
