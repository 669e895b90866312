"""A live session: a scenario's network training in a background thread, steered by hand between steps.

Training is one call of :meth:`Network.train`, recorded into a trace like any
run; its ``before_step`` hook is where the session waits while paused and
where a person's actions take effect.  Each action is checked and applied as
the same ``[[script]]`` entry would be (:func:`simnet.scenario.loader.script_action`,
:meth:`Timeline.apply`), numbered after the scenario's own entries, so that
:meth:`PlaySession.scenario_text` (the scenario, its ``steps`` set to where the
session stands and every action as a ``[[script]]`` entry at the step it took
effect) run with ``simnet run`` repeats the session event for event: the
session's run is asked for no number of steps and ends where the person stops
it, complete, as the saved file's run of exactly those steps ends.
"""
import math
import re
import threading
import tomllib
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from ..core.trainer import StopTraining
from ..errors import ScenarioError, SimnetError
from ..files import written_whole
from ..runner import check_run_directory, prepare, recorder_for
from ..scenario.loader import loads, script_action
from ..scenario.overrides import toml_value
from ..scenario.running import Timeline
from .runs import finite_or_none

__all__ = ["PUBLISH_EVERY", "PlaySession", "SessionClosed", "network_dict"]

PUBLISH_EVERY = 0.05  # seconds between network snapshots for the page while training runs


class SessionClosed(SimnetError):
    """The session has ended (stopped, or its network diverged): it takes no more steps or actions."""


