"""Scenario files: typed loading, precise errors, the script timeline, expectations, the library."""
import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import pytest

import simnet as sn
import simnet.scenario as S
from simnet.scenario.loader import MAX_FILE_BYTES
from simnet.core.engine import probe
from simnet.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = sorted((ROOT / "scenarios").glob("*.toml"))

BASE = """
name = "small"
description = "a small XOR run"
seed = 3

[network]
layers = [2, 3, 1]
hidden = "relu"
output = "sigmoid"

[data]
kind = "xor"
samples = 20
noise = 0.1

[training]
steps = 12
learning_rate = 0.5
loss = "bce"
"""


def scenario(extra="", base=BASE, path="small.toml"):
    return S.loads(base + extra, path)


def run_logged(sc):
    log = sn.EventLog()
    return S.execute(sc, recorder=log), log.events


def error(text, path="bad.toml"):
    with pytest.raises(ScenarioError) as caught:
        S.loads(text, path)
    return caught.value


# ---- loading ---------------------------------------------------------------

def test_the_library_scenarios_load_with_names_and_descriptions():
    assert len(LIBRARY) >= 12
    for path in LIBRARY:
        sc = S.load(path)
        assert sc.name == path.stem
        assert sc.description and "\n" not in sc.description
        assert not sc.expect.empty, f"{path.name} checks nothing"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_the_library_scenarios_meet_their_expectations(path):
    outcome = S.execute(S.load(path))
    assert outcome.results and outcome.passed, [r for r in outcome.results if not r.ok]


def test_a_scenario_loads_into_typed_objects():
    sc = S.load(ROOT / "scenarios" / "xor.toml")
    assert (sc.name, sc.seed) == ("xor", 7)
    assert sc.network.layers == (2, 4, 1) and sc.network.output == "sigmoid"
    assert sc.data == S.DataSpec("xor", 200, 0.1)
    assert sc.training.loss == "bce" and isinstance(sc.training.learning_rate, float)
    assert sc.record.every == 20 and sc.record.gifs == ("activations", "weights")
    assert sc.expect.final.accuracy_min == 0.97


def test_omitted_keys_take_their_documented_defaults():
    sc = S.loads('[network]\nlayers = [2, 1]\n[data]\nkind = "or"\n[training]\nsteps = 5\nlearning_rate = 0.1\n',
                 "defaults.toml")
    assert sc.name == "defaults" and sc.seed == 0 and sc.description == ""
    assert sc.network == S.NetworkSpec(layers=(2, 1))
    assert sc.data == S.DataSpec("or", 200, 0.0)
    assert sc.training == S.TrainingSpec(5, 0.1)
    assert sc.record == S.RecordSpec() and sc.script == () and sc.expect.empty


def test_every_misplaced_value_is_reported_at_its_key_path():
    """Replace each value of a library scenario by one of the wrong type: the error names that key."""
    text = (ROOT / "scenarios" / "growing.toml").read_text()
    document = tomllib.loads(text)

    def leaves(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list) and node and isinstance(node[0], dict):
            for i, value in enumerate(node):
                yield from leaves(value, f"{path}[{i}]")
        else:
            yield path

    checked = 0
    for path in leaves(document, ""):
        if path in ("description",):
            continue  # any string is a description
        wrong = {"name": 12}.get(path, [{"not": "this"}] if isinstance(_at(document, path), str) else "oops")
        broken = _replaced(document, path, wrong)
        assert error(_dump(broken)).where == path
        checked += 1
    assert checked > 20


def test_an_unknown_key_in_any_table_is_reported_with_its_path():
    document = tomllib.loads((ROOT / "scenarios" / "symmetry_broken.toml").read_text())
    for table in ("", "network", "network.neurons[1]", "network.connections[0]", "data", "training",
                  "record", "script[0]", "expect", "expect.at_step[0]"):
        broken = _replaced(document, f"{table}.zebra" if table else "zebra", 1)
        e = error(_dump(broken))
        assert e.where == (f"{table}.zebra" if table else "zebra")
        assert "unknown key" in e.why


def test_a_misspelt_required_key_is_reported_as_the_misspelling():
    e = error(BASE.replace("learning_rate", "learning_rat"))
    assert e.where == "training.learning_rat" and "did you mean 'learning_rate'" in e.why


