"""Checks of what a user hands the network: input and gradient batches as float arrays of the right shape."""
import numpy as np

from ..errors import SimnetError

__all__ = ["matrix", "validate_grad_outputs", "validate_inputs"]


def validate_inputs(net, X):
    """X as a float64 (batch, n_inputs) array; SimnetError saying what is wrong otherwise."""
    if not net.inputs or not net.outputs:
        raise SimnetError(f"the network needs at least one input and one output neuron "
                          f"(it has {len(net.inputs)} inputs, {len(net.outputs)} outputs)")
    return matrix(X, "X", len(net.inputs), "inputs")


def validate_grad_outputs(net, G):
    """G as a float64 (batch, n_outputs) array for a backward sweep after a forward one over the same batch."""
    G = matrix(G, "grad_outputs", len(net.outputs), "outputs")
    for n in net.neurons.values():
        if n.value is None:
            raise SimnetError(f"backward needs a forward sweep first: neuron {n.name!r} has no value yet "
                              "(call forward(X) after the last change to the network)")
        if len(n.value) != G.shape[0]:
            raise SimnetError(f"grad_outputs has {G.shape[0]} rows, but the last forward sweep was over a batch "
                              f"of {len(n.value)}; expected one row per sample of that batch")
    return G


def matrix(A, what, columns, per):
    """`A` as a float64 (batch, `columns`) array of finite numbers; SimnetError naming `what` otherwise.

    per: what a column stands for, in the plural ("inputs").

    >>> matrix([[1, 2]], "X", 2, "inputs")
    array([[1., 2.]])
    """
    try:
        A = np.asarray(A)
    except ValueError:
        # numpy refuses rows of different lengths outright
        raise SimnetError(f"{what} is ragged (rows of different lengths); expected (batch, {columns}) numbers, "
                          f"one column per {per[:-1]}") from None
    if A.dtype.kind == "c":
        raise SimnetError(f"{what} holds complex numbers; expected real numbers")
    if A.dtype.kind not in "biufO":
        raise SimnetError(f"{what} must be numeric, got {A.dtype.name} values")
    try:
        # objects: Python ints too large for int64 are numbers; complex ones or None are not
        A = A.astype(np.float64, copy=False)
    except (TypeError, ValueError, OverflowError):
        raise SimnetError(f"{what} must hold real numbers only") from None
    if A.ndim != 2 or A.shape[1] != columns or A.shape[0] == 0:
        raise SimnetError(f"{what} has shape {A.shape}; expected (batch, {columns}), one column per {per[:-1]}"
                          f" ({columns} {per}) and at least one row")
    if not np.all(np.isfinite(A)):
        bad = np.argwhere(~np.isfinite(A))[0]
        raise SimnetError(f"{what} contains {A[tuple(bad)]} at row {bad[0]}, column {bad[1]}; expected finite numbers")
    return A
