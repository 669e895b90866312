"""A trace's pictures are drawn from what the trace holds: replaying reads no file a scenario names."""
import subprocess
import sys

import numpy as np

import simnet as sn
from simnet.viz.page import render_page
from simnet.viz.render import trace_data, trace_png

MARK = 0.7345678  # a value nothing else in a run or a page holds


def csv_scenario(csv):
    return f"""
name = "from_csv"
seed = 1
[network]
layers = [2, 3, 1]
output = "sigmoid"
[data]
kind = "csv"
path = "{csv}"
[training]
steps = 6
learning_rate = 0.1
loss = "bce"
[record]
every = 2
gifs = []
"""


def write_csv(path, value):
    rows = [f"{value + i},{-value - i},{i % 2}" for i in range(6)]
    path.write_text("x0,x1,y0\n" + "\n".join(rows) + "\n")


def test_a_run_keeps_its_csv_points_and_the_replay_never_reads_the_file(tmp_path):
    csv = tmp_path / "points.csv"
    write_csv(csv, 0.25)
    scenario = tmp_path / "from_csv.toml"
    scenario.write_text(csv_scenario(csv.resolve()))
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "simnet", "run", str(scenario), "-o", str(run), "-q"], check=True)
    write_csv(csv, MARK)  # the file changes after the run: the replay must not see it
    with sn.open_trace(run) as trace:
        (X, Y), note = trace_data(trace)
        page = render_page(trace)
    assert note == ""
    assert np.allclose(X[:, 0], 0.25 + np.arange(6)) and np.array_equal(Y[:, 0], np.arange(6) % 2)
    assert str(MARK) not in page and "0.25" in page


def test_a_trace_that_names_a_csv_it_did_not_record_draws_no_points(tmp_path):
    secret = tmp_path / "secret.csv"
    write_csv(secret, MARK)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=0)
    recorder = sn.Recorder(tmp_path / "run", scenario_text=csv_scenario(secret.resolve()))
    net.train(X, Y, steps=3, lr=0.1, loss="bce", recorder=recorder)
    recorder.close()
    with sn.open_trace(tmp_path / "run") as trace:
        data, note = trace_data(trace)
        page = render_page(trace)
        png = trace_png(trace)
    assert data is None and note.startswith("no data points: the trace")
    assert str(MARK)[:5] not in page and str(MARK + 1)[:5] not in page
    assert png.startswith(b"\x89PNG")
