"""The object graph: building, changing, validating and converting networks."""
import networkx as nx
import numpy as np
import pytest

import simnet as sn


def small_net(**kw):
    net = sn.Network(seed=1, **kw)
    net.add_neuron("x0", role="input")
    net.add_neuron("x1", role="input")
    net.add_neuron("h", activation="tanh")
    net.add_neuron("y", role="output", activation="linear")
    net.connect("x0", "h")
    net.connect("x1", "h")
    net.connect("h", "y")
    return net


def test_neurons_and_connections_keep_insertion_order():
    net = small_net()
    assert list(net.neurons) == ["x0", "x1", "h", "y"]
    assert [c.key for c in net.connections] == [("x0", "h"), ("x1", "h"), ("h", "y")]
    assert [n.name for n in net.inputs] == ["x0", "x1"]
    assert [n.name for n in net.outputs] == ["y"]
    c = net.connections[0]
    assert c.source is net.neurons["x0"] and c.target is net.neurons["h"]


@pytest.mark.parametrize("build, message", [
    (lambda n: n.add_neuron("h"), "duplicate neuron name 'h'"),
    (lambda n: n.connect("x0", "nowhere"), "unknown neuron 'nowhere'"),
    (lambda n: n.connect("h", "x0"), "into input neuron 'x0'"),
    (lambda n: n.connect("y", "h"), "out of output neuron 'y'"),
    (lambda n: n.connect("x0", "h"), "duplicate connection 'x0' -> 'h'"),
    (lambda n: n.add_neuron("z", role="boss"), "unknown role 'boss'"),
    (lambda n: n.add_neuron("z", activation="swish"), "unknown activation 'swish'"),
    (lambda n: n.disconnect("x0", "y"), "no connection 'x0' -> 'y'"),
    (lambda n: n.remove_neuron("ghost"), "unknown neuron 'ghost'"),
])
def test_topology_errors_name_the_culprits(build, message):
    net = small_net()
    with pytest.raises(sn.SimnetError, match=message):
        build(net)


def test_a_connection_closing_a_cycle_names_the_cycle():
    net = small_net()
    net.add_neuron("a")
    net.add_neuron("b")
    net.connect("h", "a")
    net.connect("a", "b")
    with pytest.raises(sn.TopologyError, match="cycle: b -> h -> a -> b"):
        net.connect("b", "h")
    with pytest.raises(sn.TopologyError, match="cycle: a -> a"):
        net.connect("a", "a")
    assert [c.key for c in net.connections][-2:] == [("h", "a"), ("a", "b")]  # nothing half-added


def test_topology_error_is_a_simnet_error():
    assert issubclass(sn.TopologyError, sn.SimnetError)
    assert issubclass(sn.ScenarioError, sn.SimnetError)
    assert issubclass(sn.TraceError, sn.SimnetError)


def test_removing_a_neuron_removes_its_connections():
    net = small_net()
    net.remove_neuron("h")
    assert "h" not in net.neurons
    assert net.connections == []
    assert net.neurons["x0"].outgoing == [] and net.neurons["y"].incoming == []


def test_check_warns_about_unreachable_and_dead_end_hidden_neurons():
    net = small_net()
    assert net.check() == []
    net.add_neuron("orphan")
    net.connect("orphan", "y")
    net.add_neuron("dead_end")
    net.connect("x0", "dead_end")
    warnings = net.check()
    assert "hidden neuron 'orphan' cannot be reached from any input" in warnings
    assert "hidden neuron 'dead_end' cannot reach any output" in warnings
    assert len(warnings) == 2


