"""The trace store: what a Recorder writes, open_trace reads back, exact replay."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import simnet as sn
from simnet.core.events import EventBatch, EventLog
from simnet.trace.snapshot import SnapshotBuilder
from test_snapshot import as_batches, mutate, xor_data


def parameters(net):
    """Everything network_at promises, with floats as exact bit patterns."""
    return ([(n.name, n.role, n.activation, n.bias.hex()) for n in net.neurons.values()],
            [(c.key, c.weight.hex(), c.frozen) for c in net.connections])


def same_graph(G, H):
    return (G.graph == H.graph and list(G.nodes(data=True)) == list(H.nodes(data=True))
            and list(G.edges(data=True)) == list(H.edges(data=True)))


def content(events):
    """Events (or a trace's events) with vectors as bytes, so lists of them compare with ==."""
    if isinstance(events, sn.Trace):
        events = events.events()
    return [{k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in e.items()} for e in events]


def grow_and_prune(net, step):
    """mutate() plus a neuron that comes back under a reused name and a connection reconnected."""
    mutate(net, step)
    if step == 11:
        net.add_neuron("h1_1", activation="leaky_relu")
        net.connect("x1", "h1_1")
        net.connect("h1_1", "y0")
        net.set_frozen("x1", "h1_0", False)
    elif step == 13:
        net.connect("x0", "h1_0", weight=-0.0)
        net.disconnect("extra", "y0")


def recorded_run(directory, steps=16, detail="updates", keyframe_every=4, every=1, before_step=grow_and_prune,
                 **train):
    """Train with a Recorder and a live SnapshotBuilder; returns (net, {step: copy of net}, builder, history)."""
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=3)
    builder = SnapshotBuilder(every=every)
    net.bus.subscribe(builder, kinds=builder.kinds)
    live = {net.step: net.copy()}
    recorder = sn.Recorder(directory, detail=detail, keyframe_every=keyframe_every, every=every,
                           scenario_text="name = 'test'\n", metadata={"scenario": "test"})
    options = dict(lr=0.3, loss="bce", before_step=before_step)
    options.update(train)
    history = net.train(X, Y, steps=steps, recorder=recorder,
                        progress=lambda step, loss: live.__setitem__(step, net.copy()), **options)
    return net, live, builder, history


@pytest.mark.parametrize("detail, engine", [("updates", "actor"), ("messages", "actor"), ("updates", "fast"),
                                            ("messages", "fast")])
def test_network_at_is_bit_identical_to_the_live_network_after_every_step(tmp_path, detail, engine):
    net, live, builder, _ = recorded_run(tmp_path, detail=detail, engine=engine)
    trace = sn.open_trace(tmp_path)
    assert trace.complete and trace.end_reason == "complete"
    assert (trace.first_step, trace.last_step) == (0, 16)
    # forwards, backwards and jumping about: keyframes and the replay cursor must agree
    for step in list(range(17)) + list(range(16, -1, -1)) + [9, 2, 15, 0, 7]:
        replayed = trace.network_at(step)
        assert replayed.step == step
        assert parameters(replayed) == parameters(live[step]), step
    assert trace.network_at(16).learning_rate == net.learning_rate == 0.05
    trace.close()


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_snapshots_equal_the_live_builders(tmp_path, engine):
    _, _, builder, _ = recorded_run(tmp_path, every=1, engine=engine)
    with sn.open_trace(tmp_path / "trace.sqlite") as trace:
        assert trace.steps == sorted(builder.snapshots)
        for step in trace.steps:
            assert same_graph(trace.snapshot(step), builder.snapshots[step]), step
        streamed = dict(trace.snapshots([3, 0, 9, 10, 16]))
        assert sorted(streamed) == [0, 3, 9, 10, 16]
        assert all(same_graph(G, builder.snapshots[step]) for step, G in streamed.items())


