"""The training loop: script actions, forward sweep, loss, backward sweep, update.

The loop drives an engine and announces each step on the network's bus;
whatever records the run (a trace, a progress bar) subscribes there.
"""
import itertools
import math
import signal
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from .engine import firing_order, link_names, make_engine
from ..errors import DivergenceError, SimnetError, TopologyError, positive_int
from .functions import (CLASSIFICATION, SimnetWarning, accuracy as accuracy_of, class_targets, label_problem, loss_fit,
                        loss_function)
from .validation import matrix, validate_inputs
from .optim import optimizer as make_optimizer

__all__ = ["History", "StopTraining", "batch_indices", "train"]


@dataclass
class History:
    """What a call to `train` did: per-step loss and (classification only) accuracy."""

    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    interrupted: bool = False

    def __len__(self):
        return len(self.steps)


class StopTraining(Exception):
    """Raised by a `before_step` hook to end the run there, before that step: the run is complete.

    A run trained until its caller says so (``steps=None``) ends this way, as
    a run asked for the steps it took would have ended.
    """


def train(net, X, Y, *, steps, lr, loss="mse", optimizer="sgd", batch_size=None, recorder=None,
          engine="actor", l1=0.0, l2=0.0, before_step=None, after_last_step=None, progress=None, history=None):
    """Train `net` on X (samples, n_inputs) and Y (samples, n_outputs) for `steps` updates (None: until
    `before_step` raises StopTraining).

    With cross_entropy over K outputs, Y may instead hold one class index
    0..K-1 per sample.
    Steps continue the network's count (`net.step`).  `recorder` is subscribed to
    the network's bus for the run.  `before_step(net, step)` is called before each
    step (raising StopTraining there ends the run, complete); once all `steps`
    are done, `after_last_step(net, step)` with the step after the last, before
    the run ends: what it changes is the network the run ends with.
    `progress(step, loss)` is called after each step.  Ctrl-C stops at the next step boundary;
    NaN or inf raises DivergenceError (with `.history`) naming where it appeared.
    A loss the output neurons cannot serve is a TopologyError, one that works
    oddly a SimnetWarning, and targets the loss cannot take a SimnetError; the
    inputs and outputs cannot change during the run (TopologyError).
    `history`: a History to fill in step by step (so that `progress` can read
    the accuracy as the run goes), None for a new one.  Returns the History.
    """
    X = validate_inputs(net, X)
    Y = matrix(class_targets(loss, Y, len(net.outputs)), "Y", len(net.outputs), "outputs")
    if Y.shape[0] != X.shape[0]:
        raise SimnetError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; expected one target row per sample")
    steps = None if steps is None else positive_int(steps, "steps")
    lr = _positive_number(lr, "lr")
    l1, l2 = _non_negative(l1, "l1"), _non_negative(l2, "l2")
    loss_fn = loss_function(loss)
    _check_loss(net, loss, Y)
    opt = make_optimizer(optimizer)
    runner = make_engine(engine)
    samples = X.shape[0]
    batch_size = samples if batch_size is None else min(positive_int(batch_size, "batch_size"), samples)
    batches = batch_indices(samples, batch_size, np.random.default_rng([net.seed, net.step]))
    net.learning_rate = lr
    history = History() if history is None else history
    bus = net.bus
    if recorder is not None:
        # a recorder may listen to some kinds only (a trace without messages, say)
        bus.subscribe(recorder, kinds=getattr(recorder, "kinds", None))
    net.ends_fixed = True
    try:
        if bus:
            # a name is recorded as given; an object by its name and settings
            settings = {} if isinstance(optimizer, str) else {"optimizer_settings": opt.settings()}
            # not the steps asked for: run_end says how many it took, so that a run stopped by its
            # caller and one asked for exactly those steps record the same events
            _announce(net, lr=lr, loss=loss, optimizer=opt.name, **settings,
                      batch_size=batch_size, samples=samples, engine=runner.name, l1=l1, l2=l2)
        # overflow is how divergence starts; it is detected and reported per step instead.
        # An engine may keep its numbers to itself until someone looks at the network.
        with _stop_on_interrupt() as interrupted, np.errstate(over="ignore", invalid="ignore"), \
                runner.deferred(net):
            for _ in itertools.count() if steps is None else range(steps):
                if interrupted():
                    history.interrupted = True
                    break
                step = net.step + 1
                if before_step is not None:
                    try:
                        before_step(net, step)
                    except StopTraining:
                        break
                index = next(batches)
                L, acc = _step(net, runner, opt, loss, loss_fn, X[index], Y[index], net.learning_rate,
                               l1, l2, step, history)
                history.steps.append(step)
                history.loss.append(L)
                history.accuracy.append(acc)
                if progress is not None:
                    progress(step, L)
            else:  # all the steps asked for, neither stopped nor interrupted
                if after_last_step is not None:
                    after_last_step(net, net.step + 1)
        if bus:
            bus.emit(net.step, "end", "run_end",
                     data={"steps": net.step, "reason": "interrupted" if history.interrupted else "complete"})
    finally:
        net.ends_fixed = False
        if recorder is not None:
            bus.unsubscribe(recorder)
    return history


