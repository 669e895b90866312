"""Training: learning real tasks, determinism, events, bad input."""
import math
import os
import signal

import numpy as np
import pytest

import simnet as sn

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_Y = np.array([[0], [1], [1], [0]], float)


def moons(samples, noise, rng):
    """scikit-learn's make_moons, drawn from `rng`."""
    outer = samples // 2
    inner = samples - outer
    t_out = np.linspace(0, np.pi, outer)
    t_in = np.linspace(0, np.pi, inner)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5]])
    X += rng.normal(scale=noise, size=X.shape)
    Y = np.r_[np.zeros(outer), np.ones(inner)][:, None]
    return X, Y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layered_2_8_1_learns_xor(seed):
    net = sn.Network.layered([2, 8, 1], output="sigmoid", seed=seed)
    history = net.train(XOR_X, XOR_Y, steps=1500, lr=0.5, loss="bce")
    assert history.accuracy[-1] == 1.0
    assert np.array_equal(net.forward(XOR_X) > 0.5, XOR_Y > 0.5)
    assert history.loss[-1] < history.loss[0] / 10


@pytest.mark.parametrize("seed", [1, 2])
def test_micrograd_moons_task_reaches_97_percent(seed):
    """micrograd's demo: 100 moons, noise 0.1, 2-16-16-1 ReLU, hinge, alpha=1e-4, lr 1.0 -> 0.1 in 100 steps."""
    X, Y = moons(100, 0.1, np.random.default_rng(seed))
    net = sn.Network.layered([2, 16, 16, 1], hidden="relu", output="linear", seed=seed)

    def micrograd_schedule(net, step):
        net.set_learning_rate(1.0 - 0.9 * (step - 1) / 100)

    # micrograd's penalty alpha * sum(w^2) is simnet's 0.5 * l2 * sum(w^2) with l2 = 2 alpha
    history = net.train(X, Y, steps=100, lr=1.0, loss="hinge", l2=2e-4, before_step=micrograd_schedule)
    assert history.accuracy[-1] >= 0.97
    predictions = net.forward(X) > 0
    assert np.mean(predictions == (Y > 0)) >= 0.97
    assert len(history.loss) == len(history.accuracy) == len(history.steps) == 100


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(optimizer):
    X = np.linspace(-np.pi, np.pi, 40)[:, None]
    net = sn.Network.layered([1, 12, 1], hidden="tanh", seed=5)
    history = net.train(X, np.sin(X), steps=300, lr=0.01 if optimizer != "sgd" else 0.05, optimizer=optimizer)
    assert history.loss[-1] < 0.25 * history.loss[0]
    assert history.accuracy[-1] is None  # regression has no accuracy


def test_cross_entropy_accuracy_is_argmax():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    Y = np.eye(3)
    net = sn.Network.layered([2, 6, 3], hidden="tanh", seed=2)
    history = net.train(X, Y, steps=300, lr=0.3, loss="cross_entropy")
    assert history.accuracy[-1] == 1.0
    assert np.array_equal(net.forward(X).argmax(axis=1), [0, 1, 2])


def run_twice(**train_kwargs):
    results = []
    for _ in range(2):
        X, Y = moons(60, 0.2, np.random.default_rng(3))
        net = sn.Network.layered([2, 5, 1], output="sigmoid", seed=9)
        net.train(X, Y, steps=40, lr=0.2, loss="bce", **train_kwargs)
        results.append([c.weight for c in net.connections] + [n.bias for n in net.neurons.values()])
    return results


def test_same_seed_same_weights_bit_for_bit():
    first, second = run_twice(batch_size=16, optimizer="adam", l1=1e-3, l2=1e-3)
    assert first == second  # exact float equality, not closeness


def test_listening_does_not_change_the_arithmetic():
    quiet = run_twice(batch_size=16)[0]
    X, Y = moons(60, 0.2, np.random.default_rng(3))
    net = sn.Network.layered([2, 5, 1], output="sigmoid", seed=9)
    net.train(X, Y, steps=40, lr=0.2, loss="bce", batch_size=16, recorder=sn.EventLog())
    assert quiet == [c.weight for c in net.connections] + [n.bias for n in net.neurons.values()]