def test_snapshot_steps_follow_the_recording_interval(tmp_path):
    _, _, builder, _ = recorded_run(tmp_path, steps=17, every=5)
    trace = sn.open_trace(tmp_path)
    assert trace.steps == sorted(builder.snapshots) == [0, 5, 10, 15, 17]
    assert [step for step, _ in trace.snapshots()] == trace.steps
    # any finished step has a snapshot on demand, recorded interval or not
    assert trace.snapshot(7).graph["step"] == 7


@pytest.mark.parametrize("detail", ["updates", "messages"])
def test_events_come_back_as_emitted(tmp_path, detail):
    X, Y = xor_data(samples=6)
    net = sn.Network.layered([2, 2, 1], seed=5)
    log = EventLog()
    net.bus.subscribe(log)
    recorder = sn.Recorder(tmp_path, detail=detail)
    net.train(X, Y, steps=4, lr=0.1, recorder=recorder, before_step=mutate)
    trace = sn.open_trace(tmp_path)
    emitted = [e for e in log.events if recorder.kinds is None or e.kind in recorder.kinds]
    stored = list(trace.events())
    assert [(e.seq, e.step, e.phase, e.kind, e.neuron, e.source, e.target) for e in emitted] == \
        [(e["seq"], e["step"], e["phase"], e["kind"], e["neuron"], e["source"], e["target"]) for e in stored]
    assert ("message" in {e["kind"] for e in stored}) == (detail == "messages")
    for live, back in zip(emitted, stored):
        for name, value in live.data.items():
            if isinstance(value, np.ndarray):
                assert back[name] == np.mean(value)
                if detail == "messages":
                    assert back[f"{name}_samples"].tobytes() == value.tobytes()
            else:
                assert back[name] == value, (live, name)


def test_events_filter_by_step_kind_neuron_and_connection(tmp_path):
    recorded_run(tmp_path, detail="messages")
    trace = sn.open_trace(tmp_path)
    everything = content(trace)
    assert [e["seq"] for e in everything] == sorted(e["seq"] for e in everything)
    assert content(trace.events(step=4)) == [e for e in everything if e["step"] == 4]
    assert list(trace.events(steps=(3, 5), kind="bias_update")) == \
        [e for e in everything if 3 <= e["step"] <= 5 and e["kind"] == "bias_update"]
    assert content(trace.events(kind=["loss", "step_end"])) == [e for e in everything if e["kind"] in ("loss", "step_end")]
    assert content(trace.events(phase="backward", kind="fire")) == \
        [e for e in everything if e["kind"] == "fire" and e["phase"] == "backward"]
    about_extra = [e for e in everything if "extra" in (e["neuron"], e["source"], e["target"])]
    assert content(trace.events(neuron="extra")) == about_extra and about_extra
    one = [e for e in everything if (e["source"], e["target"]) == ("x0", "extra")]
    assert content(trace.events(connection="x0->extra")) == one == content(trace.events(connection=("x0", "extra")))
    updates = content(trace.events(step=6, kind="weight_update"))
    assert all(u["delta"] == u["new"] - u["old"] for u in updates) and updates


def test_history_metadata_and_actions(tmp_path):
    def act(net, step):
        if step == 2:
            net.bus.emit(step, "script", "action", data={"action": "set_learning_rate", "label": "slow down",
                                                          "params": {"value": 0.1}})
            net.set_learning_rate(0.1)

    _, _, _, history = recorded_run(tmp_path, steps=5, before_step=act)
    trace = sn.open_trace(tmp_path)
    h = trace.history()
    assert h["step"].tolist() == history.steps and h["loss"].tolist() == history.loss
    assert h["accuracy"].tolist() == history.accuracy
    assert trace.actions() == [{"step": 2, "action": "set_learning_rate", "label": "slow down"}]
    meta = trace.metadata
    assert meta["seed"] == 3 and meta["scenario_text"] == "name = 'test'\n" and meta["scenario"] == "test"
    assert meta["version"] == sn.__version__ and meta["config"]["loss"] == "bce"
    assert meta["start_time"] <= meta["end_time"] and meta["start_time"].endswith("+00:00")


