"""SnapshotBuilder: per-step graphs that match the live network."""
import math

import numpy as np
import pytest

import simnet as sn
from simnet.core.events import EventBatch, EventLog
from simnet.trace.snapshot import NetworkState, SnapshotBuilder, batch_means


def xor_data(samples=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(samples, 2)).astype(float)
    Y = (X[:, :1] != X[:, 1:]).astype(float)
    return X + rng.normal(0, 0.05, X.shape), Y


def mutate(net, step):
    """Topology and parameter changes in the middle of a run."""
    if step == 3:
        net.add_neuron("extra", activation="tanh", bias=0.2)
        net.connect("x0", "extra")
        net.connect("extra", "y0", weight=0.5)
    elif step == 5:
        net.set_frozen("x1", "h1_0")
        net.set_weight("x0", "h1_1", -0.25)
        net.set_bias("h1_2", 0.125)
    elif step == 7:
        net.disconnect("x0", "h1_0")
        net.set_learning_rate(0.05)
    elif step == 9:
        net.remove_neuron("h1_1")


def check_against_live(builder, net, before, step, loss):
    """The snapshot at `step` describes the live network right after it."""
    G = builder.snapshots[step]
    assert G.graph["step"] == step and G.graph["loss"] == loss
    assert G.graph["lr"] == net.learning_rate
    assert list(G.nodes) == list(net.neurons)
    assert sorted(G.edges, key=lambda e: G.edges[e]["order"]) == [c.key for c in net.connections]
    for order, n in enumerate(net.neurons.values()):
        attrs = G.nodes[n.name]
        assert (attrs["role"], attrs["fn"], attrs["order"]) == (n.role, n.activation, order)
        assert attrs["bias"] == n.bias
        assert attrs["activation"] == np.mean(n.value)
        assert attrs["preactivation"] == np.mean(n.z)
        assert attrs["gradient"] == np.mean(n.dL_dz)
        if n.role != "input":
            assert attrs["bias_grad"] == n.bias_grad
    for c in net.connections:
        attrs = G.edges[c.key]
        old = before[c.key]
        assert attrs["weight"] == c.weight and attrs["frozen"] == c.frozen
        assert attrs["delta"] == c.weight - old
        assert attrs["grad"] == (0.0 if c.frozen else c.grad)
        assert attrs["message"] == np.mean(c.source.value) * old


def test_snapshots_match_the_live_network_at_every_step_through_topology_changes():
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=3)
    builder = SnapshotBuilder()
    net.bus.subscribe(builder, kinds=builder.kinds)
    before = {}

    def before_step(net, step):
        mutate(net, step)
        before.clear()
        before.update({c.key: c.weight for c in net.connections})

    checked = []

    def progress(step, loss):
        check_against_live(builder, net, before, step, loss)
        checked.append(step)

    net.train(X, Y, steps=11, lr=0.3, loss="bce", before_step=before_step, progress=progress)
    assert checked == list(range(1, 12))
    assert sorted(builder.snapshots) == list(range(0, 12))
    assert "extra" in builder.snapshots[3] and "extra" not in builder.snapshots[2]
    assert "h1_1" in builder.snapshots[8] and "h1_1" not in builder.snapshots[9]
    assert builder.snapshots[5].edges["x1", "h1_0"]["frozen"]
    assert ("x0", "h1_0") in builder.snapshots[6].edges and ("x0", "h1_0") not in builder.snapshots[7].edges


def test_the_initial_snapshot_has_parameters_and_no_means():
    X, Y = xor_data()
    net = sn.Network.layered([2, 2, 1], seed=1)
    start = {c.key: c.weight for c in net.connections}
    builder = SnapshotBuilder(every=100)
    net.train(X, Y, steps=2, lr=0.1, recorder=builder)
    G = builder.snapshots[0]
    assert G.graph == {"step": 0, "loss": None, "accuracy": None, "lr": 0.1}
    assert all(G.nodes[n]["activation"] is None and G.nodes[n]["gradient"] is None for n in G)
    assert {e: G.edges[e]["weight"] for e in G.edges} == start
    assert all(G.edges[e]["message"] is None and G.edges[e]["delta"] == 0.0 for e in G.edges)


def test_recorded_steps_are_the_start_every_nth_and_the_last_also_across_runs():
    X, Y = xor_data()
    net = sn.Network.layered([2, 2, 1], seed=1)
    builder = SnapshotBuilder(every=4)
    net.train(X, Y, steps=10, lr=0.1, recorder=builder)
    assert sorted(builder.snapshots) == [0, 4, 8, 10]
    net.train(X, Y, steps=5, lr=0.1, recorder=builder)
    assert sorted(builder.snapshots) == [0, 4, 8, 10, 12, 15]
    assert builder.snapshots[15].graph["loss"] is not None
    G = builder.snapshots[15]
    assert {e: G.edges[e]["weight"] for e in G.edges} == {c.key: c.weight for c in net.connections}


