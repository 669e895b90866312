"""Sweeps: a scenario run for every point of a grid of settings and every seed, on local processes or Dask.

The coordinating process (this one) alone writes the sweep's directory:

- ``runs/<run-id>/``: each run's usual directory, moved into place whole;
- ``runs.csv``: one row per run, appended as runs finish (never held in memory);
- ``configs.csv``, ``sweep.png``: per configuration, when the sweep ends;
- ``sweep.json``: the sweep's definition, times and counts by status.

A run that fails, diverges, misses its expectations or loses its worker is
a row with its status, and the sweep goes on.  Running the same sweep again
skips the runs that finished with the same effective scenario.  Ctrl-C stops
handing out runs; the runs under way finish and are kept (Ctrl-C again
abandons them).
"""
import csv
import os
import secrets
import shutil
import signal
import statistics
import sys
import threading
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..files import directory_locked, lock_directory, remove_regular, timestamp, write_json, written_whole
from ..progress import bar
from ..runner import RUN_FILES, check_run_directory, read_summary
from ..scenario.overrides import toml_value
from ..version import __version__
from .backends import DaskWorkers, LocalWorkers, default_workers
from .plan import plan as make_plan
from .worker import STATUSES, row_of

__all__ = ["RUN_COLUMNS", "Groups", "SweepResult", "read_csv", "run_sweep", "sweep"]

RUN_COLUMNS = ("seed", "status", "loss", "accuracy", "steps", "train_time", "wall_time", "error", "path")
FINISHED = ("complete", "diverged")  # a run that ended on its own: resuming keeps it


@dataclass
class SweepResult:
    """What a sweep did: its directory, the rows of runs.csv and configs.csv (lists of dicts), counts by
    status, and whether it was interrupted."""

    directory: Path
    runs: list = field(default_factory=list)
    configs: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    interrupted: bool = False
    resumed: int = 0

    @property
    def ok(self) -> bool:
        """True when every run is ok."""
        return not self.interrupted and set(self.counts) <= {"ok"} and bool(self.runs)

    def to_pandas(self, table: str = "runs"):
        """runs.csv (`table` "runs") or configs.csv ("configs") as a pandas DataFrame."""
        import pandas as pd
        return pd.DataFrame(self.runs if table == "runs" else self.configs)


def sweep(scenario: str | os.PathLike, grid: dict | None = None, seeds: list[int] | None = None,
          workers: int | None = None, client: "distributed.Client | None" = None,
          output: str | os.PathLike | None = None, *, gifs: bool = False, force: bool = False,
          show_progress: bool = False) -> SweepResult:
    """Run `scenario` for every point of `grid` and every seed; returns a :class:`SweepResult`.

    grid: {dotted key path: [values]}, added to the scenario's [sweep] grid;
    seeds: the seeds (default: [sweep] seeds, else the scenario's seed);
    workers: local worker processes (default: the number of cores);
    client: a ``dask.distributed.Client`` to run on instead; output: the
    sweep's directory (default: output/<name>); gifs: draw each run's GIFs;
    force: rerun runs that already finished.

    >>> import tempfile
    >>> result = sweep("scenarios/xor.toml", grid={"training.steps": [5, 10]}, seeds=[0, 1], workers=1,
    ...                output=tempfile.mkdtemp())
    >>> [(row["run"], row["steps"]) for row in result.runs][:2]
    [('steps=5,seed=0', '5'), ('steps=5,seed=1', '5')]
    """
    the_plan = make_plan(scenario, grid, seeds, gifs)
    backend = DaskWorkers(client) if client is not None else LocalWorkers(workers or default_workers())
    result = run_sweep(the_plan, output, backend, gifs=gifs, force=force, show_progress=show_progress)
    result.runs = read_csv(result.directory / "runs.csv")
    result.configs = read_csv(result.directory / "configs.csv")
    return result


