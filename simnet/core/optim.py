"""Optimizers, by name or as objects: each turns parameters' values and gradients into their new values.

Each optimizer has a ``rule``: the textbook update written once, for arrays
of parameters with their state (velocities, moment estimates) as a tuple of
arrays.  ``update`` applies it to parameter objects and keeps each one's state
by the object, so neurons and connections can come and go between steps;
the fast engine applies the same rule to state arrays it keeps itself.

Wherever an optimizer is accepted, a name ("adam") and an object
(``Adam(beta1=0.5)``) both do; an object is a setting, so each run starts
from a fresh copy of it with no state carried over from an earlier run.
"""
from collections.abc import Hashable, Sequence
from typing import Self

import numpy as np

from ..errors import SimnetError


__all__ = ["SGD", "Momentum", "Adam", "OPTIMIZERS", "optimizer"]


class SGD:
    """Plain gradient descent: w = w - lr g.

    >>> SGD().rule(np.array([1.0]), np.array([0.5]), 0.1, ())[0]
    array([0.95])
    """

    name = "sgd"
    state_size = 0  # arrays of state per parameter array

    def __init__(self) -> None:
        self.t = 0  # steps taken
        self.state = {}  # parameter object -> tuple of `state_size` floats

    def settings(self) -> dict[str, float]:
        """The keyword arguments that make this optimizer: what a fresh copy is built from."""
        return {}

    def fresh(self) -> Self:
        """A new optimizer of this kind with these settings and no state."""
        return type(self)(**self.settings())

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"

    def next_step(self) -> None:
        self.t += 1

    def update(self, params: Sequence[Hashable], values: np.ndarray, grads: np.ndarray, lr: float) -> np.ndarray:
        """New values (array) for `params`, a list of objects whose values and gradients are arrays."""
        if not self.state_size:
            return self.rule(values, grads, lr, ())[0]
        fresh = (0.0,) * self.state_size
        state = np.array([self.state.get(p, fresh) for p in params]).reshape(len(params), self.state_size)
        new, state = self.rule(values, grads, lr, tuple(state.T))
        self.state.update(zip(params, zip(*(s.tolist() for s in state))))
        return new

    def rule(self, value: np.ndarray, grad: np.ndarray, lr: float,
             state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """(new value, new state) for arrays of values and gradients, state a tuple of `state_size` arrays."""
        return value - lr * grad, ()


class Momentum(SGD):
    """Heavy-ball momentum: v = μ v + g, w = w - lr v.

    `mu`: how much of the last velocity carries on, in [0, 1).
    """

    name = "momentum"
    state_size = 1

    def __init__(self, mu: float = 0.9) -> None:
        super().__init__()
        self.mu = _fraction(mu, "mu")

    def settings(self) -> dict[str, float]:
        return {"mu": self.mu}

    def rule(self, value: np.ndarray, grad: np.ndarray, lr: float,
             state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        velocity, = state
        v = self.mu * velocity + grad
        return value - lr * v, (v,)


class Adam(SGD):
    """Adam (Kingma & Ba) with bias-corrected first and second moments.

    `beta1`, `beta2`: decay rates of the first and second moment estimates, in
    [0, 1); `eps`: added to the root of the second moment, positive.

    >>> Adam(beta1=0.5)
    Adam(beta1=0.5, beta2=0.999, eps=1e-08)
    """

    name = "adam"
    state_size = 2

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__()
        self.beta1, self.beta2 = _fraction(beta1, "beta1"), _fraction(beta2, "beta2")
        self.eps = _positive(eps, "eps")

    def settings(self) -> dict[str, float]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def rule(self, value: np.ndarray, grad: np.ndarray, lr: float,
             state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        m, v = state
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * grad * grad
        m_hat = m / (1.0 - self.beta1 ** self.t)
        v_hat = v / (1.0 - self.beta2 ** self.t)
        return value - lr * m_hat / (v_hat ** 0.5 + self.eps), (m, v)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def optimizer(spec):
    """A fresh optimizer for `spec`: a name in OPTIMIZERS, or an optimizer object to copy the settings of.

    >>> optimizer("momentum"), optimizer(Adam(beta2=0.99))
    (Momentum(mu=0.9), Adam(beta1=0.9, beta2=0.99, eps=1e-08))
    """
    if isinstance(spec, SGD):
        return spec.fresh()
    try:
        return OPTIMIZERS[spec]()
    except (KeyError, TypeError):
        raise SimnetError(f"unknown optimizer {spec!r}; expected one of {', '.join(OPTIMIZERS)} "
                          "or an optimizer object such as simnet.Adam()") from None


def _fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise SimnetError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < float("inf"):
        raise SimnetError(f"{name} must be a positive number, got {value!r}")
    return float(value)
