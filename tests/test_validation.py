"""Input that cannot work is refused where it enters: losses against outputs and labels, fixed inputs and
outputs during training, names, seeds, sizes, arrays, and the files a scenario reads."""
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import simnet as sn
import simnet.scenario as S
from simnet.core import memory
from simnet.errors import ScenarioError, SimnetError, TopologyError
from simnet.core.functions import SimnetWarning
from simnet.scenario.reading import read_bounded

ROOT = Path(__file__).resolve().parent.parent
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_Y = np.array([[0], [1], [1], [0]], float)

SCENARIO = """
name = "fit"
seed = 1

[network]
layers = [2, 3, {outputs}]
output = "{output}"

[data]
kind = "{kind}"
{data}

[training]
steps = 3
learning_rate = 0.1
loss = "{loss}"
"""


def scenario_text(*, output="sigmoid", loss="bce", outputs=1, kind="xor", data="samples = 8"):
    return SCENARIO.format(output=output, loss=loss, outputs=outputs, kind=kind, data=data)


# ---- losses against the outputs ---------------------------------------------

@pytest.mark.parametrize("output,loss,outputs,message", [
    ("linear", "bce", 1, "bce needs outputs in (0, 1)"),
    ("relu", "bce", 1, "output neuron 'y0' is relu"),
    ("tanh", "bce", 1, "which only sigmoid gives"),
    ("relu", "hinge", 1, "hinge needs outputs that can be negative"),
    ("sigmoid", "hinge", 1, "output neuron 'y0' is sigmoid"),
    ("linear", "cross_entropy", 1, "cross_entropy needs at least two outputs"),
])
def test_a_loss_the_outputs_cannot_serve_is_a_topology_error(output, loss, outputs, message):
    net = sn.Network.layered([2, 4, outputs], output=output, seed=0)
    with pytest.raises(TopologyError, match=re.escape(message)):
        net.train(XOR_X, XOR_Y, steps=2, lr=0.1, loss=loss)
    assert net.step == 0  # refused before the first step


@pytest.mark.parametrize("output,loss,outputs,message", [
    ("linear", "bce", 1, "bce needs outputs in (0, 1)"),
    ("relu", "hinge", 1, "hinge needs outputs that can be negative"),
])
def test_a_scenario_names_training_loss_and_the_output_activation(output, loss, outputs, message):
    with pytest.raises(ScenarioError) as caught:
        S.loads(scenario_text(output=output, loss=loss, outputs=outputs), "fit.toml")
    assert caught.value.where == "training.loss"
    assert message in caught.value.why and "network.output" in caught.value.why


def test_cross_entropy_on_one_csv_output_is_refused_at_training_loss(tmp_path):
    (tmp_path / "d.csv").write_text("x0,x1,y0\n0,0,1\n")
    with pytest.raises(ScenarioError) as caught:
        S.loads(scenario_text(output="linear", loss="cross_entropy", kind="csv", data='path = "d.csv"'),
                tmp_path / "fit.toml")
    assert caught.value.where == "training.loss" and "at least two outputs" in caught.value.why


