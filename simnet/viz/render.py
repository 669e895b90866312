"""Pictures of a run: the training GIFs, the sweep of one step, the loss plot, notebook PNGs.

Everything here reads snapshots (``trace.snapshot(step)``, or the graphs of
a live :class:`simnet.trace.snapshot.SnapshotBuilder`) and never a live network, so
a run and its replay give the same pictures, byte for byte:

    render_run(trace, "output/xor")                   # activations.gif, weights.gif, loss.png
    render_gif(trace, "sweep", "sweep.gif", step=40)  # one step, message by message
    write_gif(builder.snapshots.values(), "activations", "live.gif")

The GIFs are encoded by :mod:`simnet.viz.gif`.
"""
from pathlib import Path

import numpy as np

from ..errors import SimnetError, TraceError
from ..files import written_whole
from ..progress import log_scale
from .frames import KINDS as FILM_KINDS, Film
from ..scenario.runinfo import loss_penalty, trace_data, trace_image, trace_sample
from .gif import Counter, write_looks

__all__ = ["GIF_KINDS", "LABEL_CHARS", "confusion_figure", "film_gif", "loss_figure", "network_png", "plot_confusion",
           "plot_loss", "render_gif", "render_run", "snapshot_png", "trace_png", "write_gif"]

GIF_KINDS = (*FILM_KINDS, "sweep")
LABEL_CHARS = 40  # an action's label in loss.png: what fits down the chart at 8 pt


def render_run(trace, run_dir, *, gifs=("activations", "weights"), progress=None, data=None):
    """Write run_dir/loss.png and the GIFs named in `gifs` (activations, weights); returns their paths.

    progress: None or a callable progress(done, total) counting frames.
    data: the training set (X, Y) to draw under the decision surface; by
    default it is rebuilt from the scenario the trace recorded, if any.
    """
    unknown = [g for g in gifs if g not in FILM_KINDS]
    if unknown:
        raise SimnetError(f"unknown GIF kind {unknown[0]!r}; render_run writes {' and '.join(FILM_KINDS)}")
    run_dir = Path(run_dir)
    written = [plot_loss(trace, run_dir / "loss.png")]
    if gifs:
        film = _trace_film(trace, data)
        counter = Counter(progress, len(film) * len(gifs))
        for kind in gifs:
            written.append(film_gif(film, kind, run_dir / f"{kind}.gif", counter))
    return written


def render_gif(trace, kind, path, *, step=None, progress=None, data=None, sample=None):
    """Write one GIF of `trace` to `path`: kind activations, weights, or sweep (which needs `step`).

    sample: for a run whose inputs form an image, the index of the data set's sample the input panel
    shows instead of the batch mean (SimnetError for another run or a sample not in the data set).
    """
    if kind not in GIF_KINDS:
        raise SimnetError(f"unknown GIF kind {kind!r}; expected one of {', '.join(GIF_KINDS)}")
    if kind == "sweep":
        if step is None:
            raise SimnetError("the sweep GIF shows one step: give the step to draw")
        from .message_sweep import sweep_gif
        return sweep_gif(trace, step, path, progress=progress)
    if step is not None:
        raise SimnetError(f"a {kind} GIF covers the whole run; a step is only for the sweep GIF")
    shown = None if sample is None else (sample, trace_sample(trace, sample))
    film = _trace_film(trace, data, shown)
    if shown is not None and film.fields is None:
        raise SimnetError("this network's inputs are not drawn as an image (too few of them, or not one per pixel)")
    return film_gif(film, kind, path, Counter(progress, len(film)))


def write_gif(snapshots, kind, path, *, progress=None, data=None, penalty="", image=None):
    """Write the `kind` GIF (activations or weights) of a sequence of snapshots in step order; returns the path.

    This is the one path every training GIF takes, from a trace or from a
    live SnapshotBuilder's graphs.  penalty: the L1/L2 penalty the run's
    losses hold, in words ("with the L2 penalty"), for the titles; image:
    (rows, columns) of the image the inputs form, if they do.
    """
    film = Film(list(snapshots), data=data, penalty=penalty, image=image)
    return film_gif(film, kind, path, Counter(progress, len(film)))