@pytest.mark.parametrize("name", ["../escape", "a/b", "a\\b", ".hidden", "..", "", "x" * 80, "tab\tname"])
def test_a_scenario_name_can_only_be_one_plain_path_component(name):
    e = error(BASE.replace('name = "small"', f"name = {_toml_string(name)}"))
    assert e.where == "name"


def test_a_scenario_file_too_big_to_be_one_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ScenarioError) as caught:
        S.load(huge)
    assert (caught.value.where, caught.value.why) == ("file", f"is {MAX_FILE_BYTES + 1:,} bytes; a scenario "
                                                               f"file is at most {MAX_FILE_BYTES:,} bytes")


def test_a_missing_name_comes_from_the_file_name_if_that_is_a_valid_name():
    assert scenario(base=BASE.replace('name = "small"', ""), path="dir/from_file.toml").name == "from_file"
    with pytest.raises(ScenarioError) as caught:
        scenario(base=BASE.replace('name = "small"', ""), path="dir/has space.toml")
    assert caught.value.where == "name"


def test_sizes_that_cannot_fit_in_memory_are_refused_before_anything_is_built():
    e = error(BASE.replace("layers = [2, 3, 1]", "layers = [2, 1000000000, 1000000000, 1]"))
    assert e.where == "network.layers" and "too big" in e.why and "memory" in e.why
    e = error(BASE.replace("samples = 20", "samples = 10000000000000"))
    assert e.where == "data.samples"
    e = error(BASE.replace('loss = "bce"', 'loss = "bce"\nbatch_size = 10000000000000')
              .replace("samples = 20", "samples = 20000000000000"))
    assert e.where == "training.batch_size"


def test_the_memory_estimate_grows_with_the_network_and_the_batch():
    small, wide = scenario(), scenario(base=BASE.replace("[2, 3, 1]", "[2, 300, 1]"))
    assert sum(S.memory_estimate(wide).values()) > 50 * S.memory_estimate(small)["network"]
    batched = scenario(base=BASE.replace('loss = "bce"', 'loss = "bce"\nbatch_size = 2'))
    assert S.memory_estimate(batched)["batch"] * 10 == S.memory_estimate(small)["batch"]


def test_csv_data_is_read_relative_to_the_scenario_and_matched_by_header(tmp_path):
    (tmp_path / "gate.csv").write_text("y0,x1,x0\n0,0,0\n1,1,0\n1,0,1\n1,1,1\n")
    sc = S.loads(BASE.replace('kind = "xor"\nsamples = 20\nnoise = 0.1', 'kind = "csv"\npath = "gate.csv"'),
                 tmp_path / "gate.toml")
    X, Y = sc.dataset()
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and Y[:, 0].tolist() == [0, 1, 1, 1]


def test_cross_entropy_reads_the_labels_one_hot():
    sc = scenario(base=BASE.replace("[2, 3, 1]", "[2, 3, 2]").replace('"bce"', '"cross_entropy"')
                  .replace('output = "sigmoid"', 'output = "linear"'))
    X, Y = sc.dataset()
    _, y = S.datasets.generate("xor", 20, 0.1, 3)
    assert np.array_equal(Y, np.hstack([1 - y, y]))


# ---- the script ------------------------------------------------------------

def action_events(events, step):
    """Kinds of the script-phase events of `step`, in order."""
    return [e.kind for e in events if e.phase == "script" and e.step == step]


def test_add_neuron_announces_itself_then_adds_and_wires_the_neuron():
    sc = scenario('[[script]]\nat = 5\naction = "add_neuron"\nname = "h_new"\nactivation = "tanh"\n'
                  'connect_from = ["x0", "x1"]\nconnect_to = ["y0"]\n')
    outcome, events = run_logged(sc)
    assert action_events(events, 5) == ["action", "neuron_added"] + ["connection_added"] * 3
    action = next(e for e in events if e.kind == "action")
    assert action.data["label"] == "add h_new" and action.data["action"] == "add_neuron"
    assert action.data["params"]["connect_from"] == ("x0", "x1")
    # applied before step 5's sweeps, after step 4's
    seqs = {e.kind: e.seq for e in events if e.step == 5}
    assert seqs["action"] < seqs["step_begin"]
    assert max(e.seq for e in events if e.step == 4) < seqs["action"]
    net = outcome.network
    assert net.neurons["h_new"].activation == "tanh"
    assert [c.source.name for c in net.neurons["h_new"].incoming] == ["x0", "x1"]
    assert [c.target.name for c in net.neurons["h_new"].outgoing] == ["y0"]