def test_an_odd_pairing_is_a_warning_once_per_calling_line():
    net = sn.Network.layered([2, 4, 1], output="tanh", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            net.train(XOR_X, XOR_Y, steps=1, lr=0.1, loss="hinge")
    assert [w.category for w in caught] == [SimnetWarning]
    assert "tanh never reaches the margin of 1" in str(caught[0].message)
    assert caught[0].filename == __file__  # it points at the caller's line, not into simnet


def test_the_command_line_prints_an_odd_pairing_as_one_warning_line(tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text(scenario_text(output="tanh", loss="hinge"))
    done = subprocess.run([sys.executable, "-m", "simnet", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"simnet: warning: {path}: training.loss: hinge on tanh output 'y0': "
                                        "tanh never reaches the margin of 1, so the loss never gets to 0 "
                                        "(network.output)"]


# ---- labels against the loss ------------------------------------------------

@pytest.mark.parametrize("loss,output,Y,message", [
    ("bce", "sigmoid", [[0], [1], [5], [0]], "Y row 2, column 0: label 5 is not 0 or 1"),
    ("hinge", "linear", [[0], [-1], [1], [0]], "Y row 1, column 0: label -1 is not 0 or 1"),
    ("cross_entropy", "linear", [[1, 0], [0, 1], [0, 2], [1, 0]], "Y row 2, column 1: label 2 is not 0 or 1"),
    ("cross_entropy", "linear", [[1, 0], [1, 1], [0, 1], [1, 0]], "Y row 1: 2 labels are 1; cross_entropy takes "
                                                                  "one-hot rows"),
    ("cross_entropy", "linear", [[1, 0], [0, 0], [0, 1], [1, 0]], "Y row 1: 0 labels are 1"),
])
def test_labels_the_loss_cannot_take_are_refused_naming_row_column_and_value(loss, output, Y, message):
    net = sn.Network.layered([2, 3, len(Y[0])], output=output, seed=0)
    with pytest.raises(SimnetError, match=message):
        net.train(XOR_X, np.array(Y, float), steps=1, lr=0.1, loss=loss)


def test_a_csv_label_the_loss_cannot_take_names_the_csv_line_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("y0,x0,x1\n0,0,0\n\n-1,0,1\n")
    sc = S.loads(scenario_text(kind="csv", data='path = "d.csv"'), tmp_path / "fit.toml")
    with pytest.raises(ScenarioError) as caught:
        sc.dataset()
    e = caught.value
    assert (e.file, e.where) == (str(tmp_path / "d.csv"), "line 4, column y0")
    assert "label -1 is not 0 or 1" in e.why


# ---- the inputs and outputs stay while training ------------------------------

@pytest.mark.parametrize("engine", ["actor", "fast"])
@pytest.mark.parametrize("change,message", [
    (lambda net: net.add_neuron("x9", role="input"), "cannot add input neuron 'x9' during training"),
    (lambda net: net.add_neuron("y9", role="output"), "cannot add output neuron 'y9' during training"),
    (lambda net: net.remove_neuron("x1"), "cannot remove input neuron 'x1' during training"),
    (lambda net: net.remove_neuron("y0"), "cannot remove output neuron 'y0' during training"),
])
def test_changing_inputs_or_outputs_during_training_is_refused_when_it_happens(engine, change, message):
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=0)
    before = sorted(net.neurons)

    def before_step(net, step):
        if step == 3:
            change(net)

    with pytest.raises(TopologyError, match=message):
        net.train(XOR_X, XOR_Y, steps=5, lr=0.3, loss="bce", engine=engine, before_step=before_step)
    assert net.step == 2 and sorted(net.neurons) == before
    # hidden neurons still come and go, and the ends can change again between runs
    net.train(XOR_X, XOR_Y, steps=2, lr=0.3, loss="bce", engine=engine,
              before_step=lambda net, step: net.add_neuron(f"h_{step}"))
    change(net)


# ---- names, seeds, sizes and arrays ---------------------------------------------

@pytest.mark.parametrize("name,kind", [
    ("a\x00b", "a control character (U+0000)"), ("tab\there", "a control character (U+0009)"),
    ("bell\x07", "a control character"), ("del\x7f", "a control character"),
    ("x\ufffe", "a noncharacter (U+FFFE)"), ("x\uffff", "a noncharacter (U+FFFF)"),
    ("x\ud800", "a lone surrogate (U+D800)"),
])
def test_names_exports_cannot_carry_are_refused_at_add_neuron(name, kind):
    net = sn.Network(seed=0)
    with pytest.raises(TopologyError, match=re.escape(kind)):
        net.add_neuron(name)
    assert not net.neurons
    net.add_neuron("naïve_ünïcode-名前")  # printable text of any script is fine


def test_a_scenario_refuses_control_characters_in_names_and_labels_at_their_key():
    text = scenario_text() + '\n[[script]]\nat = 2\naction = "add_neuron"\nname = "h\\u0001"\n'
    with pytest.raises(ScenarioError) as caught:
        S.loads(text, "fit.toml")
    assert caught.value.where == "script[0].name"
    text = scenario_text() + '\n[[script]]\nat = 2\naction = "set_learning_rate"\nvalue = 0.1\nlabel = "a\\nb"\n'
    with pytest.raises(ScenarioError) as caught:
        S.loads(text, "fit.toml")
    assert caught.value.where == "script[0].label" and "U+000A" in caught.value.why


def test_a_seed_that_is_not_an_int64_from_zero_is_refused_not_truncated():
    for seed in (-1, "abc", 1.5, 2.0, 2**63, True, 10**5000):
        with pytest.raises(SimnetError, match="seed must be an integer from 0 to 9223372036854775807"):
            sn.Network(seed=seed)
    assert sn.Network.layered([2, 2, 1], seed=np.int64(2**63 - 1)).seed == 2**63 - 1


def test_layered_refuses_sizes_that_cannot_fit_before_building_any_neuron(monkeypatch):
    for sizes in ([1000000000, 3], [3, 1000000000], [2, 100000, 100000, 1]):
        with pytest.raises(SimnetError, match="layer sizes too big: a network of .* needs about .* of memory"):
            sn.Network.layered(sizes)
    # the same arithmetic as scenarios: a small machine refuses a network a big one builds
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * memory.network_bytes(4 + 2, 8))
    sn.Network.layered([2, 2, 2])
    with pytest.raises(SimnetError, match="too big"):
        sn.Network.layered([2, 3, 2])


@pytest.mark.parametrize("X,message", [
    ([[0, 1], [1]], "X is ragged"),
    ([[1 + 2j, 0]], "X holds complex numbers"),
    (np.array([[1 + 0j, 0]]), "X holds complex numbers"),
    ([["1", "0"]], "X must be numeric"),
    ([[{}, 0]], "X must hold real numbers only"),
])
def test_arrays_that_are_not_a_real_matrix_are_refused(X, message):
    net = sn.Network.layered([2, 3, 1], seed=0)
    with pytest.raises(SimnetError, match=message):
        net.forward(X)
    with pytest.raises(SimnetError, match=message):
        net.train(X, [[0]] * len(X), steps=1, lr=0.1)


def test_backward_needs_a_forward_over_the_same_batch():
    net = sn.Network.layered([2, 3, 1], seed=0)
    with pytest.raises(SimnetError, match="backward needs a forward sweep first"):
        net.backward(np.ones((4, 1)))
    net.forward(XOR_X)
    with pytest.raises(SimnetError, match="grad_outputs has 2 rows, but the last forward sweep was over a batch of 4"):
        net.backward(np.ones((2, 1)))
    net.add_neuron("h_new")
    net.connect("x0", "h_new")
    net.connect("h_new", "y0")
    with pytest.raises(SimnetError, match="neuron 'h_new' has no value yet"):
        net.backward(np.ones((4, 1)))
    net.forward(XOR_X)
    net.backward(np.ones((4, 1)))
    assert net.connection("x0", "h_new").grad != 0 or net.neurons["h_new"].value.max() <= 0


# ---- scenarios: sizes, nesting, divergence at the end --------------------------

def test_a_billion_inputs_are_refused_by_arithmetic_before_any_name_is_built(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(scenario_text().replace("[2, 3, 1]", "[1000000000, 3]"))
    (tmp_path / "small.toml").write_text(scenario_text())
    # a process that may not take more than 1 GB cannot build a billion names; it has to refuse first
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)); "
    done = subprocess.run([sys.executable, "-c", limit + "from simnet.cli import main; raise SystemExit(main())",
                           "check", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"simnet: error: {path}: network.layers: too big: a network of 1,000,000,003")
    assert f"fit ({tmp_path / 'small.toml'})" in done.stdout  # and goes on to the next file


def test_deeply_nested_toml_is_bad_input_not_a_recursion_error():
    with pytest.raises(ScenarioError) as caught:
        S.loads("x = " + "[" * 20000 + "]" * 20000, "deep.toml")
    assert caught.value.where == "file" and "nested too deeply" in caught.value.why


def test_steps_given_on_the_command_line_are_checked_against_memory_too():
    sc = S.load(ROOT / "scenarios" / "xor.toml")
    with pytest.raises(ScenarioError) as caught:
        sc.with_overrides(steps=2**62)
    assert caught.value.where == "training.steps" and "too big" in caught.value.why


def test_a_loss_that_is_not_finite_at_the_end_is_a_divergence(tmp_path):
    out = tmp_path / "run"
    # this learning rate overflows the output on step 11: the weights after step 10 already give inf
    done = subprocess.run([sys.executable, "-m", "simnet", "run", str(ROOT / "scenarios" / "lr_too_high.toml"),
                           "-o", str(out), "--steps", "10", "--no-gif", "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Warning" not in done.stderr and "overflow" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] == {"step": 10, "where": "neuron y0", "quantity": "activation"}
    assert summary["loss"] is None


@pytest.mark.parametrize("option,value", [("--seed", "99999999999999999999999"), ("--seed", str(2**63)),
                                          ("--steps", "99999999999999999999999")])
def test_numbers_out_of_range_on_the_command_line_are_usage_errors(option, value, tmp_path):
    done = subprocess.run([sys.executable, "-m", "simnet", "run", str(ROOT / "scenarios" / "xor.toml"),
                           "-o", str(tmp_path / "o"), option, value], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"simnet run: error: argument {option}: expected")
    assert not (tmp_path / "o").exists()


# ---- the files a scenario reads ---------------------------------------------------

def test_a_csv_path_leading_outside_the_scenario_directory_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("x0,x1,y0\n0,0,1\n")
    (home / "link.csv").symlink_to(secret)
    for given in ("../secret.csv", str(secret), "link.csv"):
        with pytest.raises(ScenarioError) as caught:
            S.loads(scenario_text(kind="csv", data=f'path = "{given}"'), home / "fit.toml")
        assert caught.value.where == "data.path" and "outside the scenario's directory" in caught.value.why
    (home / "sub").mkdir()
    (home / "sub" / "ok.csv").write_text("x0,x1,y0\n0,0,1\n")
    X, Y = S.loads(scenario_text(kind="csv", data='path = "sub/../sub/ok.csv"'), home / "fit.toml").dataset()
    assert X.tolist() == [[0, 0]] and Y.tolist() == [[1]]


def test_an_unknown_csv_header_is_echoed_only_as_a_short_escaped_excerpt(tmp_path):
    (tmp_path / "d.csv").write_text("x0,x1,y0," + "\x1b[31m" + "A" * 5000 + "\n0,0,1,2\n")
    sc = S.loads(scenario_text(kind="csv", data='path = "d.csv"'), tmp_path / "fit.toml")
    with pytest.raises(ScenarioError) as caught:
        sc.dataset()
    assert "\x1b" not in str(caught.value) and "\\x1b" in caught.value.why
    assert len(str(caught.value)) < 300


def test_a_fifo_among_the_scenarios_is_reported_without_blocking(tmp_path):
    (tmp_path / "a_good.toml").write_text(scenario_text())
    os.mkfifo(tmp_path / "b_pipe.toml")
    (tmp_path / "c_zero.toml").symlink_to("/dev/zero")
    for command in ("list", "check"):
        done = subprocess.run([sys.executable, "-m", "simnet", command, str(tmp_path)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"simnet: error: {tmp_path / 'b_pipe.toml'}: file: is a named pipe (FIFO); expected a scenario file",
            f"simnet: error: {tmp_path / 'c_zero.toml'}: file: is a device; expected a scenario file"]
        assert "fit" in done.stdout  # the good one is still listed or checked


def test_a_file_is_read_no_further_than_its_bound_whatever_its_size_says(tmp_path, monkeypatch):
    path = tmp_path / "grows.toml"
    path.write_bytes(b"#" * 5000)
    real_fstat = os.fstat

    def lying_fstat(fd):
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 10, *info[7:]))  # st_size claims 10 bytes

    monkeypatch.setattr(os, "fstat", lying_fstat)
    with pytest.raises(ScenarioError, match="is more than 1,000 bytes; a scenario file is at most 1,000 bytes"):
        read_bounded(path, 1000, "a scenario file")
    assert read_bounded(path, 5000, "a scenario file") == b"#" * 5000


def test_csv_data_counts_in_the_memory_estimate_before_it_is_parsed(tmp_path, monkeypatch):
    (tmp_path / "d.csv").write_text("x0,x1,y0\n" + "0,0,1\n" * 200_000)
    sc = S.loads(scenario_text(kind="csv", data='path = "d.csv"'), tmp_path / "fit.toml")
    assert len(sc.dataset()[0]) == 200_000
    monkeypatch.setattr(memory, "available_memory", lambda: 40 * 2**20)
    with pytest.raises(ScenarioError) as caught:
        sc.dataset()
    e = caught.value
    assert (e.file, e.where) == (str(tmp_path / "d.csv"), "file")
    assert "bytes of CSV data fit in the memory this machine has available" in e.why
