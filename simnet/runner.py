"""One place runs a run: load, record, train, check, draw and summarise a scenario into its directory.

The command line, sweeps and the live server all call :func:`run`; what
they print or show is theirs.  A run lives at the directory it was given
from its first step: the trace and ``summary.json`` are there at once, the
pictures appear whole at the end, and whatever stops the run (an interrupt,
a failure while training or drawing, a full disk) leaves the trace and a
summary saying how it ended.
"""
import json
import math
import os
import re
import signal
import stat
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, ScenarioError, SimnetError, TraceError
from .files import directory_locked, json_text, remove_regular, write_json
from .progress import bar, frame_progress, step_progress
from .scenario import Outcome, Scenario, execute, load, loads
from .scenario.runinfo import data_record, standardization_record
from .trace import Recorder, open_trace
from .trace.schema import APPLICATION_ID
from .version import __version__
from .viz.layout import geometry
from .viz.render import plot_confusion, render_run

__all__ = ["RUN_FILES", "RunResult", "check", "check_drawable", "check_run_directory", "prepare", "read_summary",
           "recorder_for", "run", "signals_held"]

# what simnet writes in a run directory: all a later run there replaces, and nothing else
RUN_FILES = ("trace.sqlite", "trace.sqlite-wal", "trace.sqlite-shm", "trace.sqlite-journal", "summary.json",
             "loss.png", "activations.gif", "weights.gif", "sweep.gif", "replay.html", "confusion.png")
TRACE_FILES = RUN_FILES[:4]  # the Recorder replaces these itself, once it holds the directory
# the temporary names those files are written under: NAME.part (written_whole), .STEM.partial-XXXXXXXX.SUFFIX
# (partial_name)
_TEMPORARY = re.compile("|".join(rf"{re.escape(name)}\.part|\.{re.escape(Path(name).stem)}\.partial-[0-9a-f]{{8}}"
                                 rf"{re.escape(Path(name).suffix)}" for name in RUN_FILES))


@dataclass
class RunResult:
    """What became of a run."""

    scenario: Scenario          # the scenario as run, overrides applied
    directory: Path             # where the run is
    outcome: Outcome | None  # training's outcome; None when the run stopped before training ended
    checked: bool               # whether the scenario's expectations were checked (no --steps or --seed)
    status: str                 # as in summary.json: complete, diverged, interrupted or failed
    end_reason: str             # as in summary.json: how the run ended, in words
    error: str | None        # why it failed, in one line, or None
    stopped: bool               # stopped by an interrupt or a failure rather than ending on its own

    def trace_state(self) -> str:
        """The status of the run's trace, in a few words."""
        try:
            with open_trace(self.directory) as trace:
                return f"complete, {trace.last_step} steps" if trace.end_reason == "complete" else trace.status
        except (SimnetError, OSError) as e:
            return f"unreadable: {' '.join(str(e).split())}"


def prepare(scenario: str | os.PathLike | Scenario, *, steps: int | None = None, seed: int | None = None,
            engine: str | None = None, gifs: bool = True, overrides=()) -> Scenario:
    """The Scenario to run: `scenario` (a path or a Scenario) with the overrides applied, its GIFs checked.

    overrides: (dotted key path, value) pairs set in the scenario's TOML
    (``--set``), checked like the file; its text becomes the effective one.
    Raises ScenarioError for a scenario that cannot be run as asked.

    >>> prepare("scenarios/xor.toml", steps=5).training.steps
    5
    >>> prepare("scenarios/xor.toml", overrides=[("training.learning_rate", 0.1)]).training.learning_rate
    0.1
    """
    overrides = tuple(overrides)
    if not isinstance(scenario, Scenario):
        scenario = load(scenario, overrides)
    elif overrides:
        scenario = loads(scenario.text, scenario.path, overrides)
    scenario = scenario.with_overrides(steps=steps, seed=seed, engine=engine)
    if gifs:
        check_drawable(scenario)
    return scenario


def check_drawable(scenario: Scenario) -> None:
    """ScenarioError naming network.layers if a layered network's GIFs cannot fit in a picture.

    Networks of explicit neurons are checked when drawn.
    """
    layers = scenario.network.layers
    if layers and scenario.record.gifs:
        try:
            geometry(list(layers), surface=layers[0] == 2)
        except SimnetError as e:
            raise ScenarioError(scenario.path, "network.layers", f"{e}; set [record] gifs = [] to run "
                                "without GIFs") from None


