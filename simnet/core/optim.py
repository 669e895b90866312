"""Optimizers by name: each turns parameters' values and gradients into their new values.

Each optimizer has a ``rule``: the textbook update written once, for arrays
of parameters with their state (velocities, moment estimates) as a tuple of
arrays.  ``update`` applies it to parameter objects and keeps each one's state
by the object, so neurons and connections can come and go between steps;
the fast engine applies the same rule to state arrays it keeps itself.
"""
import numpy as np

from ..errors import SimnetError


class SGD:
    """Plain gradient descent: w = w - lr g."""

    state_size = 0  # arrays of state per parameter array

    def __init__(self):
        self.t = 0
        self.state = {}  # parameter object -> tuple of `state_size` floats

    def next_step(self):
        self.t += 1

    def update(self, params, values, grads, lr):
        """New values (array) for `params`, a list of objects whose values and gradients are arrays."""
        if not self.state_size:
            return self.rule(values, grads, lr, ())[0]
        fresh = (0.0,) * self.state_size
        state = np.array([self.state.get(p, fresh) for p in params]).reshape(len(params), self.state_size)
        new, state = self.rule(values, grads, lr, tuple(state.T))
        self.state.update(zip(params, zip(*(s.tolist() for s in state))))
        return new

    def rule(self, value, grad, lr, state):
        """(new value, new state) for arrays of values and gradients, state a tuple of `state_size` arrays."""
        return value - lr * grad, ()


class Momentum(SGD):
    """Heavy-ball momentum: v = μ v + g, w = w - lr v."""

    state_size = 1

    def __init__(self, mu=0.9):
        super().__init__()
        self.mu = mu

    def rule(self, value, grad, lr, state):
        velocity, = state
        v = self.mu * velocity + grad
        return value - lr * v, (v,)


class Adam(SGD):
    """Adam (Kingma & Ba) with bias-corrected first and second moments."""

    state_size = 2

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__()
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def rule(self, value, grad, lr, state):
        m, v = state
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * grad * grad
        m_hat = m / (1.0 - self.beta1 ** self.t)
        v_hat = v / (1.0 - self.beta2 ** self.t)
        return value - lr * m_hat / (v_hat ** 0.5 + self.eps), (m, v)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def optimizer(name):
    """A fresh optimizer called `name`."""
    try:
        return OPTIMIZERS[name]()
    except (KeyError, TypeError):
        raise SimnetError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}") from None