def test_mini_batches_cover_every_sample_each_epoch():
    X = np.arange(10, dtype=float)[:, None]
    net = sn.Network.layered([1, 1], seed=0)
    seen = []
    net.bus.subscribe(lambda e: seen.append(net.neurons["x0"].value.copy()), kinds=["step_end"])
    net.train(X, X, steps=6, lr=1e-3, batch_size=4)  # epochs of 4 + 4 + 2
    first_epoch, second_epoch = np.concatenate(seen[:3]), np.concatenate(seen[3:])
    assert sorted(first_epoch) == sorted(second_epoch) == list(range(10))
    assert list(first_epoch) != list(second_epoch)  # reshuffled


def test_event_stream_of_one_step_follows_the_sweeps():
    net = sn.Network(seed=0)
    net.add_neuron("x0", role="input")
    net.add_neuron("h", activation="relu", bias=0.1)
    net.add_neuron("y0", role="output", activation="linear", bias=0.0)
    net.connect("x0", "h", weight=2.0)
    net.connect("h", "y0", weight=3.0)
    net.connect("x0", "y0", weight=-1.0)
    log = sn.EventLog()
    net.train(np.array([[1.0], [2.0]]), np.array([[1.0], [0.0]]), steps=1, lr=0.1, recorder=log)
    trace = [(e.phase, e.kind, e.neuron or (e.source, e.target)) for e in log.events]
    step = trace[trace.index(("step", "step_begin", (None, None))):]
    assert step == [
        ("step", "step_begin", (None, None)),
        ("forward", "fire", "x0"), ("forward", "message", ("x0", "h")), ("forward", "message", ("x0", "y0")),
        ("forward", "fire", "h"), ("forward", "message", ("h", "y0")),
        ("forward", "fire", "y0"),
        ("loss", "loss", (None, None)),
        ("backward", "fire", "y0"), ("backward", "message", ("h", "y0")), ("backward", "message", ("x0", "y0")),
        ("backward", "fire", "h"), ("backward", "message", ("x0", "h")),
        ("backward", "fire", "x0"),
        ("update", "weight_update", ("x0", "h")), ("update", "weight_update", ("h", "y0")),
        ("update", "weight_update", ("x0", "y0")),
        ("update", "bias_update", "h"), ("update", "bias_update", "y0"),
        ("step", "step_end", (None, None)),
        ("end", "run_end", (None, None)),
    ]
    assert [e.seq for e in log.events] == list(range(len(log.events)))
    by = {(e.phase, e.kind, e.neuron or (e.source, e.target)): e for e in log.events}
    x = np.array([1.0, 2.0])
    h = np.maximum(2.0 * x + 0.1, 0)
    assert np.array_equal(by["forward", "message", ("x0", "h")].data["value"], x * 2.0)
    assert np.array_equal(by["forward", "fire", "h"].data["a"], h)
    update = by["update", "weight_update", ("h", "y0")].data
    assert update["old"] == 3.0 and update["new"] == net.connection("h", "y0").weight
    assert update["delta"] == update["new"] - update["old"]
    assert math.isclose(update["delta"], -0.1 * update["grad"], rel_tol=1e-12)
    init = [e for e in log.events if e.phase == "init"]
    assert init[0].kind == "run_begin" and init[0].data["seed"] == 0
    assert [e.kind for e in init[1:]] == ["neuron_added"] * 3 + ["connection_added"] * 3