def read_csv(path):
    """The rows of the CSV file at `path` as dicts (strings), [] if there is none."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def run_sweep(the_plan, output, backend, *, gifs=False, force=False, show_progress=False):
    """Run `the_plan` (see :func:`.plan.plan`) on `backend` into `output`; returns a SweepResult without rows.

    InputError before anything starts for a directory that is not a sweep's or is in use.
    """
    scenario = the_plan.scenario
    directory = Path(output) if output is not None else Path("output") / scenario.name
    _check_sweep_directory(directory)
    runs_dir = directory / "runs"
    pending, skipped = [], []
    for spec in the_plan.runs():
        target = runs_dir / spec.run
        if target.exists() or target.is_symlink():
            check_run_directory(target)
            if not force and _finished(target, the_plan.effective_text(spec)):
                skipped.append(spec)
                continue
        pending.append(spec)
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_directory(directory)  # released when this process ends, however it ends
    try:
        return _coordinate(the_plan, directory, backend, pending, skipped, gifs, show_progress)
    finally:
        if lock is not None:
            os.close(lock)


def _describe(backend):
    if isinstance(backend, LocalWorkers):
        return {"backend": "local", "workers": backend.count}
    return {"backend": "dask", "scheduler": getattr(backend.client, "scheduler", None) and
            str(backend.client.scheduler.address)}


def _check_sweep_directory(directory):
    """Refuse a directory that holds something other than a sweep, or a sweep still running."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise InputError(directory, "-o", "is not a directory; expected the sweep's directory")
    if not directory.exists():
        return
    names = set(os.listdir(directory))
    if names and "sweep.json" not in names:
        raise InputError(directory, "-o", "exists and is not a simnet sweep's directory; refusing to write into it "
                         "(choose another directory or remove it)")
    if directory_locked(directory):
        raise InputError(directory, "-o", "another sweep is running in this directory; wait for it or choose "
                         "another")


def _finished(target, text):
    """True if `target` holds a run that ended on its own with the effective scenario `text`."""
    summary = read_summary(target)
    return summary.get("status") in FINISHED and summary.get("scenario_text") == text


