"""Running a scenario: train its network on its data set, apply its script at step boundaries and
check its ``[expect]`` table on the whole data set."""
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.engine import firing_order, probe
from ..core.functions import CLASSIFICATION, SimnetWarning, accuracy as accuracy_of, confusion, loss_function
from ..core.graph import Network
from ..errors import DivergenceError
from .model import Scenario

__all__ = ["CheckResult", "Evaluation", "Outcome", "Timeline", "check", "evaluate", "execute", "held_out",
           "held_out_steps"]


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
    confusion: list | None = None  # on the training data after the last step (rows = true class), classification
    test: "Evaluation | None" = None  # on the held-out set after the last step
    evaluations: list | None = None  # the held-out Evaluation of every `[record] every`-th step and of the last

    @property
    def test_loss(self):
        return None if self.test is None else self.test.loss

    @property
    def test_accuracy(self):
        return None if self.test is None else self.test.accuracy

    @property
    def passed(self):
        return all(r.ok for r in self.results)

    @property
    def steps(self):
        return self.network.step


@dataclass
class Evaluation:
    """The network after `step` on a held-out set: its loss, accuracy and confusion (None for regression)."""

    step: int
    loss: float
    accuracy: float | None
    confusion: list | None


def held_out_steps(every, steps):
    """The steps after which a run evaluates its held-out set: every `every`-th of `steps`, and the last.

    >>> held_out_steps(10, 25)
    [10, 20, 25]
    """
    return sorted({*range(every, steps + 1, every), steps})


def held_out(net, test, loss):
    """The Evaluation of `net` as it is now on the held-out (X, Y) `test`."""
    X, Y = test
    L, acc, values = evaluate(net, X, Y, loss)
    P = np.column_stack([values[n.name] for n in net.outputs])
    counts = confusion(loss, P, Y) if loss in CLASSIFICATION else None
    return Evaluation(net.step, L, acc, None if counts is None else counts.tolist())


def evaluate(net, X, Y, loss):
    """(loss, accuracy, activations) of `net` on the whole data set, without emitting or touching state."""
    # a diverging network overflows here; the caller tells that from the non-finite loss
    with np.errstate(all="ignore"):
        values = probe(net, X)
        P = np.column_stack([values[n.name] for n in net.outputs])
        L = float(loss_function(loss)(P, Y)[0])
    acc = accuracy_of(loss, P, Y) if loss in CLASSIFICATION else None
    return L, acc, values


def check(checks, net, X, Y, loss, evaluation=None, test=None):
    """CheckResults of `checks` against `net`'s current state on the data set.

    evaluation: what ``evaluate(net, X, Y, loss)`` gives, if the caller has it already;
    test: the held-out Evaluation, for test_loss_max and test_accuracy_min.
    """
    L, acc, values = evaluation or evaluate(net, X, Y, loss)
    when = "" if checks.step is None else f" after step {checks.step}"
    out = []

    def bound(key, actual, limit, holds, op, fmt):
        if limit is not None:
            ok = actual is not None and math.isfinite(actual) and holds(actual, limit)
            shown = "none" if actual is None else fmt(actual)
            out.append(CheckResult(f"{checks.where}.{key}", ok,
                                   f"{key.rsplit('_', 1)[0].replace('_', ' ')}{when} {shown} "
                                   f"{op if ok else _negate[op]} {fmt(limit)}",
                                   actual))

    def percent(x):
        return f"{x:.1%}"

    def plain(x):
        return f"{x:.4g}"

    bound("loss_max", L, checks.loss_max, lambda a, b: a <= b, "<=", plain)
    bound("loss_min", L, checks.loss_min, lambda a, b: a >= b, ">=", plain)
    bound("accuracy_min", acc, checks.accuracy_min, lambda a, b: a >= b, ">=", percent)
    bound("accuracy_max", acc, checks.accuracy_max, lambda a, b: a <= b, "<=", percent)
    if test is not None:
        bound("test_loss_max", test.loss, checks.test_loss_max, lambda a, b: a <= b, "<=", plain)
        bound("test_accuracy_min", test.accuracy, checks.test_accuracy_min, lambda a, b: a >= b, ">=", percent)
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
    """The `before_step` (and `after_last_step`) of a scenario's run: step checks first, then the script
    actions due at this step."""

    def __init__(self, scenario, X, Y, test=None, on_evaluation=None):
        self.scenario, self.X, self.Y = scenario, X, Y
        # the held-out set is looked at after every `[record] every`-th step and the last
        self.test, self.on_evaluation = test, on_evaluation
        self.evaluated_after = set() if test is None else set(held_out_steps(scenario.record.every,
                                                                              scenario.training.steps))
        self.evaluations = []
        self.actions = {}
        for action in scenario.script:
            self.actions.setdefault(action.at, []).append(action)
        self.checks = {}
        for checks in scenario.expect.at_step:
            self.checks.setdefault(checks.step, []).append(checks)
        self.results = []
        self.checked = set()  # the steps whose state has been checked: once each

    def check_state_after(self, net, step):
        if step in self.checked:
            return
        self.checked.add(step)
        test = self.evaluate_held_out(net, step)
        for checks in self.checks.get(step, ()):
            self.results += check(checks, net, self.X, self.Y, self.scenario.training.loss, test=test)

    def evaluate_held_out(self, net, step, last=False):
        """The held-out Evaluation after `step`, kept and reported if it is an evaluated step or the `last`."""
        if self.test is None or not (last or step in self.evaluated_after or self.checks.get(step)):
            return None
        if self.evaluations and self.evaluations[-1].step == step:
            return self.evaluations[-1]
        evaluation = held_out(net, self.test, self.scenario.training.loss)
        if last or step in self.evaluated_after:
            self.evaluations.append(evaluation)
            if self.on_evaluation is not None:
                self.on_evaluation(evaluation)
        return evaluation

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


def execute(scenario, *, data=None, recorder=None, progress=None, test=None, on_evaluation=None):
    """Train `scenario`'s network on its data set and check its expectations; returns an Outcome.

    `data` is (X, Y) if already built, `test` the held-out (X, Y) with it
    (without `data`, both come from the scenario); `recorder` and `progress`
    go to :meth:`Network.train`; `on_evaluation(Evaluation)` hears of each
    evaluation of the held-out set.  A run that diverges returns (with
    `.diverged`) instead of raising.
    """
    if data is None:
        parts = scenario.parts()
        data, test = parts.train, parts.test
    X, Y = data
    net = scenario.build_network()
    timeline = Timeline(scenario, X, Y, test, on_evaluation)
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
                                before_step=timeline, after_last_step=timeline, progress=progress)
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
    counts = final_test = None
    if diverged is None:
        final_test = timeline.evaluate_held_out(net, net.step, last=True)
        timeline.check_state_after(net, net.step)
        loss, accuracy, values = evaluation
        results += check(scenario.expect.final, net, X, Y, training.loss, evaluation, test=final_test)
        if training.loss in CLASSIFICATION:
            counts = confusion(training.loss, np.column_stack([values[n.name] for n in net.outputs]), Y)
    results += _ending_results(scenario, diverged, history, net.step)
    return Outcome(scenario, net, history, loss, accuracy, diverged, results, wall_time,
                   None if counts is None else counts.tolist(), final_test,
                   timeline.evaluations if test is not None else None)


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
