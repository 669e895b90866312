"""Many classes and a held-out set: class indices, K-class data, the split, held-out evaluation, confusion."""
import json
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import simnet as sn
from simnet.core.functions import class_targets, confusion, loss_function, one_hot
from simnet.errors import ScenarioError, SimnetError
from simnet.runner import run
from simnet.scenario import datasets, execute, load, loads
from simnet.trace import open_trace
from simnet.viz.frames import class_colours, class_shades, class_surface
from test_html_browser import browser  # noqa: F401  (the fixture)

THREE_CLASSES = """
name = "three"
seed = 5

[network]
layers = [2, 8, 3]
hidden = "tanh"

[data]
kind = "gaussians"
classes = 3
samples = 90
noise = 0.3
test_fraction = 0.3

[training]
steps = 30
learning_rate = 0.05
loss = "cross_entropy"
optimizer = "adam"
engine = "{engine}"

[record]
every = 7
gifs = []

[expect]
test_accuracy_min = 0.5
"""


# ---- labels -------------------------------------------------------------------

def test_class_indices_become_one_hot_rows_for_cross_entropy_only():
    assert np.array_equal(class_targets("cross_entropy", [2, 0, 1], 3), np.eye(3)[[2, 0, 1]])
    assert np.array_equal(class_targets("cross_entropy", [[1.0], [0.0]], 2), [[0, 1], [1, 0]])
    assert class_targets("bce", [[1.0], [0.0]], 1) == [[1.0], [0.0]]
    with pytest.raises(SimnetError, match=r"Y row 1: label 3 is not a class index 0\.\.2"):
        class_targets("cross_entropy", [0, 3], 3)
    with pytest.raises(SimnetError, match=r"Y row 0: label 0.5 is not a class index"):
        class_targets("cross_entropy", [0.5, 1], 3)


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_training_on_class_indices_is_training_on_their_one_hot_rows(engine):
    X, y = datasets.generate("spiral", 60, 0.05, 3, classes=4)
    runs = []
    for Y in (y[:, 0].astype(int), one_hot(y, 4)):
        net = sn.Network.layered([2, 6, 4], seed=2)
        history = net.train(X, Y, steps=5, lr=0.05, loss="cross_entropy", engine=engine)
        runs.append((history.loss, history.accuracy, [c.weight for c in net.connections]))
    assert runs[0] == runs[1]
    net = sn.Network.layered([2, 6, 4], seed=2)
    P = net.forward(X)
    assert runs[0][1][0] == np.mean(P.argmax(axis=1) == y[:, 0])  # accuracy is the argmax's


def test_confusion_counts_every_sample_once_by_true_and_picked_class():
    rng = np.random.default_rng(0)
    P, Y = rng.normal(size=(50, 4)), np.eye(4)[rng.integers(0, 4, 50)]
    counts = confusion("cross_entropy", P, Y)
    assert counts.sum() == 50 and np.array_equal(counts.sum(axis=1), Y.sum(axis=0))
    assert np.trace(counts) == np.count_nonzero(P.argmax(1) == Y.argmax(1))
    binary = confusion("bce", np.array([[0.9], [0.2], [0.7]]), np.array([[1.0], [1.0], [0.0]]))
    assert binary.tolist() == [[0, 1], [1, 1]]
    assert confusion("mse", P, Y) is None


# ---- data ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", datasets.MANY_CLASSES)
@pytest.mark.parametrize("classes", [3, 5])
def test_many_class_sets_hold_every_class_evenly(kind, classes):
    X, y = datasets.generate(kind, 101, 0.1, 4, classes=classes)
    counts = np.bincount(y[:, 0].astype(int))
    assert X.shape == (101, 2) and len(counts) == classes and counts.max() - counts.min() <= 1


def test_k_rings_lie_in_their_own_bands():
    X, y = datasets.generate("circle", 300, 0.0, 1, classes=3)
    radius = np.hypot(X[:, 0], X[:, 1])
    for k in range(3):
        inside = radius[y[:, 0] == k]
        assert inside.max() <= (3 - k) / 3 and (k == 2 or inside.min() >= (2 - k) / 3)


def test_the_shipped_real_sets_are_whole():
    X, y = datasets.real("iris")
    assert X.shape == (150, 4) and np.bincount(y[:, 0].astype(int)).tolist() == [50, 50, 50]
    X, y = datasets.real("digits")
    assert X.shape == (1797, 64) and X.min() == 0.0 and X.max() == 1.0 and sorted(set(y[:, 0])) == list(range(10))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 500), st.floats(0.0, 0.9), st.integers(0, 2**63 - 1))
