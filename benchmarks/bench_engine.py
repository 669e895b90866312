"""The engines on micrograd's moons task and on networks of 300 to 100,000 connections.

    python3 benchmarks/bench_engine.py [--quick]

References, measured in the same run: micrograd 0.1.0 for the actor engine
(``pip install micrograd==0.1.0``; without it those ratios are left out, with
a note) and a hand-written numpy MLP, or for a random DAG its numpy version
with one dense masked matrix per wave, for the fast engine.

Per-step times are steady-state: the slope between a short and a long run,
each the best of a few, so that what a run pays once (compiling the network,
opening a trace) is left out; it is reported on its own.  The large networks
are trained on, run after run, rather than rebuilt for every run.
"""
import math
import os
import random
import sys
import tempfile
import time

# One BLAS thread, before numpy loads: on a busy machine a BLAS thread waiting for a
# core stalls a matrix product for a whole time slice, and every figure here is a
# ratio between runs that use the same BLAS anyway.  Set OPENBLAS_NUM_THREADS to override.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

import simnet as sn  # noqa: E402
from simnet.scenario.datasets import moons  # noqa: E402
from simnet.core.events import Event, EventBatch  # noqa: E402
from simnet.trace.snapshot import mean_rows  # noqa: E402
from simnet.trace.schema import kinds_for  # noqa: E402

LR, L2 = 0.1, 1e-4
MOONS = [2, 16, 16, 1]


def moons_data():
    """micrograd's demo data: 100 points of the two moons, noise 0.1."""
    return moons(100, 0.1, np.random.default_rng(0))


# ---- timing ------------------------------------------------------------------

def per_step(run, short, long, repeats=3):
    """(seconds per step, fixed seconds per run) of run(steps), from a short and a long run."""
    return per_step_in_turns([(run, short, long)], repeats)[0]


def per_step_in_turns(runs, repeats=3, after_round=None):
    """per_step of each (run, short, long), timed in turns (each run's short and long run, then the next
    run's, `repeats` rounds, and `after_round()` after each), so that a change in the machine's load falls
    on all of them alike.  A run is timed by the clock it names as its ``clock`` attribute, if any (wall
    time otherwise)."""
    best = [[math.inf, math.inf] for _ in runs]
    for _ in range(repeats):
        for times, (run, short, long) in zip(best, runs):
            for i, steps in enumerate((short, long)):
                times[i] = min(times[i], seconds_of(run, steps))
        if after_round is not None:
            after_round()
    out = []
    for (t_short, t_long), (_, short, long) in zip(best, runs):
        slope = (t_long - t_short) / (long - short)
        out.append((slope, max(t_short - short * slope, 0.0)))
    return out


def seconds_of(run, steps):
    clock = getattr(run, "clock", time.perf_counter)
    start = clock()
    run(steps)
    return clock() - start


# ---- the runs ------------------------------------------------------------------

def simnet_run(make_net, engine, X, Y, recorder=None, lr=LR):
    """run(steps): train make_net() for that many steps, with a fresh recorder."""
    def run(steps):
        net = make_net()
        with tempfile.TemporaryDirectory() as directory:
            rec = recorder(directory) if recorder else None
            net.train(X, Y, steps=steps, lr=lr, loss="hinge", l2=L2, engine=engine, recorder=rec)
            if hasattr(rec, "close"):
                rec.close()
    return run


class ReadBack(sn.EventLog):
    """An EventLog whose events are all turned into Event objects when the run ends."""

    def close(self):
        return self.events


UPDATES_KINDS = kinds_for("updates")
STEP_KINDS = ("step_begin", "loss", "step_end")
ALONE = "`updates` trace: its Recorder alone, no engine (one step's events fed from memory again and again; CPU time)"


class UpdatesSink:
    """Takes the events of `kinds` (those an `updates` trace listens to) and drops them: what building and
    handing them out costs the engine and the trainer."""

    def __init__(self, kinds=UPDATES_KINDS):
        self.kinds = kinds

    def __call__(self, event):
        pass

    def on_batch(self, batch):
        pass