def test_remove_disconnect_connect_and_set_weight_change_the_graph_at_their_step():
    sc = scenario('[[script]]\nat = 2\naction = "remove_neuron"\nname = "h1_2"\n'
                  '[[script]]\nat = 3\naction = "disconnect"\nfrom = "x0"\nto = "h1_0"\n'
                  '[[script]]\nat = 4\naction = "connect"\nfrom = "x0"\nto = "y0"\nweight = 0.25\n'
                  '[[script]]\nat = 12\naction = "set_weight"\nfrom = "h1_1"\nto = "y0"\nweight = -1.5\n'
                  '[[script]]\nat = 12\naction = "set_bias"\nname = "y0"\nbias = 0.75\n')
    outcome, events = run_logged(sc)
    assert action_events(events, 2) == ["action", "connection_removed", "connection_removed",
                                        "connection_removed", "neuron_removed"]
    assert action_events(events, 3) == ["action", "connection_removed"]
    assert action_events(events, 4) == ["action", "connection_added"]
    assert action_events(events, 12) == ["action", "weight_set", "action", "bias_set"]
    labels = [e.data["label"] for e in events if e.kind == "action"]
    assert labels == ["remove h1_2", "disconnect x0->h1_0", "connect x0->y0", "set h1_1->y0 = -1.5", "bias y0 = 0.75"]
    net = outcome.network
    assert "h1_2" not in net and ("x0", "h1_0") not in {c.key for c in net.connections}
    set_event = next(e for e in events if e.kind == "weight_set")
    assert set_event.data["new"] == -1.5
    # step 12 then trains from the values that were set
    update = next(e for e in events if e.kind == "weight_update" and e.step == 12 and e.source == "h1_1")
    assert update.data["old"] == -1.5


def test_freeze_holds_a_weight_until_unfreeze():
    sc = scenario('[[script]]\nat = 3\naction = "freeze"\nfrom = "x0"\nto = "h1_0"\n'
                  '[[script]]\nat = 8\naction = "unfreeze"\nfrom = "x0"\nto = "h1_0"\n')
    outcome, events = run_logged(sc)
    updated = {e.step for e in events if e.kind == "weight_update" and (e.source, e.target) == ("x0", "h1_0")
               and e.data["delta"] != 0.0}
    assert updated & {1, 2} and not updated & set(range(3, 8)) and updated & set(range(8, 13))
    assert [e.kind for e in events if e.kind in ("frozen", "unfrozen")] == ["frozen", "unfrozen"]


def test_set_learning_rate_takes_effect_from_its_step():
    sc = scenario('[[script]]\nat = 6\naction = "set_learning_rate"\nvalue = 0.01\nlabel = "slow down"\n')
    _, events = run_logged(sc)
    rates = {e.step: e.data["lr"] for e in events if e.kind == "step_begin"}
    assert all(rates[s] == 0.5 for s in range(1, 6)) and all(rates[s] == 0.01 for s in range(6, 13))
    assert next(e for e in events if e.kind == "action").data["label"] == "slow down"


def perturbed(seed, neurons=None):
    extra = '[[script]]\nat = 1\naction = "perturb"\nnoise = 0.5\n'
    if neurons:
        extra += f"neurons = {neurons!r}\n".replace("'", '"')
    sc = scenario(extra, base=BASE.replace("seed = 3", f"seed = {seed}"))
    _, events = run_logged(sc)
    return {(e.source, e.target): e.data["new"] - e.data["old"] for e in events if e.kind == "weight_set"}


def test_perturb_adds_seeded_noise_to_the_weights():
    first, again, other = perturbed(3), perturbed(3), perturbed(4)
    assert len(first) == 9 and first == again
    assert first != other
    noise = np.array(list(first.values()))
    assert 0.1 < noise.std() < 1.5  # Gaussian with standard deviation 0.5, nine draws
    only = perturbed(3, ["y0"])
    assert set(only) == {("h1_0", "y0"), ("h1_1", "y0"), ("h1_2", "y0")}


def test_actions_at_the_same_step_run_in_file_order():
    sc = scenario('[[script]]\nat = 4\naction = "add_neuron"\nname = "a"\nconnect_from = ["x0"]\n'
                  '[[script]]\nat = 4\naction = "connect"\nfrom = "a"\nto = "y0"\n')
    _, events = run_logged(sc)
    assert action_events(events, 4) == ["action", "neuron_added", "connection_added", "action", "connection_added"]


