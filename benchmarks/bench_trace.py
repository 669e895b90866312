"""The trace store: write speed, bytes per event, replay speed, network_at cost, memory of long runs.

Each figure is set against a reference measured in the same run: bare SQLite
inserts for write speed, the JSON-lines export for size, the live training
for replay speed, network_at near the start for network_at near the end, and
a short recorded run for the memory of a long one.

    python3 benchmarks/bench_trace.py [--quick]
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simnet as sn  # noqa: E402
from simnet.core.events import EventBatch  # noqa: E402
from simnet.trace.export import export  # noqa: E402
from simnet.trace.recorder import FLUSH_BYTES  # noqa: E402
from simnet.trace.schema import kinds_for  # noqa: E402
from bench_engine import Capture, feed, per_step, simnet_run  # noqa: E402

EVENTS_PER_SECOND_TARGET = 500_000
NETWORK_AT_RATIO_TARGET = 3.0
MEMORY_RATIO_TARGET = 1.3


def network(sizes=(4, 32, 32, 2), seed=0, batch=32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, sizes[0]))
    Y = np.tanh(X @ rng.normal(size=(sizes[0], sizes[-1])))
    return sn.Network.layered(list(sizes), hidden="tanh", seed=seed), X, Y


def captured_run(engine, steps, detail):
    net, X, Y = network()
    capture = Capture(kinds_for(detail))
    net.train(X, Y, steps=steps, lr=0.01, engine=engine, recorder=capture)
    return capture.items


def write_speed(items, directory, detail, **options):
    """(events written per second, events, file bytes) for feeding `items` into a Recorder."""
    recorder = sn.Recorder(directory, detail=detail, **options)
    wanted = [item for item in items if recorder.kinds is None or item.kind in recorder.kinds]
    count = sum(len(item) if isinstance(item, EventBatch) else 1 for item in wanted)
    start = time.perf_counter()
    feed(recorder, wanted)
    recorder.close()
    seconds = time.perf_counter() - start
    return count / seconds, count, os.path.getsize(Path(directory) / "trace.sqlite")


def bare_sqlite_rows_per_second(rows, directory):
    """The same number of 7-column rows inserted with executemany, 20,000 per transaction, WAL, unsynced."""
    path = Path(directory) / "bare.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 16384")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, step INTEGER, kind INTEGER, subject INTEGER, v1, v2, v3)")
    data = [(i, i // 1000, 20, i % 1000, 0.1 * i, 0.2 * i, 0.3 * i) for i in range(rows)]
    start = time.perf_counter()
    for first in range(0, rows, 20_000):
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", data[first:first + 20_000])
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    db.close()
    return rows / seconds


def network_at_seconds(trace, step, other, repeats=15):
    """Best time of trace.network_at(step), each right after network_at(other) so no replay carries over."""
    times = []
    for _ in range(repeats):
        trace.network_at(other)
        times.append(_timed(lambda: trace.network_at(step)))
    return min(times)


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


MEMORY_RUN = textwrap.dedent("""
    import resource, sys, tempfile, tracemalloc
    import numpy as np
    import simnet as sn
    import simnet.engines.fast, simnet.trace.recorder  # modules load before the measurement starts
    steps, recorded, batch = int(sys.argv[1]), sys.argv[2] == "recorded", int(sys.argv[4])
    sizes = [int(size) for size in sys.argv[3].split(",")]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch, sizes[0])); Y = np.tanh(X[:, :sizes[-1]])
    net = sn.Network.layered(sizes, hidden="tanh", seed=0)
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        net.train(X, Y, steps=steps, lr=0.01, engine="fast", recorder=sn.Recorder(tmp, every=10) if recorded else None)
    # VmHWM: this process's own peak resident set (ru_maxrss would carry the parent's over exec);
    # the trace writer, a child it has waited for, has its peak in RUSAGE_CHILDREN (kB on Linux)
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    writer = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if recorded else 0
    print(tracemalloc.get_traced_memory()[1], int(hwm.split()[1]) * 1024 + writer * 1024)
""")


def peak_memory(steps, recorded=True, sizes=(4, 16, 16, 2), batch=32):
    """(tracemalloc peak, peak RSS of the run plus its trace writer) in bytes of a `steps`-step run of a
    layered tanh network of `sizes`, recorded or not, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEMORY_RUN, str(steps), "recorded" if recorded else "bare",
                          ",".join(map(str, sizes)), str(batch)],
                         capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    traced, rss = out.stdout.split()
    return int(traced), int(rss)


