"""The command line: run and check scenarios, list them, replay, inspect and export traces.

    simnet run SCENARIO.toml [-o DIR] [--steps N] [--seed S] [--engine actor|fast] [--no-gif] [-q]
    simnet list [DIR]
    simnet replay RUN_DIR [--gif activations|weights|sweep] [--step N] [--html] [-o FILE]
    simnet inspect RUN_DIR [--step N] [--neuron NAME] [--kind KIND] [--format table|jsonl|csv]
    simnet export RUN_DIR --format jsonl|csv|perfetto|graphml|gexf -o FILE [--step N]
    simnet check SCENARIO.toml|DIR ... [--engine actor|fast] [-q]

Exit codes: 0 success; 1 a failed expectation or a diverged run; 2 bad input,
reported as one line ``simnet: error: <file>: <where>: <why>``.
"""
import argparse
import json
import math
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .version import __version__
from .errors import ScenarioError, SimnetError, TraceError
from .core.events import KINDS
from .files import written_whole

EXPORT_FORMATS = ("jsonl", "csv", "perfetto", "graphml", "gexf")
# files that mark a directory as a run simnet wrote (and may replace)
RUN_MARKERS = ("summary.json", "trace.sqlite")


class BadInput(SimnetError):
    """Bad input found by the command line itself: `file`, `where` and `why` as in the one-line error."""

    def __init__(self, file, where, why):
        self.file, self.where, self.why = str(file), where, why
        super().__init__(f"{file}: {where}: {why}")