def test_neurons_can_be_added_and_removed_between_steps():
    X, Y = moons(40, 0.1, np.random.default_rng(0))
    net = sn.Network.layered([2, 2, 1], output="sigmoid", seed=0)

    def grow(net, step):
        if step == 5:
            net.add_neuron("h_new", activation="tanh")
            for source in ("x0", "x1"):
                net.connect(source, "h_new")
            net.connect("h_new", "y0")
        if step == 10:
            net.remove_neuron("h1_0")
        if step == 12:
            net.set_learning_rate(0.01)

    history = net.train(X, Y, steps=15, lr=0.5, loss="bce", before_step=grow)
    assert history.steps == list(range(1, 16)) and net.step == 15
    assert "h_new" in net.neurons and "h1_0" not in net.neurons
    assert net.learning_rate == 0.01
    history = net.train(X, Y, steps=5, lr=0.1, loss="bce")
    assert history.steps == list(range(16, 21))


def test_frozen_connections_do_not_move():
    net = sn.Network.layered([2, 3, 1], seed=0)
    net.set_frozen("x0", "h1_0")
    before = net.connection("x0", "h1_0").weight
    net.train(XOR_X, XOR_Y, steps=20, lr=0.1)
    assert net.connection("x0", "h1_0").weight == before
    assert net.connection("x1", "h1_0").weight != sn.Network.layered([2, 3, 1], seed=0).connection("x1", "h1_0").weight


def test_l1_and_l2_shrink_weights():
    X = np.zeros((4, 2))
    net = sn.Network.layered([2, 1], seed=0)  # zero data: only the penalty pulls
    start = np.array([c.weight for c in net.connections])
    history = net.train(X, np.zeros((4, 1)), steps=1, lr=0.1, l2=0.5, l1=0.1)
    after = np.array([c.weight for c in net.connections])
    assert np.allclose(after, start - 0.1 * (0.1 * np.sign(start) + 0.5 * start), rtol=1e-12)
    assert math.isclose(history.loss[0], 0.1 * np.abs(start).sum() + 0.25 * start @ start, rel_tol=1e-12)


def test_divergence_names_the_step_and_the_neuron():
    X = np.linspace(-3, 3, 20)[:, None]
    net = sn.Network.layered([1, 4, 1], hidden="linear", seed=0)
    with pytest.raises(sn.DivergenceError) as caught:
        net.train(X, X ** 3, steps=200, lr=5.0)
    error = caught.value
    assert 1 < error.step <= 200
    assert "not finite" in str(error) and f"step {error.step}" in str(error)
    assert error.where.startswith(("neuron", "connection", "the loss"))
    assert len(error.history.loss) == error.step - 1


@pytest.mark.parametrize("call, message", [
    (lambda net: net.train(np.zeros((4, 3)), XOR_Y, steps=1, lr=0.1), r"X has shape \(4, 3\); expected \(batch, 2\)"),
    (lambda net: net.train(XOR_X, np.zeros((4, 2)), steps=1, lr=0.1), r"Y has shape \(4, 2\); expected \(batch, 1\)"),
    (lambda net: net.train(XOR_X, XOR_Y[:3], steps=1, lr=0.1), "X has 4 rows but Y has 3"),
    (lambda net: net.train(XOR_X * np.nan, XOR_Y, steps=1, lr=0.1), "X contains nan at row 0, column 0"),
    (lambda net: net.train(XOR_X, np.where(XOR_Y > 0, np.inf, 0), steps=1, lr=0.1), "Y contains inf at row 1"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=0.1, loss="l7"), "unknown loss 'l7'; expected one of mse"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=0.1, optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=0.1, engine="gpu"), "unknown engine 'gpu'"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=0, lr=0.1), "steps must be a positive integer"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=-1), "lr must be a positive finite number"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=float("nan")), "lr must be a positive finite number"),
    (lambda net: net.train(XOR_X, XOR_Y, steps=1, lr=0.1, batch_size=0), "batch_size must be a positive integer"),
    (lambda net: net.forward([[1, "a"]]), "X must be numeric"),
    (lambda net: net.backward(np.zeros((4, 2))), r"grad_outputs has shape \(4, 2\)"),
])
def test_bad_input_says_what_is_wrong_and_what_was_expected(call, message):
    net = sn.Network.layered([2, 3, 1], seed=0)
    with pytest.raises(sn.SimnetError, match=message):
        call(net)


