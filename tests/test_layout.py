"""Layout: columns by depth, fewer crossings, and stability while the network grows."""
import itertools

import networkx as nx
import numpy as np
from hypothesis import given, settings, strategies as st

import simnet as sn
from simnet.viz.layout import Layout, crossings


def random_dag(seed, n_inputs=3, n_hidden=12, n_outputs=2, p=0.3):
    """A random DAG over named neurons, built through Network so the roles are valid."""
    rng = np.random.default_rng(seed)
    net = sn.Network(seed=seed)
    names = [net.add_neuron(f"x{i}", role="input").name for i in range(n_inputs)]
    names += [net.add_neuron(f"h{i}").name for i in range(n_hidden)]
    outputs = [net.add_neuron(f"y{i}", role="output").name for i in range(n_outputs)]
    for j, target in enumerate(names[n_inputs:] + outputs):
        sources = names[:n_inputs + j] if target not in outputs else names
        chosen = [s for s in sources if rng.random() < p] or [sources[rng.integers(len(sources))]]
        for s in chosen:
            net.connect(s, target)
    return net.to_networkx()


def brute_crossings(graph, order):
    """Crossings between adjacent columns by checking every pair of edges geometrically."""
    pos = {n: (c, i) for c, names in enumerate(order) for i, n in enumerate(names)}
    edges = [(u, v) for u, v in graph.edges if pos[v][0] == pos[u][0] + 1]
    count = 0
    for (a, b), (c, d) in itertools.combinations(edges, 2):
        if pos[a][0] == pos[c][0] and (pos[a][1] - pos[c][1]) * (pos[b][1] - pos[d][1]) < 0:
            count += 1
    return count


def test_layered_network_keeps_name_order_in_depth_columns():
    G = sn.Network.layered([2, 8, 8, 1], seed=0).to_networkx()
    columns = Layout.of(G).columns()
    assert list(columns.values()) == [["x0", "x1"], [f"h1_{i}" for i in range(8)],
                                      [f"h2_{i}" for i in range(8)], ["y0"]]
    assert list(columns) == [0, 1, 2, 3]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_connections_point_right_and_outputs_share_the_last_column(seed):
    G = random_dag(seed)
    layout = Layout.of(G)
    assert all(layout.column[u] < layout.column[v] for u, v in G.edges)
    last = max(layout.column.values())
    assert {layout.column[n] for n in G if G.nodes[n]["role"] == "output"} == {last}
    assert {layout.column[n] for n in G if G.nodes[n]["role"] == "input"} == {0}
    positions = list(Layout.of(G).positions().values())
    assert len(set(positions)) == len(positions)  # no two neurons on one spot


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_crossing_count_matches_geometry_and_never_gets_worse(seed):
    G = random_dag(seed)
    layout = Layout.of(G)
    order = list(layout.columns().values())
    assert crossings(G, order) == brute_crossings(G, order)
    insertion = {}
    for n in G.nodes:
        insertion.setdefault(layout.column[n], []).append(n)
    start = [insertion[c] for c in sorted(insertion)]
    assert crossings(G, order) <= crossings(G, start)


def test_crossings_of_two_chains_inserted_crosswise_are_undone():
    G = nx.DiGraph()
    G.add_nodes_from(["a0", "b0"], role="input")
    G.add_nodes_from(["b1", "a1", "a2", "b2"], role="hidden")
    G.add_edges_from([("a0", "a1"), ("b0", "b1"), ("a1", "a2"), ("b1", "b2")])
    order = list(Layout.of(G).columns().values())
    assert crossings(G, order) == 0
    assert order[1].index("a1") == order[0].index("a0")


def test_new_neurons_do_not_move_or_reorder_the_others():
    net = sn.Network.layered([2, 4, 4, 1], seed=0)
    layout = Layout.of(net.to_networkx())
    before = {n: layout.column[n] for n in layout.column}
    order_before = list(layout.columns().values())
    net.add_neuron("wide")
    net.connect("x0", "wide")
    net.connect("wide", "y0")
    net.add_neuron("between")
    net.connect("h1_1", "between")
    net.connect("between", "h2_2")
    net.add_neuron("deep")
    net.connect("h2_0", "deep")
    net.connect("deep", "y0")
    layout.extend(net.to_networkx())
    assert all(layout.column[n] == c for n, c in before.items())
    after = list(layout.columns().values())
    for old in order_before:
        column = next(c for c in after if old[0] in c)
        assert [n for n in column if n in old] == old
    assert layout.column["wide"] == 1
    assert 1 < layout.column["between"] < 2  # squeezed between its neighbours, not pushing them
    assert 2 < layout.column["deep"] < layout.column["y0"]
    assert all(layout.column[u] < layout.column[v] for u, v in net.to_networkx().edges)


def test_a_layout_over_frames_places_each_neuron_once_for_all_frames():
    net = sn.Network.layered([2, 3, 1], seed=0)
    first = net.to_networkx()
    net.add_neuron("late")
    net.connect("x1", "late")
    net.connect("late", "y0")
    second = net.to_networkx()
    net.remove_neuron("h1_0")
    third = net.to_networkx()
    layout = Layout.over([first, second, third])
    assert set(layout.column) == set(second)  # a removed neuron keeps its place (its spot stays empty)
    alone = Layout.of(first).positions()
    together = layout.positions()
    assert [alone[n][0] for n in first] == [together[n][0] for n in first]


def test_neurons_added_together_keep_the_order_they_were_added_in():
    net = sn.Network.layered([2, 2, 1], seed=0)
    layout = Layout.of(net.to_networkx())
    for name in ("g0", "g1", "g2", "g3"):
        net.add_neuron(name)
        for source in ("x0", "x1"):
            net.connect(source, name)
        net.connect(name, "y0")
    layout.extend(net.to_networkx())
    assert layout.columns()[1] == ["h1_0", "g0", "g1", "g2", "g3", "h1_1"]
