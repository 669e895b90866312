"""Activations and losses by name: the textbook formulas, vectorised over a batch.

An activation is a pair (f, f') where f' takes both z and a = f(z), so each
derivative can use whichever is cheaper.  A loss maps outputs Y_hat and
targets Y, both (batch, n_outputs), to a scalar L averaged over the batch,
and gives dL/dY_hat for the backward sweep.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SimnetError

__all__ = ["ACTIVATIONS", "CLASSIFICATION", "EPS", "LEAKY_SLOPE", "LOSSES", "Activation", "SimnetWarning", "accuracy",
           "activation", "activation_names", "class_index_problem", "class_targets", "confusion", "hinge_sign",
           "label_problem", "loss_fit", "loss_function", "one_hot", "softmax"]

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """An activation function by name: a = f(z) and its derivative da/dz = df(z, a).

    The built-in ones are in ACTIVATIONS.  A user's own is made the same way and
    accepted wherever an activation is named; using it registers its name for
    the life of the process, so that a trace naming it can be read back there.

    >>> softplus = Activation("softplus", lambda z: np.logaddexp(0.0, z), lambda z, a: 1.0 - np.exp(-a))
    >>> activation(softplus) is softplus, activation("softplus") is softplus
    (True, True)
    """

    name: str  # what the trace, the pictures and `Neuron.activation` call it
    f: Callable[[np.ndarray], np.ndarray]  # z -> a, elementwise over a batch
    df: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (z, a) -> da/dz

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SimnetError(f"an activation's name must be a word of letters, digits and _, got {self.name!r}")
        if not callable(self.f) or not callable(self.df):
            raise SimnetError(f"activation {self.name!r} needs callables f(z) and df(z, a)")


def _sigmoid(z):
    # tanh form: the same value as 1/(1+e^-z) without overflow for large |z|
    return 0.5 * (1.0 + np.tanh(0.5 * z))


ACTIVATIONS = {
    a.name: a
    for a in (
        # the derivatives of relu and linear are 0/1 masks and 1, which numpy multiplies as they are
        Activation("relu", lambda z: np.maximum(z, 0.0), lambda z, a: z > 0),
        Activation("leaky_relu", lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
                   lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE)),
        Activation("sigmoid", _sigmoid, lambda z, a: a * (1.0 - a)),
        Activation("tanh", np.tanh, lambda z, a: 1.0 - a * a),
        Activation("linear", lambda z: z, lambda z, a: 1.0),
    )
}


_REGISTERED = {}  # the user's activations by name, in the order they were first used


def activation(spec):
    """The Activation for `spec`: a name (built in, or of one used before in this process) or an Activation.

    An Activation given is registered under its name (a later one of the same
    name replaces it); a built-in name cannot be taken.  SimnetError listing the
    known names for an unknown one.
    """
    if isinstance(spec, Activation):
        if ACTIVATIONS.get(spec.name, spec) is not spec:
            raise SimnetError(f"activation {spec.name!r} is built in; give yours another name")
        _REGISTERED[spec.name] = spec
        return spec
    try:
        return ACTIVATIONS.get(spec) or _REGISTERED[spec]
    except (KeyError, TypeError):
        raise SimnetError(f"unknown activation {spec!r}; expected one of {', '.join(activation_names())} "
                          "or an Activation") from None


def activation_names():
    """Every activation name this process knows: the built-in ones, then the user's in the order first used."""
    return (*ACTIVATIONS, *_REGISTERED)


# Probabilities are clipped so that log() stays finite for saturated sigmoids.
EPS = 1e-12


def _mse(P, Y):
    diff = P - Y
    return (diff * diff).sum() / diff.size, 2.0 * diff / diff.size


def _bce(P, Y):
    p = np.clip(P, EPS, 1.0 - EPS)
    loss = -(Y * np.log(p) + (1.0 - Y) * np.log(1.0 - p)).sum() / P.size
    # where the clip bites, the clipped loss is flat in P
    grad = np.where(p == P, (p - Y) / (p * (1.0 - p)), 0.0) / P.size
    return loss, grad


def hinge_sign(Y):
    """Labels as -1/+1: positive labels stay +1, zero or negative ones become -1."""
    return np.where(Y > 0, 1.0, -1.0)


def _hinge(P, Y):
    t = hinge_sign(Y)
    margin = 1.0 - t * P
    active = margin > 0
    return np.where(active, margin, 0.0).sum() / P.size, np.where(active, -t, 0.0) / P.size


