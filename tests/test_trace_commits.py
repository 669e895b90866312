"""When a trace commits: whatever the schedule the file is the same, and a slow run's steps show up as it goes."""
import threading
import time
from pathlib import Path

import pytest

import simnet as sn
import simnet.trace.recorder
from simnet.runner import run
from test_snapshot import xor_data

GROWING = Path(__file__).resolve().parents[1] / "scenarios" / "growing.toml"


class CountingWriter(simnet.trace.recorder.WriterProcess):
    """The writer process, counting the transactions handed to it."""
    transactions = 0

    def write(self, statements):
        type(self).transactions += 1
        super().write(statements)


@pytest.fixture()
def small_growing(tmp_path):
    """scenarios/growing.toml made small: 24 steps, neurons added at step 9, every message kept, a held-out
    evaluation every 4 steps (rows written between steps)."""
    text = (GROWING.read_text().split("[expect]")[0].replace("at = 301", "at = 9").replace("steps = 900", "steps = 24")
            .replace("samples = 200", "samples = 24\ntest_fraction = 0.25")
            .replace("every = 15", 'every = 4\ndetail = "messages"'))
    path = tmp_path / "growing.toml"
    path.write_text(text)
    return path


# (FLUSH_STEPS, COMMIT_EVERY, a flush() right after each held-out evaluation)
SCHEDULES = [(100, 1e9, False), (7, 1e9, False), (1, 1e9, False), (100, 0.0, False), (100, 1e9, True)]


def test_the_trace_is_the_same_byte_for_byte_whatever_the_commit_schedule(tmp_path, small_growing, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setattr(simnet.trace.recorder, "WriterProcess", CountingWriter)
    held_out = simnet.trace.recorder.Recorder.held_out
    files, transactions = [], []
    for flush_steps, commit_every, flush_after_evaluation in SCHEDULES:
        monkeypatch.setattr(simnet.trace.recorder, "FLUSH_STEPS", flush_steps)
        monkeypatch.setattr(simnet.trace.recorder, "COMMIT_EVERY", commit_every)

        def held_out_then_flush(recorder, evaluation):
            held_out(recorder, evaluation)
            if flush_after_evaluation:  # a pause between steps, with rows of the next step's segment waiting
                recorder.flush()

        monkeypatch.setattr(simnet.trace.recorder.Recorder, "held_out", held_out_then_flush)
        CountingWriter.transactions = 0
        directory = tmp_path / f"{flush_steps}-{commit_every}-{flush_after_evaluation}"
        result = run(small_growing, directory, gifs=False)
        assert result.status == "complete"
        files.append((directory / "trace.sqlite").read_bytes())
        transactions.append(CountingWriter.transactions)
    # the schedules did commit differently: one transaction per step with FLUSH_STEPS 1 or no wait
    # between commits, a few with 7, one after each evaluation with the flushes
    assert transactions[0] < transactions[1] < transactions[2] == transactions[3]
    assert transactions[0] < transactions[4]
    assert all(file == files[0] for file in files[1:])
    with sn.open_trace(tmp_path / "100-1000000000.0-False") as trace:
        assert len(trace.network_at(24).neurons) == 9 and trace.held_out()["step"].size >= 5
        assert trace.detail == "messages" and list(trace.events(step=12, kind="message"))


def test_a_slow_run_shows_its_steps_to_a_reader_as_it_goes(tmp_path, monkeypatch):
    # steps far apart in time commit one by one, long before FLUSH_STEPS of them have passed
    monkeypatch.setattr(simnet.trace.recorder, "COMMIT_EVERY", 0.2)
    release = threading.Event()

    def slow(net, step):
        if step <= 5:
            time.sleep(0.3)  # longer than COMMIT_EVERY: each of these steps ends with a commit
        else:
            release.wait(120)  # the run stays in step 6 until the reader has seen the first five

    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=0)
    training = threading.Thread(target=net.train, args=(X, Y),
                                kwargs=dict(steps=12, lr=0.1, recorder=sn.Recorder(tmp_path), before_step=slow))
    training.start()
    try:
        seen = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and seen != 5:
            time.sleep(0.1)
            try:
                with sn.open_trace(tmp_path) as trace:
                    seen = trace.last_step
                    assert not trace.complete
            except sn.TraceError:
                pass  # not created yet
        assert seen == 5, f"the reader saw step {seen} of a run waiting in step 6"
        assert training.is_alive()
    finally:
        release.set()
        training.join(120)
    with sn.open_trace(tmp_path) as trace:
        assert trace.complete and trace.last_step == 12