def run(scenario: str | os.PathLike | Scenario, directory: str | os.PathLike | None = None, *,
        steps: int | None = None, seed: int | None = None, engine: str | None = None, gifs: bool = True,
        show_progress: bool = False, overrides=()) -> RunResult:
    """Run `scenario` into `directory` (default: output/<name>) and return a :class:`RunResult`.

    scenario: a path to a TOML file or a Scenario; steps, seed, engine:
    overrides (expectations are checked only without steps and seed); gifs:
    False draws only loss.png (True: also the scenario's GIFs and, for
    classification, confusion.png); show_progress: progress bars on stderr;
    overrides: (dotted key path, value) pairs set in the scenario
    (``--set``), recorded with the effective scenario text in summary.json
    and the trace's metadata.

    Bad input raises InputError or ScenarioError before anything is
    written.  From the recorder's first write on, the run stays in
    `directory`: an interrupt or a failure writes the summary and returns a
    result with ``stopped`` set; a failure that is nobody's input (a bug)
    is raised after the summary says the run failed.

    >>> import tempfile
    >>> result = run("scenarios/xor.toml", tempfile.mkdtemp(), steps=20, gifs=False)
    >>> result.status, result.outcome.steps
    ('complete', 20)
    """
    started = time.perf_counter()
    overrides = tuple(overrides)
    scenario = prepare(scenario, steps=steps, seed=seed, engine=engine, gifs=gifs, overrides=overrides)
    settings = {key: value for key, value in overrides}
    parts = scenario.parts()
    data = parts.train
    target = Path(directory) if directory is not None else Path("output") / scenario.name
    check_run_directory(target)
    checked = steps is None and seed is None

    def elapsed():
        return time.perf_counter() - started

    # from here on the run is at `target`: whatever happens, its trace and summary stay there
    recorder = recorder_for(scenario, target, parts,
                            overrides={"steps": steps, "seed": seed, "engine": engine,
                                       **({"set": settings} if settings else {})})
    outcome, phase = None, "starting"
    try:
        try:
            for name in os.listdir(target):
                if _ours(name) and name not in TRACE_FILES:
                    remove_regular(target / name)  # the previous run's: the new one never mixes with it
            write_json(target / "summary.json", _summary(scenario, None, checked, elapsed(), settings=settings))
            phase = "training"
            with bar(show_progress, scenario.training.steps, scenario.name, "step") as training_bar:
                outcome = execute(scenario, data=data, recorder=recorder, progress=step_progress(training_bar),
                                  test=parts.test, on_evaluation=recorder.held_out)
        except BaseException as error:
            with signals_held(), suppress(SimnetError):
                recorder.close("interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
            raise
        recorder.close()
        phase = "drawing"
        with open_trace(target) as trace, bar(show_progress, None, "drawing", "frame") as drawing_bar:
            render_run(trace, target, gifs=scenario.record.gifs if gifs else (), data=data,
                       progress=frame_progress(drawing_bar))
        if gifs:  # without GIFs a run draws only loss.png
            _draw_confusion(outcome, target)
        phase = "finishing"
        final = _summary(scenario, outcome, checked, elapsed(), settings=settings)
        with signals_held():
            write_json(target / "summary.json", final)
    except BaseException as error:
        return _stopped(error, phase, scenario, outcome, target, checked, elapsed(), settings)
    return RunResult(scenario, target, outcome, checked, final["status"], final["end_reason"], None, False)


def _draw_confusion(outcome, target):
    """confusion.png of a classification run: on the held-out set if it has one, else on the training data."""
    if outcome.test is not None and outcome.test.confusion is not None:
        plot_confusion(outcome.test.confusion, target / "confusion.png", f"held-out set after step {outcome.steps}")
    elif outcome.confusion is not None:
        plot_confusion(outcome.confusion, target / "confusion.png", f"training data after step {outcome.steps}")


def check(scenario: str | os.PathLike | Scenario, *, engine: str | None = None) -> Outcome:
    """Train `scenario` (a path or a Scenario) without recording and check its expectations; an Outcome.

    >>> [r.ok for r in check("scenarios/xor.toml").results][:1]
    [True]
    """
    return execute(prepare(scenario, engine=engine, gifs=False))


def _stopped(error, phase, scenario, outcome, target, checked, wall_time, settings):
    """Mark the run in `target` stopped by `error` while `phase`; returns its RunResult.

    Its trace and finished pictures stay.  Bad input found on the way and
    errors that are nobody's input (a bug) are raised once the summary says
    the run failed.
    """
    interrupted = isinstance(error, KeyboardInterrupt)
    status = "interrupted" if interrupted else "failed"
    if interrupted:
        why = None
    elif isinstance(error, MemoryError):
        why = "out of memory"
    elif isinstance(error, OSError) and error.filename and error.strerror:
        why = f"{error.filename}: {error.strerror}"
    else:
        why = " ".join(str(error).split())
    end_reason = f"{status} while {phase}"
    final = _summary(scenario, outcome, checked, wall_time, status=status, end_reason=end_reason, error=why,
                     settings=settings)
    with signals_held():
        try:
            write_json(target / "summary.json", final)
        except OSError:
            # a full disk has no room for a new file, but the running summary's blocks have room for this one
            with suppress(OSError), open(target / "summary.json", "r+") as f:
                f.write(json_text(final))
                f.truncate()
    if not interrupted and not isinstance(error, (SimnetError, OSError, MemoryError)):
        raise error
    if isinstance(error, SimnetError) and not isinstance(error, TraceError):
        raise error
    return RunResult(scenario, target, outcome, checked, status, end_reason, why, True)


def _summary(scenario, outcome, checked, wall_time, status=None, end_reason=None, error=None, settings=None):
    """summary.json: `status` running while `outcome` is None unless given, then what the outcome says.

    `settings` (the --set overrides, key path -> value) and the effective scenario text are recorded.
    """
    sc = scenario if outcome is None else outcome.scenario
    diverged = None if outcome is None else outcome.diverged
    if status is None and outcome is not None:
        status = "diverged" if diverged is not None else "interrupted" if outcome.history.interrupted else "complete"
        end_reason = f"diverged at step {diverged.step}" if diverged is not None else \
            f"interrupted while training after step {outcome.steps}" if status == "interrupted" else "complete"
    summary = {
        "scenario": sc.name,
        "description": sc.description,
        "status": status or "running",
        "end_reason": end_reason,
        "error": error,
        "steps": None if outcome is None else outcome.steps,
        "seed": sc.seed,
        "engine": sc.training.engine,
        "loss": None if outcome is None else _finite_or_none(outcome.loss),
        "accuracy": None if outcome is None else outcome.accuracy,
        "test_loss": None if outcome is None else _finite_or_none(outcome.test_loss),
        "test_accuracy": None if outcome is None else outcome.test_accuracy,
        "confusion": None if outcome is None else outcome.confusion,
        "test_confusion": None if outcome is None or outcome.test is None else outcome.test.confusion,
        "wall_time": round(wall_time, 3),
        "train_time": None if outcome is None else round(outcome.wall_time, 3),
        "interrupted": status == "interrupted",
        "diverged": None if diverged is None else {"step": diverged.step, "where": diverged.where,
                                                   "quantity": diverged.quantity},
        "expectations": {"checked": False, "reason": "--steps or --seed changes the scenario"},
        "simnet": __version__,
        "overrides": settings or {},
        "scenario_text": scenario.text,
    }
    if checked:
        summary["expectations"] = {
            "checked": True,
            "passed": None if outcome is None else outcome.passed,
            "results": [] if outcome is None else
            [{"where": r.where, "ok": r.ok, "message": r.message} for r in outcome.results],
        }
    return summary


def _finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None


def recorder_for(scenario: Scenario, directory: str | os.PathLike, parts, **metadata) -> Recorder:
    """The Recorder of a run of `scenario` on its data `parts` (:meth:`Scenario.parts`) into `directory`:
    its trace keeps the scenario, its data and its standardisation, and `metadata`."""
    return Recorder(directory, every=scenario.record.every, detail=scenario.record.detail,
                    scenario_text=scenario.text,
                    # the file's name only: the same run makes the same trace wherever the file lives
                    metadata={"scenario": scenario.name, "description": scenario.description,
                              "scenario_path": Path(scenario.path).name, **data_record(scenario, parts.train),
                              **standardization_record(parts), **metadata})


def read_summary(run_dir: str | os.PathLike) -> dict:
    """The summary.json of the run in `run_dir` as a dict; {} when there is none, or it is not a JSON object."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


# ---- the run directory ---------------------------------------------------------

def _ours(name):
    return name in RUN_FILES or _TEMPORARY.fullmatch(name) is not None


def check_run_directory(target: str | os.PathLike) -> None:
    """Refuse, before anything is written, a `target` that is not empty and not a finished run simnet wrote.

    Raises InputError naming `target` and ``-o``.
    """
    target = Path(target)
    if not target.resolve().name:
        raise InputError(target, "-o", "is a root directory; expected a directory for the run")
    if target.is_symlink():
        raise InputError(target, "-o", "is a symbolic link; expected a directory for the run")
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError(target, "-o", "exists and is not a directory; expected a directory for the run")
    try:
        names = os.listdir(target)
    except OSError as e:
        raise InputError(target, "-o", f"cannot read the directory: {e.strerror or e}") from None
    if names and not _is_run_dir(target):
        raise InputError(target, "-o", "exists and is not a simnet run directory; refusing to replace it "
                         "(choose another directory or remove it)")
    if directory_locked(target):
        raise InputError(target, "-o", "holds a run that is still running; wait for it or choose another directory")
    for name in filter(_ours, names):
        if not stat.S_ISREG(os.lstat(target / name).st_mode):
            raise InputError(target / name, "-o", "is not a plain file, so not one simnet wrote; refusing to "
                             "replace the run (remove it or choose another directory)")


def _is_run_dir(path):
    """True if `path` holds a run simnet wrote: a simnet trace or a simnet summary, as plain files."""
    header = _start_of(path / "trace.sqlite", 100)
    if header.startswith(b"SQLite format 3\x00") and int.from_bytes(header[68:72], "big") == APPLICATION_ID:
        return True
    try:
        summary = json.loads(_start_of(path / "summary.json", 1 << 20))
    except ValueError:
        return False
    return isinstance(summary, dict) and "simnet" in summary


def _start_of(path, size):
    """The first `size` bytes of `path` if it is a plain file (never a FIFO, which would block), else b""."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return b""
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


@contextmanager
def signals_held():
    """Within the block, Ctrl-C and SIGTERM wait: what it writes to say how the run ended gets written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # the run is already ending: a Ctrl-C meanwhile could only ask for what is happening anyway
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)

