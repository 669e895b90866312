"""Optimizers by name: each turns a parameter's value and gradient into its new value.

State (velocities, moment estimates) is kept per parameter object, so
neurons and connections can come and go between steps.  The arithmetic works
the same on one float or on a numpy array of them.
"""

from .errors import SimnetError


class SGD:
    def __init__(self):
        self.t = 0

    def next_step(self):
        self.t += 1

    def update(self, param, value, grad, lr):
        return value - lr * grad


class Momentum(SGD):
    """Heavy-ball momentum: v = μ v + g, w = w - lr v."""

    def __init__(self, mu=0.9):
        super().__init__()
        self.mu, self.velocity = mu, {}

    def update(self, param, value, grad, lr):
        v = self.mu * self.velocity.get(param, 0.0) + grad
        self.velocity[param] = v
        return value - lr * v


class Adam(SGD):
    """Adam (Kingma & Ba) with bias-corrected first and second moments."""

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__()
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.moments = {}

    def update(self, param, value, grad, lr):
        m, v = self.moments.get(param, (0.0, 0.0))
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * grad * grad
        self.moments[param] = (m, v)
        m_hat = m / (1.0 - self.beta1 ** self.t)
        v_hat = v / (1.0 - self.beta2 ** self.t)
        return value - lr * m_hat / (v_hat ** 0.5 + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def optimizer(name):
    """A fresh optimizer called `name`."""
    try:
        return OPTIMIZERS[name]()
    except (KeyError, TypeError):
        raise SimnetError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}") from None