def softmax(z, axis=-1):
    """The softmax of `z` along `axis`: probabilities from outputs (NaN left out of the shift that keeps
    exp from overflowing).

    >>> softmax(np.array([0.0, np.log(3.0)])).round(3)
    array([0.25, 0.75])
    """
    shifted = np.exp(z - np.nanmax(z, axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _cross_entropy(P, Y):
    shifted = P - P.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    batch = P.shape[0]
    loss = -np.sum(Y * log_softmax) / batch
    softmax = np.exp(log_softmax)
    grad = (softmax * Y.sum(axis=1, keepdims=True) - Y) / batch
    return loss, grad


LOSSES = {"mse": _mse, "bce": _bce, "hinge": _hinge, "cross_entropy": _cross_entropy}
CLASSIFICATION = {"bce", "hinge", "cross_entropy"}
# Output activations that can never give a loss what it needs: bce takes probabilities, so only
# sigmoid's (0, 1) will do; hinge tells class 0 by a negative output, which these never give.
_CANNOT = {
    "bce": ({"linear", "relu", "leaky_relu", "tanh"}, "needs outputs in (0, 1), which only sigmoid gives"),
    "hinge": ({"relu", "sigmoid"}, "needs outputs that can be negative (class 0 is a negative output)"),
}
# ...and those that work, but oddly.
_ODD = {
    "hinge": ({"tanh"}, "tanh never reaches the margin of 1, so the loss never gets to 0"),
    "cross_entropy": ({"relu", "leaky_relu", "sigmoid", "tanh"},
                      "the softmax of squashed or cut-off outputs is held back from getting sure; "
                      "linear outputs are usual"),
}


class SimnetWarning(UserWarning):
    """Something that will run but probably not as meant (a loss on an unusual output activation)."""


def loss_fit(loss, outputs):
    """(error, warnings) of training with `loss` on `outputs`, (name, activation) pairs of the output neurons.

    `error` says why the loss cannot work on these outputs (None if it can);
    `warnings` why it works oddly.
    """
    if loss == "cross_entropy" and len(outputs) < 2:
        return (f"cross_entropy needs at least two outputs, one per class; the network has {len(outputs)} "
                "(use bce for two classes with one output)"), []
    if loss in _CANNOT:
        activations, why = _CANNOT[loss]
        for name, act in outputs:
            if act in activations:
                return f"{loss} {why}; output neuron {name!r} is {act}", []
    warnings = []
    if loss in _ODD:
        activations, why = _ODD[loss]
        for act in sorted({act for _, act in outputs} & activations):
            names = [repr(name) for name, a in outputs if a == act]
            warnings.append(f"{loss} on {act} output{'s' * (len(names) > 1)} {', '.join(names)}: {why}")
    return None, warnings


def label_problem(loss, Y):
    """(row, column, why) of the first target in Y (samples, outputs) that `loss` cannot take, or None.

    bce and hinge take labels 0 and 1, cross_entropy one-hot rows (one 1, the
    rest 0); `column` is None when the row as a whole is wrong.
    """
    if loss not in CLASSIFICATION:
        return None
    rule = "one-hot rows (one 1, the rest 0)" if loss == "cross_entropy" else "labels 0 and 1"
    bad = np.argwhere((Y != 0) & (Y != 1))
    if len(bad):
        row, column = bad[0]
        return int(row), int(column), f"label {Y[row, column]:g} is not 0 or 1; {loss} takes {rule}"
    if loss == "cross_entropy":
        ones = np.count_nonzero(Y, axis=1)
        rows = np.flatnonzero(ones != 1)
        if len(rows):
            row = int(rows[0])
            return row, None, f"{ones[row]} labels are 1; {loss} takes {rule}"
    return None


def one_hot(labels, classes):
    """(samples, classes) rows of 0s with a 1 in column labels[i]: class indices as cross_entropy's targets.

    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    return np.eye(classes)[np.asarray(labels, dtype=np.int64).ravel()]


def class_index_problem(labels, classes):
    """(row, why) of the first of `labels` that is not a class index 0..classes-1, or None."""
    labels = np.asarray(labels, dtype=float).ravel()
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= classes))
    if len(bad):
        row = int(bad[0])
        return row, f"label {labels[row]:g} is not a class index 0..{classes - 1} ({classes} outputs, one per class)"
    return None


def class_targets(loss, Y, outputs):
    """Targets for `outputs` output neurons: class indices (one per sample) one-hot for cross_entropy, else Y.

    cross_entropy over K outputs takes either one-hot rows or one class index
    0..K-1 per sample (a vector, or one column); SimnetError names the first
    label that is no class index.

    >>> class_targets("cross_entropy", [1, 0], 2)
    array([[0., 1.],
           [1., 0.]])
    """
    if loss != "cross_entropy" or outputs < 2:
        return Y
    labels = np.asarray(Y)
    if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1):
        if labels.dtype.kind not in "iufb":
            raise SimnetError(f"Y must hold numbers (class indices), got {labels.dtype}")
        problem = class_index_problem(labels, outputs)
        if problem:
            raise SimnetError(f"Y row {problem[0]}: {problem[1]}")
        return one_hot(labels, outputs)
    return Y


def confusion(loss_name, P, Y):
    """(K, K) counts of samples by true class (rows) and picked class (columns) under `loss_name`'s rule.

    cross_entropy picks the largest output; bce and hinge with one output pick
    class 1 above 0.5 and above 0.  None for regression or for bce/hinge with
    several outputs (each is a separate yes/no).  The counts sum to the samples.

    >>> confusion("cross_entropy", np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.eye(2)[[0, 0, 1]])
    array([[1, 1],
           [1, 0]])
    """
    if loss_name == "cross_entropy":
        truth, picked = Y.argmax(axis=1), P.argmax(axis=1)
    elif loss_name in ("bce", "hinge") and Y.shape[1] == 1:
        truth, picked = (Y[:, 0] > 0.5).astype(int), (P[:, 0] > (0.5 if loss_name == "bce" else 0.0)).astype(int)
    else:
        return None
    classes = max(Y.shape[1], 2)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (truth, picked), 1)
    return counts


def loss_function(name):
    """The loss called `name` as a function (P, Y) -> (L, dL/dP)."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise SimnetError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None


def accuracy(loss_name, P, Y):
    """Fraction of samples classified right under `loss_name`'s rule, None for regression."""
    if loss_name == "bce":
        hits = (P > 0.5) == (Y > 0.5)
    elif loss_name == "hinge":
        hits = (P > 0) == (Y > 0)
    elif loss_name == "cross_entropy":
        return float(np.count_nonzero(P.argmax(axis=1) == Y.argmax(axis=1)) / len(P))
    else:
        return None
    return float(np.count_nonzero(hits.all(axis=1)) / len(P))
