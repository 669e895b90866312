"""Running a scenario: train its network on its data set, apply its script at step boundaries and
check its ``[expect]`` table on the whole data set."""
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.engine import firing_order, probe
from ..core.functions import CLASSIFICATION, SimnetWarning, accuracy as accuracy_of, loss_function
from ..core.graph import Network
from ..errors import DivergenceError
from .model import Scenario

__all__ = ["CheckResult", "Outcome", "Timeline", "check", "evaluate", "execute"]


@dataclass
class CheckResult:
    where: str  # key path of the expectation
    ok: bool
    message: str
    actual: object = None  # the value checked (a loss, an accuracy, a neuron's dead flag...)


@dataclass
class Outcome:
    """What running a scenario did: the trained network, its history, the final evaluation, the checks."""

    scenario: Scenario
    network: Network
    history: object
    loss: float | None  # on the whole data set, after the last step (None if the run diverged)
    accuracy: float | None
    diverged: DivergenceError | None
    results: list
    wall_time: float

    @property
    def passed(self):
        return all(r.ok for r in self.results)

    @property
    def steps(self):
        return self.network.step


def evaluate(net, X, Y, loss):
    """(loss, accuracy, activations) of `net` on the whole data set, without emitting or touching state."""
    # a diverging network overflows here; the caller tells that from the non-finite loss
    with np.errstate(all="ignore"):
        values = probe(net, X)
        P = np.column_stack([values[n.name] for n in net.outputs])
        L = float(loss_function(loss)(P, Y)[0])
    acc = accuracy_of(loss, P, Y) if loss in CLASSIFICATION else None
    return L, acc, values


def check(checks, net, X, Y, loss, evaluation=None):
    """CheckResults of `checks` against `net`'s current state on the data set.

    evaluation: what ``evaluate(net, X, Y, loss)`` gives, if the caller has it already.
    """
    L, acc, values = evaluation or evaluate(net, X, Y, loss)
    when = "" if checks.step is None else f" after step {checks.step}"
    out = []

    def bound(key, actual, limit, holds, op, fmt):
        if limit is not None:
            ok = actual is not None and math.isfinite(actual) and holds(actual, limit)
            shown = "none" if actual is None else fmt(actual)
            out.append(CheckResult(f"{checks.where}.{key}", ok,
                                   f"{key.split('_')[0]}{when} {shown} {op if ok else _negate[op]} {fmt(limit)}",
                                   actual))

    def percent(x):
        return f"{x:.1%}"

    def plain(x):
        return f"{x:.4g}"

    bound("loss_max", L, checks.loss_max, lambda a, b: a <= b, "<=", plain)
    bound("loss_min", L, checks.loss_min, lambda a, b: a >= b, ">=", plain)
    bound("accuracy_min", acc, checks.accuracy_min, lambda a, b: a >= b, ">=", percent)
    bound("accuracy_max", acc, checks.accuracy_max, lambda a, b: a <= b, "<=", percent)
    for key, want_dead in (("dead", True), ("alive", False)):
        for i, name in enumerate(getattr(checks, key)):
            dead = not np.any(values[name] > 0)
            ok = dead == want_dead
            state = "dead (never active on the data set)" if dead else (
                f"active on {np.count_nonzero(values[name] > 0)} of {len(X)} samples")
            out.append(CheckResult(f"{checks.where}.{key}[{i}]", ok, f"{name}{when} is {state}", dead))
    for g, group in enumerate(checks.symmetric):
        difference = _asymmetry(net, group)
        out.append(CheckResult(f"{checks.where}.symmetric[{g}]", difference <= 1e-9,
                               f"{', '.join(group)}{when} " + ("interchangeable" if difference <= 1e-9 else
                                                               f"differ by up to {difference:.3g}"),
                               difference))
    return out


_negate = {"<=": ">", ">=": "<"}


def _asymmetry(net, group):
    """Largest difference between the first neuron of `group` and each other: bias, weights in and out.

    Infinite when they are not even wired alike (different sources or targets).
    """
    def signature(name):
        n = net.neurons[name]
        return n.bias, {c.source.name: c.weight for c in n.incoming}, {c.target.name: c.weight for c in n.outgoing}

    bias, incoming, outgoing = signature(group[0])
    worst = 0.0
    for name in group[1:]:
        other_bias, other_in, other_out = signature(name)
        if other_in.keys() != incoming.keys() or other_out.keys() != outgoing.keys():
            return math.inf
        worst = max(worst, abs(bias - other_bias), *(abs(w - other_in[k]) for k, w in incoming.items()),
                    *(abs(w - other_out[k]) for k, w in outgoing.items()))
    return worst