def test_names_are_checked_against_the_network_as_it_will_be_at_each_step():
    grow = '[[script]]\nat = 6\naction = "add_neuron"\nname = "late"\n'
    early_use = '[[script]]\nat = 5\naction = "connect"\nfrom = "x0"\nto = "late"\n'
    e = error(BASE + grow + early_use)
    assert e.where == "script[1].to" and "'late'" in e.why and "before step 5" in e.why
    scenario(grow + early_use.replace("at = 5", "at = 6"))  # the same step, after the add: fine
    gone = '[[script]]\nat = 3\naction = "remove_neuron"\nname = "h1_0"\n[expect]\ndead = ["h1_0"]\n'
    assert error(BASE + gone).where == "expect.dead[0]"
    at_step = '[[script]]\nat = 3\naction = "remove_neuron"\nname = "h1_0"\n[[expect.at_step]]\nstep = 2\n' \
              'dead = ["h1_0"]\n'
    scenario(at_step)  # after step 2 the neuron still exists
    assert error(BASE + at_step.replace("step = 2", "step = 3")).where == "expect.at_step[0].dead[0]"


def test_a_shorter_run_drops_what_falls_after_its_end():
    sc = scenario('[[script]]\nat = 10\naction = "set_learning_rate"\nvalue = 0.1\n'
                  '[[expect.at_step]]\nstep = 11\nloss_max = 9.0\n')
    short = sc.with_overrides(steps=5, seed=9, engine="actor")
    assert short.training.steps == 5 and short.seed == 9 and short.script == () and short.expect.at_step == ()
    assert sc.with_overrides().training.steps == 12


# ---- expectations ----------------------------------------------------------

def test_step_checks_see_the_state_right_after_that_step():
    sc = scenario("[[expect.at_step]]\nstep = 7\nloss_max = 100.0\n\n[[expect.at_step]]\nstep = 0\nloss_max = 100.0\n")
    results = {r.where: r.actual for r in S.execute(sc).results}
    after_7 = S.execute(sc.with_overrides(steps=7))
    assert results["expect.at_step[0].loss_max"] == after_7.loss
    X, Y = sc.dataset()
    assert results["expect.at_step[1].loss_max"] == S.evaluate(sc.build_network(), X, Y, "bce")[0]


def test_dead_means_never_active_on_the_whole_data_set():
    sc = S.load(ROOT / "scenarios" / "dead_relu.toml")
    outcome = S.execute(sc)
    X, _ = sc.dataset()
    values = probe(outcome.network, X)
    truly_dead = {n for n, v in values.items() if n.startswith("h") and np.all(v == 0)}
    reported = {r.message.split()[0] for r in outcome.results if r.where.startswith("expect.dead")}
    assert reported == truly_dead == set(sc.expect.final.dead)


def test_failed_expectations_say_what_was_found():
    sc = scenario('[expect]\nloss_max = 0.0001\naccuracy_min = 0.5\nalive = ["h1_0"]\n')
    outcome = S.execute(sc)
    results = {r.where: r for r in outcome.results}
    assert not outcome.passed
    assert not results["expect.loss_max"].ok and "> 0.0001" in results["expect.loss_max"].message
    assert results["expect.accuracy_min"].ok


def test_an_expected_divergence_passes_and_an_unexpected_one_fails():
    lesson = S.load(ROOT / "scenarios" / "lr_too_high.toml")
    outcome = S.execute(lesson)
    assert outcome.diverged is not None and outcome.passed and outcome.loss is None
    assert "y0" in outcome.results[-1].message
    calm = dataclasses.replace(lesson, expect=S.Expect(S.Checks("expect")))
    assert not S.execute(calm).passed
    never = S.execute(scenario("[expect]\ndiverges = true\n"))
    assert not never.passed and "did not diverge" in never.results[-1].message


def test_symmetric_neurons_stay_interchangeable_and_noise_breaks_them():
    stuck = S.execute(S.load(ROOT / "scenarios" / "symmetry.toml"))
    [asymmetry] = [r.actual for r in stuck.results if "symmetric" in r.where]
    assert asymmetry < 1e-12  # equal up to the order in which sums are rounded
    net = stuck.network
    assert net.neurons["h0"].bias == pytest.approx(net.neurons["h2"].bias, abs=1e-12)
    assert abs(net.neurons["h0"].bias) > 1e-3  # they did learn, in lockstep
    broken = S.execute(S.load(ROOT / "scenarios" / "symmetry_broken.toml"))
    h0, h1 = broken.network.neurons["h0"], broken.network.neurons["h1"]
    assert abs(h0.bias - h1.bias) > 1e-3


