"""Faults injected into real runs: signals, killed processes, a full disk. What survives is asserted.

Every run here is a `simnet run` process of its own (and its trace writer,
a child of it), stopped from outside the way a user or the machine would.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import simnet as sn
from simnet.cli import main
from simnet.runner import RUN_FILES
from test_cli import XOR, leftovers

TIMEOUT = 60


def scenario(tmp_path, steps, every=None):
    """XOR trained for `steps` steps (a snapshot every `every`), written into `tmp_path`."""
    text = XOR.read_text().replace("steps = 1000", f"steps = {steps}")
    if every is not None:
        text = text.replace("every = 20", f"every = {every}")
    path = tmp_path / f"xor{steps}.toml"
    path.write_text(text)
    return path


def start(path, out, *options):
    # a session of its own, like a terminal's job: the run and its writer, and nothing of pytest's
    return subprocess.Popen([sys.executable, "-m", "simnet", "run", str(path), "-o", str(out), "-q", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"no {what} within {TIMEOUT} s")


def recorded(out):
    """(end_reason, last step) of the trace in `out` as a reader sees it now, or None before there is one."""
    try:
        with sn.open_trace(out) as trace:
            return trace.end_reason, trace.last_step
    except sn.TraceError:
        return None


def last_step(out):
    return (recorded(out) or (None, None))[1] or 0


def finish(process):
    _, stderr = process.communicate(timeout=TIMEOUT)
    return process.returncode, stderr


def one_line(stderr):
    return stderr.count("\n") == 1 and stderr.endswith("\n") and "Traceback" not in stderr


def summary(out):
    return json.loads((out / "summary.json").read_text())


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def writer_of(pid):
    """The pid of the trace writer, the run's child process (from /proc: the children of each of its threads)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    return None


# ---- Ctrl-C and SIGTERM ----------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_one_interrupt_at_a_random_moment_of_training_ends_the_run_interrupted_and_keeps_it(tmp_path, capsys, seed):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    wait_until(lambda: last_step(out), "step recorded")
    # while it trains, the run is at its place and says it is running
    assert summary(out)["status"] == "running" and summary(out)["end_reason"] is None
    code, stdout, _ = cli(capsys, "inspect", out)
    assert code == 0 and "status     running: recorded up to step " in stdout
    time.sleep(random.Random(seed).uniform(0, 0.5))
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and one_line(stderr) and "interrupted after step" in stderr and f"{out}{os.sep}" in stderr
    done = summary(out)
    assert (done["status"], done["end_reason"]) == ("interrupted", f"interrupted while training after step "
                                                                   f"{done['steps']}")
    assert recorded(out) == ("interrupted", done["steps"]) and done["steps"] > 0


def test_two_interrupts_in_quick_succession_keep_the_run(tmp_path):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    wait_until(lambda: last_step(out), "step recorded")
    process.send_signal(signal.SIGINT)
    time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and one_line(stderr) and f"{out}{os.sep}" in stderr
    done = summary(out)
    assert done["status"] == "interrupted" and done["end_reason"].startswith("interrupted while")
    reason, last = recorded(out)
    # stopped at a step boundary (the first interrupt) or in the middle of a step (the second): either way
    # the trace ends after its last whole step and says it was interrupted
    assert reason == "interrupted" and last > 0 and done["steps"] in (last, None)
    with sn.open_trace(out) as trace:
        assert trace.history()["step"].tolist() == list(range(1, last + 1))
        trace.network_at(last)
    assert leftovers(out) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_drawing_keeps_the_finished_trace(tmp_path, signum):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 300, every=2), out)  # 151 frames a GIF: drawing takes a while
    wait_until(lambda: (out / "loss.png").exists(), "drawing")  # the trace is complete before it is drawn
    process.send_signal(signum)
    code, stderr = finish(process)
    assert code == 130 and stderr == f"simnet: xor: interrupted while drawing; the trace (complete, 300 steps) " \
        f"is in {out}{os.sep}\n"
    done = summary(out)
    assert (done["status"], done["end_reason"], done["steps"]) == ("interrupted", "interrupted while drawing", 300)
    assert recorded(out) == ("complete", 300)
    # each picture is there whole or not at all, and nothing half-drawn is left
    assert leftovers(out) == [] and set(os.listdir(out)) <= set(RUN_FILES)
    for gif in ("activations.gif", "weights.gif"):
        if (out / gif).exists():
            assert Image.open(out / gif).n_frames == 151


def test_sigterm_during_training_is_an_interrupt(tmp_path):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    wait_until(lambda: last_step(out), "step recorded")
    os.killpg(process.pid, signal.SIGTERM)  # the run and its writer, as a service manager stops a job
    code, stderr = finish(process)
    assert code == 130 and one_line(stderr) and "interrupted after step" in stderr
    assert summary(out)["status"] == "interrupted" and recorded(out) == ("interrupted", summary(out)["steps"])