def test_the_split_is_deterministic_disjoint_and_whole(samples, fraction, seed):
    train, test = datasets.split(samples, fraction, seed)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(samples))
    assert len(test) == round(fraction * samples)
    again = datasets.split(samples, fraction, seed)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


def test_standardize_uses_the_training_part_only():
    sc = loads(THREE_CLASSES.format(engine="actor").replace("test_fraction = 0.3", "test_fraction = 0.3\n"
                                                                                   "standardize = true"))
    parts = sc.parts()
    (X, _), (T, _) = parts.train, parts.test
    assert np.allclose(X.mean(axis=0), 0) and np.allclose(X.std(axis=0), 1)
    raw = loads(THREE_CLASSES.format(engine="actor")).parts()
    assert np.allclose(T * parts.scale + parts.mean, raw.test[0])
    assert len(X) == 63 and len(T) == 27


# ---- scenarios ----------------------------------------------------------------

@pytest.mark.parametrize("change,where", [
    (('loss = "cross_entropy"', 'loss = "bce"'), "data.classes"),
    (('kind = "gaussians"', 'kind = "xor"'), "data.classes"),
    (("layers = [2, 8, 3]", "layers = [2, 8, 2]"), "network.layers"),
    (("test_fraction = 0.3", "test_fraction = 0.95"), "data.test_fraction"),
    (("test_fraction = 0.3", ""), "expect.test_accuracy_min"),
    (('kind = "gaussians"', 'kind = "iris"'), "data.samples"),
])
def test_scenarios_that_cannot_work_with_classes_are_refused_at_their_key(change, where):
    with pytest.raises(ScenarioError) as e:
        loads(THREE_CLASSES.format(engine="actor").replace(*change))
    assert e.value.where == where


def test_a_csv_label_column_and_test_file(tmp_path):
    rows = lambda n, seed: "\n".join(f"{x:.3f},{-x:.3f},{k}" for x, k in zip(
        np.random.default_rng(seed).normal(size=n), np.arange(n) % 3))
    (tmp_path / "train.csv").write_text("x0,x1,label\n" + rows(30, 1) + "\n")
    (tmp_path / "test.csv").write_text("x0,x1,label\n" + rows(9, 2) + "\n")
    text = (THREE_CLASSES.format(engine="actor").replace('kind = "gaussians"\nclasses = 3\nsamples = 90\nnoise = 0.3\n'
                                                         'test_fraction = 0.3',
                                                         'kind = "csv"\npath = "train.csv"\ntest_path = "test.csv"'))
    parts = loads(text, tmp_path / "s.toml").parts()
    assert parts.train[1].shape == (30, 3) and parts.test[1].shape == (9, 3)
    assert parts.train[1].argmax(axis=1).tolist() == [i % 3 for i in range(30)]
    (tmp_path / "test.csv").write_text("x0,x1,label\n1,2,0\n1,2,3\n")
    with pytest.raises(ScenarioError) as e:
        loads(text, tmp_path / "s.toml").parts()
    assert (e.value.where, "is not a class index 0..2" in str(e.value)) == ("line 3, column label", True)


