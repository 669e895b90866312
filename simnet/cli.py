"""The command line: run and check scenarios, list them, replay, inspect and export traces.

    simnet run SCENARIO.toml [-o DIR] [--steps N] [--seed S] [--engine actor|fast] [--set KEY=VALUE]... [--no-gif] [-q]
    simnet list [DIR]
    simnet replay RUN_DIR [--gif activations|weights|sweep] [--step N] [--sample I] [--html] [-o FILE]
    simnet inspect RUN_DIR [--step N] [--neuron NAME] [--kind KIND] [--format table|jsonl|csv]
    simnet inspect RUN_DIR --step N --sample I
    simnet export RUN_DIR --format jsonl|csv|perfetto|graphml|gexf -o FILE [--step N]
    simnet check SCENARIO.toml|DIR ... [--engine actor|fast] [-q]
    simnet serve [DIR] [--port 8000] [--host 127.0.0.1] [--no-browser]
    simnet play SCENARIO.toml [-o DIR] [--port 8000] [--host 127.0.0.1] [--no-browser]
    simnet sweep SCENARIO.toml [--grid KEY=[V1, V2]]... [--seeds 0-9|0,3,7] [--workers N]
                 [--dask local|ADDRESS] [-o DIR] [--gifs] [--force] [-q]
    simnet compare RUN_DIR|SWEEP_DIR ... [-o DIR] [--format text|json]

Exit codes: 0 success; 1 a failed expectation, a diverged run, or a run that
failed on the way (its trace writer died, the disk filled up); 2 bad input,
reported as one line ``simnet: error: <file>: <where>: <why>``; 130 interrupted
(Ctrl-C or SIGTERM).  A run keeps what it has whichever way it ends.
``-o -`` writes a text format (exports, the replay page) to standard output.
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from .core.events import KINDS
from .errors import InputError, SimnetError, TraceError
from .files import partial_name, written_whole
from .progress import bar, frame_progress
from .version import __version__

__all__ = ["EXPORT_FORMATS", "INT_MAX", "cmd_check", "cmd_compare", "cmd_export", "cmd_inspect", "cmd_list", "cmd_play",
           "cmd_replay", "cmd_run", "cmd_serve", "cmd_sweep", "main"]

EXPORT_FORMATS = ("jsonl", "csv", "perfetto", "graphml", "gexf")


def main(argv=None):
    """Run the command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already explained
        return e.code
    subject = getattr(args, args.subject_from)
    try:
        with _terminate_as_interrupt(), warnings.catch_warnings():
            warnings.showwarning = _warning_line
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


def _warning_line(message, category, filename, lineno, file=None, line=None):
    """A warning as one line, like an error's, instead of Python's two with a source line."""
    print(f"simnet: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _error_line(error, subject):
    """'<file>: <where>: <why>' for `error`, on one line.

    Errors that carry no file are about the path their message starts with,
    or else about `subject` (what was given on the command line).
    """
    if isinstance(error, InputError):
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
    _settings(run)
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
    replay.add_argument("--sample", type=_non_negative_int, metavar="I",
                        help="with --gif activations|weights of a run whose inputs are an image: the input panel "
                        "shows sample I of the data set instead of the batch mean")
    replay.add_argument("--html", action="store_true", help="write the interactive replay page instead")
    replay.add_argument("-o", "--output", metavar="FILE", help="default: RUN_DIR/<kind>.gif or RUN_DIR/replay.html; "
                        "- for standard output (--html)")
    replay.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(command=cmd_replay, subject_from="run_dir")

    inspect = commands.add_parser("inspect", help="summarise a run, explain a neuron at a step, or list events")
    inspect.add_argument("run_dir", metavar="RUN_DIR")
    inspect.add_argument("--step", type=_non_negative_int)
    inspect.add_argument("--neuron", metavar="NAME")
    inspect.add_argument("--sample", type=_non_negative_int, metavar="I",
                         help="with --step: explain the network's answer for sample I of the data set")
    inspect.add_argument("--kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    inspect.add_argument("--format", choices=("table", "jsonl", "csv"), dest="fmt",
                         help="list raw events in this format")
    inspect.set_defaults(command=cmd_inspect, subject_from="run_dir")

    export = commands.add_parser("export", help="write a trace in another format")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True, dest="fmt")
    export.add_argument("-o", "--output", metavar="FILE", required=True, help="- for standard output")
    export.add_argument("--step", type=_non_negative_int,
                        help="graphml: the step whose graph to write (default: the last); jsonl, csv, perfetto: "
                             "only that step's events; gexf holds the whole run and takes none")
    export.set_defaults(command=cmd_export, subject_from="run_dir")

    check = commands.add_parser("check", help="run scenarios and check their [expect] tables")
    check.add_argument("scenarios", metavar="SCENARIO.toml|DIR", nargs="+")
    check.add_argument("--engine", choices=("actor", "fast"), help="override the scenarios' engine")
    check.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    check.set_defaults(command=cmd_check, subject_from="scenarios")

    _sweep_parser(commands)
    _compare_parser(commands)
    _serving_commands(commands)
    return parser


