"""The replay page: its size for a 2,000-step moons run, against the 5 MB budget.

The run is `scenarios/moons.toml` for 2,000 steps, recorded as `simnet run`
records it (a snapshot every `record.every` steps), once at the default
`updates` detail and once keeping every message; the time to write the page
is set against the time of the run it shows.

    python3 benchmarks/bench_html.py
"""
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import simnet as sn  # noqa: E402
from simnet.cli import main as simnet  # noqa: E402
from simnet.viz.page import write_page  # noqa: E402

STEPS = 2000
BUDGET = 5_000_000


def page_for(scenario, workdir):
    """Run `scenario` for STEPS steps, write its page; returns (bytes, run seconds, page seconds)."""
    run_dir = workdir / scenario.stem
    start = time.perf_counter()
    if simnet(["run", str(scenario), "--steps", str(STEPS), "-o", str(run_dir), "-q", "--no-gif"]) != 0:
        raise RuntimeError(f"simnet run {scenario} failed")
    run_seconds = time.perf_counter() - start
    page = workdir / f"{scenario.stem}.html"
    start = time.perf_counter()
    with sn.open_trace(run_dir) as trace:
        write_page(trace, page)
    return page.stat().st_size, run_seconds, time.perf_counter() - start


def section(quick=False):
    """The markdown section of the replay-page benchmark (a full 2,000-step run either way)."""
    lines = ["## Replay page", "",
             f"`scenarios/moons.toml` (2-16-16-1, 100 points) for {STEPS:,} steps, a snapshot every 10 steps, "
             "then `simnet replay RUN_DIR --html`.", "",
             "| recording | page bytes | / 5 MB budget | run s | page s | page / run time |",
             "|---|---:|---:|---:|---:|---:|"]
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        default = ROOT / "scenarios" / "moons.toml"
        messages = workdir / "moons_messages.toml"
        messages.write_text(default.read_text().replace("[record]", '[record]\ndetail = "messages"', 1))
        for label, scenario in (("`updates` detail (default)", default), ("`messages` detail", messages)):
            size, run_s, page_s = page_for(scenario, workdir)
            sizes.append(size)
            lines.append(f"| {label} | {size:,} | {size / BUDGET:.2f}x | {run_s:.1f} | {page_s:.1f} | "
                         f"{page_s / run_s:.2f}x |")
    verdict = "met" if max(sizes) < BUDGET else "NOT met"
    lines += ["", f"Target: a 2,000-step moons page under 5 MB: **{verdict}** (largest {max(sizes):,} bytes).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section())