# ---- killed processes ----------------------------------------------------------

def test_a_killed_run_is_found_where_it_was_asked_for_and_says_it_is_incomplete(tmp_path, capsys):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    wait_until(lambda: last_step(out) >= 100, "100 steps recorded")
    process.kill()
    process.wait()
    # its writer, at the end of its input, keeps what it committed and goes: then the run is not running
    def writer_gone():  # a trace says what it found when it was opened
        with sn.open_trace(out) as trace:
            return not trace.running
    wait_until(writer_gone, "writer gone")
    code, stdout, _ = cli(capsys, "inspect", out)
    _, last = recorded(out)
    assert code == 0 and f"status     incomplete: the recording process died after step {last}" in stdout
    assert summary(out)["status"] == "running"  # nobody could say otherwise; the trace does
    code, stdout, stderr = cli(capsys, "export", out, "--format", "csv", "-o", "-")
    assert code == 0 and stderr == "" and stdout.startswith("seq,")
    assert cli(capsys, "replay", out, "-q", "-o", tmp_path / "weights.gif", "--gif", "weights")[0] == 0
    assert Image.open(tmp_path / "weights.gif").n_frames >= 2
    # a later run replaces it
    assert cli(capsys, "run", XOR, "-o", out, "--steps", 3, "--no-gif", "-q")[0] == 0
    assert recorded(out) == ("complete", 3) and sorted(os.listdir(out)) == ["loss.png", "summary.json",
                                                                            "trace.sqlite"]


def test_a_run_in_progress_is_neither_replaced_nor_recorded_over(tmp_path, capsys):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    try:
        wait_until(lambda: last_step(out), "step recorded")
        code, _, stderr = cli(capsys, "run", XOR, "-o", out, "--steps", 3, "--no-gif")
        assert code == 2 and stderr == f"simnet: error: {out}: -o: holds a run that is still running; wait for it " \
            "or choose another directory\n"
        with pytest.raises(sn.TraceError, match="a run is being recorded there"):
            sn.Recorder(out)
        assert summary(out)["status"] == "running"
    finally:
        process.send_signal(signal.SIGINT)
    assert finish(process)[0] == 130 and recorded(out)[0] == "interrupted"


def test_a_killed_writer_fails_the_run_in_one_line_and_keeps_what_it_committed(tmp_path):
    out = tmp_path / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    wait_until(lambda: last_step(out) >= 100, "100 steps recorded")
    committed = recorded(out)[1]
    os.kill(wait_until(lambda: writer_of(process.pid), "writer process"), signal.SIGKILL)
    code, stderr = finish(process)
    reason, last = recorded(out)
    assert reason is None and last >= committed
    assert code == 1 and one_line(stderr) and stderr.startswith("simnet: xor: failed while training: ")
    assert "the trace writer stopped" in stderr and f"the trace (incomplete: the recording process died after " \
        f"step {last}) is in {out}{os.sep}" in stderr
    done = summary(out)
    assert (done["status"], done["end_reason"]) == ("failed", "failed while training")
    assert "the trace writer stopped" in done["error"]


# ---- failures after training -------------------------------------------------------

def test_running_out_of_memory_while_drawing_keeps_the_trace(tmp_path, capsys, monkeypatch):
    from simnet import runner

    def exhausted(trace, run_dir, **kwargs):
        raise MemoryError
    monkeypatch.setattr(runner, "render_run", exhausted)
    out = tmp_path / "run"
    code, _, stderr = cli(capsys, "run", XOR, "-o", out, "--steps", 20)
    assert code == 1 and stderr == f"simnet: xor: failed while drawing: out of memory; the trace (complete, 20 " \
        f"steps) is in {out}{os.sep}\n"
    assert (summary(out)["status"], summary(out)["error"]) == ("failed", "out of memory")
    assert recorded(out) == ("complete", 20)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system of its own (tmpfs), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_what_was_committed(tmp_path, small_disk):
    out = small_disk / "run"
    process = start(scenario(tmp_path, 10**6), out, "--no-gif")
    code, stderr = finish(process)
    assert code == 1 and one_line(stderr) and stderr.startswith("simnet: xor: failed while training: ")
    assert "full" in stderr, stderr
    reason, last = recorded(out)
    assert reason is None and last > 0
    with sn.open_trace(out) as trace:
        trace.network_at(last)
    done = summary(out)
    assert (done["status"], done["end_reason"]) == ("failed", "failed while training") and "full" in done["error"]
    assert leftovers(out) == []