def test_a_diverged_run_keeps_its_last_finite_step():
    X = np.array([[1.0, 2.0], [2.0, 1.0]])
    Y = np.array([[1.0], [-1.0]])
    net = sn.Network.layered([2, 4, 1], hidden="linear", seed=0)
    builder = SnapshotBuilder(every=1000)
    with pytest.raises(sn.DivergenceError) as failure:
        net.train(X, Y, steps=2000, lr=5.0, recorder=builder)
    last = failure.value.step - 1
    assert max(builder.snapshots) == last
    weights = [w for *_, w in builder.snapshots[last].edges(data="weight")]
    assert all(math.isfinite(w) for w in weights)


def as_batches(events):
    """The same events, with each run of firings, weight updates and added connections as one EventBatch."""
    out, i = [], 0
    while i < len(events):
        e = events[i]
        if e.kind not in ("fire", "weight_update", "connection_added"):
            out.append(e)
            i += 1
            continue
        j = i
        while j < len(events) and (events[j].kind, events[j].phase) == (e.kind, e.phase):
            j += 1
        run = events[i:j]
        columns = {name: np.array([x.data[name] for x in run]) for name in run[0].data}
        if e.kind == "fire":
            out.append(EventBatch(e.seq, e.step, e.phase, e.kind, neurons=[x.neuron for x in run], data=columns))
        else:
            out.append(EventBatch(e.seq, e.step, e.phase, e.kind, sources=[x.source for x in run],
                                  targets=[x.target for x in run], data=columns))
        i = j
    return out


def test_batched_events_give_the_same_snapshots_as_single_events():
    X, Y = xor_data(samples=5)
    net = sn.Network.layered([2, 3, 2], hidden="tanh", seed=4)
    log = EventLog()
    net.train(X, np.hstack([Y, 1 - Y]), steps=6, lr=0.2, recorder=log, before_step=mutate)
    single, batched = SnapshotBuilder(every=2), SnapshotBuilder(every=2)
    for e in log.events:
        single(e)
    for item in as_batches(log.events):
        (batched.on_batch if isinstance(item, EventBatch) else batched)(item)
    assert sorted(single.snapshots) == sorted(batched.snapshots) == [0, 2, 4, 6]
    for step, G in single.snapshots.items():
        H = batched.snapshots[step]
        assert G.graph == H.graph
        assert list(G.nodes(data=True)) == list(H.nodes(data=True))
        assert list(G.edges(data=True)) == list(H.edges(data=True))


def test_batch_means_agree_with_numpy_means_of_each_vector():
    rng = np.random.default_rng(0)
    for size in (1, 3, 8, 9, 130, 1000):
        vectors = [rng.normal(size=size) * 10 ** rng.uniform(-3, 3) for _ in range(5)]
        assert batch_means(vectors) == [float(np.mean(v)) for v in vectors]
        transposed = np.asfortranarray(np.array(vectors))
        assert batch_means(transposed) == [float(np.mean(v)) for v in vectors]
    assert batch_means([0.25, -1.5]) == [0.25, -1.5]


def test_a_state_follows_events_and_turns_back_into_the_network_they_describe():
    net = sn.Network(seed=9)
    state = NetworkState()
    net.bus.subscribe(state.apply)
    for name, role in (("x0", "input"), ("x1", "input"), ("h", "hidden"), ("g", "hidden"), ("y", "output")):
        net.add_neuron(name, role=role, activation="tanh")
    for source, target in (("x0", "h"), ("x1", "h"), ("x1", "g"), ("h", "y"), ("g", "y")):
        net.connect(source, target)
    net.set_bias("x1", 0.5)
    net.set_frozen("x0", "h")
    net.set_weight("h", "y", 2.0)
    net.remove_neuron("g")
    net.add_neuron("g", activation="sigmoid", bias=-0.5)
    net.connect("g", "y")
    net.set_learning_rate(0.125)
    copy = state.to_network(seed=net.seed, step=7)
    assert (copy.step, copy.learning_rate, copy.seed) == (7, 0.125, 9)
    assert [(n.name, n.role, n.activation, n.bias) for n in copy.neurons.values()] == \
        [(n.name, n.role, n.activation, n.bias) for n in net.neurons.values()]
    assert [(c.key, c.weight, c.frozen) for c in copy.connections] == \
        [(c.key, c.weight, c.frozen) for c in net.connections]
    assert [c.key for c in copy.neurons["y"].incoming] == [c.key for c in net.neurons["y"].incoming]


def test_interval_must_be_a_positive_integer():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(sn.SimnetError):
            SnapshotBuilder(every=bad)
