"""Data sets for scenarios: small 2-D classification sets, a sine curve, two real sets, CSV files.

Every generator takes the number of samples, the noise level and a numpy
``Generator`` and returns ``(X, y)``: X is (samples, n_inputs) and y is
(samples, 1), both float64.  For the classification sets y holds the labels
0 and 1, or the class indices 0..K-1 of ``spiral``, ``gaussians`` and
``circle`` drawn with K classes; for ``sine`` it holds the regression target.
Noise is Gaussian with standard deviation ``noise``: added to the inputs of
the classification sets, to the target of ``sine``.  Nothing here touches
global random state.

``iris`` and ``digits`` are real data shipped with the package (see
:data:`REAL`): Fisher's 150 iris flowers (4 measurements in cm, 3 species) and
the 1,797 8×8 handwritten digits of the UCI optical digits set (64 pixels
scaled to 0..1, 10 classes).
"""
import array
import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import ScenarioError, excerpt
from .reading import read_bounded

__all__ = ["GENERATORS", "IMAGES", "KINDS", "MANY_CLASSES", "MAX_CSV_BYTES", "REAL", "SHAPES", "and_", "circle",
           "gaussians", "generate", "moons", "or_", "read_csv", "real", "sine", "spiral", "split", "xor"]

# The most a CSV file may hold whatever the memory: about 16 million short rows.
MAX_CSV_BYTES = 2**28


def _gate(truth_table):
    def generate(samples, noise, rng):
        corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        index = np.arange(samples) % 4
        X = corners[index] + noise * rng.standard_normal((samples, 2))
        y = np.array(truth_table, dtype=np.float64)[index]
        return X, y[:, None]
    return generate


xor = _gate([0, 1, 1, 0])
and_ = _gate([0, 0, 0, 1])
or_ = _gate([0, 1, 1, 1])
xor.__doc__ = "The four corners of the unit square labelled a XOR b, repeated to `samples` points."
and_.__doc__ = "The four corners of the unit square labelled a AND b, repeated to `samples` points."
or_.__doc__ = "The four corners of the unit square labelled a OR b, repeated to `samples` points."


def _shares(samples, classes=2):
    """How many samples each class gets: as even as can be, the first classes taking what is left over."""
    return [samples // classes + (k < samples % classes) for k in range(classes)]


def _halves(samples):
    """How many samples go to class 0 and to class 1 (class 0 takes the odd one)."""
    return tuple(_shares(samples))


def _class_labels(counts):
    return np.concatenate([np.full(count, float(k)) for k, count in enumerate(counts)])


def circle(samples, noise, rng, classes=2):
    """A disc of radius 0.5 (label 1) inside a ring from 0.7 to 1 (label 0), as in the TensorFlow Playground.

    With K classes: K rings of width 1/K, class 0 outermost and the last a disc,
    a gap of 0.4/K inside each ring.
    """
    counts = _shares(samples, classes)
    bands = [((classes - 1 - k) / classes, (classes - k) / classes) for k in range(classes)]
    radius = np.concatenate([rng.uniform(low + (0.4 / classes if low > 0 else 0.0), high, count)
                             for (low, high), count in zip(bands, counts)])
    angle = rng.uniform(0.0, 2.0 * math.pi, samples)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X + noise * rng.standard_normal(X.shape), _class_labels(counts)[:, None]


def gaussians(samples, noise, rng, classes=2):
    """Two points, (-1, -1) labelled 0 and (1, 1) labelled 1, each spread by the noise into a blob.

    With K classes: K points evenly round the circle through those two, from (-1, -1).
    """
    counts = _shares(samples, classes)
    angles = 1.25 * math.pi + 2.0 * math.pi * np.arange(classes) / classes
    # rounded so that two classes sit exactly on (-1, -1) and (1, 1)
    corners = np.round(math.sqrt(2.0) * np.column_stack([np.cos(angles), np.sin(angles)]), 12)
    centres = np.concatenate([np.tile(corner, (count, 1)) for corner, count in zip(corners, counts)])
    return centres + noise * rng.standard_normal(centres.shape), _class_labels(counts)[:, None]


def spiral(samples, noise, rng, classes=2):
    """Two interleaved spiral arms of 1.75 turns out to radius 1, one per label (K arms for K classes)."""
    arms = []
    counts = _shares(samples, classes)
    for label, count in enumerate(counts):
        r = np.arange(count) / max(count, 1)
        t = 1.75 * 2.0 * math.pi * r + label * (2.0 * math.pi / classes)
        arms.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    X = np.concatenate(arms)
    return X + noise * rng.standard_normal(X.shape), _class_labels(counts)[:, None]


def moons(samples, noise, rng):
    """Two interleaving half circles, as scikit-learn's make_moons: the upper one 0, the lower one 1."""
    upper, lower = _halves(samples)
    t_upper = np.linspace(0.0, math.pi, upper)
    t_lower = np.linspace(0.0, math.pi, lower)
    X = np.concatenate([
        np.column_stack([np.cos(t_upper), np.sin(t_upper)]),
        np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)]),
    ])
    y = np.concatenate([np.zeros(upper), np.ones(lower)])
    return X + noise * rng.standard_normal(X.shape), y[:, None]