class MeansSink(UpdatesSink):
    """Takes the same events and, as an `updates` trace must, each fire batch's per-neuron batch means, then
    drops it all: what such a trace costs at the least, before it stores anything."""

    def on_batch(self, batch):
        if batch.kind == "fire":
            for column in batch.data.values():
                mean_rows(column)


def trace(detail):
    return lambda directory: sn.Recorder(directory, detail=detail)


class Capture:
    """Keeps what the bus delivers as it comes, single events and whole batches, of the kinds a recorder hears."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.items = []

    def __call__(self, event):
        self.items.append(event)

    def on_batch(self, batch):
        self.items.append(batch)


def feed(recorder, items):
    """Hand `items` (events and batches, as a Capture kept them) to `recorder` as the bus would."""
    for item in items:
        if isinstance(item, EventBatch):
            recorder.on_batch(item)
        else:
            recorder(item)


def recorder_alone(make_net, X, Y):
    """run(steps): an `updates` trace's Recorder fed from memory the events of a fast-engine run of make_net(),
    its first step's again and again (numbered as the steps that would follow), with no engine in between:
    what the Recorder itself takes per step, apart from building and handing out the events.

    Timed in the CPU time of this process: fed this fast, the Recorder waits for its trace writer, which
    keeps up with a real run but not with this loop."""
    capture = Capture(UPDATES_KINDS)
    make_net().train(X, Y, steps=1, lr=LR, loss="hinge", l2=L2, engine="fast", recorder=capture)
    *items, end = capture.items
    announced = [item for item in items if item.step == 0]
    step = items[len(announced):]
    span = end.seq - step[0].seq  # events per step
    runs = {}  # steps -> the items of such a run, built on its first call (the timings keep a later call's)

    def again(item, k):
        seq, number = item.seq + k * span, item.step + k
        if isinstance(item, EventBatch):
            return EventBatch(seq, number, item.phase, item.kind, item.neurons, item.sources, item.targets, item.data)
        return Event(seq, number, item.phase, item.kind, item.neuron, item.source, item.target, item.data)

    def run(steps):
        if steps not in runs:
            runs[steps] = announced + [again(item, k) for k in range(steps) for item in step] + [
                Event(end.seq + (steps - 1) * span, steps, end.phase, end.kind, data={**end.data, "steps": steps})]
        with tempfile.TemporaryDirectory() as directory:
            feed(sn.Recorder(directory), runs[steps])  # run_end closes it
    run.clock = time.process_time
    return run


def micrograd_run(X, Y):
    """run(steps) of micrograd's own demo loop (hinge loss, L2 1e-4, SGD) from a fresh model, or None."""
    try:
        from micrograd.nn import MLP
    except ImportError:
        return None
    xs, ys = X.tolist(), (Y[:, 0] * 2 - 1).tolist()

    def run(steps):
        random.seed(1337)  # micrograd draws its initial weights from the random module
        model = MLP(2, [16, 16, 1])
        for _ in range(steps):
            scores = [model(x) for x in xs]
            losses = [(1 + -y * s).relu() for y, s in zip(ys, scores)]
            loss = sum(losses) * (1.0 / len(losses)) + L2 * sum(p * p for p in model.parameters())
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data -= LR * p.grad
    return run


def numpy_mlp(sizes, X, Y, seed=1):
    """run(steps) of a hand-written numpy MLP: relu hidden layers, linear output, hinge + L2, SGD."""
    t = np.where(Y > 0, 1.0, -1.0)

    def run(steps):
        rng = np.random.default_rng(seed)
        layers = [(rng.normal(0, math.sqrt(2 / m), (m, n)), np.zeros(n)) for m, n in zip(sizes, sizes[1:])]
        for _ in range(steps):
            acts = [X]
            for i, (W, b) in enumerate(layers):
                z = acts[-1] @ W + b
                acts.append(np.maximum(z, 0.0) if i < len(layers) - 1 else z)
            P = acts[-1]
            margin = 1.0 - t * P
            active = margin > 0
            # sums over sizes rather than np.mean, whose argument handling costs more than these sums
            loss = np.where(active, margin, 0.0).sum() / P.size + 0.5 * L2 * sum((W * W).sum() for W, _ in layers)
            accuracy = np.count_nonzero((P > 0) == (Y > 0)) / P.size
            d = np.where(active, -t, 0.0) / P.size
            updated = []
            for i in range(len(layers) - 1, -1, -1):
                W, b = layers[i]
                gW, gb = acts[i].T @ d + L2 * W, d.sum(axis=0)
                if i:
                    d = (d @ W.T) * (acts[i] > 0)
                updated.append((W - LR * gW, b - LR * gb))
            layers = updated[::-1]
        return float(loss), float(accuracy)
    return run


