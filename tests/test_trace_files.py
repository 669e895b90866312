"""Trace files on disk: crash safety, read-only reading, bad input."""
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import simnet as sn
import simnet.trace.recorder
import simnet.trace.schema
from simnet.files import directory_locked
from test_snapshot import xor_data
from test_trace import parameters, recorded_run

# the run a child process records until it is killed; the test repeats it to compare
CRASH_RUN = textwrap.dedent("""
    import numpy as np
    import simnet as sn

    def make():
        rng = np.random.default_rng(11)
        X = rng.normal(size=(8, 2))
        Y = np.tanh(X[:, :1] - X[:, 1:])
        return sn.Network.layered([2, 3, 1], hidden="tanh", seed=11), X, Y
""")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_killed_mid_flight_leaves_a_trace_that_replays_to_its_last_committed_step(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CRASH_RUN + textwrap.dedent(f"""
        net, X, Y = make()
        net.train(X, Y, steps=10**7, lr=0.01, recorder=sn.Recorder({str(tmp_path)!r}, keyframe_every=50))
    """)], start_new_session=True)  # its own process group: the run and its trace writer
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with sn.open_trace(tmp_path) as trace:  # readable while being written
                    if (trace.last_step or 0) >= 120:
                        break
            except sn.TraceError:
                pass  # not created yet
        else:
            pytest.fail("the child recorded nothing within 30 s")
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # both at once, the writer wherever it is in its work
        child.wait()
    # the writer, not ours to wait for, lets go of the directory's lock once it is gone: a moment later
    deadline = time.monotonic() + 30
    while directory_locked(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    trace_file = tmp_path / "trace.sqlite"
    before = digest(trace_file)
    trace = sn.open_trace(tmp_path)
    assert not trace.complete and trace.end_reason is None
    last = trace.last_step
    assert last >= 120 and trace.status == f"incomplete: the recording process died after step {last}"
    assert trace.history()["step"].tolist() == list(range(1, last + 1))
    namespace = {}
    exec(CRASH_RUN, namespace)
    net, X, Y = namespace["make"]()
    net.train(X, Y, steps=last, lr=0.01)
    assert parameters(trace.network_at(last)) == parameters(net)
    with pytest.raises(sn.TraceError):
        trace.network_at(last + 1)
    trace.close()
    assert digest(trace_file) == before


def steps_committed(directory, steps, monkeypatch, flush_bytes=None):
    """Record a run, and return the steps each transaction sent to the writer finished, in order."""
    monkeypatch.setattr(simnet.trace.recorder, "COMMIT_EVERY", 1e9)  # however slow the machine, no commit by the clock
    if flush_bytes is not None:
        monkeypatch.setattr(simnet.trace.recorder, "FLUSH_BYTES", flush_bytes)
    X, Y = xor_data()
    net = sn.Network.layered([2, 8, 1], seed=1)
    recorder = sn.Recorder(directory)
    transactions, write = [], recorder._writer.write

    def write_and_note(statements):
        transactions.append([row[0] for statement, rows in statements if statement == simnet.trace.schema.STEP_UPSERT
                             for row in rows if row[0] >= 1])
        write(statements)

    recorder._writer.write = write_and_note
    net.train(X, Y, steps=steps, lr=0.1, engine="fast", recorder=recorder)
    return transactions


def test_a_transaction_ends_once_its_values_pass_the_byte_limit(tmp_path, monkeypatch):
    # a large network's updates take megabytes a step: they must not pile up for FLUSH_STEPS steps
    # the run's end closes step 12's row again
    whole = steps_committed(tmp_path / "whole", 12, monkeypatch)
    assert [steps for steps in whole if steps] == [list(range(1, 13)) + [12]]
    with sqlite3.connect(tmp_path / "whole" / "trace.sqlite") as db:
        values = dict(db.execute("SELECT step, sum(length(v1) + ifnull(length(v2), 0) + ifnull(length(v3), 0))"
                                 " FROM batches GROUP BY step"))
    limit = 2.5 * values[1]
    transactions = steps_committed(tmp_path / "split", 12, monkeypatch, flush_bytes=limit)
    assert sum(transactions, []) == list(range(1, 13)) + [12]
    *full, last = [steps for steps in transactions if steps]
    assert len(full) >= 3
    for steps in full:  # each ends with the step that took its values past the limit, not before
        assert sum(values[s] for s in steps[:-1]) < limit <= sum(values[s] for s in steps)
    with sn.open_trace(tmp_path / "whole") as whole, sn.open_trace(tmp_path / "split") as split:
        assert list(whole.events()) == list(split.events())
        assert parameters(whole.network_at(12)) == parameters(split.network_at(12))


def test_reading_never_changes_the_file(tmp_path):
    recorded_run(tmp_path, steps=6, detail="messages")
    trace_file = tmp_path / "trace.sqlite"
    before, listing = digest(trace_file), sorted(os.listdir(tmp_path))
    with sn.open_trace(trace_file) as trace:
        list(trace.events())
        trace.network_at(5)
        trace.snapshot(3)
        trace.history()
    assert digest(trace_file) == before and sorted(os.listdir(tmp_path)) == listing == ["trace.sqlite"]


@pytest.fixture()
def trace_file(tmp_path):
    recorded_run(tmp_path / "run", steps=30, detail="messages")
    return tmp_path / "run" / "trace.sqlite"


def error_of(path):
    with pytest.raises(sn.TraceError) as failure:
        with sn.open_trace(path) as trace:
            # a damaged page may only show when it is read
            list(trace.events())
            trace.network_at(trace.last_step)
    message = str(failure.value)
    assert "\n" not in message and str(path) in message
    return message


def test_what_is_not_a_trace_is_refused_in_one_line(tmp_path):
    assert "no trace" in error_of(tmp_path / "missing")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    assert "not a simnet trace" in error_of(text)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    assert "not a simnet trace" in error_of(other)
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    assert "not a simnet trace" in error_of(empty)


def test_a_trace_cut_in_half_is_refused_as_damaged(trace_file):
    data = trace_file.read_bytes()
    trace_file.write_bytes(data[: len(data) // 2])
    assert f"{trace_file}: damaged trace: " in error_of(trace_file)


def test_a_corrupted_trace_is_refused(trace_file):
    data = bytearray(trace_file.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data), page):  # every page's b-tree header, past the first
        data[start:start + 12] = b"\xff" * 12
    trace_file.write_bytes(bytes(data))
    error_of(trace_file)


def test_a_newer_schema_is_refused(trace_file, tmp_path):
    newer = tmp_path / "newer.sqlite"
    shutil.copy(trace_file, newer)
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    assert "newer" in error_of(newer)


def test_unknown_steps_neurons_kinds_and_connections_are_trace_errors(trace_file):
    trace = sn.open_trace(trace_file)
    for bad in (lambda: trace.network_at(31), lambda: trace.network_at(-1), lambda: trace.snapshot(99),
                lambda: trace.network_at("3"), lambda: list(trace.events(step=40)),
                lambda: list(trace.events(neuron="nobody")), lambda: list(trace.events(kind="explosion")),
                lambda: list(trace.events(connection="x0->y9")), lambda: list(trace.events(connection="x0")),
                lambda: list(trace.events(phase="sideways"))):
        with pytest.raises(sn.TraceError) as failure:
            bad()
        assert "\n" not in str(failure.value)


def test_recorder_options_are_checked(tmp_path):
    with pytest.raises(sn.TraceError, match="detail"):
        sn.Recorder(tmp_path, detail="everything")
    with pytest.raises(sn.TraceError, match="every"):
        sn.Recorder(tmp_path, every=0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(sn.TraceError, match="cannot create"):
        sn.Recorder(blocker / "run")