def main(argv=None):
    """Run the command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already explained
        return e.code
    subject = getattr(args, args.subject_from)
    try:
        return args.command(args)
    except SimnetError as e:
        print(f"simnet: error: {_error_line(e, subject[0] if isinstance(subject, list) else subject)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`simnet inspect ... | head`): stop writing, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _error_line(error, subject):
    """'<file>: <where>: <why>' for `error`, on one line.

    Errors that carry no file are about the path their message starts with,
    or else about `subject` (what was given on the command line).
    """
    if isinstance(error, (ScenarioError, BadInput)):
        file, where, why = error.file, error.where, error.why
    else:
        file, where, why = subject, "trace" if isinstance(error, TraceError) else "input", str(error)
        head, sep, rest = why.partition(": ")
        if sep and (os.sep in head or Path(head).exists()):
            file, why = head, rest
    return " ".join(f"{file}: {where}: {why}".split())


def _parser():
    parser = argparse.ArgumentParser(prog="simnet", description="A neural network simulated as a graph of "
                                     "neuron actors: run scenarios, replay and inspect their traces.")
    parser.add_argument("--version", action="version", version=f"simnet {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="train a scenario and write its trace, GIFs and plots")
    run.add_argument("scenario", metavar="SCENARIO.toml")
    run.add_argument("-o", "--output", metavar="DIR", help="run directory (default: output/<scenario name>)")
    _overrides(run)
    run.add_argument("--no-gif", action="store_true", help="write the trace and loss plot, skip the GIFs")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no closing line")
    run.set_defaults(command=cmd_run, subject_from="scenario")

    lister = commands.add_parser("list", help="list scenarios with their one-line descriptions")
    lister.add_argument("directory", metavar="DIR", nargs="?", default="scenarios")
    lister.set_defaults(command=cmd_list, subject_from="directory")

    replay = commands.add_parser("replay", help="draw a recorded run again: a GIF or the HTML replay page")
    replay.add_argument("run_dir", metavar="RUN_DIR")
    replay.add_argument("--gif", choices=("activations", "weights", "sweep"), default="activations")
    replay.add_argument("--step", type=_non_negative_int, help="the step a sweep GIF shows (default: the last)")
    replay.add_argument("--html", action="store_true", help="write the interactive replay page instead")
    replay.add_argument("-o", "--output", metavar="FILE", help="default: RUN_DIR/<kind>.gif or RUN_DIR/replay.html")
    replay.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(command=cmd_replay, subject_from="run_dir")

    inspect = commands.add_parser("inspect", help="summarise a run, explain a neuron at a step, or list events")
    inspect.add_argument("run_dir", metavar="RUN_DIR")
    inspect.add_argument("--step", type=_non_negative_int)
    inspect.add_argument("--neuron", metavar="NAME")
    inspect.add_argument("--kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    inspect.add_argument("--format", choices=("table", "jsonl", "csv"), dest="fmt",
                         help="list raw events in this format")
    inspect.set_defaults(command=cmd_inspect, subject_from="run_dir")

    export = commands.add_parser("export", help="write a trace in another format")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True, dest="fmt")
    export.add_argument("-o", "--output", metavar="FILE", required=True)
    export.add_argument("--step", type=_non_negative_int, help="graphml: the step to write (default: the last)")
    export.set_defaults(command=cmd_export, subject_from="run_dir")

    check = commands.add_parser("check", help="run scenarios and check their [expect] tables")
    check.add_argument("scenarios", metavar="SCENARIO.toml|DIR", nargs="+")
    check.add_argument("--engine", choices=("actor", "fast"), help="override the scenarios' engine")
    check.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    check.set_defaults(command=cmd_check, subject_from="scenarios")

    return parser


def _overrides(command):
    command.add_argument("--steps", type=_positive_int, help="train for N steps instead of the scenario's")
    command.add_argument("--seed", type=_non_negative_int, help="use seed S instead of the scenario's")
    command.add_argument("--engine", choices=("actor", "fast"), help="use this engine instead of the scenario's")


def _int_at_least(low, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "a non-negative integer")


# ---- run -------------------------------------------------------------------

def cmd_run(args):
    from .scenario.loader import execute, load

    started = time.perf_counter()
    scenario = load(args.scenario).with_overrides(steps=args.steps, seed=args.seed, engine=args.engine)
    data = scenario.dataset()
    target = Path(args.output) if args.output else Path("output") / scenario.name
    show = not args.quiet and sys.stderr.isatty()
    with _staging(target) as staging:
        from .trace.store import Recorder
        recorder = Recorder(staging, every=scenario.record.every, detail=scenario.record.detail,
                            scenario_text=scenario.text,
                            metadata={"scenario": scenario.name, "description": scenario.description,
                                      "scenario_path": str(Path(args.scenario).resolve()),
                                      "overrides": {"steps": args.steps, "seed": args.seed,
                                                    "engine": args.engine}})
        try:
            with _bar(show, scenario.training.steps, scenario.name, "step") as bar:
                outcome = execute(scenario, data=data, recorder=recorder, progress=_steps(bar))
        finally:
            recorder.close()
        with _trace(staging) as trace:
            _render(trace, staging, () if args.no_gif else scenario.record.gifs, data, show)
        checked = args.steps is None and args.seed is None
        _write_json(staging / "summary.json", _summary(outcome, checked, time.perf_counter() - started))
    return _report_run(outcome, target, checked, args.quiet)


def _render(trace, run_dir, gifs, data, show):
    from .viz.render import render_run
    with _bar(show, None, "drawing", "frame") as bar:
        render_run(trace, run_dir, gifs=gifs, data=data, progress=_frames(bar))


def _summary(outcome, checked, wall_time):
    sc, diverged = outcome.scenario, outcome.diverged
    return {
        "scenario": sc.name,
        "description": sc.description,
        "steps": outcome.steps,
        "seed": sc.seed,
        "engine": sc.training.engine,
        "loss": _finite_or_none(outcome.loss),
        "accuracy": outcome.accuracy,
        "wall_time": round(wall_time, 3),
        "train_time": round(outcome.wall_time, 3),
        "interrupted": outcome.history.interrupted,
        "diverged": None if diverged is None else {"step": diverged.step, "where": diverged.where,
                                                   "quantity": diverged.quantity},
        "expectations": {
            "checked": checked,
            "passed": outcome.passed if checked else None,
            "results": [{"where": r.where, "ok": r.ok, "message": r.message} for r in outcome.results],
        } if checked else {"checked": False, "reason": "--steps or --seed changes the scenario"},
        "simnet": __version__,
    }


def _finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None


def _report_run(outcome, target, checked, quiet):
    """The closing line, divergence and failed expectations; returns the exit code."""
    sc = outcome.scenario
    where = f"{target}{os.sep}"
    if outcome.diverged is not None:
        d = outcome.diverged
        print(f"simnet: {sc.name}: diverged at step {d.step}: {d.quantity} of {d.where} is not finite; "
              f"the trace up to step {d.step - 1} is in {where}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"{sc.name}: {_result_text(outcome)} after {outcome.steps} steps "
              f"({outcome.wall_time:.1f} s) -> {where}")
    if outcome.history.interrupted:
        print(f"simnet: {sc.name}: interrupted after step {outcome.steps}; what ran is in {where}", file=sys.stderr)
        return 130
    if not checked:
        if not quiet and not sc.expect.empty:
            print("expectations not checked: --steps or --seed changes the scenario")
        return 0
    failed = [r for r in outcome.results if not r.ok]
    for r in failed:
        print(f"simnet: {sc.name}: expectation failed: {r.where}: {r.message}", file=sys.stderr)
    return 1 if failed else 0


def _result_text(outcome):
    text = f"loss {outcome.loss:.4g}"
    if outcome.accuracy is not None:
        text += f", accuracy {outcome.accuracy:.1%}"
    return text


# ---- writing results so that nothing half-written looks finished ----------

def _is_run_dir(path):
    return path.is_dir() and any((path / marker).is_file() for marker in RUN_MARKERS)


@contextmanager
def _staging(target):
    """A fresh directory next to `target` to write into; moved onto `target` only when the block ends well.

    An existing `target` is replaced only if it is empty or a run simnet
    wrote; anything else is refused before any work starts.
    """
    target = Path(target)
    if not target.resolve().name:
        raise BadInput(target, "-o", "is a root directory; expected a directory for the run")
    if target.is_symlink():
        raise BadInput(target, "-o", "is a symbolic link; expected a directory for the run")
    if target.exists():
        if not target.is_dir():
            raise BadInput(target, "-o", "exists and is not a directory; expected a directory for the run")
        if any(target.iterdir()) and not _is_run_dir(target):
            raise BadInput(target, "-o", "exists and is not a simnet run directory; refusing to replace it "
                           "(choose another directory or remove it)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _fresh(target, "partial")
        staging.mkdir()
    except OSError as e:
        raise BadInput(target, "-o", f"cannot create the run directory: {e.strerror or e}") from None
    try:
        yield staging
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace(staging, target):
    """Move the finished `staging` directory onto `target`, removing what was there."""
    old = None
    if target.exists():
        old = _fresh(target, "old")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path, value):
    path.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")


def _fresh(path, what):
    """An unused hidden name next to `path`: .<name>.<what>-<random><suffix>."""
    return path.parent / f".{path.stem}.{what}-{secrets.token_hex(4)}{path.suffix}"


@contextmanager
def _partial_file(path):
    """A temporary path next to `path` (same suffix) that becomes `path` when the block ends well."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _fresh(path, "partial")
        temp.touch(exist_ok=False)
    except OSError as e:
        raise BadInput(path, "-o", f"cannot write here: {e.strerror or e}") from None
    with written_whole(path, temp):
        yield temp