@pytest.mark.parametrize("engine", ["actor", "fast"])
def test_held_out_numbers_are_those_of_the_recorded_network_on_the_test_part(tmp_path, engine):
    sc = loads(THREE_CLASSES.format(engine=engine))
    result = run(sc, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    T, Y = sc.parts().test
    with open_trace(tmp_path / "run") as trace:
        held = trace.held_out()
        assert held["step"].tolist() == [7, 14, 21, 28, 30]
        for step, loss, accuracy, counts in zip(held["step"], held["loss"], held["accuracy"], held["confusion"]):
            P = trace.network_at(int(step)).forward(T)
            # probe and forward sum in different orders: equal to rounding
            assert loss == pytest.approx(loss_function("cross_entropy")(P, Y)[0], rel=1e-12)
            assert accuracy == np.mean(P.argmax(axis=1) == Y.argmax(axis=1))
            assert np.array_equal(counts, confusion("cross_entropy", P, Y)) and counts.sum() == len(T)
        from simnet.trace.explain import summary as summary_text
        assert f"held out   loss {held['loss'][-1]:.6g}" in summary_text(trace)
        assert summary_text(trace).split("held out")[1].splitlines()[0].endswith("after step 30 (5 evaluations)")
    assert (summary["test_loss"], summary["test_accuracy"]) == (held["loss"][-1], held["accuracy"][-1])
    assert np.array_equal(summary["test_confusion"], held["confusion"][-1])
    assert np.sum(summary["confusion"]) == len(sc.parts().train[0])
    assert result.outcome.passed and summary["expectations"]["results"][0]["where"] == "expect.test_accuracy_min"


def test_a_run_without_a_held_out_set_has_no_held_out_table(tmp_path):
    run("scenarios/xor.toml", tmp_path / "run", steps=3, gifs=False)
    with sqlite3.connect(tmp_path / "run" / "trace.sqlite") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'held_out'").fetchone()[0] == 0
    with open_trace(tmp_path / "run") as trace:
        assert trace.held_out()["step"].size == 0


def test_an_expectation_on_held_out_accuracy_can_fail():
    sc = loads(THREE_CLASSES.format(engine="fast").replace("test_accuracy_min = 0.5", "test_loss_max = 0.001"))
    outcome = execute(sc)
    ok, message = {r.where: (r.ok, r.message) for r in outcome.results}["expect.test_loss_max"]
    assert not ok and message == f"test loss {outcome.test_loss:.4g} > 0.001"


# ---- the class surface --------------------------------------------------------

def test_the_class_surface_shows_the_class_picked_and_fades_where_unsure():
    outputs = np.zeros((3, 2, 2))
    outputs[1, 0, 0] = 20.0  # sure of class 1
    outputs[2, 0, 1] = 0.5  # a little for class 2
    rgba = class_surface(outputs)
    shades = np.round(class_shades(3) * 255)
    assert np.array_equal(rgba[0, 0, :3], shades[1, -1]) and np.array_equal(rgba[1, 1, :3], [255, 255, 255])
    assert (rgba[0, 1, :3] != 255).any() and np.array_equal(rgba[0, 1, :3], shades[2, np.where(
        (shades[2] == rgba[0, 1, :3]).all(axis=1))[0][0]])
    assert len(np.unique(class_colours(10)[:, :3], axis=0)) == 10 and class_shades(10).size // 3 < 64


# ---- one sample explained -----------------------------------------------------

def test_inspect_explains_one_digit_with_its_image_and_the_neurons_behind_the_answer(tmp_path, capsys):
    from simnet.cli import main
    from simnet.trace.explain import INK
    sc = load("scenarios/digits.toml").with_overrides(steps=20)
    run(sc, tmp_path / "run", gifs=False)
    assert main(["inspect", str(tmp_path / "run"), "--step", "20", "--sample", "3"]) == 0
    out = capsys.readouterr().out
    X, Y = sc.parts().train
    image = out.split("input:\n")[1].splitlines()[:8]
    assert [len(row) for row in image] == [18] * 8
    darkest = [(r, c) for r, row in enumerate(image) for c in range(8) if row[2 + 2 * c] == INK[-1]]
    assert darkest and all(X[3].reshape(8, 8)[r, c] == X[3].max() for r, c in darkest)
    with open_trace(tmp_path / "run") as trace:
        net = trace.network_at(20)
    P = net.forward(X[3:4])[0]
    picked = int(P.argmax())
    assert f"picked: class {picked} (y{picked})" in out
    assert ("; right" in out) == (picked == Y[3].argmax())
    target = net.neurons[f"y{picked}"]
    contributions = sorted(((c.source.value[0] * c.weight, c.source.name) for c in target.incoming),
                           key=lambda part: -abs(part[0]))
    listed = out.split("(activation × weight):\n")[1].splitlines()
    assert [line.split()[0] for line in listed[:5]] == [name for _, name in contributions[:5]]
    assert main(["inspect", str(tmp_path / "run"), "--step", "20", "--sample", str(len(X))]) == 2
    assert f"--sample {len(X)}: sample {len(X)} is not in the data set" in capsys.readouterr().err


# ---- images as inputs ---------------------------------------------------------

def test_digit_frames_show_each_first_layer_neurons_weights_as_an_image(tmp_path):
    from simnet.viz.frames import VALUES, Film, symmetric_norm
    run(load("scenarios/digits.toml").with_overrides(steps=3), tmp_path / "run", gifs=False)
    with open_trace(tmp_path / "run") as trace:
        snapshots = [trace.snapshot(s) for s in trace.steps]
        net = trace.network_at(trace.steps[-1])
    film = Film(snapshots, image=(8, 8))
    picture = film.picture("activations")
    look = film.look(len(film) - 1, "activations", picture)
    grid = look.surface[::-1]  # painted from the bottom row up
    side = 6  # the input and 32 fields, six to a row
    norm = symmetric_norm(film._field_scales["weight"])
    for j in (0, 17, 31):
        top, left = ((j + 1) // side) * 9, ((j + 1) % side) * 9
        weights = np.array([net.connection(f"x{p}", f"h1_{j}").weight for p in range(64)]).reshape(8, 8)
        expected = np.round(VALUES(norm(weights)) * 255).astype(np.uint8)
        assert np.array_equal(grid[top:top + 8, left:left + 8], expected)
    assert picture.surface_axes is not None and film.picture("weights").surface_axes is not None
    # the input layer is drawn as the image: an 8×8 grid of pixels, pixel p at row p // 8, column p % 8, in greys
    inputs = [film.nodes.index(f"x{p}") for p in range(64)]
    xy = picture.xy[inputs]
    assert np.array_equal(np.unique(xy[:, 0]), np.sort(xy[:8, 0])) and len(np.unique(xy[:, 1])) == 8
    assert np.array_equal(np.argsort(xy[:8, 0]), np.arange(8)) and np.all(np.diff(xy[::8, 1]) > 0)
    grey = look.node_color[inputs]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])
    mean = film.frames[-1].activation[inputs]
    assert grey[np.argmax(mean), 0] == grey[:, 0].min() and grey[np.argmin(mean), 0] == grey[:, 0].max()
    picture.close()


