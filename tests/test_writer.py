"""The trace writer process: what goes wrong there comes back in one line; Ctrl-C does not stop it."""
import gc
import io
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import simnet as sn
from simnet.trace.writer import BEAT, NO_BEAT, WriterError, WriterProcess, serve
from test_cli import XOR
from test_snapshot import xor_data


def database(path, table):
    """A database at `path` with `table` (its columns as SQL) and the heartbeat row a trace has."""
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table}")
        db.execute("CREATE TABLE heartbeat (beat BLOB NOT NULL)")
        db.execute("INSERT INTO heartbeat VALUES (?)", (NO_BEAT,))


def count(path, table):
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def committed_step(directory):
    with sn.open_trace(directory) as trace:
        return trace.last_step


def test_transactions_arrive_in_order_and_whole(tmp_path):
    path = tmp_path / "t.sqlite"
    database(path, "t (x INTEGER PRIMARY KEY, blob)")
    writer = WriterProcess(path)
    blob = np.arange(1000, dtype="<f8").tobytes()
    for first in range(0, 300, 100):
        writer.write([("INSERT INTO t VALUES (?,?)", [(x, blob) for x in range(first, first + 100)])])
    writer.finish()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT x, blob FROM t ORDER BY x").fetchall() == [(x, blob) for x in range(300)]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one plain file again
    assert sorted(os.listdir(tmp_path)) == ["t.sqlite"]


def test_an_sqlite_error_comes_back_in_one_line_and_the_failed_transaction_leaves_nothing(tmp_path):
    path = tmp_path / "t.sqlite"
    database(path, "t (x INTEGER PRIMARY KEY)")
    writer = WriterProcess(path)
    writer.write([("INSERT INTO t VALUES (?)", [(1,)])])
    writer.write([("INSERT INTO t VALUES (?)", [(2,), (2,)])])
    with pytest.raises(WriterError) as failure:
        for _ in range(100):  # the writer may still be reading when the next transaction goes out
            writer.write([("INSERT INTO t VALUES (?)", [(3,)])])
            time.sleep(0.01)
        writer.finish()
    message = str(failure.value)
    assert "UNIQUE constraint failed: t.x" in message and "\n" not in message
    assert count(path, "t") == 1


def test_a_recorder_whose_writer_fails_raises_a_trace_error_naming_the_file(tmp_path):
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=1)
    recorder = sn.Recorder(tmp_path)

    def take_the_next_rows(step, loss):
        if step == 3:  # another program writes the rows the recorder is about to write
            with sqlite3.connect(recorder.path) as db:
                db.execute("INSERT INTO events (seq, step, kind) VALUES (?, 0, 0)", (net.bus.seq + 1,))

    with pytest.raises(sn.TraceError) as failure:
        net.train(X, Y, steps=5, lr=0.1, recorder=recorder, progress=take_the_next_rows)
    message = str(failure.value)
    assert str(recorder.path) in message and "UNIQUE constraint failed: events.seq" in message
    assert "\n" not in message


def test_ctrl_c_at_a_terminal_stops_the_run_but_not_its_writer(tmp_path):
    long = tmp_path / "long.toml"
    long.write_text(XOR.read_text().replace("steps = 1000", "steps = 1000000"))
    out = tmp_path / "long"
    # a terminal's Ctrl-C goes to the whole foreground process group: the run and its trace writer
    process = subprocess.Popen([sys.executable, "-m", "simnet", "run", str(long), "-o", str(out), "--no-gif", "-q"],
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with sn.open_trace(next(tmp_path.glob("*/trace.sqlite"))) as trace:
                if (trace.last_step or 0) >= 150:
                    break
        except (StopIteration, sn.TraceError):
            pass  # not created yet
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    summary = json.loads((out / "summary.json").read_text())
    with sn.open_trace(out) as trace:
        assert trace.status.startswith("interrupted") and trace.last_step == summary["steps"] >= 150


def test_a_killed_writer_stops_the_run_with_a_trace_error_and_leaves_what_it_committed(tmp_path):
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=1)
    recorder = sn.Recorder(tmp_path)

    def kill_the_writer(step, loss):
        if step == 150:  # once the first 100 steps are committed
            deadline = time.monotonic() + 30
            while committed_step(tmp_path) != 100 and time.monotonic() < deadline:
                time.sleep(0.01)
            recorder._writer.child.kill()
            recorder._writer.child.wait()

    with pytest.raises(sn.TraceError) as failure:
        net.train(X, Y, steps=300, lr=0.1, recorder=recorder, progress=kill_the_writer)
    message = str(failure.value)
    assert str(recorder.path) in message and "the trace writer stopped" in message and "\n" not in message
    with sn.open_trace(tmp_path) as trace:
        assert not trace.complete and trace.last_step == 100
        assert trace.status == "incomplete: the recording process died after step 100"


def test_a_recorder_dropped_without_closing_lets_its_writer_go(tmp_path):
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=1)
    recorder = sn.Recorder(tmp_path)

    def fail(step, loss):
        if step == 120:
            raise RuntimeError("a bug in the caller's code")

    with pytest.raises(RuntimeError):
        net.train(X, Y, steps=300, lr=0.1, recorder=recorder, progress=fail)
    child = recorder._writer.child
    del recorder
    gc.collect()
    assert child.wait(timeout=30) == 0
    with sn.open_trace(tmp_path) as trace:
        assert not trace.complete and trace.last_step == 100