class Timeline:
    """The `before_step` of a scenario's run: step checks first, then the script actions due at this step."""

    def __init__(self, scenario, X, Y):
        self.scenario, self.X, self.Y = scenario, X, Y
        self.actions = {}
        for action in scenario.script:
            self.actions.setdefault(action.at, []).append(action)
        self.checks = {}
        for checks in scenario.expect.at_step:
            self.checks.setdefault(checks.step, []).append(checks)
        self.results = []

    def check_state_after(self, net, step):
        for checks in self.checks.get(step, ()):
            self.results += check(checks, net, self.X, self.Y, self.scenario.training.loss)

    def __call__(self, net, step):
        self.check_state_after(net, step - 1)
        for action in self.actions.get(step, ()):
            self.apply(net, step, action)

    def apply(self, net, step, action):
        """Announce `action` on the network's bus and perform it before `step`, as the script does."""
        if net.bus:
            net.bus.emit(step, "script", "action",
                         data={"action": action.action, "label": action.label, "params": dict(action.params)})
        action.perform(net, self.scenario.seed, self.scenario.path)


def execute(scenario, *, data=None, recorder=None, progress=None):
    """Train `scenario`'s network on its data set and check its expectations; returns an Outcome.

    `data` is (X, Y) if already built; `recorder` and `progress` go to
    :meth:`Network.train`.  A run that diverges returns (with `.diverged`)
    instead of raising.
    """
    X, Y = data if data is not None else scenario.dataset()
    net = scenario.build_network()
    timeline = Timeline(scenario, X, Y)
    training = scenario.training
    start = time.perf_counter()
    diverged = None
    try:
        with warnings.catch_warnings():
            # the pairing of loss and outputs was warned about when the scenario was loaded
            warnings.simplefilter("ignore", SimnetWarning)
            history = net.train(X, Y, steps=training.steps, lr=training.learning_rate, loss=training.loss,
                                optimizer=training.optimizer, batch_size=training.batch_size, recorder=recorder,
                                engine=training.engine, l1=training.l1, l2=training.l2,
                                before_step=timeline, progress=progress)
    except DivergenceError as e:
        diverged, history = e, e.history
    wall_time = time.perf_counter() - start
    results = timeline.results
    loss = accuracy = None
    if diverged is None:
        evaluation = evaluate(net, X, Y, training.loss)
        if not math.isfinite(evaluation[0]):
            # the last update left weights that overflow on the data set: the run diverged at its end
            diverged = _diverged_at_the_end(net, evaluation)
            diverged.history = history
    if diverged is None:
        timeline.check_state_after(net, net.step)
        loss, accuracy, _ = evaluation
        results += check(scenario.expect.final, net, X, Y, training.loss, evaluation)
    results += _ending_results(scenario, diverged, history, net.step)
    return Outcome(scenario, net, history, loss, accuracy, diverged, results, wall_time)


def _diverged_at_the_end(net, evaluation):
    """The DivergenceError of a network whose state after its last step gives a non-finite loss on the data set."""
    _, _, values = evaluation
    where = next((f"neuron {n.name}" for n in firing_order(net) if not np.all(np.isfinite(values[n.name]))),
                 "the loss on the whole data set")
    return DivergenceError(net.step, where, "activation" if where.startswith("neuron") else "value")


def _ending_results(scenario, diverged, history, last_step):
    """Results about how the run ended: divergence (expected or not), interruption, checks never reached."""
    out = []
    if diverged is not None:
        stop, reason = diverged.step, f"the run diverged at step {diverged.step}"
    elif history.interrupted:
        stop, reason = last_step + 1, f"the run was interrupted after step {last_step}"
        out.append(CheckResult("expect", False, f"not checked: {reason}"))
    else:
        stop = None
    if stop is not None:
        out += [CheckResult(c.where, False, f"not checked: {reason}, before the state after step {c.step}")
                for c in scenario.expect.at_step if c.step >= stop]
    if diverged is not None:
        out.append(CheckResult("expect.diverges", bool(scenario.expect.diverges),
                               f"{reason}: {diverged.quantity} of {diverged.where} is not finite"))
    elif scenario.expect.diverges:
        out.append(CheckResult("expect.diverges", False, f"the run did not diverge in {len(history)} steps"))
    return out
