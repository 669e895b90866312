"""Backpropagation by message passing, checked against central finite differences."""
import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import simnet as sn
from simnet.core.functions import ACTIVATIONS, LOSSES, class_targets, hinge_sign, loss_function

ACTIVATION_NAMES = sorted(ACTIVATIONS)
KINK = 1e-4  # keep finite differences away from the corners of relu, hinge and the bce clip
H = 1e-6  # the central differences' step


@st.composite
def random_dags(draw):
    """A random DAG with skip connections, mixed activations, a loss, data and targets."""
    n_in = draw(st.integers(1, 4))
    n_hidden = draw(st.integers(1, 12))
    n_out = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    net = sn.Network(seed=seed, init=draw(st.sampled_from(["he", "xavier", "uniform"])))
    inputs = [net.add_neuron(f"x{i}", role="input").name for i in range(n_in)]
    hidden = []
    for h in range(n_hidden):
        name = f"h{h}"
        net.add_neuron(name, activation=draw(st.sampled_from(ACTIVATION_NAMES)), bias=float(rng.normal()))
        earlier = inputs + hidden
        for source in earlier:
            if draw(st.booleans()):
                net.connect(source, name)
        hidden.append(name)
    output_activations = ["sigmoid"] if loss == "bce" else ACTIVATION_NAMES
    for o in range(n_out):
        name = f"y{o}"
        net.add_neuron(name, role="output", activation=draw(st.sampled_from(output_activations)),
                       bias=float(rng.normal()))
        sources = [s for s in inputs + hidden if draw(st.booleans())] or [draw(st.sampled_from(inputs + hidden))]
        for source in sources:
            net.connect(source, name)
    batch = draw(st.integers(1, 6))
    X = rng.normal(size=(batch, n_in))
    if loss == "cross_entropy":
        Y = np.eye(n_out)[rng.integers(0, n_out, size=batch)]
    elif loss in ("bce", "hinge"):
        Y = rng.integers(0, 2, size=(batch, n_out)).astype(float)
    else:
        Y = rng.normal(size=(batch, n_out))
    return net, X, Y, loss


def loss_at(net, X, Y, loss):
    return loss_function(loss)(net.forward(X), Y)[0]


def away_from_kinks(net, X, Y, loss):
    """True if no relu, leaky relu, hinge margin or bce clip sits within KINK of its corner."""
    P = net.forward(X)
    for n in net.neurons.values():
        if n.role != "input" and n.activation in ("relu", "leaky_relu") and np.any(np.abs(n.z) < KINK):
            return False
    if loss == "hinge" and np.any(np.abs(1 - hinge_sign(Y) * P) < KINK):
        return False
    # a saturated sigmoid keeps too few digits of 1 - p for a finite difference of log(1 - p)
    if loss == "bce" and np.any((P < 1e-6) | (P > 1 - 1e-6)):
        return False
    return True


def loss_rounding(P, L, loss):
    """How far rounding can move the computed loss: what a central difference cannot see below.

    Its terms are of the size of 1, the outputs and the loss itself (a small
    cross-entropy is a difference of larger numbers); bce's log(p) and
    log(1 - p) lose digits as p nears 0 or 1.  Divided by h, this is the
    floor a numeric gradient is good to.
    """
    size = 1 + np.abs(P).max() + abs(L)
    if loss == "bce":
        size += 1 / np.minimum(P, 1 - P).min()
    return np.finfo(float).eps * size


def numeric_gradient(net, X, Y, loss, get, put, h=H):
    original = get()
    put(original + h)
    up = loss_at(net, X, Y, loss)
    put(original - h)
    down = loss_at(net, X, Y, loss)
    put(original)
    return (up - down) / (2 * h)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_backward_matches_central_differences(case):
    net, X, Y, loss = case
    assume(away_from_kinks(net, X, Y, loss))
    net.zero_grad()
    P = net.forward(X)
    net.backward(loss_function(loss)(P, Y)[1])
    analytic, numeric = [], []
    for c in net.connections:
        analytic.append(c.grad)
        numeric.append(numeric_gradient(net, X, Y, loss, lambda: c.weight, lambda v: setattr(c, "weight", v)))
    for n in net.neurons.values():
        if n.role == "input":
            continue
        analytic.append(n.bias_grad)
        numeric.append(numeric_gradient(net, X, Y, loss, lambda: n.bias, lambda v: setattr(n, "bias", v)))
    analytic, numeric = np.array(analytic), np.array(numeric)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    floor = np.sqrt(len(numeric)) * 8 * loss_rounding(P, loss_at(net, X, Y, loss), loss) / H
    assert np.linalg.norm(analytic - numeric) <= 1e-6 * scale + floor


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(sorted(LOSSES)), st.integers(1, 10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_loss_gradients_match_central_differences(loss, n_out, batch, seed):
    """Every loss over up to ten outputs; cross_entropy's softmax over K classes given as class indices."""
    rng = np.random.default_rng(seed)
    P = rng.uniform(0.05, 0.95, size=(batch, n_out)) if loss == "bce" else rng.normal(size=(batch, n_out))
    if loss == "cross_entropy":
        Y = class_targets(loss, rng.integers(0, n_out, size=batch), n_out) if n_out > 1 else np.ones((batch, 1))
    else:
        Y = rng.integers(0, 2, size=(batch, n_out)).astype(float)
    if loss == "hinge":
        assume(np.all(np.abs(1 - hinge_sign(Y) * P) > KINK))
    fn = loss_function(loss)
    _, grad = fn(P, Y)
    h = 1e-6
    for i in np.ndindex(P.shape):
        up, down = P.copy(), P.copy()
        up[i] += h
        down[i] -= h
        numeric = (fn(up, Y)[0] - fn(down, Y)[0]) / (2 * h)
        assert abs(numeric - grad[i]) <= 1e-6 * max(1.0, abs(numeric))


def test_textbook_single_neuron():
    """One sigmoid neuron, one sample: every quantity of the chain rule by hand."""
    net = sn.Network(seed=0)
    net.add_neuron("x0", role="input")
    net.add_neuron("y0", role="output", activation="sigmoid", bias=0.5)
    net.connect("x0", "y0", weight=-2.0)
    x = 1.5
    P = net.forward(np.array([[x]]))
    z = -2.0 * x + 0.5
    a = 1 / (1 + np.exp(-z))
    assert np.isclose(P[0, 0], a, rtol=1e-15)
    net.backward(np.array([[1.0]]))
    y = net.neurons["y0"]
    assert np.isclose(y.dL_dz[0], a * (1 - a), rtol=1e-15)
    assert np.isclose(net.connections[0].grad, a * (1 - a) * x, rtol=1e-15)
    assert np.isclose(y.bias_grad, a * (1 - a), rtol=1e-15)