def test_batched_events_write_the_same_trace_as_single_events(tmp_path):
    X, Y = xor_data(samples=5)
    net = sn.Network.layered([2, 3, 1], hidden="tanh", seed=4)
    log = EventLog()
    net.train(X, Y, steps=6, lr=0.2, recorder=log, before_step=mutate)
    single, batched = sn.Recorder(tmp_path / "single", detail="messages"), sn.Recorder(tmp_path / "batched",
                                                                                       detail="messages")
    for e in log.events:
        single(e)
    for item in as_batches(log.events):
        (batched.on_batch if isinstance(item, EventBatch) else batched)(item)
    a, b = sn.open_trace(tmp_path / "single"), sn.open_trace(tmp_path / "batched")
    assert content(a) == content(b)
    assert parameters(a.network_at(6)) == parameters(b.network_at(6)) == parameters(net)


def test_a_run_continued_with_the_same_recorder_replays_across_both(tmp_path):
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=8)
    recorder = sn.Recorder(tmp_path, keyframe_every=3, every=4)
    builder = SnapshotBuilder(every=4)
    net.bus.subscribe(builder, kinds=builder.kinds)
    live = {0: net.copy()}
    keep = lambda step, loss: live.__setitem__(step, net.copy())  # noqa: E731
    net.train(X, Y, steps=6, lr=0.1, recorder=recorder, progress=keep, before_step=grow_and_prune)
    net.train(X, Y, steps=9, lr=0.2, recorder=recorder, progress=keep, before_step=grow_and_prune)
    trace = sn.open_trace(tmp_path)
    assert trace.complete and trace.last_step == 15
    assert trace.steps == sorted(builder.snapshots) == [0, 4, 6, 8, 12, 15]
    for step in range(16):
        assert parameters(trace.network_at(step)) == parameters(live[step])
    for step, G in trace.snapshots():
        assert same_graph(G, builder.snapshots[step])
    assert trace.history()["step"].tolist() == list(range(1, 16))


def test_ctrl_c_ends_at_a_step_boundary_and_keeps_everything(tmp_path):
    def interrupt(step, loss):
        live[step] = net.copy()
        if step == 5:
            signal.raise_signal(signal.SIGINT)

    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], seed=2)
    live = {}
    history = net.train(X, Y, steps=50, lr=0.1, recorder=sn.Recorder(tmp_path), progress=interrupt)
    assert history.interrupted and history.steps[-1] == 5
    trace = sn.open_trace(tmp_path)
    assert trace.complete and trace.end_reason == "interrupted" and trace.last_step == 5
    assert "interrupted" in trace.status
    assert parameters(trace.network_at(5)) == parameters(live[5])
    assert not (tmp_path / "trace.sqlite-wal").exists()


def test_a_diverged_run_keeps_its_finished_steps_and_the_failing_one_for_inspection(tmp_path):
    X = np.array([[1.0, 2.0], [2.0, 1.0]])
    Y = np.array([[1.0], [-1.0]])
    net = sn.Network.layered([2, 4, 1], hidden="linear", seed=0)
    live = {}
    with pytest.raises(sn.DivergenceError) as failure:
        net.train(X, Y, steps=2000, lr=5.0, recorder=sn.Recorder(tmp_path),
                  progress=lambda step, loss: live.__setitem__(step, net.copy()))
    bad = failure.value.step
    trace = sn.open_trace(tmp_path)
    assert trace.end_reason == "diverged" and trace.last_step == bad - 1
    assert parameters(trace.network_at(bad - 1)) == parameters(live[bad - 1])
    with pytest.raises(sn.TraceError, match="did not finish"):
        trace.network_at(bad)
    assert {e["kind"] for e in trace.events(step=bad)} >= {"step_begin", "loss", "run_end"}


def test_same_seed_gives_the_same_events(tmp_path):
    recorded_run(tmp_path / "a", detail="messages")
    recorded_run(tmp_path / "b", detail="messages")
    a, b = sn.open_trace(tmp_path / "a"), sn.open_trace(tmp_path / "b")
    assert content(a) == content(b)