class PlaySession:
    """A scenario's network training live, in steps and pauses asked for by :meth:`run` and :meth:`pause`.

    scenario: a path or a Scenario; directory: where the trace goes (default
    ``output/<name>-play``).  The session starts paused before step 1.

    >>> import tempfile
    >>> session = PlaySession("scenarios/xor.toml", tempfile.mkdtemp())
    >>> session.run(5, wait=True)["step"]
    5
    >>> session.act({"action": "set_learning_rate", "value": 0.05})["label"]
    'lr = 0.05'
    >>> session.run(1, wait=True)["step"]
    6
    >>> "at = 6" in session.scenario_text()
    True
    >>> session.close()
    """

    def __init__(self, scenario, directory=None, *, engine=None):
        self.scenario = prepare(scenario, engine=engine, gifs=False)
        parts = self.scenario.parts()
        self.data = parts.train
        self.directory = Path(directory) if directory is not None else Path("output") / f"{self.scenario.name}-play"
        check_run_directory(self.directory)
        self.actions = []  # (Action, the entry as given) of each action taken, in order
        self.history = []  # (step, loss, accuracy) of each step trained
        self._lock = threading.Condition()
        self._budget = 0  # steps still to train before pausing (math.inf: until paused)
        self._speed = None  # steps per second at most, or None: as fast as it goes
        self._pending = deque()  # (entry, Future) of actions waiting for the next step boundary
        self._closing = False
        self._waiting = False  # the training thread is at a step boundary, paused
        self._scripted = 0  # the last step whose boundary has had the scenario's own script entries applied
        self._ended = None  # why the session ended, once it has
        self._network = None  # the latest published network, as network_dict gives it
        self._published = 0.0
        self._recorder = recorder_for(self.scenario, self.directory, parts, session="play")
        self._thread = threading.Thread(target=self._train, name="simnet-play", daemon=True)
        self._thread.start()
        self._wait_for(lambda: self._waiting or self._ended is not None)

    # ---- asked for by the page ---------------------------------------------

    def run(self, steps=None, *, speed=None, wait=False):
        """Train `steps` more steps (None: until paused) at up to `speed` steps per second; returns the state.

        With `wait`, returns once they are done (or the session ended).
        """
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise SimnetError(f"steps must be a positive whole number, got {steps!r}")
        if speed is not None and (isinstance(speed, bool) or not isinstance(speed, (int, float))
                                  or not math.isfinite(speed) or speed <= 0):
            raise SimnetError(f"speed must be a positive number of steps per second, got {speed!r}")
        with self._lock:
            self._check_open()
            self._budget = math.inf if steps is None else steps
            self._speed = speed
            self._waiting = False  # running from now on, as the state says, until these steps are done
            target = self._step + self._budget
            self._lock.notify_all()
        if wait:
            self._wait_for(lambda: self._ended is not None or (self._waiting and self._step >= target))
        return self.state()

    def pause(self):
        """Stop at the next step boundary; returns the state once stopped there."""
        with self._lock:
            self._budget = 0
            self._lock.notify_all()
        self._wait_for(lambda: self._waiting or self._ended is not None)
        return self.state()

    def act(self, entry):
        """Apply `entry` (a ``[[script]]`` entry without ``at``, as a dict) at the next step boundary.

        Waits for that boundary; returns {"step", "action", "label"}.  A bad
        entry raises ScenarioError and leaves the network as it was.
        """
        with self._lock:
            self._check_open()
            index = len(self.scenario.script) + len(self.actions) + len(self._pending)
        script_action(entry, index, self._step + 1, self.scenario.path)  # its keys and values, before waiting
        done = Future()
        with self._lock:
            self._check_open()
            self._pending.append((entry, done))
            self._lock.notify_all()
        return done.result()

    def state(self):
        """{"step", "loss", "accuracy", "running", "ended"} as of the last step trained."""
        with self._lock:
            step, loss, accuracy = self.history[-1] if self.history else (0, None, None)
            return {"step": step, "loss": finite_or_none(loss), "accuracy": finite_or_none(accuracy),
                    "running": not self._waiting and self._ended is None, "ended": self._ended,
                    "actions": len(self.actions)}

    def network(self):
        """The network as of the latest snapshot (every step boundary where it paused, and a few a second)."""
        with self._lock:
            return self._network

    def scenario_text(self):
        """The scenario as TOML: the file's text with ``steps`` set to the steps trained, its expectations
        left out (a session steered by hand is its own record), so are its own script entries it has not
        come to, and each action taken as a ``[[script]]`` entry at the step it took effect (one taken after
        the last step at ``steps + 1``, acting on the network the run ends with).  ScenarioError if that
        text would not load as this session."""
        with self._lock:
            steps = self._step
            reached = self._scripted  # steps + 1 once the person has acted after the last step
            actions = list(self.actions)
        if steps < 1:
            raise ScenarioError(self.scenario.path, "training.steps", "no step trained yet; run the session first")
        text = _kept_tables(self.scenario.text, reached)
        text = _set_in_training(text, "steps", str(steps), self.scenario.path)
        text = _set_in_training(text, "engine", toml_value(self.scenario.training.engine), self.scenario.path)
        text = text.rstrip("\n") + "\n"
        for action, entry in actions:
            text += f"\n[[script]]\nat = {action.at}\n" + "".join(
                f"{key} = {toml_value(value)}\n" for key, value in entry.items())
        saved = loads(text, self.scenario.path)
        dropped = [a for a in self.scenario.script if a.at > reached]
        if dropped and any(a.action == "perturb" for a, _ in actions):
            # an action's noise is drawn from its position in the file: the positions would shift
            raise ScenarioError(self.scenario.path, dropped[0].where, "falls after the session's last step, and "
                                "leaving it out would change the noise of the session's perturb actions")
        if [(a.at, a.action, a.params) for a in saved.script[len(saved.script) - len(actions):]] != \
                [(a.at, a.action, a.params) for a, _ in actions]:
            raise ScenarioError(self.scenario.path, "script", "the saved script would not repeat the session")
        return text

    def save(self, path=None):
        """Write :meth:`scenario_text` to `path` (default: session.toml in the session's directory); the path."""
        path = Path(path) if path is not None else self.directory / "session.toml"
        text = self.scenario_text()
        with written_whole(path) as temp:
            temp.write_text(text, encoding="utf-8")
        return path

    def close(self):
        """End the session at the next step boundary; its run ends there, complete (as the saved scenario's)."""
        with self._lock:
            self._closing = True
            self._budget = 0
            self._lock.notify_all()
        self._thread.join()

    # ---- the training thread -------------------------------------------------

    @property
    def _step(self):
        return self.history[-1][0] if self.history else 0

    def _check_open(self):
        if self._ended is not None or self._closing:
            raise SessionClosed(f"the session has ended ({self._ended or 'closing'}); start another")

    def _wait_for(self, condition):
        with self._lock:
            while not condition():
                self._lock.wait()

    def _train(self):
        sc, (X, Y) = self.scenario, self.data
        net = sc.build_network()
        self._timeline = Timeline(sc, X, Y)
        training = sc.training
        net.bus.subscribe(self._on_step_end, kinds=["step_end"])
        reason = "interrupted"
        try:
            net.train(X, Y, steps=None, lr=training.learning_rate, loss=training.loss,
                      optimizer=training.optimizer, batch_size=training.batch_size, recorder=self._recorder,
                      engine=training.engine, l1=training.l1, l2=training.l2, before_step=self._before_step,
                      progress=lambda step, loss: self._publish(net))
            reason = "complete"
        except SimnetError as error:  # a divergence (its trace ends itself) or a script action of the file
            reason = " ".join(str(error).split())
            self._recorder.close("failed")
        except BaseException:
            self._recorder.close("failed")
            reason = "failed"
            raise
        finally:
            with self._lock:
                self._ended = reason
                for _, done in self._pending:
                    done.set_exception(SessionClosed(f"the session has ended ({reason})"))
                self._pending.clear()
                self._lock.notify_all()

    def _on_step_end(self, event):
        with self._lock:
            self.history.append((event.step, event.data.get("loss"), event.data.get("accuracy")))

    def _before_step(self, net, step):
        if self._speed is not None:
            time.sleep(1.0 / self._speed)
        with self._lock:
            while True:
                if self._pending:
                    self._script(net, step)
                while self._pending:
                    entry, done = self._pending.popleft()
                    try:
                        done.set_result(self._apply(net, step, entry))
                    except SimnetError as error:
                        done.set_exception(error)
                if self._closing:
                    raise StopTraining
                if self._budget > 0:
                    self._script(net, step)
                    self._budget -= 1
                    self._waiting = False
                    return
                if not self._waiting:
                    self._waiting = True
                    self._recorder.flush()
                    self._publish(net, now=True)
                    self._lock.notify_all()
                self._lock.wait()

    def _script(self, net, step):
        """The scenario's own checks and actions at `step`, once: they come before the person's, as in the
        saved file, and only if the session goes on to that step or acts at it, as the saved file would."""
        if self._scripted < step:
            self._scripted = step
            self._timeline(net, step)

    def _apply(self, net, step, entry):
        """Check `entry` on a copy of `net`, then apply it to `net` before `step` as a script entry."""
        action = script_action(entry, len(self.scenario.script) + len(self.actions), step, self.scenario.path)
        trial = net.copy()
        trial.ends_fixed = net.ends_fixed
        action.perform(trial, self.scenario.seed, self.scenario.path)
        self._timeline.apply(net, step, action)
        self.actions.append((action, dict(entry)))
        self._publish(net, now=True)
        return {"step": step, "action": action.action, "label": action.label}

    def _publish(self, net, now=False):
        moment = time.monotonic()
        if now or moment - self._published >= PUBLISH_EVERY:
            self._published = moment
            network = network_dict(net)
            with self._lock:
                self._network = network