# ---- network families ------------------------------------------------------------

def layered_sizes(connections):
    """[2, w, w, 1] with about `connections` connections (w² + 3w)."""
    w = max(1, round((-3 + math.sqrt(9 + 4 * connections)) / 2))
    return [2, w, w, 1]


def random_dag(connections, spread=4, seed=0, levels=6):
    """2 inputs, about spread·√connections hidden neurons in `levels` levels, 1 output, random forward edges.

    Every neuron gets one connection from the level just before its own, so
    the levels are the waves; the rest are drawn among all pairs from an
    earlier level to a later one (skip connections included): with spread 4
    about one pair in seven (the fast engine fills dense blocks), with spread
    20 about one in 170 (it gathers sparsely).  Neurons are inserted level by
    level; returns (network, [(first, last + 1) insertion index of each level
    after the inputs]).
    """
    rng = np.random.default_rng(seed)
    hidden = max(levels, round(spread * math.sqrt(connections)))
    level = np.concatenate([[0, 0], np.sort(rng.integers(1, levels + 1, hidden)), [levels + 1]])
    level = np.searchsorted(np.unique(level), level)  # no empty level in between
    starts = np.searchsorted(level, np.arange(level[-1] + 2))
    net = sn.Network(seed=seed)
    names = ["x0", "x1"] + [f"h{i}" for i in range(hidden)] + ["y0"]
    for j, name in enumerate(names):
        role = "input" if level[j] == 0 else "output" if j == len(names) - 1 else "hidden"
        net.add_neuron(name, role=role, activation="linear" if role == "output" else "relu")
    edges = {(int(rng.integers(starts[level[j] - 1], starts[level[j]])), j) for j in range(2, len(names))}
    before = starts[level].astype(float)  # how many neurons a neuron can hear from
    while len(edges) < connections:  # uniform over the pairs, drawn again where one is drawn twice
        targets = rng.choice(len(names), size=connections - len(edges), p=before / before.sum())
        sources = (rng.random(len(targets)) * before[targets]).astype(int)
        edges.update(zip(sources.tolist(), targets.tolist()))
    fan_in = np.bincount([j for _, j in edges], minlength=len(names))
    for i, j in sorted(edges, key=lambda e: (e[1], e[0])):
        net.connect(names[i], names[j], weight=float(rng.normal(0, math.sqrt(2 / fan_in[j]))))
    return net, list(zip(starts[1:-1].tolist(), starts[2:].tolist()))


def numpy_masked(net, levels, X, Y):
    """run(steps) of a numpy version of `net`: one dense matrix per level, zero where there is no connection."""
    index = {name: i for i, name in enumerate(net.neurons)}
    waves = []
    for lo, hi in levels:
        mask = np.zeros((hi - lo, lo))
        W = np.zeros_like(mask)
        for n in list(net.neurons.values())[lo:hi]:
            for c in n.incoming:
                mask[index[n.name] - lo, index[c.source.name]] = 1.0
                W[index[n.name] - lo, index[c.source.name]] = c.weight
        waves.append((lo, hi, mask, W))
    t = np.where(Y > 0, 1.0, -1.0).T
    n = len(net.neurons)

    def run(steps):
        Ws = [W.copy() for *_, W in waves]
        bs = [np.zeros((hi - lo, 1)) for lo, hi, *_ in waves]
        for _ in range(steps):
            A = np.zeros((n, X.shape[0]))
            A[:2] = X.T
            for (lo, hi, _, _), W, b in zip(waves, Ws, bs):
                z = W @ A[:lo] + b
                A[lo:hi] = z if hi == n else np.maximum(z, 0.0)
            P = A[n - 1:]
            margin = 1.0 - t * P
            active = margin > 0
            loss = np.mean(np.where(active, margin, 0.0)) + 0.5 * L2 * sum((W * W).sum() for W in Ws)
            accuracy = np.mean((P > 0) == (t > 0))
            dA = np.zeros_like(A)
            dA[n - 1:] = np.where(active, -t, 0.0) / P.size
            for k in range(len(waves) - 1, -1, -1):
                lo, hi, mask, _ = waves[k]
                dz = dA[lo:hi] * (A[lo:hi] > 0) if hi < n else dA[lo:hi]
                gW = (dz @ A[:lo].T) * mask + L2 * Ws[k]
                dA[:lo] += Ws[k].T @ dz
                Ws[k] = Ws[k] - LR * gW
                bs[k] = bs[k] - LR * dz.sum(axis=1, keepdims=True)
        return float(loss), float(accuracy)
    return run