def sine(samples, noise, rng):
    """x evenly spread over [-π, π], target sin(x) plus noise."""
    x = np.linspace(-math.pi, math.pi, samples)
    y = np.sin(x) + noise * rng.standard_normal(samples)
    return x[:, None], y[:, None]


GENERATORS = {
    "xor": xor, "and": and_, "or": or_, "circle": circle, "gaussians": gaussians,
    "spiral": spiral, "moons": moons, "sine": sine,
}
MANY_CLASSES = ("spiral", "gaussians", "circle")  # the generated sets that can be drawn with K classes
# real data shipped in simnet/scenario/data: kind -> (file, classes, scale of the stored integers)
REAL = {"iris": ("iris.npz", 3, 0.1), "digits": ("digits.npz", 10, 1.0 / 16.0)}
IMAGES = {"digits": (8, 8)}  # the real sets whose inputs are the pixels of an image: (rows, columns)
KINDS = (*GENERATORS, *REAL, "csv")
# kind -> (input columns, labels are classes)
SHAPES = {kind: (2, True) for kind in GENERATORS}
SHAPES["sine"] = (1, False)
SHAPES.update(iris=(4, True), digits=(64, True))


def generate(kind, samples, noise, seed, classes=2):
    """(X, y) of the built-in set `kind`, drawn from a generator seeded with `seed` (K = `classes` classes)."""
    if kind in REAL:
        return real(kind)
    # a stream of its own, so the data does not depend on how the network draws its weights
    rng = np.random.default_rng([seed, 0xDA7A])
    if classes != 2:
        return GENERATORS[kind](samples, noise, rng, classes)
    return GENERATORS[kind](samples, noise, rng)


def real(kind):
    """(X, y) of the shipped real data set `kind` ("iris" or "digits"), y the class indices as (samples, 1).

    >>> X, y = real("digits")
    >>> X.shape, float(X.max()), int(y.max())
    ((1797, 64), 1.0, 9)
    """
    name, _, scale = REAL[kind]
    with np.load(Path(__file__).parent / "data" / name, allow_pickle=False) as stored:
        return stored["X"] * scale, stored["y"].astype(np.float64)[:, None]


def split(samples, fraction, seed):
    """(train, test) index arrays: a seeded shuffle of range(samples), the last round(fraction × samples) held out.

    Disjoint, together every sample, both sorted; the same for the same seed.

    >>> split(10, 0.2, seed=1)[1].size
    2
    """
    order = np.random.default_rng([seed, 0x7E57]).permutation(samples)
    held = int(round(fraction * samples))
    return np.sort(order[:samples - held]), np.sort(order[samples - held:])


def read_csv(path, columns, *, max_bytes=MAX_CSV_BYTES, too_big=None, check=None):
    """The columns named `columns` of the CSV file at `path`, as a (rows, len(columns)) float64 array.

    The first line is a header; every name in `columns` must appear in it and
    every header name must be one of `columns`.  At most `max_bytes` are read
    (`too_big(size)` says why more is refused; see :func:`simnet.reading.read_bounded`).
    `check(table)` may give (row, column index or None, why) of a value the
    caller cannot use.  ScenarioError names the file, the line and the column
    of anything wrong.
    """
    raw = read_bounded(path, max_bytes, "a CSV file", too_big=too_big)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(path, "file", f"is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    del raw
    # row by row into one flat array: a list of lists of floats would take about fifty times the file's size
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        first = next(rows, None)
        if first is None:
            raise ScenarioError(path, "line 1", "the file is empty; expected a header naming " + ", ".join(columns))
        header = [name.strip() for name in first]
        missing = [name for name in columns if name not in header]
        if missing:
            raise ScenarioError(path, "line 1", f"the header has no column {', '.join(map(excerpt, missing))}; "
                                f"expected the input and output neuron names {', '.join(columns)}")
        unknown = [name for name in header if name not in columns]
        if unknown:
            raise ScenarioError(path, "line 1", f"column {excerpt(unknown[0])} is not an input or output neuron; "
                                f"expected only {', '.join(columns)}")
        if len(set(header)) != len(header):
            twice = next(name for name in header if header.count(name) > 1)
            raise ScenarioError(path, "line 1", f"column {excerpt(twice)} appears twice")
        order = [header.index(name) for name in columns]
        values, lines = array.array("d"), array.array("q")
        for row in rows:
            if not row:
                continue
            line = rows.line_num
            if len(row) != len(header):
                raise ScenarioError(path, f"line {line}", f"has {len(row)} fields; the header has {len(header)}")
            values.extend(_cell(path, line, header[i], row[i]) for i in order)
            lines.append(line)
    except csv.Error as e:
        raise ScenarioError(path, f"line {rows.line_num}", f"is not valid CSV: {e}") from None
    if not lines:
        raise ScenarioError(path, "line 2", "no data rows after the header")
    table = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(columns)).copy()
    problem = check(table) if check is not None else None
    if problem:
        row, column, why = problem
        where = f"line {lines[row]}" + ("" if column is None else f", column {columns[column]}")
        raise ScenarioError(path, where, why)
    return table


def _cell(path, line, column, text):
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(path, f"line {line}, column {column}", f"{excerpt(text)} is not a number") from None
    if not math.isfinite(value):
        raise ScenarioError(path, f"line {line}, column {column}", f"{excerpt(text)} is not a finite number")
    return value
