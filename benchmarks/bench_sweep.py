"""Sweeps: runs per second on 1 and 2 local workers and on a Dask LocalCluster of 2, the overhead per run,
and the coordinating process's peak memory for a short sweep against a ten times longer one.

Each sweep runs short runs of a tiny XOR network (no GIFs).  Speed-ups are
set against the same sweep on one local worker, measured in the same run;
the overhead per run is the sweep's time per run and worker beyond the
run's own time (what the worker measured running it, recording and
drawing included), and beyond its training time alone.

    python3 benchmarks/bench_sweep.py [--quick]
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simnet as sn  # noqa: E402

LOCAL_SPEEDUP_TARGET = 1.7
DASK_SPEEDUP_TARGET = 1.5
OVERHEAD_TARGET_MS = 50
MEMORY_RATIO_TARGET = 1.2

XOR = Path(__file__).resolve().parents[1] / "scenarios" / "xor.toml"
# short runs of a tiny network: the sweep's own costs show
TINY = {"network.layers": [[2, 2, 1]], "data.samples": [16], "training.steps": [20], "record.gifs": [[]]}


def children_cpu():
    """CPU seconds used by this process's finished children and theirs (local workers, trace writers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_sweep(runs, out, workers=None, client=None):
    """(seconds, rows of runs.csv, CPU seconds of the local workers and their runs' trace writers) of a
    sweep of `runs` seeds of the tiny network into `out`."""
    start, cpu = time.perf_counter(), children_cpu()
    result = sn.sweep(XOR, grid=TINY, seeds=list(range(runs)), workers=workers, client=client, output=out)
    return time.perf_counter() - start, result.runs, children_cpu() - cpu


def coordinator_peak(runs, out, workers=2):
    """The peak resident memory (MiB) of a process that coordinates a sweep of `runs` seeds."""
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from simnet.experiments.plan import plan
        from simnet.experiments.backends import LocalWorkers
        from simnet.experiments.sweep import run_sweep
        run_sweep(plan({str(XOR)!r}, {TINY!r}, range({runs})), {str(out)!r}, LocalWorkers({workers}))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def section(quick=False):
    runs = 40 if quick else 200
    many = 400 if quick else 2000
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        load_before = os.getloadavg()[0]
        one, rows, cpu = timed_sweep(runs, directory / "one", workers=1)
        two, _, _ = timed_sweep(runs, directory / "two", workers=2)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            dask = None
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster, \
                    Client(cluster) as client:
                dask, _, _ = timed_sweep(runs, directory / "dask", client=client)
        own = statistics.fmean(float(r["wall_time"]) for r in rows)
        training = statistics.fmean(float(r["train_time"]) for r in rows)
        small = coordinator_peak(runs, directory / "mem_small")
        large = coordinator_peak(many, directory / "mem_large")
        statuses = {r["status"] for r in rows}
        load_after = os.getloadavg()[0]
    per_run = one / runs
    lines = [
        "## Sweeps", "",
        f"{runs} runs of a 2-2-1 XOR network (scenarios/xor.toml with {TINY}), `sn.sweep` from this process; "
        "the times include starting the workers, writing runs.csv, configs.csv and sweep.png. Each run's own "
        f"time (as its worker measured it: loading, training, recording the trace, drawing loss.png) is "
        f"{own * 1000:.0f} ms on average, of which {training * 1000:.0f} ms training; statuses {sorted(statuses)}.",
        "",
        "| backend | workers | seconds | runs/s | speed-up over 1 local worker | target | |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| local processes | 1 | {one:.1f} | {runs / one:.1f} | 1.00× | | |",
        f"| local processes | 2 | {two:.1f} | {runs / two:.1f} | {one / two:.2f}× | ≥ {LOCAL_SPEEDUP_TARGET}× | "
        f"{'met' if one / two >= LOCAL_SPEEDUP_TARGET else 'NOT met'} |",
    ]
    if dask is not None:
        lines.append(f"| Dask LocalCluster | 2 | {dask:.1f} | {runs / dask:.1f} | {one / dask:.2f}× | "
                     f"≥ {DASK_SPEEDUP_TARGET}× | {'met' if one / dask >= DASK_SPEEDUP_TARGET else 'NOT met'} |")
    else:
        lines.append("| Dask LocalCluster | 2 | | | | | not measured: pip install 'simnet[dask]' |")
    overhead = (per_run - own) * 1000
    lines += [
        "",
        f"- Overhead per run on one worker, beyond the run's own time: {overhead:.0f} ms "
        f"({per_run * 1000:.0f} ms per run against {own * 1000:.0f} ms; target ≤ {OVERHEAD_TARGET_MS} ms: "
        f"{'met' if overhead <= OVERHEAD_TARGET_MS else 'NOT met'}). Beyond its training time alone: "
        f"{(per_run - training) * 1000:.0f} ms, most of it the run's own recording (a trace writer process "
        "per run) and loss.png.",
        f"- CPU per run on one worker, the worker and its run's trace writer process together: "
        f"{cpu / runs * 1000:.0f} ms against {per_run * 1000:.0f} ms of wall time, so one worker already keeps "
        f"{cpu / one:.2f} cores busy and two workers on 2 cores can be at most {2 / max(cpu / one, 1):.2f}× faster. "
        f"Load average (1 min) {load_before:.1f} before and {load_after:.1f} after: other processes share the cores.",
        f"- Coordinator's peak memory: {small:.0f} MiB for {runs} runs, {large:.0f} MiB for {many:,} runs: "
        f"{large / small:.2f}× (target ≤ {MEMORY_RATIO_TARGET}×: "
        f"{'met' if large / small <= MEMORY_RATIO_TARGET else 'NOT met'}); rows go to runs.csv as runs finish.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