# ---- progress --------------------------------------------------------------

@contextmanager
def _bar(show, total, description, unit):
    """A tqdm bar on stderr when `show`, else None."""
    if not show:
        yield None
        return
    from tqdm import tqdm
    bar = tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _steps(bar):
    """A progress(step, loss) callback moving `bar` one step at a time, or None without a bar."""
    if bar is None:
        return None

    def progress(step, loss):
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    return progress


def _frames(bar):
    """A progress(done, total) callback moving `bar`, or None without a bar."""
    if bar is None:
        return None

    def progress(done, total):
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
    return progress


# ---- list and check --------------------------------------------------------

def _scenario_files(paths):
    """The .toml files named by `paths`: files as given, directories as their *.toml files in name order."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise BadInput(path, "directory", "holds no .toml scenario files")
            files += found
        else:
            files.append(path)
    return files


def cmd_list(args):
    from .scenario.loader import load
    directory = Path(args.directory)
    if not directory.is_dir():
        raise BadInput(directory, "directory", "does not exist" if not directory.exists() else "is not a directory")
    rows, status = [], 0
    for path in _scenario_files([directory]):
        try:
            scenario = load(path)
        except SimnetError as e:
            print(f"simnet: error: {_error_line(e, path)}", file=sys.stderr)
            status = 2
            continue
        rows.append((scenario.name, scenario.description or "(no description)"))
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return status


def cmd_check(args):
    from .scenario.loader import execute, load
    status = 0
    for path in _scenario_files(args.scenarios):
        try:
            scenario = load(path).with_overrides(engine=args.engine)
            outcome = execute(scenario)
        except SimnetError as e:
            print(f"simnet: error: {_error_line(e, path)}", file=sys.stderr)
            status = 2
            continue
        failed = [r for r in outcome.results if not r.ok]
        if failed:
            status = max(status, 1)
        if failed or not args.quiet:
            verdict = "FAIL" if failed else "ok  "
            held = "nothing to check" if not outcome.results else f"{len(outcome.results) - len(failed)} of " \
                f"{len(outcome.results)} checks hold"
            print(f"{verdict} {scenario.name} ({path}): {held}, {outcome.steps} steps in {outcome.wall_time:.1f} s")
        for r in outcome.results:
            if not r.ok or not args.quiet:
                print(f"     {'ok  ' if r.ok else 'FAIL'} {r.where}: {r.message}")
    return status


# ---- replay, inspect, export -----------------------------------------------

@contextmanager
def _trace(run_dir):
    from .trace.store import open_trace
    trace = open_trace(run_dir)
    try:
        yield trace
    finally:
        trace.close()


def _check_step(trace, run_dir, step):
    """`step` if the trace covers it (None stays None); BadInput naming the range otherwise."""
    if step is not None and step > trace.last_step:
        raise BadInput(run_dir, f"--step {step}", f"the run has steps 0 to {trace.last_step}")
    return step


def _check_neuron(trace, run_dir, neuron, step):
    if neuron is None:
        return
    at = trace.last_step if step is None else step
    names = list(trace.snapshot(at))  # the snapshot inspect explains next: one replay serves both
    if neuron not in names:
        raise BadInput(run_dir, f"--neuron {neuron}", f"no such neuron at step {at}; "
                       f"there are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")


def cmd_replay(args):
    show = not args.quiet and sys.stderr.isatty()
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = _check_step(trace, run_dir, args.step)
        if step is not None and (args.html or args.gif != "sweep"):
            raise BadInput(run_dir, f"--step {step}", "only the sweep GIF shows one step; the other GIFs and "
                           "the replay page cover the whole run")
        if args.html:
            from .viz.page import write_page
            out = Path(args.output) if args.output else run_dir / "replay.html"
            with _bar(show, None, "page", "step") as bar, _partial_file(out) as temp:
                write_page(trace, temp, progress=_frames(bar))
        else:
            from .viz.render import render_gif
            kind = args.gif
            if kind == "sweep" and step is None:
                step = trace.last_step
            out = Path(args.output) if args.output else run_dir / f"{kind}.gif"
            with _bar(show, None, kind, "frame") as bar, _partial_file(out) as temp:
                render_gif(trace, kind, temp, step=step, progress=_frames(bar))
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def cmd_inspect(args):
    from .trace import explain
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = _check_step(trace, run_dir, args.step)
        _check_neuron(trace, run_dir, args.neuron, step)
        if args.fmt is None and args.kind is None and step is not None and args.neuron is not None:
            print(explain.explain(trace, step, args.neuron))
        elif args.fmt is None and args.kind is None and step is None and args.neuron is None:
            print(explain.summary(trace))
        else:
            explain.write_events(trace, sys.stdout, step=step, neuron=args.neuron, kind=args.kind,
                                 fmt=args.fmt or "table")
    return 0


def cmd_export(args):
    from .trace.export import export
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = _check_step(trace, run_dir, args.step)
        with _partial_file(args.output) as temp:
            export(trace, args.fmt, temp, step=step)
    return 0