def _check_loss(net, loss, Y):
    """Refuse a loss the output neurons cannot serve or targets it cannot take; warn of an odd pairing."""
    error, odd = loss_fit(loss, [(n.name, n.activation) for n in net.outputs])
    if error:
        raise TopologyError(error)
    for why in odd:
        # the caller's line, so that the warning shows once per place that trains this way
        warnings.warn(why, SimnetWarning, stacklevel=4)
    problem = label_problem(loss, Y)
    if problem:
        row, column, why = problem
        raise SimnetError(f"Y row {row}{'' if column is None else f', column {column}'}: {why}")


def _step(net, runner, opt, loss_name, loss_fn, Xb, Yb, lr, l1, l2, step, history):
    bus = net.bus
    if bus:
        bus.emit(step, "step", "step_begin", data={"batch_size": Xb.shape[0], "lr": lr})
    P = runner.forward(net, Xb, step)
    L, dP = loss_fn(P, Yb)
    if l1 or l2:
        weights = runner.weights(net)
        L += l1 * np.abs(weights).sum() + 0.5 * l2 * (weights @ weights)
    L = float(L)
    acc = accuracy_of(loss_name, P, Yb) if loss_name in CLASSIFICATION else None
    if bus:
        bus.emit(step, "loss", "loss", data={"loss": L, "accuracy": acc})
    if not math.isfinite(L):
        _diverge(net, step, _first_non_finite_neuron(net) or ("the loss", "value"), history)
    runner.zero_grad(net)
    runner.backward(net, dP, step)
    finite = runner.update(net, opt, lr, l1, l2, step)
    net.step = step
    if not finite:
        _diverge(net, step, _first_non_finite_parameter(net), history)
    if bus:
        bus.emit(step, "step", "step_end", data={"loss": L, "accuracy": acc})
    return L, acc


def _diverge(net, step, where, history):
    name, quantity = where
    if net.bus:
        net.bus.emit(step, "end", "run_end", data={"steps": step - 1, "reason": "diverged", "step": step,
                                                    "where": name, "quantity": quantity})
    error = DivergenceError(step, name, quantity)
    error.history = history
    raise error


def _first_non_finite_neuron(net):
    for n in firing_order(net):
        if n.value is not None and not np.all(np.isfinite(n.value)):
            return f"neuron {n.name}", "activation"
    return None


def _first_non_finite_parameter(net):
    for c in net.connections:
        if not math.isfinite(c.weight):
            return f"connection {c.source.name} -> {c.target.name}", "weight"
    for n in net.neurons.values():
        if not math.isfinite(n.bias):
            return f"neuron {n.name}", "bias"
    return None


def _announce(net, **config):
    """Tell subscribers how the run is set up and what the network looks like before it."""
    bus = net.bus
    bus.emit(net.step, "init", "run_begin", data={"seed": net.seed, **config})
    for n in net.neurons.values():
        bus.emit(net.step, "init", "neuron_added", neuron=n.name,
                 data={"role": n.role, "activation": n.activation, "bias": n.bias})
    connections = net.connections
    if connections:
        # one batch, which a recorder takes whole, instead of an event object per connection
        # (a large network has 100,000 of them)
        sources, targets = link_names(connections)
        bus.emit_batch(net.step, "init", "connection_added", sources=sources, targets=targets,
                       data={"weight": np.array([c.weight for c in connections], dtype=float),
                             "frozen": np.array([c.frozen for c in connections], dtype=bool)})


def batch_indices(samples, batch_size, rng):
    """Endless index arrays: the full batch each time, or seeded shuffled mini-batches per epoch."""
    if batch_size >= samples:
        everything = slice(None)  # X[everything] is X itself, no copy
        while True:
            yield everything
    while True:
        order = rng.permutation(samples)
        for start in range(0, samples, batch_size):
            yield order[start:start + batch_size]


class _stop_on_interrupt:
    """Within the block, Ctrl-C sets a flag (read by calling the value) instead of raising."""

    def __enter__(self):
        self.flag = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return lambda: self.flag

    def _handle(self, signum, frame):
        if self.flag:  # a second Ctrl-C means stop now
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _positive_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value <= 0:
        raise SimnetError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value < 0:
        raise SimnetError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)
