"""`simnet compare`: settings that differ, the first divergence and which weights, identical runs, sweeps."""
import base64
import json
import os

import numpy as np
import pytest

import simnet as sn
from simnet.cli import main
from test_html_browser import SCREENSHOT_DIR, browser  # noqa: F401  (the fixture)
from test_sweep import tiny


def run(tmp_path, name, *settings):
    out = tmp_path / name
    assert main(["run", str(tiny(tmp_path)), "-o", str(out), "-q", "--no-gif",
                 *[a for s in settings for a in ("--set", s)]]) in (0, 1)
    return out


def test_runs_that_differ_only_in_learning_rate_part_at_step_1_in_every_weight_and_bias(tmp_path, capsys):
    a, b = run(tmp_path, "a"), run(tmp_path, "b", "training.learning_rate=0.25")
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "cmp"), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["settings_differ"] == {"training.learning_rate": [0.5, 0.25]}
    # both start from the same seed, so step 0 is the same; step 1's update uses the learning rate everywhere
    with sn.open_trace(a) as ta, sn.open_trace(b) as tb:
        assert list(ta.snapshot(0).edges(data="weight")) == list(tb.snapshot(0).edges(data="weight"))
        changed = {f"weight {u}->{v}" for u, v, w in ta.snapshot(1).edges(data="weight")
                   if w != tb.snapshot(1).edges[u, v]["weight"]}
        changed |= {f"bias {n}" for n, d in ta.snapshot(1).nodes(data=True)
                    if d["role"] != "input" and d["bias"] != tb.snapshot(1).nodes[n]["bias"]}
    assert changed
    assert found["first_divergence"]["step"] == 1 and set(found["first_divergence"]["what"]) == changed
    assert [r["loss"] for r in found["runs"]] == [json.loads((d / "summary.json").read_text())["loss"] for d in (a, b)]
    assert found["topology_differ"] == [] and found["most_different"]
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0


def test_identical_runs_are_reported_identical(tmp_path, capsys):
    a, b = run(tmp_path, "a"), run(tmp_path, "b")
    result = sn.compare([a, b])
    assert result.first_divergence is None and result.settings_differ == {} and result.most_different == []
    assert result.identical_until == 15
    assert "identical bit for bit up to step 15" in result.text()


def test_a_neuron_added_in_one_run_only_is_a_topology_difference(tmp_path, capsys):
    a = run(tmp_path, "a")
    b = run(tmp_path, "b", 'script=[{at = 6, action = "add_neuron", name = "extra", connect_from = ["x0"], '
                           'connect_to = ["y0"]}]')
    result = sn.compare([a, b])
    assert {"what": "neuron extra", "only_in": 1, "from_step": 6, "runs": [0, 1]} in result.topology_differ
    assert result.first_divergence["step"] == 6


def test_a_sweep_directory_stands_for_its_runs_and_a_lone_run_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    main(["sweep", str(tiny(tmp_path)), "--seeds", "0,1", "--workers", "1", "-o", str(out), "-q"])
    result = sn.compare([out])
    assert len(result.runs) == 2 and result.first_divergence["step"] == 0
    assert result.settings_differ["seed"] == [0, 1]
    with pytest.raises(sn.InputError, match="at least two"):
        sn.compare([out / "runs" / "seed=0"])
    assert main(["compare", str(tmp_path / "nothing"), str(out)]) == 2


def test_compare_html_drives_every_replay_page_with_one_slider(tmp_path, capsys, browser):
    a, b = run(tmp_path, "a"), run(tmp_path, "b", "training.learning_rate=0.25")
    sn.compare([a, b], tmp_path / "cmp")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((tmp_path / "cmp" / "compare.html").as_uri())
    frames = [page.frame_locator("iframe").nth(i) for i in range(2)]
    for frame in frames:
        frame.locator("#step-number").wait_for()
    page.locator("#step").fill("12")
    for frame, run_dir in zip(frames, (a, b)):
        with sn.open_trace(run_dir) as trace:
            shown = max(s for s in trace.steps if s <= 12)
        assert frame.locator("#step-number").inner_text() == str(shown)
    assert page.locator("#shown").inner_text() == "12"
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "compare.png"))
    page.close()


def test_compare_html_carries_each_connections_difference_from_the_first_run(tmp_path, capsys):
    from simnet.experiments.compare import compare_page, page_run_data
    a, b = run(tmp_path, "a"), run(tmp_path, "b", "training.learning_rate=0.25")
    with sn.open_trace(a) as ta, sn.open_trace(b) as tb:
        html = compare_page([ta, tb], [{"path": str(a)}, {"path": str(b)}], {})
        pages = [page_run_data(html_page) for html_page in _frame_pages(html)]
        embedded = json.loads(html.split('id="differences">', 1)[1].split("</script>", 1)[0])
        for data, panel, trace in zip(pages, embedded["panels"], (ta, tb)):
            assert panel["steps"] == data["steps"] and panel["edges"] == len(data["edges"])
            got = np.frombuffer(base64.b64decode(panel["values"]), dtype="<f8").reshape(len(data["steps"]), -1)
            names = [n["name"] for n in data["nodes"]]
            for k, step in enumerate(data["steps"]):
                mine = {(c.source.name, c.target.name): c.weight for c in trace.network_at(step).connections}
                first = {(c.source.name, c.target.name): c.weight for c in ta.network_at(step).connections}
                expected = [mine[names[s], names[t]] - first[names[s], names[t]] for s, t in data["edges"]]
                assert got[k].tolist() == expected
        assert not np.frombuffer(base64.b64decode(embedded["panels"][0]["values"])).any()