def network_dict(net):
    """`net` as JSON-ready lists: neurons (name, role, activation, bias), connections (source, target,
    weight, frozen), with exact floats (None where not finite), and its step and learning rate."""
    return {"step": net.step, "learning_rate": finite_or_none(net.learning_rate),
            "neurons": [{"name": n.name, "role": n.role, "activation": n.activation, "bias": finite_or_none(n.bias)}
                        for n in net.neurons.values()],
            "connections": [{"source": c.source.name, "target": c.target.name, "weight": finite_or_none(c.weight),
                             "frozen": bool(c.frozen)} for c in net.connections]}


# the [training] table: its header and its lines up to the next header
_TRAINING = re.compile(r"^\[training\][ \t]*(?:#[^\n]*)?\n(?:(?!\[)[^\n]*(?:\n|$))*", re.MULTILINE)


def _set_in_training(text, key, value, file):
    """`text` with ``key = value`` in its [training] table, replacing a plain line of that key or added."""
    table = _TRAINING.search(text)
    if table is None:
        raise ScenarioError(file, "training", "not written as a [training] table; the session cannot be saved "
                            "as this file")
    line = re.compile(rf"^([ \t]*{key}[ \t]*=[ \t]*)[^#\n]*?([ \t]*(?:#[^\n]*)?)$", re.MULTILINE)
    body, found = line.subn(lambda m: f"{m.group(1)}{value}{m.group(2)}", table.group(0), count=1)
    if not found:
        header, _, rest = table.group(0).partition("\n")
        body = f"{header}\n{key} = {value}\n{rest}"
    return text[:table.start()] + body + text[table.end():]


# a table: its header line and the lines up to the next header
_TABLE = re.compile(r"^[ \t]*\[\[?[ \t]*[A-Za-z0-9_.\"' -]+\]\]?[ \t]*(?:#[^\n]*)?(?:\n|$)"
                    r"(?:(?![ \t]*\[\[?[ \t]*[A-Za-z0-9_.\"' -]+\]\]?[ \t]*(?:#[^\n]*)?(?:\n|$))[^\n]*(?:\n|$))*",
                    re.MULTILINE)


def _kept_tables(text, steps):
    """`text` without its expectations and without the script entries after step `steps`."""
    def kept(table):
        header = table.group(0).split("\n", 1)[0].split("#", 1)[0].strip(" \t[]").replace(" ", "")
        if header == "expect" or header.startswith("expect."):
            return ""
        if header == "script" and tomllib.loads(table.group(0))["script"][0].get("at", 0) > steps:
            return ""
        return table.group(0)
    return _TABLE.sub(kept, text if text.endswith("\n") else text + "\n")