def section(quick=False):
    """The markdown section of the trace benchmark."""
    lines = ["## Trace store", ""]
    steps = 60 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for engine in ("actor", "fast"):
            streams = {detail: captured_run(engine, steps, detail) for detail in ("updates", "messages")}
            for detail, options in (("updates", {}), ("messages", {"samples": False}), ("messages", {})):
                items = streams[detail]
                directory = tmp / f"{engine}-{detail}-{len(options)}"
                speed, count, size = write_speed(items, directory, detail, **options)
                jsonl = directory / "events.jsonl"
                with sn.open_trace(directory) as trace:
                    export(trace, "jsonl", jsonl)
                label = detail + (" (means only)" if options else " (means + 32 samples per vector)"
                                  if detail == "messages" else "")
                rows.append((engine, label, count, speed, size / count, os.path.getsize(jsonl) / count))
        bare = bare_sqlite_rows_per_second(200_000, tmp)
        lines += [f"4-32-32-2 tanh network (1,216 weights), batch 32, {steps} steps; the events each engine emits "
                  "were captured in memory, then fed to a Recorder (time includes every commit and close). "
                  f"Reference: bare SQLite `executemany` of 7-column rows in the same file settings, "
                  f"{bare:,.0f} rows/s.", "",
                  "| engine | detail | events | events/s written | vs bare SQLite | "
                  "bytes/event | vs JSON lines |",
                  "|---|---|---|---|---|---|---|"]
        for engine, label, count, speed, per_event, jsonl in rows:
            lines.append(f"| {engine} | {label} | {count:,} | {speed:,.0f} | {speed / bare:.2f}x | "
                         f"{per_event:.1f} | {per_event / jsonl:.2f}x |")
        updates = [speed for engine, label, _, speed, _, _ in rows if label == "updates"]
        lines += ["", f"Target: at least {EVENTS_PER_SECOND_TARGET:,} events/s written at the `updates` detail: "
                  + ", ".join(f"{engine} {s:,.0f}: **{'met' if s >= EVENTS_PER_SECOND_TARGET else 'NOT met'}**"
                              for engine, s in zip(("actor", "fast"), updates)) + ".", ""]

        long_steps = 2_000 if quick else 10_000
        net, X, Y = network((2, 8, 8, 1))
        start = time.perf_counter()
        net.train(X, Y, steps=long_steps, lr=0.01, engine="fast",
                  recorder=sn.Recorder(tmp / "long", every=10))
        record_seconds = time.perf_counter() - start
        live_net, _, _ = network((2, 8, 8, 1))
        live_seconds = _timed(lambda: live_net.train(X, Y, steps=long_steps, lr=0.01, engine="fast"))
        with sn.open_trace(tmp / "long") as trace:
            late, worst = long_steps - 100, long_steps - 1
            t_first, t_late = network_at_seconds(trace, 1, late), network_at_seconds(trace, late, 1)
            t_99, t_worst = network_at_seconds(trace, 99, late), network_at_seconds(trace, worst, 1)
            replay_steps = min(long_steps, 1_000 if quick else 5_000)
            replay_seconds = _timed(lambda: sum(1 for _ in trace.snapshots(range(1, replay_steps + 1))))
            size = os.path.getsize(trace.path)
        ratio = t_late / t_first
        lines += [f"A {long_steps:,}-step recorded run (2-8-8-1, fast engine, `updates` detail, keyframes every "
                  f"100 steps): {size / 1e6:.1f} MB, recorded in {record_seconds:.1f} s against "
                  f"{live_seconds:.1f} s unrecorded ({record_seconds / live_seconds:.1f}x).", "",
                  "| query | ms |", "|---|---|",
                  f"| `network_at(1)` | {t_first * 1e3:.2f} |",
                  f"| `network_at({late})` | {t_late * 1e3:.2f} |",
                  f"| `network_at(99)` (99 steps after a keyframe) | {t_99 * 1e3:.2f} |",
                  f"| `network_at({worst})` (99 steps after a keyframe) | {t_worst * 1e3:.2f} |",
                  f"| replay: snapshots of steps 1-{replay_steps:,} | {replay_seconds * 1e3:.0f} |", "",
                  f"`network_at({late})` / `network_at(1)` = {ratio:.2f}x; "
                  f"`network_at({worst})` / `network_at(99)` = {t_worst / t_99:.2f}x. "
                  f"Replay: {replay_steps / replay_seconds:,.0f} snapshot steps/s, "
                  f"{(replay_steps / replay_seconds) / (long_steps / live_seconds):.2f}x the live training's "
                  f"{long_steps / live_seconds:,.0f} steps/s.", "",
                  f"Target: `network_at({late})` at most {NETWORK_AT_RATIO_TARGET:g}x `network_at(1)`: "
                  f"**{'met' if ratio <= NETWORK_AT_RATIO_TARGET else 'NOT met'}**.", ""]

    short, long_ = (300, 3_000) if quick else (1_000, 10_000)
    (traced_short, rss_short), (traced_long, rss_long) = peak_memory(short), peak_memory(long_)
    bare_short, bare_long = peak_memory(short, recorded=False)[0], peak_memory(long_, recorded=False)[0]
    traced_ratio, rss_ratio = traced_long / traced_short, rss_long / rss_short
    # what recording adds to the run's own peak: the training loop keeps each step's loss for the History
    # it returns, which grows with the run whether anything records it or not
    store_short, store_long = traced_short - bare_short, traced_long - bare_long
    store_ratio = store_long / store_short
    lines += ["Peak memory of a run (4-16-16-2, fast engine, fresh process each), traced by tracemalloc:", "",
              "| steps | recorded | not recorded | the recording's share | peak RSS, recorded (run + trace writer) |",
              "|---:|---:|---:|---:|---:|",
              f"| {short:,} | {traced_short / 1e6:.2f} MB | {bare_short / 1e6:.2f} MB | {store_short / 1e6:.2f} MB "
              f"| {rss_short / 1e6:.0f} MB |",
              f"| {long_:,} | {traced_long / 1e6:.2f} MB | {bare_long / 1e6:.2f} MB | {store_long / 1e6:.2f} MB "
              f"| {rss_long / 1e6:.0f} MB |",
              f"| ratio | {traced_ratio:.2f}x | {bare_long / bare_short:.2f}x | {store_ratio:.2f}x | {rss_ratio:.2f}x |",
              "",
              f"The unrecorded run grows by the History `train` returns, "
              f"{(bare_long - bare_short) / (long_ - short):.0f} bytes a step.", "",
              f"Target: the recording's memory at most {MEMORY_RATIO_TARGET:g}x from {short:,} to {long_:,} steps: "
              f"{store_ratio:.2f}x, peak RSS {rss_ratio:.2f}x: "
              f"**{'met' if max(store_ratio, rss_ratio) <= MEMORY_RATIO_TARGET else 'NOT met'}**; "
              f"the whole recorded run's traced peak: {traced_ratio:.2f}x.", ""]

    large, (steps_short, steps_long) = (2, 315, 315, 1), (10, 30) if quick else (20, 80)
    rss_short = peak_memory(steps_short, sizes=large, batch=100)[1]
    rss_long = peak_memory(steps_long, sizes=large, batch=100)[1]
    rss_bare = peak_memory(steps_long, recorded=False, sizes=large, batch=100)[1]
    connections = sum(m * n for m, n in zip(large, large[1:]))
    updates = 3 * 8 * (connections + sum(large[1:]))  # old, new and grad of every weight and bias, as float64
    lines += [f"A large network, {'-'.join(map(str, large))} ({connections:,} connections, batch 100), whose updates "
              f"take {updates / 1e6:.1f} MB a step (a transaction ends once its values pass {FLUSH_BYTES >> 20} MB): "
              f"peak RSS recorded (run + trace "
              f"writer) {rss_short / 1e6:.0f} MB after {steps_short} steps, {rss_long / 1e6:.0f} MB after "
              f"{steps_long}, against {rss_bare / 1e6:.0f} MB unrecorded ({rss_long / rss_bare:.2f}x).", ""]
    # long enough that the writer, which sets the pace of such a run, has fallen behind in both
    timed_steps = (20, 80) if quick else (40, 160)
    net, X, Y = network(large, batch=100)
    Y = (Y > 0).astype(float)  # simnet_run trains with the hinge loss, which takes 0/1 labels
    (step_bare, start_bare), (step_recorded, start_recorded) = (
        per_step(simnet_run(lambda: net, "fast", X, Y, recorder, lr=0.01), *timed_steps, 2 if quick else 3)
        for recorder in (None, sn.Recorder))
    lines += [f"Its time, recorded against unrecorded: {step_recorded * 1e3:.1f} ms a step against "
              f"{step_bare * 1e3:.1f} ms ({step_recorded / step_bare:.2f}x), and {start_recorded:.2f} s once per run "
              f"(announcing the network to the trace, and starting and finishing its writer) against "
              f"{start_bare:.2f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