def _frame_pages(html):
    import html as markup
    return [markup.unescape(cell.split('"', 1)[0]) for cell in html.split('srcdoc="')[1:]]


def test_compare_html_colours_connections_by_their_difference_from_the_first_run(tmp_path, capsys, browser):
    a, b = run(tmp_path, "a"), run(tmp_path, "b", "training.learning_rate=0.25")
    result = sn.compare([a, b], tmp_path / "cmp")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "cmp" / "compare.html").as_uri())
    frames = [page.frame_locator("iframe").nth(i) for i in range(2)]
    for frame in frames:
        frame.locator("#step-number").wait_for()
    own = [frame.locator("line.edge").evaluate_all("lines => lines.map(l => l.getAttribute('stroke'))")
           for frame in frames]
    lut = json.loads(page.locator("#differences").inner_text())["lut"]

    def strokes(frame):
        return dict(frame.locator("line.edge:not(.absent)").evaluate_all(
            "lines => lines.map(l => [l.nextElementSibling.firstChild.textContent, l.getAttribute('stroke')])"))

    page.locator("#colouring").select_option("difference")
    assert page.locator("#difference-legend").is_visible()
    neutral = lut[128]
    for frame in frames:  # step 0: both runs start alike, so every difference is 0
        assert set(strokes(frame).values()) == {neutral}
    last = result.runs[0]["steps"]
    page.locator("#step").fill(str(last))
    for frame in frames:
        assert frame.locator("#step-number").inner_text() == str(last)
    # how far from the grey middle of the map: the most saturated connection is the one that differs most
    saturation = {name: abs(lut.index(colour) - 127.5) for name, colour in strokes(frames[1]).items()}
    most = result.most_different[0]["connection"].replace("->", " → ")
    assert saturation[most] == max(saturation.values()) > 100
    assert set(strokes(frames[0]).values()) == {neutral}  # run 0 against itself
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "compare-difference.png"))
    page.locator("#colouring").select_option("own")
    page.locator("#step").fill("0")
    assert [frame.locator("line.edge").evaluate_all("lines => lines.map(l => l.getAttribute('stroke'))")
            for frame in frames] == own
    assert errors == []
    page.close()


def test_a_connection_the_first_run_lacks_has_no_difference(tmp_path, capsys):
    from simnet.experiments.compare import differences, page_run_data
    from simnet.viz.page import render_page
    a = run(tmp_path, "a")
    b = run(tmp_path, "b", 'script=[{at = 6, action = "add_neuron", name = "extra", connect_from = ["x0"], '
                           'connect_to = ["y0"]}]')
    with sn.open_trace(a) as ta, sn.open_trace(b) as tb:
        data = page_run_data(render_page(tb))
        found = differences(ta, data)
    names = [n["name"] for n in data["nodes"]]
    new = [j for j, (s, t) in enumerate(data["edges"]) if "extra" in (names[s], names[t])]
    assert new and np.isnan(found[:, new]).all()
    assert np.isfinite(np.delete(found, new, axis=1)).all()


def test_compare_html_draws_a_connection_the_first_run_lacks_grey_and_dashed(tmp_path, capsys, browser):
    from simnet.experiments.compare import NO_COUNTERPART
    a = run(tmp_path, "a")
    b = run(tmp_path, "b", 'script=[{at = 6, action = "add_neuron", name = "extra", connect_from = ["x0"], '
                           'connect_to = ["y0"]}]')
    sn.compare([a, b], tmp_path / "cmp")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((tmp_path / "cmp" / "compare.html").as_uri())
    frame = page.frame_locator("iframe").nth(1)
    frame.locator("#step-number").wait_for()
    page.locator("#colouring").select_option("difference")
    page.locator("#step").fill("15")
    drawn = frame.locator("line.edge:not(.absent)").evaluate_all(
        "lines => lines.map(l => [l.nextElementSibling.firstChild.textContent, l.getAttribute('stroke'), "
        "l.getAttribute('stroke-dasharray')])")
    lacking = {name for name, stroke, dashes in drawn if stroke == NO_COUNTERPART and dashes != "none"}
    assert lacking == {"x0 → extra", "extra → y0"}
    assert "no counterpart" in page.inner_text("#difference-legend")
    page.close()
