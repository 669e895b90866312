"""The runs under a directory, as the server shows them: found, named, their status, their steps.

Paths from a request are names relative to the directory: :func:`resolve_under`
refuses what could reach outside it (``..``, an absolute path, a symbolic link
on the way).  Nothing here writes: a run is read through :func:`open_trace`
(read-only) and its ``summary.json``.
"""
import csv
import math
import os
import stat
import time
from pathlib import Path

from ..errors import InputError, SimnetError
from ..files import directory_locked
from ..runner import read_summary
from ..trace import FILENAME, open_trace

__all__ = ["ENDED", "MAX_DEPTH", "SNAPSHOTS_PER_ANSWER", "STEPS_PER_ANSWER", "find_runs", "find_sweeps",
           "finite_or_none", "resolve_under", "run_info", "steps_after"]

MAX_DEPTH = 4  # directories below DIR searched for runs
STEPS_PER_ANSWER = 2000  # steps in one answer of steps_after at most; the page asks again for the rest
SNAPSHOTS_PER_ANSWER = 20  # networks in one answer at most (the latest ones): each is replayed from the trace
ENDED = ("complete", "interrupted", "failed", "diverged")


def resolve_under(root, name):
    """The path `name` (relative, "/"-separated) names under `root`; InputError if it is absolute, goes up
    (``..``), passes through a symbolic link or hidden name, or leads outside `root`."""
    root = Path(root)
    parts = name.split("/") if name else []
    if name.startswith(("/", "\\")) or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p
                                           for p in parts):
        raise InputError(name, "path", "not a name under the served directory")
    path = root
    for part in parts:
        path = path / part
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise InputError(name, "path", "passes through a symbolic link")
        except FileNotFoundError:
            raise InputError(name, "path", "no such file under the served directory") from None
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(name, "path", "not under the served directory")
    return path


def _is_run(path):
    return any(_regular(path / f) for f in (FILENAME, "summary.json"))


