"""The live pages in a real browser (Debian's chromium through Playwright, as for the replay page): a
run followed to its end, a killed run, and a play session driven through its buttons, saved and run again."""
import os
import re
import shutil
import signal

import numpy as np
from PIL import Image

from serving_helpers import ROOT, Server, simnet_running, until
from test_html_browser import SCREENSHOT_DIR, browser  # noqa: F401  (the fixture)
from test_play import events_of, final_network, network_of, run_saved
from simnet.runner import run
from simnet.trace import open_trace


def open_live(browser, url):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    host = url.split("/")[2]
    page.on("request", lambda r: errors.append(f"fetched {r.url}") if r.url.split("/")[2] != host else None)
    page.goto(url)
    page.errors = errors
    return page


def screenshot(page, tmp_path, name):
    """Keep a screenshot (in SIMNET_SCREENSHOT_DIR when set) and check that it shows something."""
    path = os.path.join(SCREENSHOT_DIR or str(tmp_path), name)
    page.screenshot(path=path, full_page=True)
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50, f"{name} is nearly blank"


def test_the_page_of_a_running_run_follows_it_to_the_end(browser, tmp_path):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    with simnet_running("run", "scenarios/xor.toml", "--steps", 20000, "--no-gif", "-q",
                        "-o", runs / "live"):
        with Server("serve", runs) as server:
            until(lambda: {r["name"]: r for r in server.get("/api/runs")}.get("live", {}).get("status") == "running",
                  "the run to start")
            page = open_live(browser, server.url + "runs/live/")
            counts = set()
            while page.text_content("#banner") == "" or page.text_content("#banner").startswith("running"):
                counts.add(page.text_content("#step-count"))
                if len(counts) == 3:
                    screenshot(page, tmp_path, "serve_running_run.png")
                page.wait_for_timeout(100)
            page.wait_for_function("document.getElementById('step-count').textContent === '20000'", timeout=60_000)
            assert page.text_content("#banner") == "complete"
            assert len(counts) >= 3  # the count grew while the run trained
            assert page.eval_on_selector("#slider", "s => +s.max") == 19999
            assert page.locator("#network line.connection").count() == 12
            assert page.is_visible("#replay")
            screenshot(page, tmp_path, "serve_live_run.png")
            index = open_live(browser, server.url)
            index.wait_for_selector("tr[data-name='live'] td.status.complete")
            screenshot(index, tmp_path, "serve_index.png")
            assert page.errors == [] and index.errors == []


def test_the_page_of_a_killed_run_says_its_process_died(browser, tmp_path):  # noqa: F811
    runs = tmp_path / "runs"
    runs.mkdir()
    with simnet_running("run", "scenarios/xor.toml", "--steps", 10**6, "--no-gif", "-q",
                        "-o", runs / "doomed") as training:
        with Server("serve", runs) as server:
            page = open_live(browser, server.url + "runs/doomed/live")
            page.wait_for_function("+document.getElementById('step-count').textContent > 0", timeout=60_000)
            assert re.fullmatch(r"running · heartbeat \d+\.\d s ago", page.text_content("#banner"))
            os.kill(training.pid, signal.SIGKILL)
            page.wait_for_function("document.getElementById('banner').textContent.includes('died')", timeout=60_000)
            assert re.fullmatch(r"incomplete: the run's process died · last heartbeat \d+\.\d s ago",
                                page.text_content("#banner"))
            index = open_live(browser, server.url)
            index.wait_for_selector("tr[data-name='doomed'] td.status.incomplete")
            assert page.errors == [] and index.errors == []