def test_training_without_inputs_or_outputs_is_refused():
    net = sn.Network(seed=0)
    net.add_neuron("h")
    with pytest.raises(sn.SimnetError, match="at least one input and one output neuron"):
        net.train(np.zeros((2, 0)), np.zeros((2, 0)), steps=1, lr=0.1)
    net.add_neuron("x0", role="input")
    with pytest.raises(sn.SimnetError, match="0 outputs"):
        net.train(np.zeros((2, 1)), np.zeros((2, 0)), steps=1, lr=0.1)


def test_ctrl_c_ends_the_run_at_a_step_boundary():
    import os
    import signal

    def press_ctrl_c(net, step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    net = sn.Network.layered([2, 3, 1], seed=0)
    log = sn.EventLog()
    history = net.train(XOR_X, XOR_Y, steps=50, lr=0.1, before_step=press_ctrl_c, recorder=log)
    assert history.interrupted and history.steps == [1, 2, 3, 4, 5] and net.step == 5
    assert log.events[-2].kind == "step_end" and log.events[-2].step == 5
    assert log.events[-1].kind == "run_end" and log.events[-1].data["reason"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_loss_that_overflows_on_finite_outputs_is_named_as_the_loss():
    net = sn.Network.layered([1, 1], seed=0)
    net.set_weight("x0", "y0", 1e200)
    with pytest.raises(sn.DivergenceError, match="step 1: value of the loss is not finite"):
        net.train(np.array([[1.0]]), np.array([[0.0]]), steps=1, lr=0.1)


def recorded_events(log):
    """Each event as plain values, its numbers to the bit (arrays as bytes)."""
    def plain(value):
        return (value.dtype.str, value.shape, value.tobytes()) if isinstance(value, np.ndarray) else repr(value)
    return [(e.step, e.phase, e.kind, e.neuron, e.source, e.target, {k: plain(v) for k, v in e.data.items()})
            for e in log.events]


@pytest.mark.parametrize("engine", ["actor", "fast"])
@pytest.mark.parametrize("stop_after", [0, 1, 9])
def test_a_run_its_caller_stops_records_what_a_run_asked_for_those_steps_records(engine, stop_after):
    from simnet.core.trainer import StopTraining

    def stop(net, step):
        if step > stop_after:
            raise StopTraining

    def record(**how):
        net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=4)
        log = sn.EventLog()
        history = net.train(XOR_X, XOR_Y, lr=0.3, loss="bce", batch_size=3, engine=engine, recorder=log, **how)
        return recorded_events(log), history, [c.weight for c in net.connections]

    stopped, history, weights = record(steps=None, before_step=stop)
    assert len(history) == stop_after and not history.interrupted
    assert stopped[-1][2] == "run_end" and stopped[-1][6] == {"steps": repr(stop_after), "reason": repr("complete")}
    assert "steps" not in stopped[0][6]  # run_begin: how the run is set up, not how long it was asked to be
    if stop_after:
        assert (stopped, weights) == record(steps=stop_after)[::2]


def test_after_last_step_changes_the_network_the_run_ends_with_before_its_end():
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=4)
    log = sn.EventLog()
    seen = []

    def last(net, step):
        seen.append(step)
        net.set_weight("x0", "h1_0", 0.125)

    net.train(XOR_X, XOR_Y, steps=3, lr=0.3, loss="bce", recorder=log, after_last_step=last)
    assert seen == [4] and net.step == 3 and net.connection("x0", "h1_0").weight == 0.125
    assert [(e.step, e.kind) for e in log.events[-3:]] == [(3, "step_end"), (4, "weight_set"), (3, "run_end")]
    history = net.train(XOR_X, XOR_Y, steps=3, lr=0.3, loss="bce", after_last_step=last,
                        before_step=lambda net, step: os.kill(os.getpid(), signal.SIGINT) if step == 5 else None)
    assert history.interrupted and seen == [4], "an interrupted run has no step after its last"
