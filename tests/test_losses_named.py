"""One final loss, named: the recorded batch loss (with its penalty) and the data-set loss are never confused."""
import json
import subprocess
import sys
from pathlib import Path


import simnet as sn
from simnet.viz.frames import Film
from simnet.trace.explain import summary
from simnet.viz.render import loss_figure

XOR = Path(__file__).resolve().parent.parent / "scenarios" / "xor.toml"


def run(tmp_path, penalty_line):
    text = XOR.read_text().replace("steps = 1000", "steps = 30").replace('loss = "bce"', f'loss = "bce"\n{penalty_line}')
    text = text.replace("[record]", '[record]\ngifs = []')
    scenario = tmp_path / "xor.toml"
    scenario.write_text(text)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "simnet", "run", str(scenario), "-o", str(out)],
                          capture_output=True, text=True)
    return out, done.stdout


def test_inspect_names_both_losses_and_the_closing_line_the_data_set_one(tmp_path):
    out, stdout = run(tmp_path, "l2 = 0.05")
    saved = json.loads((out / "summary.json").read_text())
    with sn.open_trace(out) as trace:
        text = summary(trace)
        batch = float(trace.history()["loss"][-1])
    assert f"final loss {batch:.6g} on the batch of step 30 (with the L2 penalty)" in text
    assert f"{saved['loss']:.6g} on the whole data set after it (no penalty)" in text
    assert abs(batch - saved["loss"]) > 1e-3  # two different numbers, each under its own name
    assert f"data-set loss {saved['loss']:.4g}" in stdout


def test_pictures_say_the_loss_they_show_is_the_batch_loss_and_its_penalty(tmp_path):
    out, _ = run(tmp_path, "l1 = 0.001\nl2 = 0.05")
    with sn.open_trace(out) as trace:
        history, actions, graphs = trace.history(), trace.actions(), [G for _, G in trace.snapshots()]
    words = "with the L1 and L2 penalties"
    fig = loss_figure(history, actions, words)
    assert fig.axes[0].get_ylabel() == f"batch loss ({words})"
    assert fig.texts[0].get_text().startswith(f"last batch loss {history['loss'][-1]:.4g} ({words})")
    film = Film(graphs, penalty=words)
    assert f"batch loss {film.frames[-1].loss:.4g} ({words})" in film.title(len(film) - 1, "activations")
    assert loss_figure(history, actions).axes[0].get_ylabel() == "batch loss"
    assert "(with" not in Film(graphs).title(len(graphs) - 1, "weights")
