"""What pictures and summaries of a trace need from its metadata: the data set drawn, what its losses mean.

A trace is someone's file: it is read for what it holds and nothing else.
"""
import numpy as np

from ..errors import SimnetError

__all__ = ["data_record", "loss_penalty", "penalty", "standardization_record", "trace_data", "trace_image",
           "trace_sample", "training_data"]


def training_data(trace):
    """(X, Y) of the data set a trace's pictures draw, or None; see :func:`trace_data`."""
    return trace_data(trace)[0]


def trace_data(trace):
    """((X, Y) or None, a note saying why there are no points or ""): the data set drawn under a trace's surface.

    A csv data set is drawn from the points the run recorded in the trace
    (see :func:`data_record`), never from the file its scenario names; a
    generated one is generated again from the recorded scenario.
    """
    from .loader import recorded
    meta = getattr(trace, "metadata", None) or {}
    points = meta.get("data_points")
    if points is not None:
        try:
            X, Y = np.asarray(points["X"], float), np.asarray(points["Y"], float)
        except (TypeError, ValueError, KeyError):
            return None, "no data points: the trace's copy of them is damaged"
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
            return None, "no data points: the trace's copy of them is damaged"
        return (X, Y), ""
    try:
        scenario = recorded(meta)
        if scenario is None:
            return None, ""
        if scenario.data.kind == "csv":
            return None, "no data points: the trace did not record its csv data"
        return scenario.dataset(), ""
    except SimnetError:
        return None, "no data points: the trace's scenario does not give them"


def trace_image(trace):
    """(rows, columns) of the image a trace's inputs form (digits, or a csv scenario's `image`), or None."""
    from .loader import recorded
    try:
        scenario = recorded(getattr(trace, "metadata", None) or {})
    except SimnetError:
        return None
    return None if scenario is None else scenario.data.image


def trace_sample(trace, index):
    """The input values of sample `index` of the data set a trace's pictures draw, when its inputs form an
    image; SimnetError (saying why, and the samples there are) otherwise."""
    if trace_image(trace) is None:
        raise SimnetError("the inputs of this run are not an image (digits, or a csv data set with "
                          "[data] image = [rows, columns])")
    data, note = trace_data(trace)
    if data is None:
        raise SimnetError(note or "no data points: the trace does not say what it trained on")
    X = data[0]
    if not 0 <= index < len(X):
        raise SimnetError(f"sample {index} is not in the data set of {len(X)} samples (0 to {len(X) - 1})")
    return np.asarray(X[index], dtype=float)


def data_record(scenario, data):
    """The metadata a run's Recorder keeps so that its pictures can be drawn from the trace alone.

    A generated data set is drawn again from the scenario text; the rows read from a csv file are kept
    ({"data_points": {"X", "Y"}}: the surface's points, the batches a sweep draws again), since a replay
    reads no file.
    """
    X, Y = data
    if scenario.data.kind != "csv":
        return {}
    return {"data_points": {"X": np.asarray(X, float).tolist(), "Y": np.asarray(Y, float).tolist()}}


def standardization_record(parts):
    """The metadata keeping what a standardised run subtracted from and divided its inputs by ({} without it).

    `parts`: the scenario's :class:`~simnet.scenario.model.DataParts`.  Measured on the training part only;
    the pictures and the held-out set use the same.
    """
    if parts.mean is None:
        return {}
    return {"standardize": {"mean": parts.mean.tolist(), "scale": parts.scale.tolist()}}


def penalty(config):
    """The penalty in a recorded step's loss for a run's `config` (its run_begin data): "" for none.

    Each step records the loss of its batch before the update, with the L1/L2
    penalty when the run has one ("batch loss"); a run's closing line and
    summary.json give the loss over the whole data set after training,
    without it ("data-set loss").
    """
    config = config if isinstance(config, dict) else {}
    terms = [name for name in ("L1", "L2") if _positive(config.get(name.lower()))]
    if not terms:
        return ""
    return f"with the {' and '.join(terms)} penalt{'ies' if len(terms) > 1 else 'y'}"


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def loss_penalty(trace):
    """The L1/L2 penalty in `trace`'s recorded losses, in words ("" for none; see :func:`penalty`)."""
    return penalty((getattr(trace, "metadata", None) or {}).get("config"))