def _overrides(command):
    command.add_argument("--steps", type=_positive_int, help="train for N steps instead of the scenario's")
    command.add_argument("--seed", type=_non_negative_int, help="use seed S instead of the scenario's")
    command.add_argument("--engine", choices=("actor", "fast"), help="use this engine instead of the scenario's")


def _settings(command):
    command.add_argument("--set", action="append", type=_assignment, default=[], metavar="KEY=VALUE",
                         dest="settings", help="set KEY (a dotted path: training.learning_rate, script[0].at) to "
                         "VALUE (a TOML value: 0.1, [2, 8, 1], \"adam\"); repeatable")


def _assignment(text):
    from .scenario.overrides import parse_assignment
    try:
        return parse_assignment(text)
    except SimnetError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# The largest number a trace, its JSON and SQLite hold exactly (int64), and numpy seeds from.
INT_MAX = 2**63 - 1


def _int_at_least(low, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if not low <= value <= INT_MAX:
            shown = value if len(text) <= 40 else f"a number of {len(text.strip())} digits"
            raise argparse.ArgumentTypeError(f"expected {what} no larger than {INT_MAX}, got {shown}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "a non-negative integer")


# ---- run -------------------------------------------------------------------

def cmd_run(args):
    """`simnet run`: run a scenario into its directory (see :func:`simnet.runner.run`); returns the exit code."""
    from .runner import run
    result = run(args.scenario, args.output, steps=args.steps, seed=args.seed, engine=args.engine,
                 gifs=not args.no_gif, show_progress=not args.quiet and sys.stderr.isatty(), overrides=args.settings)
    if result.stopped:
        print(f"simnet: {result.scenario.name}: {result.end_reason}"
              f"{'' if result.error is None else ': ' + result.error}; "
              f"the trace ({result.trace_state()}) is in {result.directory}{os.sep}", file=sys.stderr)
        return 130 if result.status == "interrupted" else 1
    return _report_run(result, args.quiet)


def _report_run(result, quiet):
    """The closing line, divergence and failed expectations of a run that ended; returns the exit code."""
    outcome, checked = result.outcome, result.checked
    sc = outcome.scenario
    where = f"{result.directory}{os.sep}"
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
    text = f"data-set loss {outcome.loss:.4g}"
    if outcome.accuracy is not None:
        text += f", accuracy {outcome.accuracy:.1%}"
    if outcome.test is not None:
        text += f"; held-out loss {outcome.test_loss:.4g}" + (
            "" if outcome.test_accuracy is None else f", accuracy {outcome.test_accuracy:.1%}")
    return text


# ---- signals -----------------------------------------------------------------

@contextmanager
def _terminate_as_interrupt():
    """Within the block, SIGTERM does what Ctrl-C does (a run stops at a step boundary, and keeps what it has)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        handler = signal.getsignal(signal.SIGINT)  # the trainer's while it trains
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- writing results so that nothing half-written looks finished ----------

def _check_output(path, inputs):
    """Refuse an output `path` that is a link, a directory, or one of the command's `inputs`."""
    if path.is_symlink():
        raise InputError(path, "-o", "is a symbolic link; refusing to write through it (give the file itself)")
    if path.is_dir():
        raise InputError(path, "-o", "is a directory; expected a file name")
    for source in inputs:
        if path.resolve() == source.resolve() or (path.exists() and source.exists() and os.path.samefile(path, source)):
            raise InputError(path, "-o", f"is {source}, which this command reads; choose another file")


@contextmanager
def _output_file(out, inputs, picture=None):
    """A temporary path to write; it becomes the file `out` when the block ends well, or with `out` "-",
    goes to standard output.  `out` is checked against `inputs` (see _check_output) before and again at
    the moment of replacing it.  A `picture` (suffix, what) is written only to a name with that suffix,
    and a GIF never to standard output."""
    if out == "-":
        if picture is not None and picture[0] != ".html":
            raise InputError("-", "-o", "a picture is not text; give a file name")
        with tempfile.TemporaryDirectory() as directory:
            temp = Path(directory) / "output"
            yield temp
            with open(temp, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    path = Path(out)
    _check_output(path, inputs)
    if picture is not None and path.suffix.lower() != picture[0]:
        raise InputError(path, "-o", f"{picture[1]} is written to a {picture[0]} file; the name says "
                       f"{path.suffix or 'no format'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = partial_name(path, "partial")
        temp.touch(exist_ok=False)
    except OSError as e:
        raise InputError(path, "-o", f"cannot write here: {e.strerror or e}") from None
    with written_whole(path, temp):
        yield temp
        _check_output(path, inputs)  # what appeared there meanwhile is not ours to replace


def _trace_inputs(trace):
    """The files a command reading `trace` reads: the trace and its SQLite companions."""
    return [trace.path] + [Path(f"{trace.path}{suffix}") for suffix in ("-wal", "-shm", "-journal")]


# ---- list and check --------------------------------------------------------

def _scenario_files(paths):
    """The .toml files named by `paths`: files as given, directories as their *.toml files in name order."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise InputError(path, "directory", "holds no .toml scenario files")
            files += found
        else:
            files.append(path)
    return files


def cmd_list(args):
    """`simnet list`: the name and description of each scenario in a directory; returns the exit code."""
    from .scenario import load
    directory = Path(args.directory)
    if not directory.is_dir():
        raise InputError(directory, "directory", "does not exist" if not directory.exists() else "is not a directory")
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
    """`simnet check`: train scenarios without recording and report their expectations; returns the exit code."""
    from .runner import check
    status = 0
    for path in _scenario_files(args.scenarios):
        try:
            outcome = check(path, engine=args.engine)
            scenario = outcome.scenario
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
    from .trace import open_trace
    trace = open_trace(run_dir)
    try:
        yield trace
    finally:
        trace.close()


def _check_step(trace, run_dir, step):
    """`step` if the trace covers it (None stays None); InputError naming the range otherwise."""
    if step is not None and trace.last_step is None:
        raise InputError(run_dir, f"--step {step}", "no steps recorded")
    if step is not None and step > trace.last_step:
        raise InputError(run_dir, f"--step {step}", f"the run has steps 0 to {trace.last_step}")
    return step


def _check_neuron(trace, run_dir, neuron, step):
    if neuron is None:
        return
    at = trace.last_step if step is None else step
    names = list(trace.snapshot(at))  # the snapshot inspect explains next: one replay serves both
    if neuron not in names:
        raise InputError(run_dir, f"--neuron {neuron}", f"no such neuron at step {at}; "
                       f"there are {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")


def cmd_replay(args):
    """`simnet replay`: draw a GIF or the replay page from a trace; returns the exit code."""
    show = not args.quiet and sys.stderr.isatty()
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = _check_step(trace, run_dir, args.step)
        if step is not None and (args.html or args.gif != "sweep"):
            raise InputError(run_dir, f"--step {step}", "only the sweep GIF shows one step; the other GIFs and "
                           "the replay page cover the whole run")
        if args.sample is not None:
            _check_sample(trace, run_dir, args)
        if args.html:
            from .viz.page import write_page
            out = args.output or trace.path.parent / "replay.html"
            with bar(show, None, "page", "step") as progress_bar, \
                    _output_file(out, _trace_inputs(trace), picture=(".html", "the replay page")) as temp:
                write_page(trace, temp, progress=frame_progress(progress_bar))
        else:
            from .viz.render import render_gif
            kind = args.gif
            if kind == "sweep" and step is None:
                step = trace.last_step
            out = args.output or trace.path.parent / f"{kind}.gif"
            with bar(show, None, kind, "frame") as progress_bar, \
                    _output_file(out, _trace_inputs(trace), picture=(".gif", "a GIF")) as temp:
                render_gif(trace, kind, temp, step=step, progress=frame_progress(progress_bar), sample=args.sample)
    if not args.quiet and out != "-":
        print(f"wrote {out}")
    return 0


def _check_sample(trace, run_dir, args):
    """Refuse --sample where it draws nothing: another GIF, the page, a run without an image, a sample not there."""
    if args.html or args.gif == "sweep":
        raise InputError(run_dir, f"--sample {args.sample}", "goes with --gif activations or weights (the replay "
                         "page has a sample selector of its own)")
    from .scenario.runinfo import trace_sample
    try:
        trace_sample(trace, args.sample)
    except SimnetError as e:
        raise InputError(run_dir, f"--sample {args.sample}", str(e)) from None


def cmd_inspect(args):
    """`simnet inspect`: summarise a trace, explain a neuron at a step, or list events; returns the exit code."""
    from .trace import explain
    from .trace.schema import kinds_for
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = args.step
        explaining = args.fmt is None and args.kind is None and step is not None and args.neuron is not None
        summarising = args.fmt is None and args.kind is None and step is None and args.neuron is None
        # the step that blew up in a diverged run never finished, but its events are kept to be listed
        blew_up = (trace.end_reason == "diverged" and step is not None and trace.last_step is not None
                   and step == trace.last_step + 1)
        if blew_up and explaining:
            raise InputError(run_dir, f"--step {step}", "the run diverged in this step, which never finished; "
                           f"`--step {step}` without --neuron lists its events")
        if not blew_up:
            step = _check_step(trace, run_dir, step)
        _check_neuron(trace, run_dir, args.neuron, trace.last_step if blew_up else step)
        recorded = kinds_for(trace.detail)
        if args.kind is not None and recorded is not None and args.kind not in recorded:
            raise InputError(run_dir, f"--kind {args.kind}", f"this trace does not record {args.kind} events "
                           f"(detail \"{trace.detail}\"); record with detail = \"messages\" to keep them")
        if args.sample is not None:
            if step is None or args.neuron is not None or args.kind is not None or args.fmt is not None:
                raise InputError(run_dir, f"--sample {args.sample}", "goes with --step N alone "
                                 "(the network's answer at that step)")
            try:
                print(explain.explain_sample(trace, step, args.sample))
            except SimnetError as e:
                raise InputError(run_dir, f"--sample {args.sample}", str(e).split(": ", 1)[-1]) from None
        elif explaining:
            print(explain.explain(trace, step, args.neuron))
        elif summarising:
            print(explain.summary(trace))
        else:
            explain.write_events(trace, sys.stdout, step=step, neuron=args.neuron, kind=args.kind,
                                 fmt=args.fmt or "table")
    return 0


def cmd_export(args):
    """`simnet export`: write a trace in another format; returns the exit code."""
    from .trace.export import STEP_FORMATS, export
    run_dir = Path(args.run_dir)
    with _trace(run_dir) as trace:
        step = _check_step(trace, run_dir, args.step)
        if step is not None and args.fmt not in STEP_FORMATS:
            raise InputError(run_dir, f"--step {step}", f"a {args.fmt} export holds the whole run and takes "
                           "no step; write one step as graphml")
        with _output_file(args.output, _trace_inputs(trace)) as temp:
            export(trace, args.fmt, temp, step=step)
    return 0


# ---- sweep -------------------------------------------------------------------

def _sweep_parser(commands):
    sweep = commands.add_parser("sweep", help="run a scenario for every point of a grid of settings and every seed")
    sweep.add_argument("scenario", metavar="SCENARIO.toml")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=[V1, V2]",
                       help="sweep KEY (a dotted path) over these TOML values; adds to or replaces [sweep.grid]")
    sweep.add_argument("--seeds", metavar="0-9|0,3,7", help="the seeds (replaces [sweep] seeds)")
    sweep.add_argument("--workers", type=_positive_int, help="worker processes (default: the number of cores)")
    sweep.add_argument("--dask", metavar="local|ADDRESS", help="run on Dask: a LocalCluster of --workers "
                       "processes, or the scheduler at ADDRESS (tcp://HOST:8786)")
    sweep.add_argument("-o", "--output", metavar="DIR", help="the sweep's directory (default: output/<name>)")
    sweep.add_argument("--gifs", action="store_true", help="draw every run's GIFs too")
    sweep.add_argument("--force", action="store_true", help="rerun the runs that already finished")
    sweep.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no closing line")
    sweep.set_defaults(command=cmd_sweep, subject_from="scenario")


def cmd_sweep(args):
    """`simnet sweep`: run a sweep (see :mod:`simnet.experiments.sweep`); returns the exit code."""
    from .experiments.backends import DaskWorkers, LocalWorkers, dask_client, default_workers
    from .experiments.plan import parse_grid, parse_seeds, plan
    from .experiments.sweep import run_sweep
    grid = parse_grid(args.grid)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    the_plan = plan(args.scenario, grid, seeds, args.gifs)
    workers = args.workers or default_workers()
    client = dask_client(args.dask, workers) if args.dask else None
    try:
        backend = DaskWorkers(client) if client is not None else LocalWorkers(workers)
        result = run_sweep(the_plan, args.output, backend, gifs=args.gifs, force=args.force,
                           show_progress=not args.quiet and sys.stderr.isatty())
    finally:
        if client is not None:
            cluster = client.cluster if args.dask == "local" else None
            client.close()
            if cluster is not None:
                cluster.close()
    counts = ", ".join(f"{n} {status}" for status, n in result.counts.items())
    total = sum(result.counts.values())
    resumed = f", {result.resumed} kept from before" if result.resumed else ""
    where = f"{result.directory}{os.sep}"
    if result.interrupted:
        print(f"simnet: sweep {the_plan.scenario.name}: interrupted with {total} of {len(the_plan)} runs done "
              f"({counts}); run the same command again to finish it -> {where}", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"sweep {the_plan.scenario.name}: {total} runs: {counts}{resumed} -> {where}")
    return 0 if set(result.counts) <= {"ok"} else 1


# ---- compare -----------------------------------------------------------------

def _compare_parser(commands):
    compare = commands.add_parser("compare", help="compare runs: settings, first divergence, topology, curves")
    compare.add_argument("run_dirs", metavar="RUN_DIR|SWEEP_DIR", nargs="+")
    compare.add_argument("-o", "--output", metavar="DIR", default="output/compare",
                         help="where compare.png and compare.html go (default: output/compare)")
    compare.add_argument("--format", choices=("text", "json"), default="text", dest="fmt")
    compare.set_defaults(command=cmd_compare, subject_from="run_dirs")


def cmd_compare(args):
    """`simnet compare`: compare runs (see :mod:`simnet.experiments.compare`); returns the exit code."""
    import json
    from .experiments.compare import compare
    result = compare(args.run_dirs, args.output)
    if args.fmt == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.text())
        print(f"wrote {', '.join(map(str, result.written))}")
    return 0


# ---- serve and play: the web server of the serve extra ------------------------------

_SERVE_EXTRA = "simnet: error: this command needs the web server: pip install 'simnet[serve]' (Starlette and uvicorn)"


def _serving_commands(commands):
    def port(text):
        value = _int_at_least(0, "a port")(text)
        if value > 65535:
            raise argparse.ArgumentTypeError(f"a port is at most 65535, got {text}")
        return value

    def web_options(command):
        command.add_argument("--port", type=port, default=8000, help="default: 8000 (0: any free port)")
        command.add_argument("--host", default="127.0.0.1",
                             help="address to listen on (default: 127.0.0.1, this machine only)")
        command.add_argument("--no-browser", action="store_true", help="do not open a browser")

    serve = commands.add_parser("serve", help="serve a directory of runs in the browser, following runs live")
    serve.add_argument("directory", metavar="DIR", nargs="?", default="output")
    web_options(serve)
    serve.set_defaults(command=cmd_serve, subject_from="directory")

    play = commands.add_parser("play", help="train a scenario live in the browser, steering it by hand")
    play.add_argument("scenario", metavar="SCENARIO.toml")
    play.add_argument("-o", "--output", metavar="DIR", help="where the session's trace goes "
                      "(default: output/<scenario name>-play)")
    play.add_argument("--engine", choices=("actor", "fast"), help="override the scenario's engine")
    web_options(play)
    play.set_defaults(command=cmd_play, subject_from="scenario")


def _server():
    """simnet.serving.app, or None (having said what to install) without the serve extra."""
    try:
        from .serving import app
    except ImportError:
        print(_SERVE_EXTRA, file=sys.stderr)
        return None
    return app


def cmd_serve(args):
    """`simnet serve`: the runs under DIR in the browser, until Ctrl-C; returns the exit code."""
    app = _server()
    if app is None:
        return 2
    if not Path(args.directory).is_dir():
        raise InputError(args.directory, "DIR", "no such directory")
    return app.start(app.serve_app(Path(args.directory)), app.listen(args.host, args.port),
                     open_browser=not args.no_browser, what="simnet serve")


def cmd_play(args):
    """`simnet play`: a live session of a scenario in the browser, until Ctrl-C; returns the exit code."""
    app = _server()
    if app is None:
        return 2
    from .serving.session import PlaySession
    sock = app.listen(args.host, args.port)  # before the session: an address in use leaves nothing behind
    try:
        session = PlaySession(args.scenario, args.output, engine=args.engine)
    except BaseException:
        sock.close()
        raise
    print(f"simnet play: the session records into {session.directory}{os.sep}", flush=True)
    return app.start(app.play_app(session), sock, open_browser=not args.no_browser, what="simnet play",
                     on_exit=session.close)
