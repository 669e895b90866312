"""Data sets: shapes, labels, the geometry each promises, seeding without global state, CSV reading."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simnet.scenario import datasets
from simnet.errors import ScenarioError

CLASSIFICATION = ["xor", "and", "or", "circle", "gaussians", "spiral", "moons"]


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(list(datasets.GENERATORS)), samples=st.integers(1, 300),
       noise=st.floats(0, 2), seed=st.integers(0, 2**63 - 1))
def test_every_set_has_the_promised_shape_and_is_reproducible(kind, samples, noise, seed):
    X, y = datasets.generate(kind, samples, noise, seed)
    columns = 1 if kind == "sine" else 2
    assert X.shape == (samples, columns) and y.shape == (samples, 1)
    assert X.dtype == y.dtype == np.float64
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    if kind != "sine":
        assert set(np.unique(y)) <= {0.0, 1.0}
    X2, y2 = datasets.generate(kind, samples, noise, seed)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


@pytest.mark.parametrize("kind", ["circle", "gaussians", "spiral", "moons"])
def test_two_class_sets_are_balanced(kind):
    _, y = datasets.generate(kind, 201, 0.1, 0)
    assert int(y.sum()) == 100


@pytest.mark.parametrize("kind,table", [("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])])
def test_gates_are_the_four_corners_with_their_truth_table(kind, table):
    X, y = datasets.generate(kind, 10, 0.0, 3)
    truth = {(0.0, 0.0): table[0], (0.0, 1.0): table[1], (1.0, 0.0): table[2], (1.0, 1.0): table[3]}
    assert {tuple(row) for row in X} == set(truth)
    for row, label in zip(X, y[:, 0]):
        assert label == truth[tuple(row)]
    # repeated: each corner appears samples/4 times, give or take one
    counts = [sum(tuple(row) == corner for row in X) for corner in truth]
    assert max(counts) - min(counts) <= 1


def test_circle_puts_the_inner_class_inside_the_ring():
    X, y = datasets.generate("circle", 400, 0.0, 1)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert np.all(radius[y[:, 0] == 1] <= 0.5)
    assert np.all((radius[y[:, 0] == 0] >= 0.7) & (radius[y[:, 0] == 0] <= 1.0))


def test_gaussians_without_noise_are_their_two_centres():
    X, y = datasets.generate("gaussians", 10, 0.0, 1)
    assert np.array_equal(X[y[:, 0] == 0], np.full((5, 2), -1.0))
    assert np.array_equal(X[y[:, 0] == 1], np.full((5, 2), 1.0))


def test_moons_without_noise_lie_on_two_half_circles():
    X, y = datasets.generate("moons", 100, 0.0, 1)
    upper, lower = X[y[:, 0] == 0], X[y[:, 0] == 1]
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0) and np.all(upper[:, 1] >= -1e-12)
    assert np.allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0) and np.all(lower[:, 1] <= 0.5 + 1e-12)


def test_spiral_arms_are_point_reflections_of_each_other():
    X, y = datasets.generate("spiral", 100, 0.0, 1)
    first, second = X[y[:, 0] == 0], X[y[:, 0] == 1]
    # the second arm is the first turned by half a turn
    assert np.allclose(second, -first)
    radius = np.hypot(first[:, 0], first[:, 1])
    assert np.all(np.diff(radius) > 0) and radius.max() < 1.0


def test_sine_without_noise_is_the_sine_over_minus_pi_to_pi():
    X, y = datasets.generate("sine", 50, 0.0, 1)
    assert X[0, 0] == -math.pi and X[-1, 0] == math.pi
    assert np.array_equal(y[:, 0], np.sin(X[:, 0]))


@pytest.mark.parametrize("kind", list(datasets.GENERATORS))
def test_noise_has_the_standard_deviation_asked_for(kind):
    clean, y0 = datasets.generate(kind, 4000, 0.0, 5)
    noisy, y1 = datasets.generate(kind, 4000, 0.3, 5)
    spread = np.std(y1 - y0) if kind == "sine" else np.std(noisy - clean)
    assert abs(spread - 0.3) < 0.02


def test_different_seeds_draw_different_sets():
    a, _ = datasets.generate("moons", 50, 0.1, 1)
    b, _ = datasets.generate("moons", 50, 0.1, 2)
    assert not np.array_equal(a, b)


def test_generators_neither_use_nor_disturb_global_random_state():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    a, _ = datasets.generate("spiral", 100, 0.2, 9)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(12345)
    b, _ = datasets.generate("spiral", 100, 0.2, 9)
    assert np.array_equal(a, b)


# ---- CSV -------------------------------------------------------------------

def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_columns_come_in_the_order_asked_for_whatever_the_header_order(tmp_path):
    path = write(tmp_path, "y0,x1,x0\n1,2,3\n4,5,6\n")
    table = datasets.read_csv(path, ["x0", "x1", "y0"])
    assert table.tolist() == [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]


@pytest.mark.parametrize("text,where,why", [
    ("", "line 1", "empty"),
    ("x0,y0\n1,2\n", "line 1", "no column 'x1'"),
    ("x0,x1,y0,z\n1,2,3,4\n", "line 1", "column 'z' is not an input or output neuron"),
    ("x0,x1,y0\n", "line 2", "no data rows"),
    ("x0,x1,y0\n1,2,3\n1,two,3\n", "line 3, column x1", "'two' is not a number"),
    ("x0,x1,y0\n1,2,inf\n", "line 2, column y0", "not a finite number"),
    ("x0,x1,y0\n1,2\n", "line 2", "has 2 fields"),
])
def test_csv_errors_name_the_file_line_and_column(tmp_path, text, where, why):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        datasets.read_csv(path, ["x0", "x1", "y0"])
    assert caught.value.file == str(path)
    assert caught.value.where == where
    assert why in caught.value.why


def test_csv_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"x0,x1\n\xff\xfe,1\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        datasets.read_csv(path, ["x0", "x1"])
