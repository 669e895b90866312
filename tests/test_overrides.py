"""`--set KEY=VALUE`: a dotted path set to a TOML value, checked like the file, recorded with the run."""
import json
import tomllib
from pathlib import Path

import pytest

import simnet as sn
from simnet.cli import main
from simnet.scenario import load, loads
from simnet.scenario.overrides import apply, dumps

ROOT = Path(__file__).resolve().parent.parent
XOR = ROOT / "scenarios" / "xor.toml"


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.stem)
def test_the_toml_written_again_reads_as_the_same_document_and_scenario(path):
    document = tomllib.loads(path.read_text())
    text = dumps(document)
    assert tomllib.loads(text) == document
    original, again = load(path), loads(text, path)
    assert (again.network, again.training, again.script, again.expect, again.data) == \
        (original.network, original.training, original.script, original.expect, original.data)


def test_overrides_set_values_in_tables_arrays_and_at_the_top():
    document = tomllib.loads((ROOT / "scenarios" / "growing.toml").read_text())
    changed = apply(document, [("training.learning_rate", 0.25), ("script[0].at", 7), ("seed", 3),
                               ("record.detail", "messages")], "f")
    assert changed["training"]["learning_rate"] == 0.25 and changed["script"][0]["at"] == 7
    assert changed["seed"] == 3 and changed["record"]["detail"] == "messages"
    assert document["script"][0]["at"] != 7, "the document given is left as it was"


def test_a_run_with_set_records_the_overrides_and_the_effective_text(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(XOR), "-o", str(out), "-q", "--no-gif", "--set", "training.steps=12",
                 "--set", "network.layers=[2, 3, 1]", "--set", "training.optimizer=adam"]) in (0, 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overrides"] == {"training.steps": 12, "network.layers": [2, 3, 1], "training.optimizer": "adam"}
    assert summary["steps"] == 12 and summary["expectations"]["checked"]
    effective = loads(summary["scenario_text"], XOR)
    assert effective.network.layers == (2, 3, 1) and effective.training.optimizer == "adam"
    with sn.open_trace(out) as trace:
        assert trace.metadata["overrides"]["set"] == summary["overrides"]
        assert trace.metadata["scenario_text"] == summary["scenario_text"]
        assert "h1_2" in trace.snapshot(0) and "h1_3" not in trace.snapshot(0)


@pytest.mark.parametrize("setting, where", [
    ("training.learnin_rate=0.1", "training.learnin_rate: unknown key"),
    ("training.learning_rate=\"fast\"", "training.learning_rate: expected a positive number"),
    ("network.layers=3", "network.layers: expected an array"),
    ("script[0].at=5", "script: the scenario has no array"),
    ("expect.accuracy_min=[1", "is not a TOML value"),
    ("training..steps=5", "not a key path"),
])
def test_a_bad_override_is_exit_2_with_one_line_naming_it(tmp_path, capsys, setting, where):
    out = tmp_path / "run"
    assert main(["run", str(XOR), "-o", str(out), "-q", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert where in err and "Traceback" not in err
    assert not out.exists()


def test_an_override_out_of_an_arrays_range_names_the_entry(tmp_path, capsys):
    growing = ROOT / "scenarios" / "growing.toml"
    assert main(["run", str(growing), "-o", str(tmp_path / "r"), "-q", "--set", "script[9].at=5"]) == 2
    assert "script[9]: no such entry" in capsys.readouterr().err
