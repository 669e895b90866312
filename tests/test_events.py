"""Event batches whose numbers are computed when first read, and the message values engines defer that way."""
import numpy as np
import pytest

import simnet as sn
from simnet.core.events import EventBatch, EventLog


def test_a_deferred_column_is_computed_once_when_first_read_and_gives_the_same_events():
    values = np.arange(6.0).reshape(3, 2)
    calls = []

    def deferred():
        calls.append(1)
        return values

    sources, targets = ["a", "a", "b"], ["x", "y", "x"]
    lazy = EventBatch(7, 2, "forward", "message", sources=sources, targets=targets, data={"value": deferred})
    eager = EventBatch(7, 2, "forward", "message", sources=sources, targets=targets, data={"value": values})
    assert len(lazy) == 3 and not calls  # its length comes from the names
    rows = [(e.seq, e.source, e.target, e["value"].tolist()) for e in lazy]
    assert rows == [(e.seq, e.source, e.target, e["value"].tolist()) for e in eager]
    assert rows[2] == (9, "b", "x", [4.0, 5.0])
    assert lazy.data["value"] is values
    assert len(calls) == 1


class EagerCopies:
    """Copies every fire and message vector the moment it is emitted."""

    def __init__(self):
        self.copies = []

    def __call__(self, event):
        self.copies.append({k: np.array(v) for k, v in event.data.items() if isinstance(v, np.ndarray)})

    def on_batch(self, batch):
        for event in batch:
            self(event)


def _run(engine, subscriber):
    net = sn.Network.layered([2, 4, 3, 1], seed=5)
    net.connect("x0", "y0", weight=0.4)
    X = np.random.default_rng(1).normal(size=(9, 2))
    net.train(X, (X[:, :1] > 0).astype(float), steps=4, lr=0.5, loss="mse", optimizer="momentum",
              engine=engine, recorder=subscriber)


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_messages_read_after_the_run_carry_the_values_sent_at_their_step(engine):
    """Message values are computed when a subscriber first reads them, long after the weights and the
    sender's numbers have moved on: they must be what was sent, the sender's value at that step times
    the weight before its update (a·w forward, dL/dz·w backward)."""
    log, eager = EventLog(), EagerCopies()
    _run(engine, log)
    _run(engine, eager)
    events = log.events
    assert len(events) == len(eager.copies)
    for event, copy in zip(events, eager.copies):
        for name, values in copy.items():
            np.testing.assert_array_equal(event[name], values)
    old = {(e.step, e.source, e.target): e["old"] for e in log.of_kind("weight_update")}
    fired = {(e.step, e.phase, e.neuron): e for e in log.of_kind("fire")}
    messages = log.of_kind("message")
    assert len({(e.step, e.phase) for e in messages}) == 8
    for e in messages:
        weight = old[e.step, e.source, e.target]
        if e.phase == "forward":
            sent = fired[e.step, "forward", e.source]["a"]
        else:
            sent = fired[e.step, "backward", e.target]["dL_dz"]
        np.testing.assert_array_equal(e["value"], sent * weight)