def test_a_play_session_driven_by_its_buttons_is_repeated_by_its_saved_scenario(browser, tmp_path):  # noqa: F811
    with Server("play", "scenarios/moons.toml", "-o", tmp_path / "session") as server:
        page = open_live(browser, server.url)
        page.select_option("#speed", "100")
        page.click("#play")
        page.wait_for_function("+document.getElementById('step-count').textContent >= 20", timeout=60_000)
        page.fill("#add-name", "extra")
        page.select_option("#add-activation", "tanh")
        page.fill("#add-from", "x0, x1")
        page.fill("#add-to", "y0")
        page.click("#add-neuron")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('add extra')")
        page.fill("#lr-value", "0.05")
        page.click("#set-lr")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('lr = 0.05')")
        page.wait_for_selector("#network g.neuron[data-name='extra']")
        page.click("#pause")
        page.wait_for_function("document.getElementById('banner').textContent === 'paused'")
        # click a connection to set its weight and freeze it; click a neuron to set its bias
        page.dispatch_event("line.connection[data-source='x0'][data-target='h1_0']", "click")
        assert page.text_content("#selected") == "x0 → h1_0"
        page.fill("#selected-value", "-0.5")
        page.click("#set-selected")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('set x0->h1_0 = -0.5')")
        page.click("#freeze")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('freeze x0->h1_0')")
        page.dispatch_event("g.neuron[data-name='h2_3']", "click")
        page.fill("#selected-value", "0.25")
        page.click("#set-selected")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('bias h2_3 = 0.25')")
        page.click("#perturb")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('perturb 0.1')")
        page.dispatch_event("g.neuron[data-name='h2_5']", "click")
        page.click("#remove-neuron")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('remove h2_5')")
        page.wait_for_function("!document.querySelector(\"#network g.neuron[data-name='h2_5']\")")
        before = int(page.text_content("#step-count"))
        page.click("#step10")
        page.wait_for_function("document.getElementById('banner').textContent === 'paused' && "
                               f"+document.getElementById('step-count').textContent === {before + 10}")
        # a bad action says why on the page and changes nothing
        page.fill("#connect-from", "y0")
        page.fill("#connect-to", "x0")
        page.click("#connect")
        page.wait_for_selector("#message.error")
        assert "input" in page.text_content("#message")
        assert [e for e in page.errors if "400 (Bad Request)" not in e] == [] and len(page.errors) == 1
        page.errors.clear()  # the browser logs the refusal it was meant to get
        page.click("#save")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('saved as')")
        saved = page.text_content("#message")[len("saved as "):]
        page.wait_for_timeout(1500)  # frames are drawn while paused too
        assert page.evaluate("window.simnetFrames") >= 5
        screenshot(page, tmp_path, "play_session.png")
        network = server.get("/api/session/network")
        assert page.errors == []
    text = open(saved).read()
    assert text.count("[[script]]") == 7
    with open_trace(tmp_path / "session") as session, open_trace(run_saved(text, tmp_path)) as rerun:
        assert events_of(session) == events_of(rerun)
        assert final_network(session) == final_network(rerun) == network_of(network)


def test_the_index_sorts_a_sweep_and_shows_names_as_text(browser, tmp_path):  # noqa: F811
    runs = tmp_path / "runs"
    run(ROOT / "scenarios" / "xor.toml", runs / "sweep" / "lr_9", steps=5, gifs=False)
    shutil.copytree(runs / "sweep" / "lr_9", runs / "<img src=x onerror=alert(1)>")
    (runs / "sweep" / "runs.csv").write_text("run,learning_rate,loss\nlr_9,9,0.5\nlr_10,10,0.25\nlr_2,2,0.75\n")
    with Server("serve", runs) as server:
        page = open_live(browser, server.url)
        assert page.locator("img").count() == 0
        assert page.locator("tr[data-name='<img src=x onerror=alert(1)>'] a").first.text_content() == \
            "<img src=x onerror=alert(1)>"
        sweep = page.locator("#sweeps table")
        column = sweep.locator("tbody tr td:nth-child(2)")
        sweep.locator("th", has_text="learning_rate").click()
        assert column.all_text_contents() == ["2", "9", "10"]  # as numbers, not as text
        sweep.locator("th", has_text="learning_rate").click()
        assert column.all_text_contents() == ["10", "9", "2"]
        screenshot(page, tmp_path, "serve_index_sweep.png")
        assert sweep.locator("a").all_text_contents() == ["lr_9"]  # the one run of the table that exists
        page.wait_for_timeout(2500)  # a refresh of the statuses changes nothing of that
        assert page.locator("img").count() == 0
        assert page.errors == []