# ---- the section ---------------------------------------------------------------

def fit_slope(xs, ys):
    """Slope of log(ys) against log(xs): 1 is linear growth."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def verdict(value, target, at_least):
    if value is None:
        return "n/a"
    return "met" if (value >= target if at_least else value <= target) else "NOT met"


def moons_part(quick):
    X, Y = moons_data()
    repeats = 2 if quick else 3
    short, long = (20, 80) if quick else (40, 240)  # steps of the runs a slope is taken between
    make = lambda: sn.Network.layered(MOONS, seed=1)  # noqa: E731
    micrograd = micrograd_run(X, Y)
    micrograd_steps = []  # seconds of single micrograd steps, taken between the actor engine's rounds
    reference = (numpy_mlp(MOONS, X, Y), 10 * short, 10 * long)
    runs = [  # engine, subscriber, recorder factory, how many more steps than the slow runs
        ("actor", "no subscriber", None, 1),
        ("actor", "EventLog keeping every event", lambda d: sn.EventLog(), 1),
        ("actor", "EventLog, every event read back as an Event", lambda d: ReadBack(), 1),
        ("actor", "the `updates` kinds (all but messages), dropped", lambda d: UpdatesSink(), 1),
        ("actor", "`updates` trace", trace("updates"), 1),
        ("actor", "`messages` trace", trace("messages"), 1),
        ("fast", "no subscriber", None, 10),
        ("fast", "EventLog keeping every event", lambda d: sn.EventLog(), 2),
        ("fast", "the step events (step_begin, loss, step_end), dropped",
         lambda d: UpdatesSink(STEP_KINDS), 10),
        ("fast", "the step events and the fire batches, dropped", lambda d: UpdatesSink((*STEP_KINDS, "fire")), 10),
        ("fast", "the `updates` kinds (all but messages), dropped", lambda d: UpdatesSink(), 10),
        ("fast", "the `updates` kinds, the fire batches' means taken, dropped", lambda d: MeansSink(), 10),
        # enough steps that even the short run outlasts the start of the trace's writer process
        ("fast", "`updates` trace", trace("updates"), 10),
        ("fast", "`messages` trace", trace("messages"), 1),
    ]

    def timed(engine, recorder, more):
        return simnet_run(make, engine, X, Y, recorder), more * short, more * long

    step_micrograd = (lambda: micrograd_steps.append(seconds_of(micrograd, 1))) if micrograd else None
    measured = []  # (engine, subscriber, seconds, fixed seconds)
    for engine, what, recorder, more in runs:
        if engine == "actor":
            (seconds, fixed), = per_step_in_turns([timed(engine, recorder, more)], repeats, after_round=step_micrograd)
            measured.append((engine, what, seconds, fixed))
    # the fast engine's rows and the numpy MLP in turns, round after round, so that the differences
    # between rows (where the time goes) are not changes in the machine's load
    fast_rows = [(what, timed(engine, recorder, more)) for engine, what, recorder, more in runs if engine == "fast"]
    fast_rows.append((ALONE, (recorder_alone(make, X, Y), 10 * short, 10 * long)))
    *fast_times, (numpy_step, _) = per_step_in_turns([run for _, run in fast_rows] + [reference], repeats + 2)
    measured += [("fast", what, seconds, fixed) for (what, _), (seconds, fixed) in zip(fast_rows, fast_times)]
    micro = float(np.median(micrograd_steps)) if micrograd else None
    targets = {("actor", "no subscriber"): (1000, True), ("actor", "EventLog keeping every event"): (500, True),
               ("fast", "no subscriber"): (1.5, False), ("fast", "`updates` trace"): (2.0, False)}
    lines = [
        "### micrograd's moons task",
        "",
        "100 points (noise 0.1), 2-16-16-1 ReLU, hinge loss + 1e-4 L2, full batch, SGD: one training step.",
        "",
        "- micrograd 0.1.0: " + (f"{micro * 1e3:.1f} ms/step, the median of {len(micrograd_steps)} steps of its "
                                   "demo loop, one after each round of the actor engine's timings; most of it is "
                                   "Python's garbage collector, which makes single steps vary by a third" if micro
                                   else "not installed (`pip install micrograd==0.1.0`), actor ratios left out"),
        f"- hand-written numpy MLP: {numpy_step * 1e6:.1f} µs/step, timed in turns with the fast engine's rows",
        "",
        "| engine | subscriber | µs/step | once per run | against | ratio | target | |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    fast = {}  # subscriber -> the fast engine's ratio to the numpy MLP
    for engine, what, seconds, fixed in measured:
        if engine == "actor":
            ratio, against = (micro / seconds if micro else None), "micrograd (speed-up)"
            shown = f"{ratio:,.0f}×" if ratio else "n/a"
        else:
            ratio, against = seconds / numpy_step, "numpy MLP (time)"
            shown = f"{ratio:.2f}×"
            fast[what] = ratio
        target, at_least = targets.get((engine, what), (None, None))
        goal = "" if target is None else (f"≥ {target:,}×" if at_least else f"≤ {target}×")
        met = "" if target is None else verdict(ratio, target, at_least)
        lines.append(f"| {engine} | {what} | {seconds * 1e6:,.1f} | {fixed * 1e3:.1f} ms | {against} | {shown} "
                     f"| {goal} | {met} |")
    bare, stepped, fired, emitted, averaged, traced, alone = (fast[what] for what in (
        "no subscriber", "the step events (step_begin, loss, step_end), dropped",
        "the step events and the fire batches, dropped", "the `updates` kinds (all but messages), dropped",
        "the `updates` kinds, the fire batches' means taken, dropped", "`updates` trace", ALONE))
    lines += ["", "An EventLog keeps each message batch with its values deferred, as the weights and the sender's "
                  "vector, multiplied when the batch is first read: the row that reads every event back pays for it."]
    lines += ["", f"Where the `updates` trace's time goes, in numpy-MLP steps: the fast engine {bare:.2f}, "
                  f"building and handing out the events it listens to {emitted - bare:.2f} (the step events "
                  f"{stepped - bare:.2f}, the two fire batches {fired - stepped:.2f}, the two update batches "
                  f"{emitted - fired:.2f}), "
                  f"the per-neuron batch means the trace keeps of each step {averaged - emitted:.2f}, "
                  f"the rest of recording {traced - averaged:.2f} (the Recorder in the run's process; SQLite "
                  f"works in the trace writer's).  The Recorder alone, fed the events from memory in a tight loop, "
                  f"takes {alone:.2f} of this process's CPU time (its means included): the fast engine and it come "
                  f"to {bare + alone:.2f} before any event is built or handed out."]
    return lines


def large_part(quick):
    X, Y = moons_data()
    sizes = layered_sizes(100_000)
    net = sn.Network.layered(sizes, seed=1)
    steps = (3, 13) if quick else (5, 45)
    fast, fixed = per_step(simnet_run(lambda: net, "fast", X, Y, lr=0.01), *steps, 2)
    dense, _ = per_step(numpy_mlp(sizes, X, Y), *steps, 2)
    return [
        "### 100,000 connections, batch 100",
        "",
        f"Network.layered({sizes}): {len(net.connections):,} connections, moons data (100 samples).",
        "",
        "| figure | value | target | |",
        "|---|---:|---:|---|",
        f"| fast engine, steps per second | {1 / fast:,.0f} | ≥ 20 | {verdict(1 / fast, 20, True)} |",
        f"| fast engine / numpy dense MLP, time per step | {fast / dense:.2f}× "
        f"({fast * 1e3:.1f} ms against {dense * 1e3:.1f} ms) | ≤ 3× | {verdict(fast / dense, 3, False)} |",
        f"| compiling the network (once per run and per topology change) | {fixed * 1e3:.0f} ms | | |",
    ]


FAMILIES = {
    "layered": "`Network.layered([2, w, w, 1])`; numpy: the dense MLP",
    "random DAG": "about 4·√n hidden neurons in 6 levels, random forward edges between any two levels (skip "
                  "connections), one pair in seven: the fast engine fills dense blocks; numpy: one dense masked "
                  "matrix per level",
    "sparse random DAG": "the same with about 20·√n hidden neurons, one pair in 170: the fast engine gathers "
                         "sparsely; numpy: none (a dense equivalent would be mostly zeros)",
}


def scaling_part(quick):
    X, Y = moons_data()
    counts = [300, 3_000, 30_000, 100_000] if quick else [300, 1_000, 3_000, 10_000, 30_000, 100_000]
    lines = ["### Scaling: time per step against connections", "", "Batch 100 (moons)."]
    lines += [f"- {family}: {what}" for family, what in FAMILIES.items()]
    lines += ["", "| network | neurons | connections | actor ms/step | fast ms/step | numpy ms/step | fast / numpy |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    slopes = []
    for family in FAMILIES:
        times, sizes = {"actor": [], "fast": [], "numpy": []}, []
        for count in counts:
            reference = None
            if family == "layered":
                net = sn.Network.layered(layered_sizes(count), seed=1)
                reference = numpy_mlp(layered_sizes(count), X, Y)
            elif family == "random DAG":
                net, levels = random_dag(count)
                reference = numpy_masked(net, levels, X, Y)
            else:
                net, _ = random_dag(count, spread=20)
            n = len(net.connections)
            sizes.append(n)
            actor, _ = per_step(simnet_run(lambda: net, "actor", X, Y, lr=0.01), *((2, 4) if n > 20_000 else (2, 8)), 2)
            fast, _ = per_step(simnet_run(lambda: net, "fast", X, Y, lr=0.01), 3, 13 if quick else 23, 2)
            dense = per_step(reference, 3, 13 if quick else 23, 2)[0] if reference else None
            for key, value in (("actor", actor), ("fast", fast), ("numpy", dense)):
                times[key].append(value)
            shown = f"{dense * 1e3:,.2f} | {fast / dense:.2f}×" if dense else "— | —"
            lines.append(f"| {family} | {len(net.neurons):,} | {n:,} | {actor * 1e3:,.2f} | {fast * 1e3:,.2f} "
                         f"| {shown} |")
        upper = [i for i, n in enumerate(sizes) if n >= 3_000]
        for key, values in times.items():
            if None not in values:
                slopes.append((family, key, fit_slope([sizes[i] for i in upper], [values[i] for i in upper]),
                               fit_slope(sizes, values), values[0] / sizes[0] * 1e6, values[-1] / sizes[-1] * 1e6))
    lines += [
        "",
        "Growth: the log-log slope of time per step against connections (1.00 is linear), and the time per "
        "connection at the smallest and the largest size:",
        "",
        "| network | engine | slope from 3,000 up | slope over all | µs per connection, smallest | largest |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for family, key, upper_slope, all_slope, first, last in slopes:
        lines.append(f"| {family} | {key} | {upper_slope:.2f} | {all_slope:.2f} | {first:.3f} | {last:.3f} |")
    return lines


def section(quick=False):
    """The engine benchmarks as a markdown section."""
    lines = ["## Engines", ""]
    for part in (moons_part, large_part, scaling_part):
        lines += part(quick) + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
