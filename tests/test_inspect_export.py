"""inspect (summary, explain, raw events) and export (jsonl, csv, perfetto, graphml, gexf)."""
import csv
import io
import json

import networkx as nx
import numpy as np
import pytest

import simnet as sn
from simnet.trace import explain as inspect
from simnet.cli import main
from simnet.trace.export import export
from test_trace import recorded_run, xor_data


def n6(x):
    return f"{x:.6g}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run recorded at both detail levels, with the live neurons of step 4 kept."""
    out = {}
    for detail in ("messages", "updates"):
        directory = tmp_path_factory.mktemp(detail)
        X, Y = xor_data()
        net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=3)
        kept = {}

        def keep(step, loss):
            if step == 4:
                kept["net"] = net.copy()
                kept["values"] = {n.name: (n.z, n.value, n.dL_da, n.dL_dz, n.bias_grad)
                                  for n in net.neurons.values()}
                kept["grads"] = {c.key: c.grad for c in net.connections}

        def before(net, step):
            if step == 4:
                kept["before"] = {c.key: c.weight for c in net.connections}
                kept["bias_before"] = {n.name: n.bias for n in net.neurons.values()}

        net.train(X, Y, steps=8, lr=0.3, loss="bce", before_step=before, progress=keep,
                  recorder=sn.Recorder(directory, detail=detail, metadata={"scenario": "xor-test"}))
        out[detail] = directory, kept
    return out


@pytest.mark.parametrize("detail", ["messages", "updates"])
def test_explain_walks_through_the_live_numbers(runs, detail):
    directory, kept = runs[detail]
    trace = sn.open_trace(directory)
    text = inspect.explain(trace, 4, "h1_0")
    z, a, dL_da, dL_dz, bias_grad = kept["values"]["h1_0"]
    before, net = kept["before"], kept["net"]
    for source in ("x0", "x1"):
        w = before[source, "h1_0"]
        a_source = np.mean(kept["values"][source][1])
        message = np.mean(kept["values"][source][1] * w) if detail == "messages" else a_source * w
        assert f"from {source}: a = {n6(a_source)} × w = {n6(w)} → {n6(message)}" in text
        c = net.connection(source, "h1_0")
        grad = kept["grads"][source, "h1_0"]
        assert f"dL/dw = Σ over the batch of dL/dz × a({source}) = {n6(grad)}" in text
        assert f"= {n6(c.weight)}  (Δ {n6(c.weight - w)})" in text
    assert f"= z                      {n6(np.mean(z))}" in text
    assert f"a = relu(z)              {n6(np.mean(a))}" in text
    assert f"dL/da = sum              {n6(np.mean(dL_da))}" in text
    assert f"dL/dz = dL/da × da/dz    {n6(np.mean(dL_dz))}" in text
    assert f"+ bias                   {n6(kept['bias_before']['h1_0'])}" in text
    assert f"dL/db = Σ over the batch of dL/dz = {n6(bias_grad)}" in text
    y_gradient = np.mean(kept["values"]["y0"][3])
    assert f"from y0: dL/dz = {n6(y_gradient)} × w = {n6(before['h1_0', 'y0'])}" in text
    assert ("sample 0" in text) == (detail == "messages")
    assert ("messages as recorded" in text) == (detail == "messages")


def test_explain_an_output_an_input_and_the_start(runs):
    trace = sn.open_trace(runs["updates"][0])
    output = inspect.explain(trace, 4, "y0")
    assert "dL/da comes from the loss (bce)" in output and "compared with the target" in output
    assert "is an input and has none to learn" in inspect.explain(trace, 4, "x1")
    start = inspect.explain(trace, 0, "y0")
    assert "starts from" in start and f"bias {n6(0.0)}" in start
    with pytest.raises(sn.TraceError, match="no neuron 'h9' at step 4"):
        inspect.explain(trace, 4, "h9")
    with pytest.raises(sn.TraceError, match="unknown step 99"):
        inspect.explain(trace, 99, "y0")


def test_summary_says_how_the_run_stands(runs):
    trace = sn.open_trace(runs["messages"][0])
    text = inspect.summary(trace)
    history = trace.history()
    assert "status     complete" in text and "scenario   xor-test" in text
    assert f"final loss {n6(history['loss'][-1])}" in text
    assert "steps      0 to 8 (8 trained" in text
    assert "2 inputs, 3 hidden, 1 output; 9 connections" in text
    assert f"events     {sum(trace.event_counts().values())} (message" in text


