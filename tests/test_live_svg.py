"""The live picture of train(show=True): SVG text written without matplotlib, redrawn in the notebook."""
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.colors import to_hex

import simnet as sn
from simnet.viz.frames import LEVELS, VALUES
from simnet.viz.svg import ACTIVATION_COLOURS, NEGATIVE, POSITIVE, UNKNOWN, network_svg

SVG = "{http://www.w3.org/2000/svg}"


def small_network():
    net = sn.Network(seed=0)
    for name, role in (("x", "input"), ("h<&\"'>", "hidden"), ("g", "hidden"), ("y", "output")):
        net.add_neuron(name, role=role)
    net.connect("x", "h<&\"'>", weight=2.0)
    net.connect("x", "g", weight=-1.0)
    net.connect("h<&\"'>", "y", weight=0.5)
    net.connect("g", "y", weight=-0.25)
    return net


def test_the_lookup_table_is_the_activations_gifs_colour_map():
    assert list(ACTIVATION_COLOURS) == [to_hex(VALUES(i)) for i in range(LEVELS)]


def test_one_circle_per_neuron_coloured_by_its_batch_mean_activation():
    net = small_network()
    # batch means 1, -1, 0.5 and no value yet: the scale is 1, so the ends of the map, the band of 0.75, grey
    for name, batch in (("x", [0.5, 1.5]), ("h<&\"'>", [-2.0, 0.0]), ("g", [0.25, 0.75])):
        net.neuron(name).value = np.array(batch)
    root = ET.fromstring(network_svg(net, title="step 3"))
    fills = {c.find(f"{SVG}title").text.split(":")[0]: c.get("fill") for c in root.iter(f"{SVG}circle")}
    assert fills == {"x": ACTIVATION_COLOURS[-1], "h<&\"'>": ACTIVATION_COLOURS[0],
                     "g": ACTIVATION_COLOURS[int(0.75 * LEVELS)], "y": UNKNOWN}


def test_one_line_per_connection_coloured_by_sign_and_as_wide_as_the_weight_is_large():
    root = ET.fromstring(network_svg(small_network()))
    lines = list(root.iter(f"{SVG}line"))
    assert [line.get("stroke") for line in lines] == [POSITIVE, NEGATIVE, POSITIVE, NEGATIVE]
    widths = [float(line.get("stroke-width")) for line in lines]
    # the largest weight (2) is the thickest line; half of it is drawn half-way from the thinnest
    assert widths[0] == 4.0 and widths[1] == pytest.approx(0.4 + 3.6 / 2, abs=0.01)
    assert widths[0] > widths[1] > widths[2] > widths[3]


def test_names_are_escaped_and_the_title_is_written():
    svg = network_svg(small_network(), title="step 7 · batch loss 0.5 < 1")
    assert "h<&" not in svg and "h&lt;&amp;&quot;&#x27;&gt;" in svg
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "step 7 · batch loss 0.5 < 1" in texts
    assert "h<&\"'>" in texts  # four neurons in three columns: the names fit


def test_a_large_network_leaves_its_names_out():
    root = ET.fromstring(network_svg(sn.Network.layered([64, 32, 10], seed=0)))
    assert len(list(root.iter(f"{SVG}circle"))) == 106 and len(list(root.iter(f"{SVG}line"))) == 64 * 32 + 320
    assert not any(t.text == "x0" for t in root.iter(f"{SVG}text"))


class FakeHandle:
    def __init__(self, shown):
        self.shown = [shown]

    def update(self, shown, raw=False):
        self.shown.append(shown)


def test_training_with_show_redraws_the_svg_picture(monkeypatch):
    import IPython.display
    handles = []

    def display(shown, raw=False, display_id=False):
        handles.append(FakeHandle(shown))
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", display)
    net = sn.Network.layered([2, 4, 3], seed=0)
    X = np.random.default_rng(0).normal(size=(30, 2))
    history = net.train(X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0), steps=40, lr=0.1, loss="cross_entropy",
                        engine="fast", show=True)
    picture, curve = [h for h in handles if isinstance(h.shown[0], dict)]  # and the bar
    assert len(picture.shown) >= 2 and len(curve.shown) == len(picture.shown)
    first, last = (ET.fromstring(p["image/svg+xml"]) for p in (picture.shown[0], picture.shown[-1]))
    title = lambda root: next(root.iter(f"{SVG}text")).text
    assert title(first) == "step 0"
    assert title(last) == f"step 40 · batch loss {history.loss[-1]:.4g} · accuracy {history.accuracy[-1]:.0%}"
    assert {c.get("fill") for c in first.iter(f"{SVG}circle")} == {UNKNOWN}
    assert UNKNOWN not in {c.get("fill") for c in last.iter(f"{SVG}circle")}


def test_the_live_picture_needs_no_matplotlib():
    code = ("import sys, IPython.display\n"
            "class Handle:\n    def update(self, shown, raw=False): pass\n"
            "IPython.display.display = lambda shown, raw=False, display_id=False: Handle()\n"
            "import simnet as sn\n"
            "net = sn.Network.layered([2, 3, 1], seed=0)\n"
            "net.train([[0, 1], [1, 0]], [[1], [0]], steps=5, lr=0.1, show=True)\n"
            "print('matplotlib' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_show_outside_a_notebook_is_a_one_line_error():
    code = ("import simnet as sn\n"
            "net = sn.Network.layered([2, 3, 1], seed=0)\n"
            "try:\n    net.train([[0, 1], [1, 0]], [[1], [0]], steps=5, lr=0.1, show=True)\n"
            "except sn.SimnetError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout.strip().splitlines()[-1] == ("show=True draws in a Jupyter notebook, and this is not one; "
                                                   "train without show")