def test_a_recorder_that_heard_nothing_leaves_an_incomplete_trace(tmp_path):
    sn.Recorder(tmp_path).close()
    trace = sn.open_trace(tmp_path)
    assert not trace.complete and trace.last_step is None and trace.steps == []
    assert trace.status == "incomplete: no steps recorded"
    with pytest.raises(sn.TraceError):
        trace.network_at(0)


@pytest.mark.parametrize("samples, kept", [(None, False), (True, True), (False, False)])
def test_per_sample_vectors_are_kept_for_small_batches_or_when_asked(tmp_path, samples, kept):
    X, Y = xor_data(samples=70)  # more than SAMPLE_LIMIT
    net = sn.Network.layered([2, 2, 1], seed=1)
    net.train(X, Y, steps=2, lr=0.1, recorder=sn.Recorder(tmp_path, detail="messages", samples=samples))
    fires = list(sn.open_trace(tmp_path).events(step=2, kind="fire"))
    assert fires and all(("z_samples" in e or "dL_da_samples" in e) == kept for e in fires)
    if kept:
        assert all(len(e.get("z_samples", e.get("dL_da_samples"))) == 70 for e in fires)


def test_a_run_ending_while_readers_hold_its_trace_leaves_a_main_file_complete_alone(tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "copy"
    uri = f"{(run / 'trace.sqlite').as_uri()}?mode=ro"
    X, Y = xor_data()
    net = sn.Network.layered([2, 8, 1], seed=5)
    readers = []

    def read_along(step, loss):
        if step == 1:  # one reader opens the trace and goes idle, another keeps a snapshot from step 1
            idle = sqlite3.connect(uri, uri=True)
            idle.execute("SELECT count(*) FROM steps").fetchall()
            holding = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            holding.execute("BEGIN")
            holding.execute("SELECT count(*) FROM steps").fetchall()
            readers.extend((idle, holding))
        if step == 150:  # lets go of its snapshot while the run's end waits for it
            threading.Timer(1.0, readers[1].execute, ("COMMIT",)).start()

    net.train(X, Y, steps=150, lr=0.1, recorder=sn.Recorder(run, keyframe_every=40), progress=read_along)
    assert not os.path.exists(f"{run / 'trace.sqlite'}-wal") or os.path.getsize(f"{run / 'trace.sqlite'}-wal") == 0
    elsewhere.mkdir()
    shutil.copy(run / "trace.sqlite", elsewhere / "trace.sqlite")  # the main file alone, readers still there
    with sn.open_trace(elsewhere) as trace:
        assert trace.status == "complete" and trace.last_step == 150
        assert parameters(trace.network_at(150)) == parameters(net)
    for reader in readers:
        reader.close()


# a long run a child process records while the test reads it: a network large enough that the WAL
# is checkpointed into the main file many times over
LONG_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import simnet as sn
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 4))
    Y = np.tanh(X[:, :1] * X[:, 1:2])
    net = sn.Network.layered([4, 48, 48, 1], hidden="tanh", seed=1)
    net.train(X, Y, steps=10**7, lr=0.001, engine="fast", recorder=sn.Recorder(sys.argv[1]))
""")


def test_reading_a_trace_while_it_is_written_never_refuses_it(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(tmp_path)], start_new_session=True)
    errors, reads, seen = [], 0, []
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "trace.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # past the creation of its tables
        stop = time.monotonic() + 4
        while time.monotonic() < stop:
            try:
                with sn.open_trace(tmp_path) as trace:
                    if trace.last_step is not None:
                        trace.history()
                        trace.network_at(trace.last_step)
                        seen.append(trace.last_step)
                reads += 1
            except sn.TraceError as error:
                errors.append(str(error))
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert errors == [] and reads >= 20
    assert seen and seen[-1] > seen[0] and seen == sorted(seen)
    with sn.open_trace(tmp_path) as trace:  # and after the kill, wherever the checkpoint was
        assert trace.last_step >= seen[-1] and trace.network_at(trace.last_step)