def test_raw_events_as_table_jsonl_and_csv(runs):
    trace = sn.open_trace(runs["messages"][0])
    expected = list(trace.events(step=3, neuron="h1_1"))
    out = io.StringIO()
    inspect.write_events(trace, out, step=3, neuron="h1_1", fmt="jsonl")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == len(expected)
    for line, event in zip(lines, expected):
        for key, value in event.items():
            assert line[key] == (value.tolist() if isinstance(value, np.ndarray) else value)
    out = io.StringIO()
    inspect.write_events(trace, out, step=3, neuron="h1_1", kind="weight_update", fmt="csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    updates = [e for e in expected if e["kind"] == "weight_update"]
    assert len(rows) == len(updates) == 3
    for row, event in zip(rows, updates):
        assert (row["source"], row["target"]) == (event["source"], event["target"])
        assert [float(row[k]) for k in ("old", "new", "grad", "delta")] == \
            [event[k] for k in ("old", "new", "grad", "delta")]
    out = io.StringIO()
    inspect.write_events(trace, out, step=3, kind="loss")
    table = out.getvalue().splitlines()
    assert table[0].split() == ["seq", "step", "phase", "kind", "subject", "values"]
    assert len(table) == 2 and f"loss={n6(expected and trace.history()['loss'][2])}" in table[1]
    with pytest.raises(sn.TraceError, match="unknown event format"):
        inspect.write_events(trace, out, fmt="xml")


def test_perfetto_has_a_track_per_neuron_and_a_slice_per_firing_in_order(runs, tmp_path):
    trace = sn.open_trace(runs["messages"][0])
    path = tmp_path / "run.json"
    export(trace, "perfetto", path)
    records = json.loads(path.read_text())["traceEvents"]
    tracks = {r["tid"]: r["args"]["name"] for r in records if r.get("name") == "thread_name"}
    assert sorted(set(tracks.values()) - {"training"}) == sorted({"x0", "x1", "h1_0", "h1_1", "h1_2", "y0"})
    fires = list(trace.events(kind="fire"))
    slices = [r for r in records if r["ph"] == "X" and r["cat"] in ("forward", "backward") and r["tid"] != 0]
    assert [(tracks[s["tid"]], s["cat"], s["args"]["step"]) for s in sorted(slices, key=lambda s: s["ts"])] == \
        [(e["neuron"], e["phase"], e["step"]) for e in fires]
    for tid in tracks:  # slices on one track never overlap
        mine = sorted((s["ts"], s["ts"] + s["dur"]) for s in slices if s["tid"] == tid)
        assert all(end <= start for (_, end), (start, _) in zip(mine, mine[1:]))
    starts = [r for r in records if r["ph"] == "s"]
    assert len(starts) == len([r for r in records if r["ph"] == "f"]) == len(list(trace.events(kind="message")))
    steps = [r for r in records if r["ph"] == "X" and r["cat"] == "step"]
    assert [s["name"] for s in steps] == [f"step {k}" for k in range(9)]


def test_graphml_holds_one_steps_snapshot(runs, tmp_path):
    trace = sn.open_trace(runs["updates"][0])
    path = tmp_path / "step5.graphml"
    export(trace, "graphml", path, step=5)
    G, H = trace.snapshot(5), nx.read_graphml(path)
    assert list(H.nodes) == list(G.nodes) and set(H.edges) == set(G.edges)
    for u, v, attrs in G.edges(data=True):
        assert H.edges[u, v]["weight"] == attrs["weight"] and H.edges[u, v]["message"] == attrs["message"]
    assert H.nodes["h1_2"]["activation"] == G.nodes["h1_2"]["activation"]
    export(trace, "graphml", tmp_path / "last.graphml")
    last = nx.read_graphml(tmp_path / "last.graphml")
    assert last.graph["step"] == 8


def test_gexf_is_a_dynamic_graph_over_the_snapshot_steps(tmp_path):
    recorded_run(tmp_path / "run", steps=16, every=2)  # h1_1 leaves at step 9 and comes back at 11
    trace = sn.open_trace(tmp_path / "run")
    path = tmp_path / "run.gexf"
    export(trace, "gexf", path)
    H = nx.read_gexf(path)
    assert H.graph["mode"] == "dynamic"
    snapshots = dict(trace.snapshots())
    activation = H.nodes["h1_0"]["activation"]
    assert [(value, start) for value, start, _ in activation] == \
        [(G.nodes["h1_0"]["activation"], step) for step, G in snapshots.items() if step > 0]
    weights = [(value, start) for value, start, _ in H.edges["x0", "h1_1"]["weight"]]
    assert weights == [(G.edges["x0", "h1_1"]["weight"], step)
                       for step, G in snapshots.items() if ("x0", "h1_1") in G.edges]
    assert H.edges["x0", "h1_1"]["grad"][1] == (snapshots[2].edges["x0", "h1_1"]["grad"], 2, 3)
    assert H.nodes["h1_1"]["spells"] == [(0, 9), (12, 16)]  # snapshots every 2 steps: gone at 10, back at 12
    assert H.nodes["extra"]["spells"] == [(4, 16)]


def test_unknown_export_format_and_unwritable_path(runs, tmp_path):
    trace = sn.open_trace(runs["updates"][0])
    with pytest.raises(sn.TraceError, match="unknown export format 'png'"):
        export(trace, "png", tmp_path / "x.png")
    with pytest.raises(sn.TraceError, match="cannot write"):
        export(trace, "jsonl", tmp_path / "missing" / "x.jsonl")


def test_jsonl_and_csv_exports_cover_every_event(runs, tmp_path):
    trace = sn.open_trace(runs["updates"][0])
    export(trace, "jsonl", tmp_path / "all.jsonl")
    export(trace, "csv", tmp_path / "all.csv")
    count = sum(trace.event_counts().values())
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == count
    with open(tmp_path / "all.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == count


def test_the_command_line_inspects_and_exports(runs, tmp_path, capsys):
    directory = runs["messages"][0]
    assert main(["inspect", str(directory)]) == 0
    assert "status     complete" in capsys.readouterr().out
    assert main(["inspect", str(directory), "--step", "4", "--neuron", "h1_0"]) == 0
    assert "Backward sweep" in capsys.readouterr().out
    assert main(["inspect", str(directory), "--step", "4", "--kind", "loss", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "loss"
    assert main(["export", str(directory), "--format", "perfetto", "-o", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["traceEvents"]
    assert main(["inspect", str(directory), "--step", "4", "--neuron", "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simnet: error:") and "\n" not in err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "trace.sqlite").write_text("not a database")
    assert main(["inspect", str(tmp_path / "junk")]) == 2
    assert "not a simnet trace" in capsys.readouterr().err