def film_gif(film, kind, path, counter=None):
    """Draw every frame of `film` as `kind` and write the GIF to `path`."""
    picture = film.picture(kind)
    return write_looks(picture, (film.look(i, kind, picture) for i in range(len(film))), path, counter)


def plot_loss(trace, path):
    """Write the loss plot of `trace` (see :func:`loss_figure`) to `path` as a PNG; returns the path."""
    # anything with a history and actions draws; a Trace also gives its held-out evaluations
    held_out = trace.held_out() if hasattr(trace, "held_out") else None
    return _save_figure(loss_figure(trace.history(), trace.actions(), loss_penalty(trace), held_out), path)


def loss_figure(history, actions, penalty="", held_out=None):
    """Batch loss (and accuracy, for classification) per step, each scripted action a labelled vertical line.

    history: {"step", "loss", "accuracy"} arrays (accuracy NaN for regression);
    actions: [{"step", "label"}]; penalty: the penalty the losses hold, in
    words (see :func:`simnet.scenario.runinfo.penalty`), "" for none;
    held_out: {"step", "loss", "accuracy"} of the held-out set, drawn as
    dashed lines with dots (see :meth:`simnet.trace.reader.Trace.held_out`).
    Returns a matplotlib Figure (Agg canvas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    steps, loss = np.asarray(history["step"]), np.asarray(history["loss"], dtype=float)
    accuracy = np.asarray(history.get("accuracy", np.full(len(loss), np.nan)), dtype=float)
    fig = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.09, 0.13, 0.8, 0.78])
    ax.plot(steps, loss, color="#b2182b", linewidth=1.2, label="batch loss")
    tested = held_out is not None and len(held_out["step"]) > 0
    if tested:
        ax.plot(held_out["step"], held_out["loss"], color="#b2182b", linestyle="--", marker="o", markersize=3,
                linewidth=1.2, label="held-out loss")
    finite = loss[np.isfinite(loss)]
    if finite.size and log_scale(finite.min(), finite.max()):
        ax.set_yscale("log")
        # matplotlib's log ticks overflow near 1e300; a diverging loss leaves the chart at the top instead
        ax.set_ylim(top=min(ax.get_ylim()[1], 1e250))
    ax.set_xlabel("step")
    ax.set_ylabel("batch loss" + (f" ({penalty})" if penalty else ""), color="#b2182b")
    ax.grid(alpha=0.3)
    top = ax  # the axes drawn last: labels there are not crossed by a curve
    if np.isfinite(accuracy).any():
        right = top = ax.twinx()
        right.plot(steps, accuracy, color="#2166ac", linewidth=1.0, label="batch accuracy")
        if tested and np.isfinite(held_out["accuracy"]).any():
            right.plot(held_out["step"], held_out["accuracy"], color="#2166ac", linestyle="--", marker="o",
                       markersize=3, linewidth=1.2, label="held-out accuracy")
        right.set_ylim(-0.02, 1.02)
        right.set_ylabel("accuracy", color="#2166ac")
    if tested:
        lines = [line for axes in dict.fromkeys((ax, top)) for line in axes.get_lines() if not line.get_label().startswith("_")]
        top.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8, framealpha=0.8)
    first, last = (min(steps.min(), 0), steps.max()) if steps.size else (0, 1)
    for step, label in _action_marks(actions):
        ax.axvline(step, color="#444444", linestyle="--", linewidth=0.8)
        # written down along its line, inside the chart (on the line's right near the left edge),
        # so that no label can leave the picture
        side = "left" if step - first < 0.05 * max(last - first, 1) else "right"
        top.text(step, 0.98, f" {label}", transform=top.get_xaxis_transform(), rotation=90, fontsize=8,
                ha=side, va="top", color="#333333", clip_on=True,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    summary = f"last batch loss {loss[-1]:.4g}" + (f" ({penalty})" if penalty else "") if loss.size \
        else "no steps recorded"
    if accuracy.size and np.isfinite(accuracy[-1]):
        summary += f", accuracy {accuracy[-1]:.1%}"
    if tested:
        summary += f"; held-out loss {held_out['loss'][-1]:.4g}" + (
            f", accuracy {held_out['accuracy'][-1]:.1%}" if np.isfinite(held_out["accuracy"][-1]) else "")
    fig.suptitle(summary, fontsize=10, x=0.09, ha="left", y=0.99)
    if steps.size:
        ax.set_xlim(first, last)
    return fig


def plot_confusion(counts, path, title="confusion"):
    """Write the confusion matrix `counts` (K×K, rows = true class) to `path` as a PNG; returns the path."""
    return _save_figure(confusion_figure(counts, title), path)


def confusion_figure(counts, title="confusion"):
    """The confusion matrix `counts` (rows the true class, columns the class picked) as a grid of counts.

    Each cell's shade is its share of its row (of the samples of that class); the
    diagonal is what was right.  Returns a matplotlib Figure (Agg canvas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    counts = np.asarray(counts, dtype=np.int64)
    classes = len(counts)
    side = min(8.0, 2.0 + 0.45 * classes)
    fig = Figure(figsize=(side + 0.8, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.14, 0.12, 0.72, 0.76])
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, column), n in np.ndenumerate(counts):
        ax.text(column, row, str(n), ha="center", va="center", fontsize=9 if classes <= 10 else 6,
                color="white" if share[row, column] > 0.6 else "#222222")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("class picked (largest output)")
    ax.set_ylabel("true class")
    right = np.trace(counts)
    fig.suptitle(f"{title}: {right} of {counts.sum()} right ({right / max(counts.sum(), 1):.1%})", fontsize=10)
    return fig


