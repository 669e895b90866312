"""The command line over a recorded run: replay, inspect, export, and their bad input."""
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import simnet as sn
from simnet.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short recorded XOR run: steps 0 to 30, snapshots every 20."""
    out = tmp_path_factory.mktemp("runs") / "xor"
    assert main(["run", str(ROOT / "scenarios" / "xor.toml"), "-o", str(out), "--steps", "30", "--no-gif", "-q"]) == 0
    return out


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def no_partials(directory):
    return not [p for p in Path(directory).iterdir() if ".partial-" in p.name]


# ---- replay ----------------------------------------------------------------

def test_replay_draws_the_sweep_of_one_step(run_dir, tmp_path, capsys):
    out = tmp_path / "sweep.gif"
    code, stdout, _ = cli(capsys, "replay", run_dir, "--gif", "sweep", "--step", 20, "-o", out)
    assert code == 0 and stdout == f"wrote {out}\n"
    gif = Image.open(out)
    assert gif.format == "GIF" and gif.n_frames > 3
    # a step between snapshots is drawn too; the state before training has no sweep
    code, _, _ = cli(capsys, "replay", run_dir, "--gif", "sweep", "--step", 12, "-o", tmp_path / "between.gif")
    assert code == 0 and Image.open(tmp_path / "between.gif").n_frames > 3
    code, _, stderr = cli(capsys, "replay", run_dir, "--gif", "sweep", "--step", 0, "-o", tmp_path / "no.gif")
    assert code == 2 and stderr.startswith(f"simnet: error: {run_dir}: trace: step 0: the state the run starts from")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["between.gif", "sweep.gif"]


def test_replay_draws_the_run_gif_into_the_run_directory_by_default(run_dir, capsys):
    code, _, _ = cli(capsys, "replay", run_dir, "--gif", "weights", "-q")
    assert code == 0
    trace = sn.open_trace(run_dir)
    assert Image.open(run_dir / "weights.gif").n_frames == len(trace.steps)
    (run_dir / "weights.gif").unlink()


def test_replay_writes_the_html_page(run_dir, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert cli(capsys, "replay", run_dir, "--html", "-o", out, "-q")[0] == 0
    page = out.read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "xor" in page


def test_replay_step_errors_name_the_option(run_dir, capsys):
    code, _, stderr = cli(capsys, "replay", run_dir, "--gif", "sweep", "--step", 31)
    assert code == 2 and stderr == f"simnet: error: {run_dir}: --step 31: the run has steps 0 to 30\n"
    code, _, stderr = cli(capsys, "replay", run_dir, "--gif", "activations", "--step", 3)
    assert code == 2 and stderr.startswith(f"simnet: error: {run_dir}: --step 3: only the sweep GIF")


# ---- inspect ---------------------------------------------------------------

def test_inspect_summarises_the_run(run_dir, capsys):
    code, stdout, _ = cli(capsys, "inspect", run_dir)
    assert code == 0 and "xor" in stdout and "complete" in stdout


def test_inspect_explains_a_neuron_at_a_step(run_dir, capsys):
    code, stdout, _ = cli(capsys, "inspect", run_dir, "--step", 7, "--neuron", "h1_1")
    assert code == 0 and "h1_1" in stdout and "step 7" in stdout


def test_inspect_lists_events_in_each_format(run_dir, capsys):
    trace = sn.open_trace(run_dir)
    expected = [e for e in trace.events(step=4, kind="weight_update")]
    code, stdout, _ = cli(capsys, "inspect", run_dir, "--step", 4, "--kind", "weight_update", "--format", "jsonl")
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and [r["seq"] for r in rows] == [e["seq"] for e in expected]
    assert [r["new"] for r in rows] == [e["new"] for e in expected]
    code, stdout, _ = cli(capsys, "inspect", run_dir, "--step", 4, "--kind", "weight_update", "--format", "csv")
    assert code == 0 and len(list(csv.DictReader(io.StringIO(stdout)))) == len(expected)
    code, stdout, _ = cli(capsys, "inspect", run_dir, "--neuron", "y0", "--kind", "bias_update")
    assert code == 0 and len(stdout.splitlines()) >= 30


def test_inspect_bad_input_names_what_is_wrong(run_dir, tmp_path, capsys):
    code, _, stderr = cli(capsys, "inspect", run_dir, "--step", 3, "--neuron", "h9")
    assert code == 2 and stderr.startswith(f"simnet: error: {run_dir}: --neuron h9: no such neuron at step 3")
    code, _, stderr = cli(capsys, "inspect", tmp_path)
    assert code == 2 and stderr.startswith(f"simnet: error: {tmp_path}") and ": trace: no trace there" in stderr
    fake = tmp_path / "trace.sqlite"
    fake.write_bytes(b"not a database at all" * 20)
    code, _, stderr = cli(capsys, "inspect", fake)
    assert code == 2 and stderr == f"simnet: error: {fake}: trace: not a simnet trace (not an SQLite database)\n"
    assert fake.read_bytes() == b"not a database at all" * 20  # reading never writes


def test_inspect_a_truncated_trace_is_one_line_not_a_traceback(run_dir, tmp_path, capsys):
    copy = tmp_path / "cut"
    copy.mkdir()
    data = (run_dir / "trace.sqlite").read_bytes()
    (copy / "trace.sqlite").write_bytes(data[: len(data) // 3])
    code, _, stderr = cli(capsys, "inspect", copy)
    assert code == 2 and len(stderr.splitlines()) == 1 and stderr.startswith("simnet: error: ")


# ---- export ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "perfetto", "graphml", "gexf"])
def test_export_writes_each_format(run_dir, tmp_path, capsys, fmt):
    out = tmp_path / f"trace.{fmt}"
    assert cli(capsys, "export", run_dir, "--format", fmt, "-o", out)[0] == 0
    text = out.read_text()
    if fmt == "jsonl":
        assert json.loads(text.splitlines()[0])["kind"] == "run_begin"
    elif fmt == "perfetto":
        assert "traceEvents" in json.loads(text)
    elif fmt == "csv":
        assert text.startswith("seq,")
    else:
        assert text.startswith("<?xml")
    assert no_partials(tmp_path)


def test_export_graphml_of_one_step(run_dir, tmp_path, capsys):
    import networkx as nx
    out = tmp_path / "step20.graphml"
    assert cli(capsys, "export", run_dir, "--format", "graphml", "--step", 20, "-o", out)[0] == 0
    G = nx.read_graphml(out)
    expected = sn.open_trace(run_dir).snapshot(20)
    assert set(G.edges) == set(expected.edges)
    assert G.edges["x0", "h1_0"]["weight"] == expected.edges["x0", "h1_0"]["weight"]


def test_a_failed_export_leaves_no_file(run_dir, tmp_path, capsys):
    out = tmp_path / "g.graphml"
    code, _, stderr = cli(capsys, "export", run_dir, "--format", "graphml", "--step", 99, "-o", out)
    assert code == 2 and "--step 99" in stderr
    assert list(tmp_path.iterdir()) == []


def test_replay_of_a_diverged_run(tmp_path, capsys):
    out = tmp_path / "boom"
    assert main(["run", str(ROOT / "scenarios" / "lr_too_high.toml"), "-o", str(out), "-q", "--no-gif"]) == 1
    capsys.readouterr()
    code, stdout, _ = cli(capsys, "inspect", out)
    assert code == 0 and "diverged" in stdout
    assert cli(capsys, "replay", out, "--gif", "sweep", "--step", 10, "-q")[0] == 0
    shutil.rmtree(out)


def test_inspect_into_a_pipe_closed_early_ends_quietly(run_dir):
    child = subprocess.Popen([sys.executable, "-m", "simnet", "inspect", str(run_dir), "--format", "table"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.readline().split()[:2] == [b"seq", b"step"]
    child.stdout.close()  # as `| head -1` does
    stderr = child.stderr.read()
    child.stderr.close()
    assert child.wait() in (0, 141) and stderr == b""


def test_a_closed_trace_says_it_is_closed(run_dir):
    trace = sn.open_trace(run_dir)
    events = trace.events()
    trace.close()
    for read in (lambda: trace.network_at(3), lambda: list(trace.events()), trace.history,
                 lambda: trace.snapshot(3), lambda: list(events)):
        with pytest.raises(sn.TraceError, match="the trace is closed") as failure:
            read()
        assert "damaged" not in str(failure.value)


def test_inspect_lists_the_events_of_the_step_a_run_diverged_in(tmp_path, capsys):
    out = tmp_path / "boom"
    assert main(["run", str(ROOT / "scenarios" / "lr_too_high.toml"), "-o", str(out), "-q", "--no-gif"]) == 1
    capsys.readouterr()
    trace = sn.open_trace(out)
    bad = trace.last_step + 1
    assert trace.status == f"diverged at step {bad}"
    code, stdout, _ = cli(capsys, "inspect", out, "--step", bad, "--format", "jsonl")
    listed = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and listed and {e["step"] for e in listed} == {bad}
    assert [e["seq"] for e in listed] == [e["seq"] for e in trace.events(step=bad)]
    assert {"step_begin", "loss", "run_end"} <= {e["kind"] for e in listed}
    code, _, stderr = cli(capsys, "inspect", out, "--step", bad, "--neuron", "h1_0")
    assert code == 2 and "diverged" in stderr and stderr.count("\n") == 1
    code, _, stderr = cli(capsys, "inspect", out, "--step", bad + 1)
    assert code == 2 and f"--step {bad + 1}" in stderr
    trace.close()


def test_inspect_kind_message_on_a_trace_without_messages_says_they_were_not_recorded(run_dir, capsys):
    assert sn.open_trace(run_dir).detail == "updates"
    code, stdout, stderr = cli(capsys, "inspect", run_dir, "--kind", "message")
    assert code == 2 and stdout == ""
    assert stderr == (f"simnet: error: {run_dir}: --kind message: this trace does not record message events "
                      f"(detail \"updates\"); record with detail = \"messages\" to keep them\n")


def test_a_trace_killed_before_its_first_step_says_no_steps_were_recorded(tmp_path, capsys):
    sn.Recorder(tmp_path).close()
    code, stdout, _ = cli(capsys, "inspect", tmp_path)
    assert code == 0 and "incomplete: no steps recorded" in stdout
    code, _, stderr = cli(capsys, "inspect", tmp_path, "--step", 1)
    assert code == 2 and stderr == f"simnet: error: {tmp_path}: --step 1: no steps recorded\n"
