"""Every export read back by its consumer's own reader (pandas, networkx, json, an XML parser) holds what the trace holds."""
import json
import math
import shutil
import sqlite3
from xml.etree import ElementTree

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import simnet as sn
from simnet.cli import main
from simnet.trace.export import export, record
from test_trace import grow_and_prune, parameters, recorded_run


def with_an_input_bias(net, step):
    """grow_and_prune, and a bias set on an input, which a network only gets that way."""
    grow_and_prune(net, step)
    if step == 4:
        net.set_bias("x0", 0.375)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run that grows, prunes, freezes and changes its learning rate, recorded with its messages at every step."""
    directory = tmp_path_factory.mktemp("run")
    recorded_run(directory, steps=14, detail="messages", every=1, before_step=with_an_input_bias)
    return directory


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """A run whose last step overflowed: its events hold numbers that are not finite."""
    directory = tmp_path_factory.mktemp("diverged")
    net = sn.Network.layered([2, 4, 1], hidden="linear", seed=0)
    X, Y = np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0], [-1.0]])
    with pytest.raises(sn.DivergenceError):
        net.train(X, Y, steps=2000, lr=5.0, recorder=sn.Recorder(directory, detail="messages"))
    return directory


def same(read, written):
    """`read` (what a reader gave back) is `written`: floats to the bit, NaN included."""
    if isinstance(written, float):
        return isinstance(read, float) and (math.isnan(read) and math.isnan(written)
                                            or np.float64(read).tobytes() == np.float64(written).tobytes())
    if isinstance(written, np.ndarray):
        return len(read) == len(written) and all(same(r, w) for r, w in zip(read, written.tolist()))
    if isinstance(written, str) or written is None:
        return type(read) is type(written) and read == written
    # pandas may hold a column of integers or booleans with gaps as floats
    return type(read) in (type(written), float) and read == written


def missing(value):
    return value is None or isinstance(value, float) and math.isnan(value)


def assert_one_type_per_column(frame):
    for column in frame:
        if frame[column].dtype.kind in "biuf":
            continue
        types = {type(v) for v in frame[column] if not missing(v)}
        assert len(types) <= 1, (column, types)


@pytest.mark.parametrize("which", ["run", "diverged"])
def test_jsonl_reads_back_in_pandas_one_type_per_column_every_number_to_the_bit(which, request, tmp_path):
    trace = sn.open_trace(request.getfixturevalue(which))
    export(trace, "jsonl", tmp_path / "events.jsonl")
    frame = pd.read_json(tmp_path / "events.jsonl", lines=True, precise_float=True)
    assert_one_type_per_column(frame)
    events = [record(e) for e in trace.events()]
    assert len(frame) == len(events)
    numbers = [k for k in frame if frame[k].dtype.kind == "f"]
    assert {"loss", "weight", "z", "a", "value", "grad"} <= set(numbers)
    assert frame["loss_function"].dropna().tolist() == [trace.metadata["config"]["loss"]]
    if which == "diverged":
        assert not np.isfinite(frame["loss"].dropna()).all()
    rows = frame.to_dict("records")
    for row, event in zip(rows, events):
        for key, value in event.items():
            assert same(row[key], value) or missing(row[key]) and value is None, (event, key)


@pytest.mark.parametrize("which", ["run", "diverged"])
def test_csv_reads_back_in_pandas_one_type_per_column_every_number_to_the_bit(which, request, tmp_path):
    trace = sn.open_trace(request.getfixturevalue(which))
    export(trace, "csv", tmp_path / "events.csv")
    frame = pd.read_csv(tmp_path / "events.csv")
    assert_one_type_per_column(frame)
    assert frame["loss"].dtype == np.float64 and frame["weight"].dtype == np.float64
    events = [record(e) for e in trace.events()]
    assert len(frame) == len(events)
    for row, event in zip(frame.to_dict("records"), events):
        rest = json.loads(row["data"]) if isinstance(row["data"], str) else {}
        for key, value in event.items():
            if key in row and key != "data":
                assert same(row[key], value) or missing(row[key]) and value is None, (event, key)
            else:  # the rest, as JSON: non-finite numbers as the strings pandas reads back as floats
                got = rest[key]
                if isinstance(value, np.ndarray):
                    assert same([float(g) for g in got], value), (event, key)
                else:
                    assert got == value, (event, key)
    assert frame["data"].dropna().map(lambda text: "loss_function" in json.loads(text)).sum() == 1


def test_the_gexf_edge_weights_come_back_as_their_history_at_every_step(run, tmp_path):
    trace = sn.open_trace(run)
    assert trace.steps == list(range(15))
    export(trace, "gexf", tmp_path / "run.gexf")
    H = nx.read_gexf(tmp_path / "run.gexf")
    states = {k: trace.network_at(k) for k in trace.steps}
    keys = {c.key for net in states.values() for c in net.connections}
    assert set(H.edges) == keys
    for key in keys:
        history = H.edges[key]["weight"]
        for k, net in states.items():
            held = [value for value, start, end in history if start <= k <= end]
            weights = [c.weight for c in net.connections if c.key == key]
            assert len(held) == len(weights) and all(map(same, held, weights)), (key, k)
    for name in H.nodes:
        for k, net in states.items():
            held = [value for value, start, end in H.nodes[name]["bias"] if start <= k <= end]
            assert all(map(same, held, [n.bias for n in net.neurons.values() if n.name == name])), (name, k)
    assert H.nodes["h1_0"]["fn"] == "relu" and H.nodes["x0"]["role"] == "input"


def test_snapshots_graphml_and_to_networkx_share_their_names(run, tmp_path):
    trace = sn.open_trace(run)
    for k in trace.steps:
        G, net = trace.snapshot(k), trace.network_at(k)
        back = sn.Network.from_networkx(G)
        assert parameters(back) == parameters(net), k
        assert (back.step, back.learning_rate) == (net.step, net.learning_rate) == (k, G.graph["lr"])
        mine = net.to_networkx()
        for name, attrs in mine.nodes(data=True):
            assert {a: G.nodes[name][a] for a in attrs} == attrs
        for u, v, attrs in mine.edges(data=True):
            assert {a: G.edges[u, v][a] for a in attrs} == attrs
    assert any(n.role == "input" and n.bias for n in trace.network_at(trace.last_step).neurons.values())
    for k in (0, 6, trace.last_step):
        path = tmp_path / f"step{k}.graphml"
        export(trace, "graphml", path, step=k)
        G, H = trace.snapshot(k), nx.read_graphml(path)
        run_attrs = {a: trace.metadata[a] for a in ("seed", "init") if a in trace.metadata}
        assert "seed" in run_attrs
        assert {a: v for a, v in H.graph.items() if not a.endswith("_default")} == \
            {**{a: v for a, v in G.graph.items() if v is not None}, **run_attrs}
        assert list(H.nodes) == list(G.nodes)
        for name, attrs in G.nodes(data=True):
            kept = {a: v for a, v in attrs.items() if v is not None}
            assert H.nodes[name].keys() == kept.keys() and all(same(H.nodes[name][a], v) for a, v in kept.items())
        assert set(H.edges) == set(G.edges)
        for u, v, attrs in G.edges(data=True):
            kept = {a: x for a, x in attrs.items() if x is not None}
            assert H.edges[u, v].keys() == kept.keys() and all(same(H.edges[u, v][a], x) for a, x in kept.items())
        back = sn.Network.from_networkx(H)
        assert parameters(back) == parameters(trace.network_at(k)) and back.seed == trace.metadata["seed"]


def test_from_networkx_reads_an_activation_name_where_a_graph_has_no_fn():
    G = nx.DiGraph()
    G.add_node("x", role="input", order=0)
    G.add_node("y", role="output", activation="tanh", order=1)
    G.add_edge("x", "y", weight=0.5)
    assert sn.Network.from_networkx(G).neurons["y"].activation == "tanh"


def test_export_step_is_honoured_or_refused_for_every_format(run, tmp_path, capsys):
    trace = sn.open_trace(run)
    expected = list(trace.events(step=5))
    out = {fmt: tmp_path / f"step5.{fmt}" for fmt in ("jsonl", "csv", "perfetto", "graphml", "gexf")}
    codes = {fmt: main(["export", str(run), "--format", fmt, "--step", "5", "-o", str(path)])
             for fmt, path in out.items()}
    assert codes == {"jsonl": 0, "csv": 0, "perfetto": 0, "graphml": 0, "gexf": 2}
    err = capsys.readouterr().err.strip()
    assert err.startswith("simnet: error:") and "--step 5" in err and "gexf" in err and "\n" not in err
    assert not out["gexf"].exists() and not list(tmp_path.glob(".*"))
    assert pd.read_json(out["jsonl"], lines=True)["seq"].tolist() == [e["seq"] for e in expected]
    assert pd.read_csv(out["csv"])["seq"].tolist() == [e["seq"] for e in expected]
    records = json.loads(out["perfetto"].read_text())["traceEvents"]
    assert [r["name"] for r in records if r.get("cat") == "step"] == ["step 5"]
    assert {r["args"]["step"] for r in records if r["ph"] == "X" and r["tid"] != 0} == {5}
    assert nx.read_graphml(out["graphml"]).graph["step"] == 5
    with pytest.raises(sn.TraceError, match="takes no step"):
        export(trace, "gexf", tmp_path / "api.gexf", step=5)


def test_perfetto_of_a_diverged_run_is_strict_json(diverged, tmp_path):
    trace = sn.open_trace(diverged)
    export(trace, "perfetto", tmp_path / "run.json")

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    records = json.loads((tmp_path / "run.json").read_text(), parse_constant=refuse)["traceEvents"]
    assert [r["name"] for r in records if r.get("cat") == "step"] == \
        [f"step {k}" for k in range(trace.first_step, trace.last_step + 2)]  # the step that overflowed too
    losses = [r["args"]["loss"] for r in records if r["ph"] == "C"]
    assert losses[-1] in ("inf", "nan") and all(isinstance(loss, float) for loss in losses[:-1])


def rename(directory, old, new):
    """Rename neuron `old` to `new` inside a trace, as a trace from elsewhere might name it."""
    with sqlite3.connect(directory / "trace.sqlite") as db:
        db.execute("UPDATE neurons SET name = ? WHERE name = ?", (new, old))
        db.execute("UPDATE connections SET source = ? WHERE source = ?", (new, old))
        db.execute("UPDATE connections SET target = ? WHERE target = ?", (new, old))
    db.close()


def test_xml_exports_stay_well_formed_whatever_the_names_hold(run, tmp_path, capsys):
    directory = tmp_path / "renamed"
    shutil.copytree(run, directory)
    rename(directory, "h1_0", "<&>\"' \t\n")
    trace = sn.open_trace(directory)
    export(trace, "graphml", tmp_path / "run.graphml")
    export(trace, "gexf", tmp_path / "run.gexf")
    for path in (tmp_path / "run.graphml", tmp_path / "run.gexf"):
        ElementTree.parse(path)
    G = trace.snapshot(trace.last_step)
    assert list(nx.read_graphml(tmp_path / "run.graphml").nodes) == list(G.nodes)
    assert set(nx.read_gexf(tmp_path / "run.gexf").edges) >= set(G.edges)
    assert "<&>\"' \t\n" in G
    trace.close()

    rename(directory, "h1_2", "a\x01b")
    trace = sn.open_trace(directory)
    for fmt in ("graphml", "gexf"):
        with pytest.raises(sn.TraceError, match=r"neuron name 'a\\x01b' holds the character U\+0001") as refused:
            export(trace, fmt, tmp_path / f"bad.{fmt}")
        assert "\n" not in str(refused.value)
        assert main(["export", str(directory), "--format", fmt, "-o", str(tmp_path / f"cli.{fmt}")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "U+0001" in err and not (tmp_path / f"cli.{fmt}").exists()
    export(trace, "jsonl", tmp_path / "any.jsonl")  # JSON carries any name
    assert "a\x01b" in set(pd.read_json(tmp_path / "any.jsonl", lines=True, dtype=False)["neuron"].dropna())
