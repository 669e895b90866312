"""The replay page in a real browser: Debian's chromium, headless, driven by Playwright.

The test extra brings Playwright; the browser is Debian's (`apt-get install
chromium`).  Where it is missing these tests are skipped, saying so, so that
the README's test command passes on a fresh machine; CI installs chromium and
sets SIMNET_REQUIRE_BROWSER=1, which turns that skip into a failure.
"""
import os
import re

import numpy as np
import pytest
from PIL import Image

from simnet.viz.page import render_page, write_page
from test_html import record_run

CHROMIUM = os.environ.get("SIMNET_CHROMIUM", "/usr/bin/chromium")  # another browser binary, or none
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SCREENSHOT_DIR = os.environ.get("SIMNET_SCREENSHOT_DIR")  # keep the screenshot somewhere to look at


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the replay page is tested in a browser: pip install playwright")
    if not os.access(CHROMIUM, os.X_OK):
        missing = f"the replay page is tested in Debian's chromium, and {CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("SIMNET_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as p:
        # Playwright drives the system's chromium; it never downloads a browser of its own
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same scenario recorded with every message and with updates only, and a page of each."""
    out = {}
    for detail in ("messages", "updates"):
        directory = tmp_path_factory.mktemp(detail)
        trace = record_run(directory, detail=detail)
        out[detail] = (trace, write_page(trace, directory / "replay.html"))
    return out


def open_page(browser, path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: errors.append(f"fetched {r.url}") if not r.url.startswith("file:") else None)
    page.goto(f"file://{path}")
    page.errors = errors
    return page


def shown_step(page):
    return int(page.inner_text("#step-number"))


def test_scrub_click_and_play(browser, runs, tmp_path):
    trace, path = runs["messages"]
    steps = list(trace.steps)
    page = open_page(browser, path)
    assert shown_step(page) == steps[0]
    picture = page.inner_html("#network")

    k = len(steps) // 2
    page.locator("#slider").fill(str(k))
    step = steps[k]
    assert shown_step(page) == step
    assert page.inner_html("#network") != picture, "moving the slider left the picture as it was"

    # a neuron's numbers are the trace's, exactly
    G = trace.snapshot(step)
    page.click('#network g.node[data-name="h1_1"] .shape')
    assert page.get_attribute("#neuron-table", "data-step") == str(step)
    for field in ("activation", "preactivation", "bias", "gradient", "bias_grad"):
        assert page.inner_text(f'#neuron-table [data-field="{field}"]') == repr(G.nodes["h1_1"][field]), field
    for source in ("x0", "x1"):
        row = f'#messages-table tr[data-source="{source}"]'
        assert page.inner_text(f'{row} [data-field="message"]') == repr(G.edges[source, "h1_1"]["message"])
        assert page.inner_text(f'{row} [data-field="weight"]') == repr(G.edges[source, "h1_1"]["weight"])
    assert page.inner_text("#step-loss") == repr(G.graph["loss"])

    # keys step through the kept steps, and the selected neuron follows
    page.keyboard.press("ArrowRight")
    assert shown_step(page) == steps[k + 1]
    assert page.inner_text('#neuron-table [data-field="bias"]') == repr(trace.snapshot(steps[k + 1]).nodes["h1_1"]["bias"])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert shown_step(page) == steps[k - 1]

    # a neuron added by the script is absent before its step and present after
    action = trace.actions()[0]["step"]
    page.keyboard.press("Home")
    assert "absent" in page.get_attribute('#network g.node[data-name="h_new"]', "class")
    page.keyboard.press("End")
    assert "absent" not in page.get_attribute('#network g.node[data-name="h_new"]', "class")
    assert steps[-1] >= action

    # a connection shows its weight over time
    page.keyboard.press("Home")
    page.locator("#slider").fill(str(k))
    index = page.evaluate("""() => {
        const names = [...document.querySelectorAll('#network g.node')].map((g) => g.dataset.name);
        return JSON.parse(document.getElementById('run-data').textContent).edges
            .findIndex(([s, t]) => names[s] === 'h1_2' && names[t] === 'y0');
    }""")
    page.click(f'#network line.edge-hit[data-edge="{index}"]', force=True)
    assert page.inner_text('#connection-table [data-field="weight"]') == repr(G.edges["h1_2", "y0"]["weight"])
    points = page.get_attribute("#weight-chart polyline", "points").split()
    assert len(points) == len(steps)
    heights = [float(p.split(",")[1]) for p in points]
    weights = [trace.snapshot(s).edges["h1_2", "y0"]["weight"] for s in steps]
    # the chart goes up where the weight goes up (y grows downwards; moves under a pixel are rounding)
    moved = np.abs(np.diff(heights)) >= 1
    assert moved.sum() >= len(steps) // 2
    assert np.array_equal(np.sign(np.diff(heights))[moved], -np.sign(np.diff(weights))[moved])

    # the loss chart marks the step shown and the scripted action
    assert page.locator("#loss-chart .chart-action-label").text_content() == trace.actions()[0]["label"]
    now = float(page.get_attribute("#loss-now", "x1"))
    page.keyboard.press("ArrowRight")
    assert float(page.get_attribute("#loss-now", "x1")) > now

    # play runs through the steps, pause stops it (at 1x, a quarter second a step: the pause comes long before
    # the last step, where playing stops by itself and a click would start it again)
    page.select_option("#speed", "1")
    page.click("#play")
    page.wait_for_function(f"Number(document.getElementById('step-number').textContent) > {steps[k + 2]}",
                           timeout=5000)
    page.click("#play")
    paused = shown_step(page)
    page.wait_for_timeout(300)
    assert shown_step(page) == paused

    assert "shows all" in page.inner_text("#notes")
    assert page.is_visible("#surface")
    shot = os.path.join(SCREENSHOT_DIR or str(tmp_path), "replay_page.png")
    page.screenshot(path=shot, full_page=True)
    picture = np.asarray(Image.open(shot).convert("RGB"))
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 200, "the screenshot is nearly blank"
    assert page.errors == []


def sweep_log(page, step_index):
    """Play the sweep of the kept step at `step_index` to the end; returns its log lines and source note."""
    page.select_option("#speed", "8")
    page.locator("#slider").fill(str(step_index))
    page.click("#sweep")
    page.wait_for_function("document.querySelector('#sweep-log li:last-child')?.textContent.includes('done')",
                           timeout=15000)
    return page.locator("#sweep-log li").all_inner_texts(), page.inner_text("#sweep-source")


def test_sweep_plays_in_firing_order_recorded_or_derived(browser, runs):
    trace, path = runs["messages"]
    k = len(trace.steps) - 1
    step = trace.steps[k]
    recorded, note = sweep_log(open_page(browser, path), k)
    assert note.startswith("Recorded")
    fired = [(e["phase"], e["neuron"]) for e in trace.events(step=step) if e["kind"] == "fire"]
    shown = [(m.group(1), m.group(2)) for m in (re.match(r"(forward|backward) · (\S+) fires", line)
                                                  for line in recorded) if m]
    assert shown == fired
    assert any(line.startswith("update · weights into y0") for line in recorded)

    trace, path = runs["updates"]
    page = open_page(browser, path)
    derived, note = sweep_log(page, k)
    assert note.startswith("Derived")
    # the same run without messages: the order is rebuilt by the engine's rule, the forward numbers are the same
    assert [line.split(" → ")[0] for line in derived] == [line.split(" → ")[0] for line in recorded]
    forward = [line for line in recorded if line.startswith("forward")]
    assert [line for line in derived if line.startswith("forward")] == forward
    assert "derived from its step's snapshot" in page.inner_text("#notes")
    assert page.errors == []


def test_values_print_as_python_repr(browser, runs):
    page = open_page(browser, runs["messages"][1])
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**64, size=3000, dtype=np.uint64).view(np.float64)
    values = [float(v) for v in values if np.isfinite(v)]
    values += [0.0, -0.0, 1.0, -2.5, 123.0, 1e16, 1.5e16, 9999999999999998.0, 1e-4, 1e-5, 0.1, 1 / 3,
               5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 1e22, 123456789.125]
    values += list(rng.normal(size=500)) + list(rng.normal(size=500) * 1e-6)
    texts = [repr(float(v)) for v in values]
    shown = page.evaluate("texts => texts.map((t) => simnetReplay.pyRepr(Number(t)))", texts)
    assert shown == texts


def test_a_sampled_page_says_what_it_kept(browser, runs, tmp_path):
    trace, path = runs["updates"]
    budget = os.path.getsize(path) * 2 // 3
    small = tmp_path / "small.html"
    small.write_text(render_page(trace, budget=budget), encoding="utf-8")
    page = open_page(browser, small)
    kept = int(page.get_attribute("#slider", "max")) + 1
    assert kept < len(trace.steps)
    assert f"This page shows {kept} of the {len(trace.steps)} recorded steps" in page.inner_text("#notes")
    page.keyboard.press("End")
    assert shown_step(page) == trace.steps[-1]
    assert page.errors == []