def test_a_message_cut_short_anywhere_ends_the_input_like_a_crash(tmp_path):
    whole = pickle.dumps([("INSERT INTO t VALUES (?)", [(1,)])], protocol=pickle.HIGHEST_PROTOCOL)
    # a blob past pickle's 64 kB frames, which goes into the pipe on its own
    cut = pickle.dumps([("INSERT INTO t VALUES (?)", [(b"x" * 100_000,), (3,)])], protocol=pickle.HIGHEST_PROTOCOL)
    for end in [*range(0, 40), *range(40, len(cut), 997), *range(len(cut) - 40, len(cut))]:
        path = tmp_path / f"t{end}.sqlite"
        database(path, "t (x)")
        report = io.StringIO()
        assert serve(str(path), io.BytesIO(whole + cut[:end]), report) == 0 and report.getvalue() == ""
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT x FROM t").fetchall() == [(1,)], end


def beating(directory):
    """The trace at `directory` once its writer has beaten, opened (the caller closes it)."""
    deadline = time.monotonic() + 60
    while True:
        trace = sn.open_trace(directory)
        if trace.heartbeat is not None or time.monotonic() > deadline:
            return trace
        trace.close()
        time.sleep(0.05)


def test_a_trace_is_running_while_its_writer_beats_and_not_after_it_closes(tmp_path):
    recorder = sn.Recorder(tmp_path)
    with beating(tmp_path) as trace:
        assert abs(time.time() - trace.heartbeat) < 30
        assert trace.running and trace.status == "running: no step recorded yet"
        with pytest.raises(sn.TraceError, match="a run is being recorded there"):
            sn.Recorder(tmp_path)
    first = trace.heartbeat
    # no step comes, and still the writer beats: a slow run is not taken for a dead one
    later = until_true(lambda: (lambda t: t.heartbeat if t.heartbeat > first else None)(reopened(tmp_path)))
    assert later > first
    recorder.close()
    with sn.open_trace(tmp_path) as trace:  # closed without an end: as if its process had died
        assert trace.heartbeat is None and not trace.running and trace.status == "incomplete: no steps recorded"


def test_a_run_whose_writer_is_killed_is_dead_at_once_on_this_host_and_after_its_beats_stop_elsewhere(tmp_path):
    X, Y = xor_data()
    recorder = sn.Recorder(tmp_path / "run")
    seen = []

    def kill_the_writer(step, loss):
        if step == 5:
            recorder.flush()
            with beating(tmp_path / "run") as trace:
                seen.append((trace.last_step, trace.running))
            recorder._writer.child.kill()  # its lock goes with it, and its last beat is still fresh
            recorder._writer.child.wait()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sn.Network.layered([2, 3, 1], seed=1).train(X, Y, steps=10, lr=0.1, recorder=recorder,
                                                     progress=kill_the_writer)
    assert seen == [(5, True)]
    with sn.open_trace(tmp_path / "run") as trace:
        assert trace.heartbeat is not None and not trace.running
        assert trace.status == f"incomplete: the recording process died after step {trace.last_step}"
    # a copy on another host's disk: no lock to ask, the beats alone tell
    for beat, running in [((time.time(), b"elsewhere"), True), ((time.time() - 60, b"elsewhere"), False)]:
        copy = tmp_path / f"copy{running}" / "trace.sqlite"
        copy.parent.mkdir()
        copy.write_bytes((tmp_path / "run" / "trace.sqlite").read_bytes())
        with sqlite3.connect(copy) as db:
            db.execute("UPDATE heartbeat SET beat = ?", (BEAT.pack(*beat),))
        with sn.open_trace(copy) as trace:
            assert trace.running is running and trace.heartbeat == beat[0]


def test_the_same_run_writes_the_same_file_however_often_its_writer_beat(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    X, Y = xor_data()

    def record(directory, pause):
        recorder = sn.Recorder(directory)
        # a pause between steps lets the writer beat alone, with nothing else to write
        sn.Network.layered([2, 3, 1], seed=1).train(X, Y, steps=40, lr=0.1, recorder=recorder,
                                                     before_step=lambda net, step: time.sleep(pause))
        return (directory / "trace.sqlite").read_bytes()

    assert record(tmp_path / "slow", 0.08) == record(tmp_path / "fast", 0.0)


def reopened(directory):
    with sn.open_trace(directory) as trace:
        return trace


def until_true(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def test_a_run_stopped_by_an_exception_is_closed_with_the_reason_given(tmp_path):
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=1)
    recorder = sn.Recorder(tmp_path)

    def interrupt(step, loss):
        if step == 120:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.train(X, Y, steps=300, lr=0.1, recorder=recorder, progress=interrupt)
    recorder.close("interrupted")
    with sn.open_trace(tmp_path) as trace:
        assert (trace.end_reason, trace.last_step, trace.status) == ("interrupted", 120, "interrupted after step 120")
        assert trace.metadata["runs"] == [[0, 120]] and not trace.running
        trace.network_at(120)