def test_replay_draws_one_sample_as_the_input_image_of_the_gifs(tmp_path, capsys):
    from PIL import Image
    from simnet.cli import main
    from simnet.viz.frames import Film
    sc = load("scenarios/digits.toml").with_overrides(steps=3)
    run(sc, tmp_path / "run", gifs=False)
    X = sc.parts().train[0]
    index = 7
    for kind in ("activations", "weights"):
        assert main(["replay", str(tmp_path / "run"), "--gif", kind, "-q", "-o", str(tmp_path / f"{kind}.gif")]) == 0
        assert main(["replay", str(tmp_path / "run"), "--gif", kind, "--sample", str(index), "-q",
                     "-o", str(tmp_path / f"{kind}-{index}.gif")]) == 0
    with open_trace(tmp_path / "run") as trace:
        picture = Film([trace.snapshot(s) for s in trace.steps], image=(8, 8)).picture("activations")
    top, bottom, left, right = picture.surface_box
    picture.close()
    # the panel's grid is 53 pixels a side (6 tiles of 8 and their gaps); the input is its top left tile
    rows = np.arange(bottom - top) * 53 // (bottom - top)
    cols = np.arange(right - left) * 53 // (right - left)
    inside = np.ix_(top + np.where(rows < 8)[0], left + np.where(cols < 8)[0])
    pixel = np.ix_(rows[rows < 8], cols[cols < 8])
    x = X[index].reshape(8, 8)
    expected = np.round(255 * (1 - (x - x.min()) / (x.max() - x.min())))[pixel]

    def input_tile(path):
        with Image.open(path) as gif:
            gif.seek(gif.n_frames - 1)
            return np.asarray(gif.convert("RGB"), dtype=float)[inside]

    for kind in ("activations", "weights"):
        mean, one = input_tile(tmp_path / f"{kind}.gif"), input_tile(tmp_path / f"{kind}-{index}.gif")
        assert np.abs(one - expected[..., None]).max() <= 8  # the GIF's palette of 256 colours rounds greys
        assert np.abs(one - mean).max() > 100
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "run"), "--sample", str(len(X)), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--sample {len(X)}" in err and f"(0 to {len(X) - 1})" in err
    assert not (tmp_path / "run" / "activations.gif").exists()
    run(load("scenarios/xor.toml").with_overrides(steps=2), tmp_path / "xor", gifs=False)
    assert main(["replay", str(tmp_path / "xor"), "--sample", "0", "-q"]) == 2
    assert "--sample 0: the inputs of this run are not an image" in capsys.readouterr().err


