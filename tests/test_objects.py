"""Objects wherever a name is accepted: optimizers, activations and engines."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simnet as sn
from simnet.core.functions import loss_function
from simnet.engines import FastEngine

SOFTPLUS = sn.Activation("softplus", lambda z: np.logaddexp(0.0, z), lambda z, a: 1.0 - np.exp(-a))


def regression(seed=3, samples=16):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, 2))
    return X, np.column_stack([np.sin(X[:, 0]) + 0.5 * X[:, 1]])


def weights_and_biases(net):
    return [c.weight for c in net.connections], [n.bias for n in net.neurons.values()]


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_adam_object_settings_match_a_hand_written_adam(engine):
    beta1, beta2, eps, lr, steps = 0.5, 0.99, 1e-6, 0.05, 6
    X, Y = regression()
    net = sn.Network.layered([2, 3, 1], hidden="tanh", seed=11)
    by_hand = net.copy()
    net.train(X, Y, steps=steps, lr=lr, optimizer=sn.Adam(beta1=beta1, beta2=beta2, eps=eps), engine=engine)

    params = [c for c in by_hand.connections] + [n for n in by_hand.neurons.values() if n.role != "input"]
    m, v = np.zeros(len(params)), np.zeros(len(params))
    for t in range(1, steps + 1):
        by_hand.zero_grad()
        _, dP = loss_function("mse")(by_hand.forward(X), Y)
        by_hand.backward(dP)
        g = np.array([p.grad if isinstance(p, sn.Connection) else p.bias_grad for p in params])
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        step = lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
        for p, delta in zip(params, step):
            if isinstance(p, sn.Connection):
                p.weight -= delta
            else:
                p.bias -= delta
    trained, expected = weights_and_biases(net), weights_and_biases(by_hand)
    np.testing.assert_allclose(trained[0], expected[0], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(trained[1], expected[1], rtol=1e-11, atol=1e-13)
    # and the settings did matter: default betas end elsewhere
    default = sn.Network.layered([2, 3, 1], hidden="tanh", seed=11)
    default.train(X, Y, steps=steps, lr=lr, optimizer="adam", engine=engine)
    assert not np.allclose(weights_and_biases(default)[0], trained[0])


def test_an_optimizer_object_is_a_setting_each_run_starts_fresh():
    X, Y = regression()
    adam = sn.Adam(beta1=0.8)
    first, second = (sn.Network.layered([2, 4, 1], seed=2) for _ in range(2))
    first.train(X, Y, steps=5, lr=0.01, optimizer=adam)
    second.train(X, Y, steps=5, lr=0.01, optimizer=adam)
    assert weights_and_biases(first) == weights_and_biases(second)
    named = sn.Network.layered([2, 4, 1], seed=2)
    named.train(X, Y, steps=5, lr=0.01, optimizer=sn.Momentum(mu=0.9))
    by_name = sn.Network.layered([2, 4, 1], seed=2)
    by_name.train(X, Y, steps=5, lr=0.01, optimizer="momentum")
    assert weights_and_biases(named) == weights_and_biases(by_name)


@pytest.mark.parametrize("make, message", [
    (lambda: sn.Adam(beta1=1.0), "beta1 must be a number in [0, 1)"),
    (lambda: sn.Adam(eps=0), "eps must be a positive number"),
    (lambda: sn.Momentum(mu="fast"), "mu must be a number in [0, 1)"),
])
def test_bad_optimizer_settings_are_refused(make, message):
    with pytest.raises(sn.SimnetError, match=message.replace("[", r"\[").replace(")", r"\)")):
        make()


def test_unknown_optimizer_or_engine_names_what_is_accepted():
    X, Y = regression()
    net = sn.Network.layered([2, 2, 1], seed=0)
    with pytest.raises(sn.SimnetError, match="unknown optimizer 'adagrad'.*optimizer object"):
        net.train(X, Y, steps=1, lr=0.1, optimizer="adagrad")
    with pytest.raises(sn.SimnetError, match="unknown engine 'gpu'; expected actor or fast or an Engine"):
        net.train(X, Y, steps=1, lr=0.1, engine="gpu")


def test_an_engine_object_trains_like_its_name():
    X, Y = regression()
    by_object, by_name = (sn.Network.layered([2, 5, 1], seed=4) for _ in range(2))
    by_object.train(X, Y, steps=20, lr=0.05, engine=FastEngine())
    by_name.train(X, Y, steps=20, lr=0.05, engine="fast")
    assert weights_and_biases(by_object) == weights_and_biases(by_name)


def softplus_network(seed):
    net = sn.Network(seed=seed)
    for i in range(2):
        net.add_neuron(f"x{i}", role="input")
    for h in range(3):
        net.add_neuron(f"h{h}", activation=SOFTPLUS, bias=0.1 * h)
        net.connect("x0", f"h{h}")
        net.connect("x1", f"h{h}")
    net.add_neuron("y0", role="output", activation="linear")
    for h in range(3):
        net.connect(f"h{h}", "y0")
    return net


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_custom_activation_backpropagates_its_own_derivative(seed):
    X, Y = regression(seed, samples=5)
    net = softplus_network(seed)
    loss = loss_function("mse")
    _, dP = loss(net.forward(X), Y)
    net.backward(dP)
    h = 1e-6
    for c in net.connections:
        w = c.weight
        c.weight = w + h
        up = loss(net.forward(X), Y)[0]
        c.weight = w - h
        down = loss(net.forward(X), Y)[0]
        c.weight = w
        assert c.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_a_trace_keeps_a_custom_activation_by_name_and_replays_it(tmp_path):
    X, Y = regression()
    for engine in ("actor", "fast"):
        net = softplus_network(5)
        net.train(X, Y, steps=12, lr=0.05, engine=engine, recorder=sn.Recorder(tmp_path / engine))
        with sn.open_trace(tmp_path / engine) as trace:
            again = trace.network_at(12)
        assert again.neurons["h1"].activation == "softplus"
        assert weights_and_biases(again) == weights_and_biases(net)
        np.testing.assert_array_equal(again.forward(X), net.forward(X))
    # a process that never made the activation cannot rebuild the network, and says which one it lacks
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import simnet as sn
        try:
            sn.open_trace({str(tmp_path / "actor")!r}).network_at(3)
        except sn.TraceError as e:
            print(e)
        """)], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0 and child.stderr == ""
    assert "the activation 'softplus'" in child.stdout and len(child.stdout.splitlines()) == 1


def test_an_activation_cannot_take_a_built_in_name_or_be_malformed():
    with pytest.raises(sn.SimnetError, match="'relu' is built in"):
        sn.Network(seed=0).add_neuron("h", activation=sn.Activation("relu", np.tanh, lambda z, a: 1 - a * a))
    with pytest.raises(sn.SimnetError, match="needs callables"):
        sn.Activation("odd", 3, 4)