def _regular(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _walk(root):
    """Directories under `root` (relative names, sorted), not following links, not hidden, MAX_DEPTH deep."""
    root = Path(root)
    stack = [("", 0)]
    while stack:
        name, depth = stack.pop()
        yield name
        if depth >= MAX_DEPTH:
            continue
        try:
            entries = sorted(os.scandir(root / name), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                stack.append((f"{name}/{entry.name}" if name else entry.name, depth + 1))


def find_runs(root):
    """[run_info] of every run under `root`, by name."""
    return [run_info(root, name) for name in _walk(root) if name and _is_run(Path(root) / name)]


def find_sweeps(root):
    """[{"name", "path", "columns", "rows", "links"}] of every directory under `root` holding a runs.csv;
    links[i][j] is the run name cell (i, j) names, or None."""
    sweeps = []
    for name in _walk(root):
        table = Path(root) / name / "runs.csv"
        if not _regular(table):
            continue
        try:
            with open(table, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        columns, rows = (rows[0], rows[1:]) if rows else ([], [])
        links = [[_run_named(root, name, cell) for cell in row] for row in rows]
        sweeps.append({"name": name or ".", "path": name, "columns": columns, "rows": rows, "links": links})
    return sweeps


def _run_named(root, sweep, cell):
    """The name under `root` of the run a sweep's cell names (relative to the sweep, or to `root`), or None."""
    for name in (f"{sweep}/{cell}" if sweep else cell, cell):
        try:
            if cell and _is_run(resolve_under(root, name)):
                return name
        except InputError:
            pass
    return None


def run_info(root, name, trace=None):
    """{"name", "path", "status", "last_step", "loss", "accuracy", "scenario", "heartbeat"} of the run `name`
    under `root`.

    status: the summary's when the run has ended; otherwise the trace's end, or
    ``running`` while its recording process is alive (its writer beats in the
    trace: see :attr:`Trace.running`), or ``incomplete`` once it has died;
    heartbeat: seconds since its last beat, for a run without an end.
    `trace`: the run's trace if the caller has opened it already (see :func:`_opened`).
    """
    path = Path(root) / name
    if trace is None:
        with _opened(path) as trace:
            return run_info(root, name, trace)
    summary = read_summary(path)
    info = {"name": name, "path": str(path), "status": None, "last_step": None, "loss": None, "accuracy": None,
            "scenario": summary.get("scenario") if isinstance(summary.get("scenario"), str) else None,
            "heartbeat": None}
    end = None
    if trace.trace is not None:
        info["last_step"] = trace.last_step
        info["scenario"] = info["scenario"] or trace.metadata.get("scenario")
        history = trace.history()
        if len(history["step"]):
            info["loss"] = finite_or_none(history["loss"][-1])
            info["accuracy"] = finite_or_none(history["accuracy"][-1])
        end = trace.end_reason
        if trace.heartbeat is not None:
            info["heartbeat"] = max(0.0, round(time.time() - trace.heartbeat, 1))
    if summary.get("status") in ENDED:
        info["status"] = summary["status"]
        if summary.get("loss") is not None:
            info["loss"], info["accuracy"] = summary.get("loss"), summary.get("accuracy")
        info["last_step"] = summary.get("steps", info["last_step"])
    elif end is not None:
        info["status"] = end if end in ENDED else "incomplete"
    else:
        info["status"] = "running" if trace.running else "incomplete"
    return info


class _opened:
    """A run's trace (``.trace``, None if it cannot be read yet) and ``.running``: whether its recording process
    is at it (before its trace can be read: whether it holds the run directory's lock)."""

    def __init__(self, path):
        self._history = None
        try:
            self.trace = open_trace(path)
            self.running = self.trace.running
        except (SimnetError, OSError):
            self.trace = None
            self.running = directory_locked(path)

    def history(self):
        """The trace's history, read once: run_info and steps_after both want it."""
        if self._history is None:
            self._history = self.trace.history()
        return self._history

    def __getattr__(self, name):
        return getattr(self.trace, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.trace is not None:
            self.trace.close()


def _in_order(item):
    """A snapshot's node or edge (with its attributes last) by its place in the network."""
    return item[-1].get("order", 0)


def finite_or_none(x):
    """`x` as a float for JSON, which has no NaN or infinity: None where it is None or not finite."""
    return float(x) if x is not None and math.isfinite(x) else None


def steps_after(root, name, after):
    """The steps of run `name` after step `after`, with what a page draws of them.

    Returns {"name", "status", "heartbeat", "last_step", "steps": [{"step", "loss", "accuracy"}],
    "networks": {step: {"neurons": [[name, role, activation, bias]], "connections":
    [[source, target, weight, frozen]]}} for the recorded snapshot steps among them,
    "more"}: at most :data:`STEPS_PER_ANSWER` steps, "more" true when others follow.
    Only whole steps a commit has made visible are given.
    """
    path = resolve_under(root, name)
    if not _is_run(path):
        raise InputError(name, "run", "no run there")
    with _opened(path) as trace:
        info = run_info(root, name, trace)
        answer = {"name": name, "status": info["status"], "heartbeat": info["heartbeat"], "last_step": None,
                  "steps": [], "networks": {}, "more": False}
        last = trace.last_step if trace.trace is not None else None
        answer["last_step"] = last
        if last is None:
            return answer  # not begun yet: no steps
        history = trace.history()
        chosen = [(int(s), finite_or_none(loss), finite_or_none(acc)) for s, loss, acc in
                  zip(history["step"], history["loss"], history["accuracy"]) if after < s <= last]
        if len(chosen) > STEPS_PER_ANSWER:
            chosen, answer["more"] = chosen[:STEPS_PER_ANSWER], True
        answer["steps"] = [{"step": s, "loss": loss, "accuracy": acc} for s, loss, acc in chosen]
        end = chosen[-1][0] if chosen else last
        wanted = [s for s in trace.steps if after < s <= end] or ([last] if after < 0 else [])
        for step, graph in trace.snapshots(wanted[-SNAPSHOTS_PER_ANSWER:]):
            answer["networks"][str(step)] = {
                "neurons": [[n, a.get("role"), a.get("fn"), finite_or_none(a.get("bias"))]
                            for n, a in sorted(graph.nodes(data=True), key=_in_order)],
                "connections": [[s, t, finite_or_none(a.get("weight")), bool(a.get("frozen"))]
                                for s, t, a in sorted(graph.edges(data=True), key=_in_order)]}
    return answer
