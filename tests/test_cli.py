"""The command line: run writes its run directory where it is asked to; list, check and the overrides."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import simnet as sn
from simnet.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
XOR = SCENARIOS / "xor.toml"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(directory):
    """Temporary files or directories left in or next to runs."""
    return [p.name for p in Path(directory).rglob("*") if ".partial-" in p.name or p.name.endswith(".part")]


# ---- run -------------------------------------------------------------------

def test_run_writes_trace_plot_and_summary(tmp_path, capsys):
    out = tmp_path / "xor"
    code, stdout, stderr = run(capsys, "run", XOR, "-o", out, "--steps", 40, "--no-gif")
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "summary.json", "trace.sqlite"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "xor" and summary["steps"] == 40 and summary["seed"] == 7
    assert 0 < summary["loss"] < 1 and 0 <= summary["accuracy"] <= 1 and summary["wall_time"] > 0
    assert summary["diverged"] is None and summary["expectations"]["checked"] is False
    assert (summary["status"], summary["end_reason"], summary["error"]) == ("complete", "complete", None)
    # the closing line: loss, accuracy and where the files are
    assert re.search(r"loss [0-9.e-]+, accuracy [0-9.]+%", stdout) and f"{out}{os.sep}" in stdout
    assert "expectations not checked" in stdout
    assert stderr == ""  # no progress bar without a terminal
    assert leftovers(tmp_path) == []
    trace = sn.open_trace(out)
    assert trace.last_step == 40 and trace.complete


def test_the_summary_accuracy_is_measured_on_the_whole_data_set(tmp_path, capsys):
    from simnet.scenario import evaluate, load
    out = tmp_path / "run"
    assert run(capsys, "run", XOR, "-o", out, "--steps", 25, "--no-gif", "-q")[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    scenario = load(XOR)
    X, Y = scenario.dataset()
    trace = sn.open_trace(out)
    loss, accuracy, _ = evaluate(trace.network_at(25), X, Y, "bce")
    assert (summary["loss"], summary["accuracy"]) == (loss, accuracy)


def test_run_with_gifs_and_checked_expectations(tmp_path, capsys):
    out = tmp_path / "gates"
    code, stdout, _ = run(capsys, "run", SCENARIOS / "logic_gates.toml", "-o", out)
    assert code == 0
    assert {"activations.gif", "weights.gif", "loss.png"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["expectations"]["passed"] is True and summary["accuracy"] is None
    assert "accuracy" not in stdout.splitlines()[0]


@pytest.mark.parametrize("name", ["perceptron", "sine"])
def test_gifs_of_networks_without_hidden_layers_and_of_regression(tmp_path, capsys, name):
    out = tmp_path / name
    assert run(capsys, "run", SCENARIOS / f"{name}.toml", "-o", out, "--steps", 20, "-q")[0] == 0
    for gif in ("activations.gif", "weights.gif"):
        assert Image.open(out / gif).n_frames == len(sn.open_trace(out).steps)


def test_quiet_run_prints_nothing(tmp_path, capsys):
    code, stdout, stderr = run(capsys, "run", XOR, "-o", tmp_path / "q", "--steps", 5, "--no-gif", "-q")
    assert (code, stdout, stderr) == (0, "", "")


def test_run_writes_to_output_slash_name_by_default_and_replaces_an_old_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "run", XOR, "--steps", 5, "--no-gif", "-q")[0] == 0
    first = (tmp_path / "output" / "xor" / "summary.json").read_text()
    assert run(capsys, "run", XOR, "--steps", 6, "--no-gif", "-q")[0] == 0
    assert json.loads((tmp_path / "output" / "xor" / "summary.json").read_text())["steps"] == 6 != \
        json.loads(first)["steps"]
    assert leftovers(tmp_path / "output") == []


def test_run_refuses_to_replace_a_directory_that_is_not_a_run(tmp_path, capsys):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    code, _, stderr = run(capsys, "run", XOR, "-o", precious, "--steps", 5, "--no-gif")
    assert code == 2 and stderr.startswith(f"simnet: error: {precious}: -o: exists and is not a simnet run")
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"] and leftovers(tmp_path) == []


def test_overrides_change_the_run(tmp_path, capsys):
    out = tmp_path / "o"
    assert run(capsys, "run", XOR, "-o", out, "--steps", 8, "--seed", 99, "--engine", "actor", "--no-gif",
               "-q")[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["steps"], summary["seed"], summary["engine"]) == (8, 99, "actor")
    trace = sn.open_trace(out)
    assert trace.metadata["overrides"] == {"steps": 8, "seed": 99, "engine": "actor"}
    # what replay draws under the decision surface: the data of the run, not of the file's seed
    from simnet.scenario import load, recorded
    again = recorded(trace.metadata)
    assert (again.seed, again.training.steps) == (99, 8)
    assert np.array_equal(again.dataset()[0], load(XOR).with_overrides(seed=99).dataset()[0])


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_the_same_run_twice_writes_the_same_trace_byte_for_byte(tmp_path, capsys, monkeypatch, engine):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the start and end times the trace records
    for name in ("a", "b"):
        assert run(capsys, "run", SCENARIOS / "growing.toml", "-o", tmp_path / name, "--steps", 305, "--no-gif",
                   "-q", "--engine", engine)[0] == 0
    with sn.open_trace(tmp_path / "a") as a, sn.open_trace(tmp_path / "b") as b:
        assert list(a.events(steps=(299, 305))) == list(b.events(steps=(299, 305)))
    # several transactions (a commit every FLUSH_STEPS steps), a script that grows the network at step 301
    assert (tmp_path / "a" / "trace.sqlite").read_bytes() == (tmp_path / "b" / "trace.sqlite").read_bytes()
    with sn.open_trace(tmp_path / "a") as a:
        assert a.metadata["start_time"] == a.metadata["end_time"] == "2023-11-14T22:13:20+00:00"


def test_the_trace_is_the_same_byte_for_byte_wherever_the_scenario_file_lives(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for place in ("here", "there/deeper"):
        (tmp_path / place).mkdir(parents=True)
        shutil.copy(XOR, tmp_path / place / "xor.toml")
        assert run(capsys, "run", tmp_path / place / "xor.toml", "-o", tmp_path / place / "run", "--steps", 5,
                   "--no-gif", "-q")[0] == 0
    assert (tmp_path / "here" / "run" / "trace.sqlite").read_bytes() == \
        (tmp_path / "there" / "deeper" / "run" / "trace.sqlite").read_bytes()


def test_a_bad_source_date_epoch_is_one_line_and_leaves_no_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    code, out, err = run(capsys, "run", XOR, "-o", tmp_path / "xor", "-q")
    assert code == 2 and not (tmp_path / "xor").exists() and leftovers(tmp_path) == []
    assert err.count("\n") == 1 and "SOURCE_DATE_EPOCH" in err and "'yesterday'" in err, err


@pytest.mark.parametrize("name,steps", [("growing", 303), ("symmetry_broken", 202)])
def test_a_replayed_scripted_run_equals_the_live_one_bit_for_bit(tmp_path, capsys, name, steps):
    from simnet.scenario import execute, load
    out = tmp_path / name
    assert run(capsys, "run", SCENARIOS / f"{name}.toml", "-o", out, "--steps", steps, "--no-gif", "-q")[0] == 0
    live = execute(load(SCENARIOS / f"{name}.toml").with_overrides(steps=steps)).network
    replayed = sn.open_trace(out).network_at(steps)
    assert [(c.key, c.weight) for c in replayed.connections] == [(c.key, c.weight) for c in live.connections]
    assert [(n.name, n.bias) for n in replayed.neurons.values()] == [(n.name, n.bias) for n in live.neurons.values()]


def test_the_fast_engine_and_the_message_detail_come_from_the_scenario_or_the_command_line(tmp_path, capsys):
    text = XOR.read_text().replace("every = 20", 'every = 20\ndetail = "messages"')
    (tmp_path / "detailed.toml").write_text(text)
    assert run(capsys, "run", tmp_path / "detailed.toml", "-o", tmp_path / "m", "--steps", 3, "--no-gif", "-q")[0] == 0
    detailed = sn.open_trace(tmp_path / "m")
    assert detailed.detail == "messages" and list(detailed.events(step=2, kind="message"))
    assert run(capsys, "run", XOR, "-o", tmp_path / "f", "--steps", 30, "--engine", "fast", "--no-gif", "-q")[0] == 0
    assert run(capsys, "run", XOR, "-o", tmp_path / "a", "--steps", 30, "--no-gif", "-q")[0] == 0
    fast, actor = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("f", "a"))
    assert fast["engine"] == "fast" and fast["loss"] == pytest.approx(actor["loss"], rel=1e-12)


def test_a_run_that_fails_while_drawing_keeps_its_finished_trace_and_says_so(tmp_path, capsys, monkeypatch):
    from simnet import runner
    from simnet.viz import render
    out = tmp_path / "xor"
    assert run(capsys, "run", XOR, "-o", out, "--steps", 5, "-q")[0] == 0

    def broken(trace, run_dir, **kwargs):
        render.plot_loss(trace, run_dir / "loss.png")
        raise OSError(28, "No space left on device", str(run_dir / "activations.gif"))
    monkeypatch.setattr(runner, "render_run", broken)
    code, _, stderr = run(capsys, "run", XOR, "-o", out, "--steps", 9, "-q")
    assert code == 1 and stderr == f"simnet: xor: failed while drawing: {out / 'activations.gif'}: No space left " \
        f"on device; the trace (complete, 9 steps) is in {out}{os.sep}\n"
    # the new run whole, nothing of the old one (its GIFs were replaced by nothing)
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "summary.json", "trace.sqlite"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["end_reason"], summary["steps"]) == ("failed", "failed while drawing", 9)
    assert "No space left on device" in summary["error"]
    with sn.open_trace(out) as trace:
        assert (trace.status, trace.last_step) == ("complete", 9)
    assert leftovers(tmp_path) == []


def test_a_later_run_replaces_only_the_files_simnet_writes(tmp_path, capsys):
    out = tmp_path / "xor"
    assert run(capsys, "run", XOR, "-o", out, "--steps", 5, "-q")[0] == 0
    (out / "notes.txt").write_text("mine")
    (out / ".loss.partial-0123abcd.png").write_text("a leftover of a drawing cut short")
    assert run(capsys, "run", XOR, "-o", out, "--steps", 6, "--no-gif", "-q")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "notes.txt", "summary.json", "trace.sqlite"]
    assert (out / "notes.txt").read_text() == "mine"
    with sn.open_trace(out) as trace:
        assert trace.last_step == 6


@pytest.mark.parametrize("plant", ["link", "directory"])
def test_a_run_directory_holding_what_simnet_did_not_write_under_its_names_is_refused(tmp_path, capsys, plant):
    out = tmp_path / "xor"
    assert run(capsys, "run", XOR, "-o", out, "--steps", 5, "--no-gif", "-q")[0] == 0
    precious = tmp_path / "precious.gif"
    precious.write_text("keep")
    if plant == "link":
        (out / "weights.gif").symlink_to(precious)
    else:
        (out / "weights.gif").mkdir()
    before = sorted(p.name for p in out.iterdir())
    code, _, stderr = run(capsys, "run", XOR, "-o", out, "--steps", 6, "--no-gif")
    assert code == 2 and stderr.startswith(f"simnet: error: {out / 'weights.gif'}: -o: is not a plain file")
    assert stderr.count("\n") == 1 and sorted(p.name for p in out.iterdir()) == before
    assert precious.read_text() == "keep" and sn.open_trace(out).last_step == 5


def test_a_fifo_under_a_run_files_name_is_refused_without_blocking(tmp_path, capsys):
    out = tmp_path / "xor"
    out.mkdir()
    os.mkfifo(out / "trace.sqlite")
    code, _, stderr = run(capsys, "run", XOR, "-o", out, "--steps", 5, "--no-gif")
    assert code == 2 and "-o: exists and is not a simnet run directory" in stderr
    assert os.listdir(out) == ["trace.sqlite"]


def test_run_into_the_current_directory_replaces_the_run_there_or_refuses_in_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "xor"
    out.mkdir()
    (out / "xor.toml").write_text(XOR.read_text())
    monkeypatch.chdir(out)
    code, _, stderr = run(capsys, "run", "xor.toml", "-o", ".", "--steps", 5, "--no-gif", "-q")
    assert code == 2 and stderr == "simnet: error: .: -o: exists and is not a simnet run directory; refusing to " \
        "replace it (choose another directory or remove it)\n"
    (out / "xor.toml").rename(tmp_path / "xor.toml")
    for steps in (5, 6):  # the first run makes it a run directory; the second replaces that run in place
        assert run(capsys, "run", tmp_path / "xor.toml", "-o", ".", "--steps", steps, "--no-gif", "-q")[0] == 0
    assert sorted(os.listdir(out)) == ["loss.png", "summary.json", "trace.sqlite"]
    assert json.loads((out / "summary.json").read_text())["steps"] == 6


def test_scripted_actions_are_in_the_trace(tmp_path, capsys):
    out = tmp_path / "grow"
    assert run(capsys, "run", SCENARIOS / "growing.toml", "-o", out, "--steps", 302, "--no-gif", "-q")[0] == 0
    trace = sn.open_trace(out)
    actions = trace.actions()
    assert [(a["step"], a["label"]) for a in actions] == [(301, f"add g{i}") for i in range(4)]
    assert "g3" in trace.network_at(301).neurons and "g3" not in trace.network_at(300).neurons


def test_a_diverging_run_keeps_its_trace_names_step_and_neuron_and_exits_1(tmp_path, capsys):
    out = tmp_path / "boom"
    code, stdout, stderr = run(capsys, "run", SCENARIOS / "lr_too_high.toml", "-o", out, "--no-gif")
    assert code == 1
    assert re.search(r"diverged at step 11: activation of neuron y0 is not finite", stderr)
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"]["step"] == 11 and summary["loss"] is None
    trace = sn.open_trace(out)
    assert trace.history()["step"][-1] == 10
    assert all(e["step"] <= 11 for e in trace.events(kind="weight_update"))


def test_a_failed_expectation_makes_run_exit_1(tmp_path, capsys):
    strict = tmp_path / "strict.toml"
    strict.write_text(XOR.read_text().replace("steps = 1000", "steps = 10"))
    code, _, stderr = run(capsys, "run", strict, "-o", tmp_path / "s", "--no-gif", "-q")
    assert code == 1
    assert "expectation failed: expect.accuracy_min" in stderr or "expectation failed: expect.loss_max" in stderr
    assert (tmp_path / "s" / "summary.json").is_file()  # the run itself is complete


def test_a_progress_bar_appears_on_a_terminal_only(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    done = subprocess.run([sys.executable, "-m", "simnet", "run", str(XOR), "-o", str(tmp_path / "tty"),
                           "--steps", "60", "--no-gif"], stderr=terminal, stdout=subprocess.PIPE, timeout=60)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert done.returncode == 0
    assert b"step" in shown and b"xor" in shown  # the bar: description and unit


def test_ctrl_c_ends_the_run_at_a_step_boundary_and_keeps_it(tmp_path):
    import signal
    import time
    long = tmp_path / "long.toml"
    long.write_text(XOR.read_text().replace("steps = 1000", "steps = 1000000"))
    out = tmp_path / "long"
    process = subprocess.Popen([sys.executable, "-m", "simnet", "run", str(long), "-o", str(out), "--no-gif", "-q"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _steps_recorded(out) and time.monotonic() < deadline:  # training has begun once a step is committed
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted after step" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and 0 < summary["steps"] < 1000000
    assert (summary["status"], summary["end_reason"]) == ("interrupted",
                                                          f"interrupted while training after step {summary['steps']}")
    trace = sn.open_trace(out)
    assert trace.status.startswith("interrupted") and trace.last_step == summary["steps"]


def _steps_recorded(run_dir):
    """Whether the trace in `run_dir` holds a committed step yet (it may not exist or be readable yet)."""
    try:
        with sn.open_trace(run_dir) as trace:
            return (trace.last_step or 0) >= 1
    except sn.TraceError:
        return False


# ---- where replay and export write -------------------------------------------

@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "xor"
    assert main(["run", str(XOR), "-o", str(out), "--steps", "5", "--no-gif", "-q"]) == 0
    return out


@pytest.mark.parametrize("argv, name", [
    (["export", "--format", "csv"], "trace.sqlite"),
    (["export", "--format", "jsonl"], "trace.sqlite-wal"),
    (["replay", "--html"], "trace.sqlite"),
])
def test_an_output_that_is_an_input_is_refused(short_run, capsys, argv, name):
    before = (short_run / "trace.sqlite").read_bytes()
    (short_run / "trace.sqlite-wal").unlink(missing_ok=True)
    target = short_run / name
    code, _, stderr = run(capsys, argv[0], short_run, *argv[1:], "-o", target)
    assert code == 2 and stderr == f"simnet: error: {target}: -o: is {target}, which this command reads; " \
        "choose another file\n"
    assert (short_run / "trace.sqlite").read_bytes() == before and not (short_run / "trace.sqlite-wal").exists()
    # the same file by another name (a link), too
    (short_run.parent / "alias.sqlite").unlink(missing_ok=True)
    os.link(short_run / "trace.sqlite", short_run.parent / "alias.sqlite")
    assert run(capsys, "export", short_run, "--format", "csv", "-o", short_run.parent / "alias.sqlite")[0] == 2
    assert (short_run / "trace.sqlite").read_bytes() == before and leftovers(short_run.parent) == []


def test_an_output_is_never_followed_through_a_link_nor_a_directory(short_run, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    (tmp_path / "link.csv").symlink_to(precious)
    code, _, stderr = run(capsys, "export", short_run, "--format", "csv", "-o", tmp_path / "link.csv")
    assert code == 2 and stderr == f"simnet: error: {tmp_path / 'link.csv'}: -o: is a symbolic link; refusing to " \
        "write through it (give the file itself)\n"
    assert precious.read_text() == "keep" and (tmp_path / "link.csv").is_symlink()
    code, _, stderr = run(capsys, "replay", short_run, "--html", "-o", tmp_path)
    assert code == 2 and stderr.count("\n") == 1 and "-o: is a directory" in stderr
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "precious.txt"]


def test_a_pictures_format_follows_its_name(short_run, tmp_path, capsys):
    for argv, name in ((["--gif", "weights"], "w.png"), (["--html"], "page.gif"), (["--gif", "sweep"], "sweep")):
        code, _, stderr = run(capsys, "replay", short_run, *argv, "-o", tmp_path / name)
        assert code == 2 and stderr.count("\n") == 1 and f"{tmp_path / name}: -o:" in stderr
        assert (".gif" if "--gif" in argv else ".html") in stderr
    assert run(capsys, "replay", short_run, "--gif", "weights", "-q", "-o", tmp_path / "w.GIF")[0] == 0
    assert Image.open(tmp_path / "w.GIF").format == "GIF" and os.listdir(tmp_path) == ["w.GIF"]


def test_dash_writes_text_formats_to_standard_output(short_run, tmp_path, capsys):
    code, stdout, _ = run(capsys, "export", short_run, "--format", "jsonl", "-o", "-")
    assert code == 0 and json.loads(stdout.splitlines()[0])["kind"] == "run_begin"
    assert run(capsys, "export", short_run, "--format", "jsonl", "-o", tmp_path / "x.jsonl")[0] == 0
    assert (tmp_path / "x.jsonl").read_text() == stdout
    code, stdout, _ = run(capsys, "replay", short_run, "--html", "-q", "-o", "-")
    assert code == 0 and stdout.lstrip().lower().startswith("<!doctype html")
    code, stdout, stderr = run(capsys, "replay", short_run, "--gif", "weights", "-o", "-")
    assert (code, stdout) == (2, "") and stderr == "simnet: error: -: -o: a picture is not text; give a file name\n"


# ---- list and check --------------------------------------------------------

def test_list_shows_every_scenario_with_its_description(capsys):
    code, stdout, _ = run(capsys, "list", SCENARIOS)
    assert code == 0
    lines = stdout.splitlines()
    assert len(lines) == len(list(SCENARIOS.glob("*.toml")))
    names = [line.split()[0] for line in lines]
    assert names == sorted(p.stem for p in SCENARIOS.glob("*.toml"))
    assert any("XOR" in line for line in lines)


def test_list_reports_broken_files_and_lists_the_rest(tmp_path, capsys):
    (tmp_path / "good.toml").write_text(XOR.read_text())
    (tmp_path / "bad.toml").write_text("name = \n")
    code, stdout, stderr = run(capsys, "list", tmp_path)
    assert code == 2 and stdout.startswith("xor ")
    assert stderr.startswith(f"simnet: error: {tmp_path / 'bad.toml'}: line 1, column 8: ")


def test_list_of_a_missing_directory(tmp_path, capsys):
    code, _, stderr = run(capsys, "list", tmp_path / "none")
    assert code == 2 and stderr == f"simnet: error: {tmp_path / 'none'}: directory: does not exist\n"


def test_check_passes_the_library_subset_and_fails_an_unmet_expectation(tmp_path, capsys):
    code, stdout, _ = run(capsys, "check", SCENARIOS / "xor.toml", SCENARIOS / "lr_too_high.toml")
    assert code == 0 and stdout.count("ok   ") >= 2
    unmet = tmp_path / "unmet.toml"
    unmet.write_text(XOR.read_text().replace("accuracy_min = 0.97", "accuracy_min = 0.97\ndead = [\"h1_0\"]"))
    code, stdout, _ = run(capsys, "check", unmet, "-q")
    assert code == 1 and "FAIL expect.dead[0]: h1_0 is active" in stdout


def test_check_of_a_directory_runs_everything_in_it_and_reports_bad_files(tmp_path, capsys):
    (tmp_path / "a.toml").write_text(XOR.read_text().replace('name = "xor"', 'name = "a"'))
    (tmp_path / "b.toml").write_bytes(b"\x00\x01")
    code, stdout, stderr = run(capsys, "check", tmp_path)
    assert code == 2 and "ok   a " in stdout
    assert stderr == f"simnet: error: {tmp_path / 'b.toml'}: file: is a binary file, not a TOML scenario\n"


def test_python_dash_m_is_the_same_program():
    done = subprocess.run([sys.executable, "-m", "simnet", "list", str(SCENARIOS)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "xor" in done.stdout


def test_usage_errors_exit_2(capsys):
    assert main(["run"]) == 2
    assert main(["run", str(XOR), "--steps", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
