"""Live serving: how soon a committed step is visible through `simnet serve`'s API, and how fast
`simnet play` trains with a browser page following it against none.

Latency: `simnet run scenarios/moons.toml` trains into a directory that a
`simnet serve` process serves.  This process reads the trace directly with
SQLite (every 2 ms) to see when each step is committed, while a client asks
`/api/runs/<name>/steps?after=N` as the live page does (every 0.5 s) and as
fast as answers come; a step's latency is the time from its commit being
seen to its first appearance in an answer.

Play: `simnet play scenarios/moons.toml` trains 3,000 steps through its API
(`POST /api/session/run`), once with no page open and once with the play
page open in headless chromium (drawing the network, loss curve and decision
surface a few times a second), five times each, alternating.

    python3 benchmarks/bench_serve.py
"""
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SIMNET_CHROMIUM", "/usr/bin/chromium")
PLAY_STEPS = 3000


def start(*args):
    """A `simnet` server process on a free port; (process, url)."""
    process = subprocess.Popen([sys.executable, "-m", "simnet", *map(str, args), "--port", "0", "--no-browser"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        found = re.search(r"serving at (http://\S+/)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("the server did not start")


def stop(process):
    process.send_signal(2)
    process.wait(60)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def committed_steps(trace, seen, done):
    """Note in `seen` when each step is first committed (read straight from the trace) until `done` is set."""
    while not trace.exists() and not done.is_set():
        time.sleep(0.002)
    db = None
    while not done.is_set():
        try:
            db = db or sqlite3.connect(f"file:{trace}?mode=ro", uri=True)
            last = db.execute("SELECT max(step) FROM steps WHERE done = 1").fetchone()[0]
        except sqlite3.Error:
            db, last = None, None
        moment = time.perf_counter()
        for step in range(max(seen, default=0) + 1, (last or 0) + 1):
            seen[step] = moment
        time.sleep(0.002)


def latency(interval, steps):
    """Median and 90th percentile (s) from commit to visible in the API, polling every `interval` s (0: at once),
    and the median time of one answer."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        server, url = start("serve", runs)
        committed, done = {}, threading.Event()
        watcher = threading.Thread(target=committed_steps, args=(runs / "moons" / "trace.sqlite", committed, done))
        watcher.start()
        training = subprocess.Popen([sys.executable, "-m", "simnet", "run", "scenarios/moons.toml", "--steps",
                                     str(steps), "-o", runs / "moons", "-q", "--no-gif"], cwd=ROOT)
        visible, answers, after = {}, [], 0
        try:
            while True:
                asked = time.perf_counter()
                try:
                    answer = get(f"{url}api/runs/moons/steps?after={after}")
                except OSError:
                    answer = {"steps": [], "status": None}
                moment = time.perf_counter()
                answers.append(moment - asked)
                for s in answer["steps"]:
                    visible.setdefault(s["step"], moment)
                    after = max(after, s["step"])
                if answer["status"] not in (None, "running") and training.poll() is not None:
                    break
                time.sleep(interval)
        finally:
            training.wait()
            done.set()
            watcher.join()
            stop(server)
    delays = sorted(visible[s] - committed[s] for s in visible if s in committed)
    return statistics.median(delays), delays[int(0.9 * (len(delays) - 1))], statistics.median(answers)


def slow_run_gaps(samples, steps):
    """While a slow run trains (moons on `samples` points, `steps` steps), the seconds between the moments
    new steps appear through the API (median, largest), polling every 0.1 s; and the run's steps per second."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        server, url = start("serve", runs)
        training = subprocess.Popen([sys.executable, "-m", "simnet", "run", "scenarios/moons.toml", "--set",
                                     f"data.samples={samples}", "--steps", str(steps), "-o", runs / "slow", "-q",
                                     "--no-gif"], cwd=ROOT)
        appeared, after = {}, 0  # step -> when it appeared (step 0: when the run was first seen running)
        try:
            while True:
                try:
                    answer = get(f"{url}api/runs/slow/steps?after={after}")
                except OSError:
                    answer = {"steps": [], "status": None}
                if answer["status"] == "running":
                    appeared.setdefault(0, time.perf_counter())
                if answer["steps"]:
                    after = answer["steps"][-1]["step"]
                    appeared[after] = time.perf_counter()
                if answer["status"] not in (None, "running") and training.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            training.wait()
            stop(server)
    moments = list(appeared.values())
    gaps = [later - earlier for earlier, later in zip(moments, moments[1:])]
    return statistics.median(gaps), max(gaps), steps / (moments[-1] - moments[0])


def play_rate(browser):
    """Training steps per second of `simnet play` on moons for PLAY_STEPS steps, and the page's frames per
    second (None without a page)."""
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start("play", "scenarios/moons.toml", "-o", Path(tmp) / "play")
        page = None
        try:
            if browser is not None:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_function("window.simnetFrames >= 2", timeout=60_000)
                frames_before = page.evaluate("window.simnetFrames")
            begun = time.perf_counter()
            post(f"{url}api/session/run", {"steps": PLAY_STEPS})
            while get(f"{url}api/session/state")["step"] < PLAY_STEPS:
                time.sleep(0.05)
            seconds = time.perf_counter() - begun
            fps = None if page is None else (page.evaluate("window.simnetFrames") - frames_before) / seconds
        finally:
            if page is not None:
                page.close()
            stop(server)
    return PLAY_STEPS / seconds, fps


def section(quick=False):
    """The markdown section of the live-serving benchmark."""
    steps = 1000 if quick else 3000
    lines = ["## Live serving (`simnet serve`, `simnet play`)", ""]
    rows = []
    for label, interval in (("as the live page does, every 0.5 s", 0.5), ("as fast as answers come", 0.0)):
        median, p90, answer = latency(interval, steps)
        rows.append(f"| {label} | {median * 1000:.0f} | {p90 * 1000:.0f} | {answer * 1000:.1f} |")
        if interval:
            page_median = median
    lines += [f"From a step committed by `simnet run scenarios/moons.toml --steps {steps}` (the recorder commits "
              "every 100 steps, or half a second after its last commit) to that step in an answer of `GET /api/runs/moons/steps?after=N` from "
              "`simnet serve`:", "",
              "| client asks | median ms | 90th percentile ms | one answer, median ms |", "|---|---:|---:|---:|",
              *rows, "",
              f"Target: median at most 1 s: **{'met' if page_median <= 1.0 else 'NOT met'}** "
              f"({page_median:.2f} s polling as the page does).", ""]
    samples, slow_steps = 20_000, 40 if quick else 100
    median_gap, largest_gap, rate = slow_run_gaps(samples, slow_steps)
    lines += [f"A slow run, `simnet run scenarios/moons.toml --set data.samples={samples} --steps {slow_steps}` "
              f"({rate:.1f} steps/s, far from the 100 steps a commit holds): new steps appear through the API "
              f"every {median_gap:.2f} s (median), at the longest after {largest_gap:.2f} s (the recorder also "
              "commits at a step's end half a second after its last commit).", ""]
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        alone, followed, fps = [], [], []
        for _ in range(1 if quick else 5):
            alone.append(play_rate(None)[0])
            rate, frames = play_rate(browser)
            followed.append(rate)
            fps.append(frames)
        browser.close()
    ratio = statistics.median(followed) / statistics.median(alone)
    lines += [f"`simnet play scenarios/moons.toml`, {PLAY_STEPS:,} steps through `POST /api/session/run` "
              f"(median of {len(alone)}, alternating):", "",
              "| | training steps/s | frames drawn/s in the page |", "|---|---:|---:|",
              f"| no page | {statistics.median(alone):,.0f} | |",
              f"| play page open and following (headless chromium) | {statistics.median(followed):,.0f} | "
              f"{statistics.median(fps):.1f} |", "",
              f"Target: with a page at least 0.8x the steps/s without: {ratio:.2f}x: "
              f"**{'met' if ratio >= 0.8 else 'NOT met'}**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
