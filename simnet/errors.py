"""The errors simnet raises on purpose.

Every one derives from :class:`SimnetError`, so callers can catch them all
in one place, and the command line turns them into a one-line message with
exit code 2.
"""
import numbers

__all__ = ["DivergenceError", "InputError", "ScenarioError", "SimnetError", "TopologyError", "TraceError", "excerpt",
           "positive_int"]


class SimnetError(Exception):
    """Base of every error simnet raises on purpose."""


class TopologyError(SimnetError):
    """The network's graph would become invalid (cycle, duplicate, unknown name...)."""


class InputError(SimnetError):
    """Bad input: names the file (or command-line value), the key or option, and what was wrong."""

    def __init__(self, file, where, why):
        self.file, self.where, self.why = str(file), where, why
        super().__init__(f"{self.file}: {where}: {why}" if where else f"{self.file}: {why}")


class ScenarioError(InputError):
    """A scenario file is malformed: names the file, the key path and what was wrong."""


class TraceError(SimnetError):
    """A trace cannot be read, or a query asks for something it does not hold."""


def excerpt(value, limit=40):
    """repr(value), cut to about `limit` characters: safe to echo back whatever a file or a caller gave."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


def positive_int(value, name, error=SimnetError):
    """int(value) if it is a positive integer (a bool is not one); otherwise `error` saying so of `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class DivergenceError(SimnetError):
    """Training produced NaN or inf; names the step and the neuron where it appeared first."""

    def __init__(self, step, where, quantity):
        self.step, self.where, self.quantity = step, where, quantity
        super().__init__(f"diverged at step {step}: {quantity} of {where} is not finite")
