"""Many classes and images: the digits scenario on both engines, its pictures, and training with show=True.

    python3 benchmarks/bench_classes.py [--quick]

Digits is `scenarios/digits.toml` (a 64-32-10 network, batches of 64, a fifth
of the 1,797 digits held out).  Steps per second are steady-state: the slope
between a short and a long run, each the best of a few.  The time per frame is
that of the activations and weights GIFs of the full run, drawing only (the
snapshots read beforehand).  show=True is timed inside a Jupyter kernel (run
with nbclient, as a notebook would): the same training with and without the
live picture, each the best of a few, as a ratio.
"""
import os
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simnet.runner import run  # noqa: E402
from simnet.scenario import execute, load  # noqa: E402
from simnet.scenario.runinfo import trace_image  # noqa: E402
from simnet.trace import open_trace  # noqa: E402
from simnet.viz.frames import Film  # noqa: E402

DIGITS = ROOT / "scenarios" / "digits.toml"
SPIRAL3 = ROOT / "scenarios" / "spiral3.toml"

# the show=True measurement, run in a kernel: {scenario}, {engine}, {steps} and {repeats} filled in
SHOW_CELL = """
import time
import simnet as sn
from simnet.scenario import load
sc = load({scenario!r}).with_overrides(engine={engine!r}, steps={steps!r})
(X, Y), t = sc.dataset(), sc.training

def seconds(show):
    net = sc.build_network()
    start = time.perf_counter()
    net.train(X, Y, steps=t.steps, lr=t.learning_rate, loss=t.loss, optimizer=t.optimizer,
              batch_size=t.batch_size, engine=t.engine, show=show)
    return time.perf_counter() - start

plain = min(seconds(False) for _ in range({repeats}))
shown = min(seconds(True) for _ in range({repeats}))
print(plain, shown)
"""


def best(fn, repeats):
    return min(fn() for _ in range(repeats))


def steps_per_second(engine, short, long, repeats):
    """Steady-state steps per second of digits on `engine`: the slope between a short and a long run."""
    scenario = load(DIGITS)
    data = scenario.parts()

    def timed(steps):
        sc = scenario.with_overrides(steps=steps, engine=engine)
        start = time.perf_counter()
        execute(sc, data=data.train, test=data.test)
        return time.perf_counter() - start

    return (long - short) / (best(lambda: timed(long), repeats) - best(lambda: timed(short), repeats))


def frame_seconds(run_dir):
    """Seconds per frame of the activations and weights pictures of the run in `run_dir`, drawing only."""
    with open_trace(run_dir) as trace:
        film = Film([trace.snapshot(s) for s in trace.steps], image=trace_image(trace))
    out = {}
    for kind in ("activations", "weights"):
        picture = film.picture(kind)
        start = time.perf_counter()
        for i in range(len(film)):
            picture.draw(film.look(i, kind, picture))
        out[kind] = (time.perf_counter() - start) / len(film)
        picture.close()
    return out, len(film)


def show_ratio(scenario, engine, steps, repeats):
    """(seconds without, seconds with show=True) of training `scenario` on `engine` for `steps` (None: the
    scenario's) in a Jupyter kernel."""
    import nbformat
    from nbclient import NotebookClient
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        SHOW_CELL.format(scenario=str(scenario), engine=engine, steps=steps, repeats=repeats))])
    NotebookClient(notebook, timeout=1200, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.output_type == "stream")
    plain, shown = map(float, text.split())
    return plain, shown


def section(quick=False):
    repeats = 2 if quick else 3
    fast = steps_per_second("fast", 20, 120 if quick else 300, repeats)
    actor = steps_per_second("actor", 10, 40 if quick else 100, repeats)
    lines = ["## Many classes: digits and show=True", "",
             f"Command: `python3 benchmarks/run.py --only classes{' --quick' if quick else ''}`", ""]
    with tempfile.TemporaryDirectory() as workdir:
        results = {}
        for engine in ("fast", "actor"):
            if engine == "actor" and quick:
                continue
            result = run(DIGITS, Path(workdir) / engine, engine=engine)
            results[engine] = result
        frames, count = frame_seconds(Path(workdir) / "fast")
    lines += ["| digits (64-32-10, batches of 64) | fast engine | actor engine |", "|---|---|---|",
              f"| steps per second | {fast:,.0f} | {actor:,.1f} |",
              f"| fast / actor | {fast / actor:,.0f}× | 1× |"]
    accuracy = {e: r.outcome.test_accuracy for e, r in results.items()}
    seconds = {e: r.outcome.wall_time for e, r in results.items()}
    lines.append("| held-out accuracy after 300 steps | " + " | ".join(
        f"{accuracy[e]:.1%} (trained in {seconds[e]:.1f} s)" if e in accuracy else "not run (--quick)"
        for e in ("fast", "actor")) + " |")
    lines += ["", f"Pictures of the digits run ({count} frames, drawing only): activations "
              f"{frames['activations'] * 1000:.0f} ms a frame, weights {frames['weights'] * 1000:.0f} ms a frame.",
              ""]
    lines += ["| show=True, in a Jupyter kernel | without | with | ratio (target ≤ 1.2×) |", "|---|---|---|---|"]
    for scenario, engine, steps in ((SPIRAL3, "actor", None), (SPIRAL3, "actor", 7500), (SPIRAL3, "fast", None),
                                    (DIGITS, "fast", None)):
        plain, shown = show_ratio(scenario, engine, steps, repeats)
        sc = load(scenario).with_overrides(steps=steps)
        lines.append(f"| {sc.name}: {'-'.join(map(str, sc.network.layers))}, {sc.training.steps} steps, "
                     f"{engine} engine | {plain:.2f} s | {shown:.2f} s | {shown / plain:.2f}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