def test_layered_names_roles_and_full_connectivity():
    net = sn.Network.layered([2, 3, 2, 1], hidden="tanh", output="sigmoid", seed=4)
    assert list(net.neurons) == ["x0", "x1", "h1_0", "h1_1", "h1_2", "h2_0", "h2_1", "y0"]
    assert len(net.connections) == 2 * 3 + 3 * 2 + 2 * 1
    assert net.neurons["h2_1"].activation == "tanh" and net.neurons["y0"].activation == "sigmoid"
    assert {n.role for n in net.inputs} == {"input"}
    with pytest.raises(sn.TopologyError):
        sn.Network.layered([2])


@pytest.mark.parametrize("rule, std", [("he", lambda fi, fo: np.sqrt(2 / fi)),
                                       ("xavier", lambda fi, fo: np.sqrt(2 / (fi + fo))),
                                       ("uniform", lambda fi, fo: np.sqrt(1 / 3))])
def test_init_rules_draw_with_the_right_spread(rule, std):
    net = sn.Network.layered([50, 200, 1], seed=3, init=rule)
    first = np.array([c.weight for c in net.connections if c.target.name.startswith("h")])
    assert abs(first.std() / std(50, 200) - 1) < 0.05
    assert abs(first.mean()) < 0.05 * std(50, 200) * 3
    if rule == "uniform":
        assert first.min() >= -1 and first.max() <= 1


def test_same_seed_same_weights_different_seed_different_weights():
    a = sn.Network.layered([2, 8, 1], seed=11)
    b = sn.Network.layered([2, 8, 1], seed=11)
    c = sn.Network.layered([2, 8, 1], seed=12)
    assert [x.weight for x in a.connections] == [x.weight for x in b.connections]
    assert [x.weight for x in a.connections] != [x.weight for x in c.connections]


def test_networkx_round_trip_keeps_everything():
    net = small_net()
    net.add_neuron("skip", activation="leaky_relu", bias=0.25)
    net.connect("x1", "skip", weight=-0.5)
    net.connect("skip", "y", weight=1.5)
    net.set_frozen("skip", "y")
    G = net.to_networkx()
    assert isinstance(G, nx.DiGraph)
    assert G.nodes["skip"]["fn"] == "leaky_relu" and G.nodes["x0"]["role"] == "input"
    assert G.edges["x1", "skip"]["weight"] == -0.5
    back = sn.Network.from_networkx(G)
    assert list(back.neurons) == list(net.neurons)
    for name, n in net.neurons.items():
        m = back.neurons[name]
        assert (m.role, m.activation, m.bias) == (n.role, n.activation, n.bias)
    assert [(c.key, c.weight, c.frozen) for c in back.connections] == \
           [(c.key, c.weight, c.frozen) for c in net.connections]
    X = np.random.default_rng(0).normal(size=(5, 2))
    assert np.array_equal(back.forward(X), net.forward(X))


def test_inputs_are_linear_with_zero_bias():
    net = sn.Network(seed=0)
    x = net.add_neuron("x", role="input", activation="relu", bias=3.0)
    assert (x.activation, x.bias) == ("linear", 0.0)


def test_weights_and_biases_must_be_finite_numbers():
    net = small_net()
    with pytest.raises(sn.SimnetError, match="must be finite"):
        net.set_weight("x0", "h", float("nan"))
    with pytest.raises(sn.SimnetError, match="must be a number"):
        net.add_neuron("q", bias="high")


def test_mutations_emit_script_events_for_the_next_step():
    net = small_net()
    log = net.bus.subscribe(sn.EventLog())
    net.add_neuron("h2")
    net.connect("x0", "h2", weight=0.5)
    net.set_weight("x0", "h2", 0.75)
    net.disconnect("x0", "h2")
    net.remove_neuron("h2")
    assert [(e.kind, e.phase, e.step) for e in log.events] == [
        ("neuron_added", "script", 1), ("connection_added", "script", 1), ("weight_set", "script", 1),
        ("connection_removed", "script", 1), ("neuron_removed", "script", 1)]
    assert log.events[2].data == {"old": 0.5, "new": 0.75}
    assert [e.seq for e in log.events] == [0, 1, 2, 3, 4]