def test_the_same_scenario_trains_to_the_same_bits():
    sc = S.load(ROOT / "scenarios" / "symmetry_broken.toml").with_overrides(steps=250)
    a, b = S.execute(sc).network, S.execute(sc).network
    assert [c.weight for c in a.connections] == [c.weight for c in b.connections]
    assert [n.bias for n in a.neurons.values()] == [n.bias for n in b.neurons.values()]


# ---- helpers ---------------------------------------------------------------

def _at(document, path):
    node = document
    for part in _parts(path):
        node = node[part]
    return node


def _parts(path):
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        yield name
        if rest:
            yield int(rest.rstrip("]"))


def _replaced(document, path, value):
    import copy
    document = copy.deepcopy(document)
    *parents, last = list(_parts(path))
    node = document
    for part in parents:
        node = node[part]
    node[last] = value
    return document


def _toml_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


def _dump(value, path=""):
    """A minimal TOML writer for the documents these tests build."""
    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return _toml_string(v)
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    lines, tables = [], []
    for key, v in value.items():
        if isinstance(v, dict):
            tables.append((f"[{path}{key}]", v, f"{path}{key}."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            tables += [(f"[[{path}{key}]]", item, f"{path}{key}.") for item in v]
        else:
            lines.append(f"{key} = {scalar(v)}")
    for header, table, prefix in tables:
        lines += ["", header, _dump(table, prefix)]
    return "\n".join(lines)


def test_an_action_after_the_last_step_acts_on_the_network_the_run_ends_with():
    sc = scenario('[[script]]\nat = 13\naction = "add_neuron"\nname = "late"\nconnect_from = ["x0"]\n'
                  'connect_to = ["y0"]\nweight = 0.5\n'
                  '[[script]]\nat = 13\naction = "set_weight"\nfrom = "h1_1"\nto = "y0"\nweight = -1.5\n'
                  '[expect]\nloss_max = 100.0\n[[expect.at_step]]\nstep = 12\nloss_max = 100.0\n')
    outcome, events = run_logged(sc)
    kinds = [(e.step, e.kind) for e in events[-8:]]
    assert kinds == [(12, "step_end"), (13, "action"), (13, "neuron_added"), (13, "connection_added"),
                     (13, "connection_added"), (13, "action"), (13, "weight_set"), (12, "run_end")]
    net = outcome.network
    assert net.step == 12 and "late" in net and net.connection("h1_1", "y0").weight == -1.5
    assert outcome.passed and len(outcome.results) == 2, outcome.results  # the check at step 12 made once
    with pytest.raises(ScenarioError, match=r"script\[0\]\.at: step 14 is beyond the run, which ends at step 12 "
                                            r"\(training.steps; at = 13 acts on the network it ends with\)"):
        scenario('[[script]]\nat = 14\naction = "set_learning_rate"\nvalue = 0.1\n')


def test_a_trace_ends_with_the_network_its_run_ends_with(tmp_path):
    from simnet.trace import Recorder, open_trace
    sc = scenario('[record]\nevery = 5\n[[script]]\nat = 13\naction = "add_neuron"\nname = "late"\n'
                  'connect_from = ["x0"]\nconnect_to = ["y0"]\nweight = 0.5\n'
                  '[[script]]\nat = 13\naction = "set_weight"\nfrom = "h1_1"\nto = "y0"\nweight = -1.5\n')
    recorder = Recorder(tmp_path, every=5)
    net = S.execute(sc, recorder=recorder).network
    recorder.close()
    expected = ({n.name: n.bias for n in net.neurons.values()}, {c.key: c.weight for c in net.connections})
    with open_trace(tmp_path) as trace:
        assert trace.last_step == 12 and trace.steps == [0, 5, 10, 12]
        at_end = trace.network_at(12)
        graphs = [trace.snapshot(12), dict(trace.snapshots())[12], dict(trace.snapshots([11, 12]))[12]]
        before = trace.network_at(11)
    assert ({n.name: n.bias for n in at_end.neurons.values()}, {c.key: c.weight for c in at_end.connections}) \
        == expected
    for G in graphs:
        assert ({n: a["bias"] for n, a in G.nodes(data=True)}, {(s, t): a["weight"] for s, t, a in G.edges(data=True)}) \
            == expected
    assert "late" not in before
