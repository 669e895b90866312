"""One run of a sweep, in a worker process: plain data in, the run's files and its row out.

A task is a dict of plain data (the scenario's file name and text, the
files it reads, the run's overrides), so that any process on any machine
can run it: it writes the scenario into a scratch directory of its own,
runs it there with :func:`simnet.runner.run` and sends back the run's
directory (``files``: name -> bytes) or, when the coordinator shares its
file system (``scratch`` given), leaves it for the coordinator to move.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import SimnetError
from ..runner import read_summary, run

__all__ = ["STATUSES", "row_of", "run_task"]

STATUSES = ("ok", "expectation_failed", "diverged", "error")


def run_task(task):
    """Run `task` (see the module's doc); returns {"run", "row", "files" or "directory"}.

    Never raises for what a run can do wrong: a scenario that fails, a run
    that raises, becomes a row with status ``error`` and a one-line error.
    """
    started = time.perf_counter()
    scratch = task.get("scratch")
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)  # a killed run's leftovers, already moved or given up
        Path(scratch).mkdir(parents=True)
        place = Path(scratch)
    else:
        place = Path(tempfile.mkdtemp(prefix="simnet-run-"))
    try:
        source = place / "scenario"
        source.mkdir()
        scenario_file = source / task["file"]
        scenario_file.write_text(task["text"])
        for relative, content in task.get("attachments", {}).items():
            target = source / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        directory = place / "run"
        error = None
        try:
            run(scenario_file, directory, gifs=task.get("gifs", False), overrides=task["overrides"])
        except SimnetError as e:
            error = " ".join(str(e).split()).replace(str(source) + os.sep, "")
        except Exception as e:  # a bug in a run must not sink the sweep; its summary says it failed
            error = f"{type(e).__name__}: {' '.join(str(e).split())}"
        row = row_of(directory, error, time.perf_counter() - started)
        result = {"run": task["run"], "row": row}
        if scratch is not None:
            result["directory"] = str(directory) if directory.is_dir() else None
        else:
            result["files"] = {p.name: p.read_bytes() for p in sorted(directory.iterdir())
                               if p.is_file() and not p.is_symlink()} if directory.is_dir() else {}
        return result
    finally:
        if scratch is None:
            shutil.rmtree(place, ignore_errors=True)
        else:
            shutil.rmtree(place / "scenario", ignore_errors=True)


def row_of(run_dir, error=None, wall_time=None):
    """The numbers and status of the run in `run_dir` (None: a run that left no directory) from its
    summary.json: a dict with status, loss, accuracy, steps, train_time, wall_time and error.

    status: ``error`` if the run failed or was stopped; ``diverged`` if it
    diverged and was not expected to; ``expectation_failed`` if an
    expectation did not hold; ``ok`` otherwise.
    """
    summary = read_summary(run_dir) if run_dir is not None else {}
    expectations = summary.get("expectations") or {}
    status = summary.get("status")
    if error is None and status in ("failed", "interrupted", "running", None):
        error = summary.get("error") or summary.get("end_reason") or "the run left no summary"
    if error is not None:
        verdict = "error"
    elif expectations.get("checked") and expectations.get("passed") is False:
        verdict = "diverged" if status == "diverged" else "expectation_failed"
    elif status == "diverged" and not expectations.get("checked"):
        verdict = "diverged"
    else:
        verdict = "ok"
    return {"status": verdict, "loss": summary.get("loss"), "accuracy": summary.get("accuracy"),
            "steps": summary.get("steps"), "train_time": summary.get("train_time"),
            "wall_time": summary.get("wall_time") if wall_time is None else round(wall_time, 3),
            "error": error or ""}
