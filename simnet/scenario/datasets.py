"""Data sets for scenarios: small 2-D classification sets, a sine curve, CSV files.

Every generator takes the number of samples, the noise level and a numpy
``Generator`` and returns ``(X, y)``: X is (samples, n_inputs) and y is
(samples, 1), both float64.  For the classification sets y holds the labels
0 and 1; for ``sine`` it holds the regression target.  Noise is Gaussian with
standard deviation ``noise``: added to the inputs of the classification sets,
to the target of ``sine``.  Nothing here touches global random state.
"""
import array
import csv
import io
import math

import numpy as np

from ..errors import ScenarioError, excerpt
from .reading import read_bounded

__all__ = ["GENERATORS", "KINDS", "MAX_CSV_BYTES", "SHAPES", "and_", "circle", "gaussians", "generate", "moons", "or_",
           "read_csv", "sine", "spiral", "xor"]

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


def _halves(samples):
    """How many samples go to class 0 and to class 1 (class 0 takes the odd one)."""
    return samples - samples // 2, samples // 2


def circle(samples, noise, rng):
    """A disc of radius 0.5 (label 1) inside a ring from 0.7 to 1 (label 0), as in the TensorFlow Playground."""
    outside, inside = _halves(samples)
    radius = np.concatenate([rng.uniform(0.7, 1.0, outside), rng.uniform(0.0, 0.5, inside)])
    angle = rng.uniform(0.0, 2.0 * math.pi, samples)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    y = np.concatenate([np.zeros(outside), np.ones(inside)])
    return X + noise * rng.standard_normal(X.shape), y[:, None]


def gaussians(samples, noise, rng):
    """Two points, (-1, -1) labelled 0 and (1, 1) labelled 1, each spread by the noise into a blob."""
    first, second = _halves(samples)
    centres = np.concatenate([np.full((first, 2), -1.0), np.full((second, 2), 1.0)])
    y = np.concatenate([np.zeros(first), np.ones(second)])
    return centres + noise * rng.standard_normal(centres.shape), y[:, None]


def spiral(samples, noise, rng):
    """Two interleaved spiral arms of 1.75 turns out to radius 1, one per label."""
    arms = []
    for label, count in enumerate(_halves(samples)):
        r = np.arange(count) / max(count, 1)
        t = 1.75 * 2.0 * math.pi * r + label * math.pi
        arms.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
    X = np.concatenate(arms)
    y = np.concatenate([np.zeros(len(arms[0])), np.ones(len(arms[1]))])
    return X + noise * rng.standard_normal(X.shape), y[:, None]


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
KINDS = (*GENERATORS, "csv")
# kind -> (input columns, labels are classes)
SHAPES = {kind: (2, True) for kind in GENERATORS}
SHAPES["sine"] = (1, False)


def generate(kind, samples, noise, seed):
    """(X, y) of the built-in set `kind`, drawn from a generator seeded with `seed`."""
    # a stream of its own, so the data does not depend on how the network draws its weights
    rng = np.random.default_rng([seed, 0xDA7A])
    return GENERATORS[kind](samples, noise, rng)


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
