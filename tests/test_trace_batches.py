"""Batches of events (the fast engine's phases) stored as one row each: read back event by event."""
import sqlite3

import numpy as np
import pytest

import simnet as sn
from simnet.core.events import EventLog
from test_trace import content


@pytest.fixture
def traced(tmp_path):
    X = np.random.default_rng(4).normal(size=(12, 2))
    Y = (X[:, :1] * X[:, 1:] > 0).astype(float)
    net = sn.Network.layered([2, 5, 4, 1], output="sigmoid", seed=2)
    log = EventLog()
    recorder = sn.Recorder(tmp_path, detail="updates", keyframe_every=3)
    net.bus.subscribe(log, kinds=recorder.kinds)
    net.train(X, Y, steps=7, lr=0.2, loss="bce", engine="fast", recorder=recorder)
    return log.events, sn.open_trace(tmp_path)


def test_a_batch_is_one_row_and_its_events_come_back_as_emitted(traced):
    emitted, trace = traced
    rows = sqlite3.connect(trace.path).execute("SELECT kind, last_seq - seq + 1 FROM batches").fetchall()
    assert len(rows) == 7 * 4  # per step: forward and backward firings, weight and bias updates
    stored = list(trace.events())
    assert [(e.seq, e.step, e.phase, e.kind, e.neuron, e.source, e.target) for e in emitted] == \
        [(e["seq"], e["step"], e["phase"], e["kind"], e["neuron"], e["source"], e["target"]) for e in stored]
    for live, back in zip(emitted, stored):
        for name, value in live.data.items():
            expected = np.mean(value) if isinstance(value, np.ndarray) and value.ndim else value
            assert back[name] == expected or (expected != expected and back[name] != back[name]), (live, name)
        if live.kind in ("weight_update", "bias_update"):
            assert back["delta"] == live.data["new"] - live.data["old"]
    assert trace.event_counts() == {k: sum(e.kind == k for e in emitted) for k in {e.kind for e in emitted}}


def test_filters_cut_batches_like_single_rows(traced):
    _, trace = traced
    everything = content(trace)
    assert [e["seq"] for e in everything] == list(range(everything[0]["seq"], everything[-1]["seq"] + 1))
    assert content(trace.events(step=4)) == [e for e in everything if e["step"] == 4]
    assert content(trace.events(steps=(2, 5), kind="weight_update")) == \
        [e for e in everything if 2 <= e["step"] <= 5 and e["kind"] == "weight_update"]
    assert content(trace.events(phase="backward", kind="fire")) == \
        [e for e in everything if e["kind"] == "fire" and e["phase"] == "backward"]
    about = [e for e in everything if "h1_2" in (e["neuron"], e["source"], e["target"])]
    assert content(trace.events(neuron="h1_2")) == about and about
    one = [e for e in everything if (e["source"], e["target"]) == ("h1_2", "h2_0")]
    assert content(trace.events(connection="h1_2->h2_0", steps=(3, 6))) == [e for e in one if 3 <= e["step"] <= 6]


def test_the_sql_views_show_batched_events_bit_for_bit(traced):
    _, trace = traced
    db = sqlite3.connect(f"file:{trace.path}?mode=ro", uri=True)
    bits = lambda values: [None if v is None else float(v).hex() for v in values]  # noqa: E731
    updates = db.execute("SELECT seq, step, source, target, old, new, delta, grad FROM weight_updates").fetchall()
    assert [(s, st, a, b, *bits(v)) for s, st, a, b, *v in updates] == \
        [(e["seq"], e["step"], e["source"], e["target"], *bits([e["old"], e["new"], e["delta"], e["grad"]]))
         for e in trace.events(kind="weight_update")]
    fired = db.execute("SELECT seq, phase, neuron, z, a, dL_da, dL_dz FROM firings").fetchall()
    assert [(s, p, n, *bits(v)) for s, p, n, *v in fired] == \
        [(e["seq"], e["phase"], e["neuron"], *bits([e.get("z"), e.get("a"), e.get("dL_da"), e.get("dL_dz")]))
         for e in trace.events(kind="fire")]
    logged = db.execute("SELECT seq, kind FROM event_log").fetchall()
    assert logged == [(e["seq"], e["kind"]) for e in trace.events()]


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_the_recorders_state_follows_the_network_after_every_step(tmp_path, engine):
    """Update batches reach the recorder's state lazily; whenever it is read it must be the network's own."""
    from test_snapshot import mutate, xor_data
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=3)
    recorder = sn.Recorder(tmp_path, keyframe_every=1000)
    seen = []

    def compare(step, loss):
        state = recorder.state
        seen.append(step)
        assert state.weight == {c.key: c.weight for c in net.connections}, step
        assert state.bias == {n.name: n.bias for n in net.neurons.values()}, step

    net.train(X, Y, steps=12, lr=0.3, loss="bce", engine=engine, recorder=recorder, before_step=mutate,
              progress=compare)
    assert seen == list(range(1, 13))