def _coordinate(the_plan, directory, backend, pending, skipped, gifs, show_progress):
    scenario = the_plan.scenario
    keys = the_plan.keys
    started = timestamp()
    definition = {"scenario": str(scenario.path), "name": scenario.name, "grid": {k: list(v) for k, v in the_plan.grid},
                  "seeds": list(the_plan.seeds), "runs": len(the_plan), "gifs": gifs, **_describe(backend)}
    sweep_json = {"sweep": definition, "simnet": __version__, "started": started, "ended": None,
                  "status": "running", "counts": {}}
    write_json(directory / "sweep.json", sweep_json)
    columns = ["run", *keys, *RUN_COLUMNS]
    groups = Groups()
    counts = dict.fromkeys(STATUSES, 0)
    runs_csv = directory / "runs.csv"
    with written_whole(runs_csv) as temp, open(temp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for spec in skipped:
            row = _row(spec, row_of(directory / "runs" / spec.run))
            writer.writerow(row)
            groups.add(spec, row, directory / "runs" / spec.run)
            counts[row["status"]] += 1
    work = directory / ".work"
    stopper = _Stopper()
    specs = {spec.run: spec for spec in pending}

    def tasks():
        for spec in pending:
            yield {"run": spec.run, "file": Path(scenario.path).name, "text": scenario.text,
                   "attachments": the_plan.attachments, "overrides": list(spec.overrides), "gifs": gifs,
                   "scratch": str(work / spec.run) if backend.shares_files else None}

    failures = 0
    try:
        with stopper, closing(backend.run(tasks(), stopper.stopping)) as runs, \
                open(runs_csv, "a", newline="") as f, \
                bar(show_progress, len(pending), f"sweep {scenario.name}", "run") as progress:
            writer = csv.DictWriter(f, columns)
            for task, result in runs:
                spec = specs[task["run"]]
                if "died" in result and task["scratch"] is not None:
                    result["directory"] = Path(task["scratch"]) / "run"  # what the run recorded before it died
                placed = _place(directory / "runs", spec.run, result)
                outcome = result.get("row") or row_of(placed, result.get("died", "the run left nothing"))
                row = _row(spec, outcome, placed is not None)
                writer.writerow(row)
                f.flush()
                groups.add(spec, row, placed)
                counts[row["status"]] += 1
                failures += row["status"] != "ok"
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(failed=failures, refresh=False)
    finally:
        _keep_abandoned(work, directory / "runs")
        _sort_rows(runs_csv, [spec.run for spec in the_plan.runs()])
        groups.write(directory / "configs.csv", keys)
        from .report import draw_sweep
        draw_sweep(directory, groups, keys, scenario)
        counts = {k: v for k, v in counts.items() if v}
        sweep_json.update(ended=timestamp(), status="interrupted" if stopper.stopped else "complete", counts=counts)
        write_json(directory / "sweep.json", sweep_json)
    return SweepResult(directory, counts=counts, interrupted=stopper.stopped, resumed=len(skipped))


def _keep_abandoned(work, runs_dir):
    """Move the runs left in the scratch directory `work` (abandoned by a second Ctrl-C) to runs/, then
    remove what is left of it: a record of a run that started stays where its finished runs are."""
    if not work.is_dir():
        return
    for scratch in work.iterdir():
        if (scratch / "run" / "summary.json").is_file():
            _place(runs_dir, scratch.name, {"directory": scratch / "run"})
    shutil.rmtree(work, ignore_errors=True)


def _row(spec, outcome, has_directory=True):
    row = {"run": spec.run, **{key: _cell(value) for key, value in spec.settings}, "seed": spec.seed, **outcome,
           "path": f"runs/{spec.run}" if has_directory else ""}
    return row


def _cell(value):
    return value if isinstance(value, str) else toml_value(value)


def _place(runs_dir, run_id, result):
    """Move a finished run's directory (or write its files) to runs/<run_id>, whole; its path or None."""
    target = runs_dir / run_id
    source = result.get("directory")
    if source is None and result.get("files"):
        source = runs_dir / f".{run_id}.partial-{secrets.token_hex(4)}"
        source.mkdir()
        for name, content in result["files"].items():
            if name in RUN_FILES:  # a worker sends back a run's files, and nothing else lands here
                (source / name).write_bytes(content)
    if source is None or not Path(source).is_dir():
        return None
    if target.exists():
        old = runs_dir / f".{run_id}.old-{secrets.token_hex(4)}"
        os.rename(target, old)
        os.rename(source, target)
        for name in os.listdir(old):
            if name in RUN_FILES:
                remove_regular(old / name)
        try:
            old.rmdir()
        except OSError:
            pass  # what simnet did not write stays
    else:
        os.rename(source, target)
    return target


def _sort_rows(path, order):
    """Rewrite runs.csv with its rows in the plan's order (runs finish in any order)."""
    rank = {run: i for i, run in enumerate(order)}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, list(reader)
    rows.sort(key=lambda row: rank.get(row["run"], len(rank)))
    with written_whole(path) as temp, open(temp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


class Groups:
    """Per configuration: its settings, final losses and accuracies, and how many runs met each expectation."""

    def __init__(self):
        self.configs = {}

    def add(self, spec, row, run_dir):
        """Count `row` (a runs.csv row) of run `spec`, whose directory is `run_dir` (None if it has none)."""
        config = self.configs.setdefault(spec.config, {"settings": spec.settings, "runs": 0, "ok": 0, "loss": [],
                                                       "accuracy": [], "checks": {}, "dirs": []})
        config["runs"] += 1
        config["ok"] += row["status"] == "ok"
        for key in ("loss", "accuracy"):
            if row[key] is not None and row[key] != "":
                config[key].append(float(row[key]))
        if run_dir is not None:
            config["dirs"].append(Path(run_dir))
            try:
                results = read_summary(run_dir)["expectations"]["results"]
            except (KeyError, TypeError):
                results = []
            for r in results:
                met = config["checks"].setdefault(r["where"], 0)
                config["checks"][r["where"]] = met + bool(r["ok"])

    def checks(self):
        """The expectations' key paths, in the order the runs gave them."""
        return list(dict.fromkeys(where for c in self.configs.values() for where in c["checks"]))

    def rows(self):
        """configs.csv's rows: config, settings, runs, ok, mean and std of loss and accuracy, expectations."""
        checks = self.checks()
        for name, c in self.configs.items():
            row = {"config": name, **{k: _cell(v) for k, v in c["settings"]}, "runs": c["runs"], "ok": c["ok"]}
            for key in ("loss", "accuracy"):
                values = c[key]
                row[f"{key}_mean"] = _number(statistics.fmean(values)) if values else ""
                row[f"{key}_std"] = _number(statistics.stdev(values)) if len(values) > 1 else ""
            for where in checks:
                row[where] = f"{c['checks'].get(where, 0)} of {c['runs']}"
            yield row

    def write(self, path, keys):
        """Write configs.csv at `path`, whole."""
        columns = ["config", *keys, "runs", "ok", "loss_mean", "loss_std", "accuracy_mean", "accuracy_std",
                   *self.checks()]
        with written_whole(path) as temp, open(temp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(self.rows())


def _number(x):
    return float(f"{x:.6g}")


class _Stopper:
    """Within the block, the first Ctrl-C (or SIGTERM through the CLI) stops handing out runs; the second
    raises KeyboardInterrupt."""

    def __init__(self):
        self.stopped = False
        self.previous = None

    def stopping(self):
        return self.stopped

    def _handle(self, signum, frame):
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped = True
        print("simnet: stopping once the runs under way finish (Ctrl-C again abandons them)", file=sys.stderr)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
