"""The replay page's contents: exact numbers, no network, sampling under a size budget, recorded sweeps."""
import base64
import json
import math
import re

import numpy as np
import pytest

import simnet as sn
from simnet.core.engine import probe
from simnet.viz.page import EDGE_FIELDS, NODE_FIELDS, SWEEP_KINDS, render_page, write_page
from simnet.scenario import execute, loads

SCENARIO = """
name = "page_test"
seed = 3

[network]
layers = [2, 4, 1]
hidden = "tanh"
output = "sigmoid"

[data]
kind = "xor"
samples = 16
noise = 0.1

[training]
steps = 40
learning_rate = 0.5
loss = "bce"

[record]
every = 4

[[script]]
at = 21
action = "add_neuron"
name = "h_new"
activation = "relu"
connect_from = ["x0", "x1"]
connect_to = ["y0"]
"""


def record_run(directory, *, detail="messages", text=SCENARIO):
    """Run a scenario the way `simnet run` does, recorded into `directory`; returns the open trace."""
    scenario = loads(text, directory / "scenario.toml")
    recorder = sn.Recorder(directory, every=scenario.record.every, detail=detail, scenario_text=text,
                           metadata={"scenario": scenario.name, "seed": scenario.seed})
    try:
        execute(scenario, recorder=recorder)
    finally:
        recorder.close()
    return sn.open_trace(directory)


def page_payload(page):
    """The run data a page carries, as the dict write_page put there."""
    match = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def floats(b64):
    return np.frombuffer(base64.b64decode(b64), dtype="<f8")


def same(a, b):
    """Equal as float64 bit patterns, None and NaN standing for 'no value'."""
    a = math.nan if a is None else float(a)
    b = math.nan if b is None else float(b)
    return np.float64(a).tobytes() == np.float64(b).tobytes() or (math.isnan(a) and math.isnan(b))


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return record_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def page(trace):
    return render_page(trace)


def test_every_kept_value_is_the_traces_float_bit_for_bit(trace, page):
    data = page_payload(page)
    names = [n["name"] for n in data["nodes"]]
    edges = [(names[s], names[t]) for s, t in data["edges"]]
    nodes = floats(data["nodeValues"]).reshape(len(data["steps"]), len(names), len(NODE_FIELDS))
    links = floats(data["edgeValues"]).reshape(len(data["steps"]), len(edges), len(EDGE_FIELDS))
    assert data["steps"] == list(trace.steps)
    for k, step in enumerate(data["steps"]):
        G = trace.snapshot(step)
        for i, name in enumerate(names):
            if name not in G:
                assert math.isnan(nodes[k, i, 0]), f"{name} shown at step {step} but not in the network"
                continue
            for f, field in enumerate(NODE_FIELDS):
                assert same(nodes[k, i, f], G.nodes[name][field]), (step, name, field)
        for j, (source, target) in enumerate(edges):
            if not G.has_edge(source, target):
                assert math.isnan(links[k, j, 0])
                continue
            for f, field in enumerate(EDGE_FIELDS):
                assert same(links[k, j, f], G.edges[source, target][field]), (step, source, target, field)
    assert "h_new" in names and any(math.isnan(nodes[k, names.index("h_new"), 0]) for k in range(len(data["steps"])))


def test_the_page_needs_no_network(page):
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert addresses <= {"http://www.w3.org/2000/svg"}, addresses


def test_loss_history_and_actions_are_on_the_page(trace, page):
    data = page_payload(page)
    history = trace.history()
    assert np.array_equal(floats(data["history"]["loss"]), np.asarray(history["loss"], dtype=float))
    assert np.array_equal(floats(data["history"]["step"]), np.asarray(history["step"], dtype=float))
    assert [(a["step"], a["label"]) for a in data["actions"]] == [(a["step"], a["label"]) for a in trace.actions()]
    assert data["title"] == "page_test"


def test_a_small_budget_samples_steps_and_keeps_the_ones_that_matter(trace, page):
    budget = len(page.encode()) * 2 // 3
    small = render_page(trace, budget=budget)
    data = page_payload(small)
    recorded = list(trace.steps)
    assert len(small.encode()) <= budget
    assert len(data["steps"]) < len(recorded) == data["recordedSteps"]
    assert set(data["steps"]) <= set(recorded)
    action = trace.actions()[0]["step"]
    before = max(s for s in recorded if s < action)
    after = min(s for s in recorded if s >= action)
    assert {recorded[0], recorded[-1], before, after} <= set(data["steps"])