def test_the_replay_page_shows_the_held_out_curve_and_the_class_surface(tmp_path):
    import base64
    import re
    from simnet.viz.page import render_page
    sc = loads(THREE_CLASSES.format(engine="fast"))
    run(sc, tmp_path / "run", gifs=False)
    with open_trace(tmp_path / "run") as trace:
        page = render_page(trace)
        held = trace.held_out()
    data = json.loads(re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page, re.S).group(1))
    unpack = lambda b64, dtype: np.frombuffer(base64.b64decode(b64), dtype=dtype)  # noqa: E731
    for key in ("step", "loss", "accuracy"):
        assert np.array_equal(unpack(data["heldOut"][key], "<f8"), held[key])
    surface = data["surface"]
    assert surface["classes"] == [f"#{''.join(f'{round(v * 255):02x}' for v in c[:3])}" for c in class_colours(3)]
    shades = {tuple(s) for s in np.round(class_shades(3) * 255).reshape(-1, 3).astype(int)}
    last = unpack(surface["data"][-1], "u1").reshape(-1, 3)
    assert {tuple(p) for p in last} <= shades and len({tuple(p) for p in last}) > 3
    X, Y = sc.dataset()
    assert [p[2] for p in surface["points"]] == Y.argmax(axis=1).tolist()


def test_the_replay_page_of_digits_shows_the_receptive_fields_as_the_gif_does(tmp_path):
    import base64
    import re
    from simnet.viz.frames import Film
    from simnet.viz.page import render_page
    run(load("scenarios/digits.toml").with_overrides(steps=4), tmp_path / "run", gifs=False)
    with open_trace(tmp_path / "run") as trace:
        page = render_page(trace)
        film = Film([trace.snapshot(s) for s in trace.steps], image=(8, 8))
    data = json.loads(re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page, re.S).group(1))
    surface = data["surface"]
    assert (surface["fields"], surface["n"], surface["w"]) == (32, 53, 53)
    last = np.frombuffer(base64.b64decode(surface["data"][-1]), "u1").reshape(53, 53, 3)
    assert np.array_equal(last, film.fields_mosaic(film.frames[-1])[::-1, :, :3])


def test_the_replay_page_of_digits_switches_its_input_between_the_batch_mean_and_one_sample(tmp_path, browser):
    import os
    from test_html_browser import SCREENSHOT_DIR, open_page
    from simnet.viz.page import write_page
    sc = load("scenarios/digits.toml").with_overrides(steps=3)
    run(sc, tmp_path / "run", gifs=False)
    X = sc.parts().train[0]
    with open_trace(tmp_path / "run") as trace:
        path = write_page(trace, tmp_path / "replay.html")
    page = open_page(browser, path)
    canvas = page.locator("#surface")
    canvas.scroll_into_view_if_needed()
    # the centre of each pixel of the input tile, the top left 8×8 of the 53×53 mosaic drawn on 320×320
    read = """c => { const g = c.getContext("2d"), out = [];
      for (let r = 0; r < 8; r++) for (let k = 0; k < 8; k++)
        out.push(g.getImageData(Math.floor((k + 0.5) * 320 / 53), Math.floor((r + 0.5) * 320 / 53), 1, 1).data[0]);
      return out; }"""
    mean = canvas.evaluate(read)
    assert "batch mean" in page.inner_text("#surface-caption")
    page.locator("#sample").fill("7")
    x = X[7]
    assert canvas.evaluate(read) == np.round(255 * (1 - (x - x.min()) / (x.max() - x.min()))).astype(int).tolist()
    assert canvas.evaluate(read) != mean and "sample 7 of the data set" in page.inner_text("#surface-caption")
    assert page.locator("#sample").get_attribute("max") == str(len(X) - 1)
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "digits-sample.png"), full_page=True)
    page.locator("#sample").fill("")
    assert canvas.evaluate(read) == mean
    assert page.errors == []
    page.close()


def test_a_csv_scenario_says_its_inputs_form_an_image(tmp_path):
    (tmp_path / "pixels.csv").write_text("x0,x1,x2,x3,label\n0,1,1,0,1\n1,0,0,1,0\n")
    text = THREE_CLASSES.format(engine="actor").replace("layers = [2, 8, 3]", "layers = [4, 8, 2]").replace(
        'kind = "gaussians"\nclasses = 3\nsamples = 90\nnoise = 0.3\ntest_fraction = 0.3',
        'kind = "csv"\npath = "pixels.csv"\nimage = [2, 2]').replace("test_accuracy_min = 0.5", "accuracy_min = 0.5")
    sc = loads(text, tmp_path / "s.toml")
    assert sc.data.image == (2, 2) and sc.parts().train[1].tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ScenarioError) as e:
        loads(text.replace("image = [2, 2]", "image = [3, 2]"), tmp_path / "s.toml")
    assert e.value.where == "data.image" and "a 3×2 image has 6 pixels" in str(e.value)
