"""One place runs a run: the command line and a program calling simnet.runner.run make the same run."""
import ast
import json
from pathlib import Path

import pytest

import simnet as sn
from simnet.cli import main
from simnet.runner import RunResult, check, run

ROOT = Path(__file__).resolve().parent.parent
XOR = ROOT / "scenarios" / "xor.toml"


def test_the_command_line_and_the_runner_make_the_same_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert main(["run", str(XOR), "-o", str(tmp_path / "cli"), "--steps", "30", "-q"]) == 0
    result = run(XOR, tmp_path / "api", steps=30)
    assert isinstance(result, RunResult) and (result.status, result.stopped) == ("complete", False)
    assert result.outcome.steps == 30 and result.directory == tmp_path / "api"
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert cli_files == sorted(p.name for p in result.directory.iterdir())
    for name in cli_files:
        if name != "summary.json":
            assert (tmp_path / "cli" / name).read_bytes() == (result.directory / name).read_bytes(), name
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("cli", "api")]
    for summary in summaries:
        summary.pop("wall_time"), summary.pop("train_time")
    assert summaries[0] == summaries[1]


def test_a_run_takes_a_scenario_object_and_refuses_a_directory_it_did_not_write(tmp_path):
    from simnet.scenario import load
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(sn.InputError, match="is not a simnet run directory"):
        run(load(XOR), tmp_path / "mine", steps=3, gifs=False)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    result = run(load(XOR), tmp_path / "run", steps=3, gifs=False)
    assert sorted(p.name for p in result.directory.iterdir()) == ["loss.png", "summary.json", "trace.sqlite"]
    with sn.open_trace(result.directory) as trace:
        assert trace.last_step == 3 and trace.metadata["scenario_path"] == "xor.toml"


def test_check_trains_without_recording_and_checks_the_expectations():
    outcome = check(XOR, engine="fast")
    assert outcome.scenario.training.engine == "fast" and outcome.results and outcome.passed


def test_the_command_line_leaves_recording_training_and_drawing_a_run_to_the_runner():
    tree = ast.parse((ROOT / "simnet" / "cli.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert {"run", "check"} <= imported
    assert not imported & {"Recorder", "execute", "render_run"}  # `list` loads scenarios to name them