def _action_marks(actions, most=3, longest=LABEL_CHARS):
    """(step, label) per step with actions: labels of one step joined, beyond `most` counted, cut to `longest`."""
    by_step = {}
    for action in actions:
        by_step.setdefault(action["step"], []).append(str(action.get("label") or action.get("action")))
    for step, labels in by_step.items():
        extra = f" +{len(labels) - most} more" if len(labels) > most else ""
        text = ", ".join(labels[:most])
        if len(text + extra) > longest:
            text = text[:longest - len(extra) - 1].rstrip(", ") + "…"
        yield step, text + extra


def network_png(net):
    """PNG bytes of a Network as it is now: its topology, weights and biases."""
    from ..trace.snapshot import NetworkState, SnapshotBuilder, StepData
    state = NetworkState()
    for n in net.neurons.values():
        state.kind[n.name], state.bias[n.name] = (n.role, n.activation), n.bias
    for c in net.connections:
        state.weight[c.key], state.frozen[c.key] = c.weight, c.frozen
    return snapshot_png(SnapshotBuilder.graph(net.step, state, StepData(net.learning_rate)))


def trace_png(trace):
    """PNG bytes of a trace's last recorded step, drawn as in the activations GIF."""
    steps = list(trace.steps)
    if not steps:
        raise TraceError("the trace has no recorded step to draw")
    data, note = trace_data(trace)
    return snapshot_png(trace.snapshot(steps[-1]), data=data, data_note=note, image=trace_image(trace))


def snapshot_png(snapshot, data=None, data_note="", image=None):
    """PNG bytes of one snapshot drawn as a frame of the activations GIF (data_note, image: see :class:`Film`)."""
    import io
    film = Film([snapshot], data=data, data_note=data_note, image=image)
    out = io.BytesIO()
    picture = film.picture("activations")
    picture.png(film.look(0, "activations", picture), out)
    picture.close()
    return out.getvalue()


def _trace_film(trace, data, sample=None):
    """The Film of every recorded step of `trace`, drawn over `data` (None: the data set the trace gives)."""
    data, note = (data, "") if data is not None else trace_data(trace)
    return Film(_snapshots(trace), data=data, data_note=note, penalty=loss_penalty(trace), image=trace_image(trace),
                sample=sample)


def _snapshots(trace):
    """The trace's snapshots in step order (replaying forward once where the trace can)."""
    steps = list(trace.steps)
    if not steps:
        raise TraceError("the trace has no recorded steps to draw")
    if hasattr(trace, "snapshots"):
        return [G for _, G in trace.snapshots(steps)]
    return [trace.snapshot(s) for s in steps]


def _save_figure(fig, path):
    path = Path(path)
    with written_whole(path) as temp:
        fig.savefig(temp, format=path.suffix.lstrip(".") or "png")
    return path