def test_recorded_sweep_is_the_traces_events_in_order(trace, page):
    data = page_payload(page)
    names = [n["name"] for n in data["nodes"]]
    edges = [(names[s], names[t]) for s, t in data["edges"]]
    assert set(data["sweeps"]) == {str(s) for s in trace.steps if s > 0} and data["messages"] is True
    step = trace.steps[-1]
    sweep = data["sweeps"][str(step)]
    codes = np.frombuffer(base64.b64decode(sweep["codes"]), dtype="u1")
    subjects = np.frombuffer(base64.b64decode(sweep["subjects"]), dtype="<u4")
    values = floats(sweep["values"]).reshape(-1, 2)
    events = [e for e in trace.events(step=step) if (e["phase"], e["kind"]) in SWEEP_KINDS]
    assert len(events) == len(codes) > 0
    first_value = {"fire": {"forward": "z", "backward": "dL_da"}, "message": {"forward": "value", "backward": "value"},
                   "weight_update": {"update": "old"}, "bias_update": {"update": "old"}}
    for e, code, subject, (v1, _) in zip(events, codes, subjects, values):
        assert SWEEP_KINDS[code] == (e["phase"], e["kind"])
        if e["kind"] in ("fire", "bias_update"):
            assert names[subject] == e["neuron"]
        else:
            assert edges[subject] == (e["source"], e["target"])
        assert same(v1, np.mean(e[first_value[e["kind"]][e["phase"]]]))


def test_a_trace_without_messages_leaves_sweeps_to_the_page(tmp_path):
    data = page_payload(render_page(record_run(tmp_path, detail="updates")))
    assert data["sweeps"] == {} and data["messages"] is False


def test_decision_surface_says_which_side_of_the_boundary_each_grid_point_is_on(trace, page):
    surface = page_payload(page)["surface"]
    low, middle, high = surface["norm"]
    assert (low, middle, high) == (0.0, 0.5, 1.0)  # a sigmoid output: white at 0.5
    x0, x1, y0, y1 = surface["extent"]
    n = surface["n"]
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y1, y0, n))  # top row first
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    points = np.array(surface["points"])
    assert len(points) == 16 and x0 < points[:, 0].min() and points[:, 0].max() < x1
    assert set(points[:, 2]) == {0, 1}
    assert surface["steps"] == list(trace.steps)
    for step, image in zip(surface["steps"], surface["data"]):
        output = probe(trace.network_at(step), grid)["y0"]
        shade = np.frombuffer(base64.b64decode(image), dtype="u1").astype(float)
        clear = np.abs(output - middle) > 2 * (high - low) / 255  # away from rounding at the boundary
        assert clear.sum() > n * n // 2
        assert np.array_equal((shade > 127.5)[clear], (output > middle)[clear]), step


def test_write_page_writes_the_whole_page_and_nothing_else(trace, page, tmp_path):
    ticks = []
    out = write_page(trace, tmp_path / "replay.html", progress=lambda done, total: ticks.append((done, total)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.html"]
    assert (tmp_path / "replay.html").read_text(encoding="utf-8") == page
    assert str(out) == str(tmp_path / "replay.html")
    assert ticks and ticks[-1][0] == ticks[-1][1] and [d for d, _ in ticks] == sorted(d for d, _ in ticks)


def test_names_cannot_break_out_of_the_page(tmp_path):
    net = sn.Network(seed=0)
    net.add_neuron("x</script>", role="input")
    net.add_neuron("<!--h", activation="tanh")
    net.add_neuron("y&<b>", role="output")
    net.connect("x</script>", "<!--h")
    net.connect("<!--h", "y&<b>")
    recorder = sn.Recorder(tmp_path, every=1)
    try:
        net.train(np.linspace(-1, 1, 8)[:, None], np.linspace(0, 1, 8)[:, None], steps=3, lr=0.1, recorder=recorder)
    finally:
        recorder.close()
    page = render_page(sn.open_trace(tmp_path))
    assert page.count("</script>") == 2 and "<!--" not in page and "y&<b>" not in page
    data = page_payload(page)
    assert [n["name"] for n in data["nodes"]] == ["x</script>", "<!--h", "y&<b>"]
    assert data["surface"] is None  # one input: no decision surface
    assert len(data["steps"]) == 4


def test_simnet_replay_html_writes_the_page(tmp_path):
    from simnet.cli import main
    scenario = tmp_path / "page_test.toml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    assert main(["run", str(scenario), "-o", str(run_dir), "--no-gif", "-q"]) == 0
    assert main(["replay", str(run_dir), "--html", "-q"]) == 0
    data = page_payload((run_dir / "replay.html").read_text(encoding="utf-8"))
    assert data["title"] == "page_test" and data["steps"] == list(sn.open_trace(run_dir).steps)
    assert len(data["surface"]["points"]) == 16
    out = tmp_path / "elsewhere.html"
    assert main(["replay", str(run_dir), "--html", "-o", str(out), "-q"]) == 0
    assert out.read_text(encoding="utf-8") == (run_dir / "replay.html").read_text(encoding="utf-8")
