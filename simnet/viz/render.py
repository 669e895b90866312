"""Pictures of a run: the training GIFs, the sweep of one step, the loss plot, notebook PNGs.

Everything here reads snapshots (``trace.snapshot(step)``, or the graphs of
a live :class:`simnet.trace.snapshot.SnapshotBuilder`) and never a live network, so
a run and its replay give the same pictures, byte for byte:

    render_run(trace, "output/xor")                   # activations.gif, weights.gif, loss.png
    render_gif(trace, "sweep", "sweep.gif", step=40)  # one step, message by message
    write_gif(builder.snapshots.values(), "activations", "live.gif")

GIFs use one palette for all their frames (the colour maps' colours plus the
frame's own), and each frame after the first stores only the pixels that
changed, which keeps a 200-frame animation small.
"""
from pathlib import Path

import numpy as np

from ..errors import SimnetError, TraceError
from ..files import written_whole
from .frames import KINDS as FILM_KINDS, Film
from ..scenario.runinfo import penalty, trace_data

GIF_KINDS = (*FILM_KINDS, "sweep")
FRAME_MS, LAST_FRAME_MS = 100, 2000
TRANSPARENT = 255  # palette slot left free: "this pixel did not change"
LABEL_CHARS = 40  # an action's label in loss.png: what fits down the chart at 8 pt
SHADES = 5  # bits per channel of the colour lookup table


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
        data, note = (data, "") if data is not None else trace_data(trace)
        film = Film(_snapshots(trace), data=data, data_note=note, penalty=loss_penalty(trace))
        counter = Counter(progress, len(film) * len(gifs))
        for kind in gifs:
            written.append(film_gif(film, kind, run_dir / f"{kind}.gif", counter))
    return written


def render_gif(trace, kind, path, *, step=None, progress=None, data=None):
    """Write one GIF of `trace` to `path`: kind activations, weights, or sweep (which needs `step`)."""
    if kind not in GIF_KINDS:
        raise SimnetError(f"unknown GIF kind {kind!r}; expected one of {', '.join(GIF_KINDS)}")
    if kind == "sweep":
        if step is None:
            raise SimnetError("the sweep GIF shows one step: give the step to draw")
        from .message_sweep import sweep_gif
        return sweep_gif(trace, step, path, progress=progress)
    if step is not None:
        raise SimnetError(f"a {kind} GIF covers the whole run; a step is only for the sweep GIF")
    data, note = (data, "") if data is not None else trace_data(trace)
    film = Film(_snapshots(trace), data=data, data_note=note, penalty=loss_penalty(trace))
    return film_gif(film, kind, path, Counter(progress, len(film)))


def write_gif(snapshots, kind, path, *, progress=None, data=None, penalty=""):
    """Write the `kind` GIF (activations or weights) of a sequence of snapshots in step order; returns the path.

    This is the one path every training GIF takes, from a trace or from a
    live SnapshotBuilder's graphs.  penalty: the L1/L2 penalty the run's
    losses hold, in words ("with the L2 penalty"), for the titles.
    """
    film = Film(list(snapshots), data=data, penalty=penalty)
    return film_gif(film, kind, path, Counter(progress, len(film)))


def film_gif(film, kind, path, counter=None):
    """Draw every frame of `film` as `kind` and write the GIF to `path`."""
    picture = film.picture(kind)
    return write_looks(picture, (film.look(i, kind, picture) for i in range(len(film))), path, counter)


def write_looks(picture, looks, path, counter=None, frame_ms=FRAME_MS, last_frame_ms=LAST_FRAME_MS):
    """Draw each Look of `looks` with `picture` (closed afterwards) into a GIF at `path`; returns the path.

    Frames show `frame_ms` each, the last `last_frame_ms`; `counter` (a Counter) ticks once a frame.  Each
    frame goes to the file as it is drawn, and the file takes its name only when it is whole.
    """
    path = Path(path)
    try:
        with written_whole(path) as temp, open(temp, "wb") as file:
            writer = GifWriter(file, picture.colour_maps(), frame_ms, last_frame_ms)
            for look in looks:
                writer.add(picture.draw(look))
                if counter is not None:
                    counter.tick()
            try:
                writer.finish()
            except SimnetError as e:
                raise SimnetError(f"{path}: {e}") from None
    finally:
        picture.close()
    return path


def plot_loss(trace, path):
    """Write the loss plot of `trace` (see :func:`loss_figure`) to `path` as a PNG; returns the path."""
    return _save_figure(loss_figure(trace.history(), trace.actions(), loss_penalty(trace)), path)


def loss_figure(history, actions, penalty=""):
    """Batch loss (and accuracy, for classification) per step, each scripted action a labelled vertical line.

    history: {"step", "loss", "accuracy"} arrays (accuracy NaN for regression);
    actions: [{"step", "label"}]; penalty: the penalty the losses hold, in
    words (see :func:`simnet.runinfo.penalty`), "" for none.  Returns a
    matplotlib Figure (Agg canvas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    steps, loss = np.asarray(history["step"]), np.asarray(history["loss"], dtype=float)
    accuracy = np.asarray(history.get("accuracy", np.full(len(loss), np.nan)), dtype=float)
    fig = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.09, 0.13, 0.8, 0.78])
    ax.plot(steps, loss, color="#b2182b", linewidth=1.2)
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
        # matplotlib's log ticks overflow near 1e300; a diverging loss leaves the chart at the top instead
        ax.set_ylim(top=min(ax.get_ylim()[1], 1e250))
    ax.set_xlabel("step")
    ax.set_ylabel("batch loss" + (f" ({penalty})" if penalty else ""), color="#b2182b")
    ax.grid(alpha=0.3)
    top = ax  # the axes drawn last: labels there are not crossed by a curve
    if np.isfinite(accuracy).any():
        right = top = ax.twinx()
        right.plot(steps, accuracy, color="#2166ac", linewidth=1.0)
        right.set_ylim(-0.02, 1.02)
        right.set_ylabel("accuracy", color="#2166ac")
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
    fig.suptitle(summary, fontsize=10, x=0.09, ha="left", y=0.99)
    if steps.size:
        ax.set_xlim(first, last)
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
    return snapshot_png(trace.snapshot(steps[-1]), data=data, data_note=note)


def snapshot_png(snapshot, data=None, data_note=""):
    """PNG bytes of one snapshot drawn as a frame of the activations GIF (data_note: see :class:`Film`)."""
    import io
    film = Film([snapshot], data=data, data_note=data_note)
    picture = film.picture("activations")
    out = io.BytesIO()
    picture.png(film.look(0, "activations", picture), out)
    picture.close()
    return out.getvalue()


def loss_penalty(trace):
    """The L1/L2 penalty in `trace`'s recorded losses, in words ("" for none; see :func:`simnet.runinfo.penalty`)."""
    return penalty((getattr(trace, "metadata", None) or {}).get("config"))


def _snapshots(trace):
    """The trace's snapshots in step order (replaying forward once where the trace can)."""
    steps = list(trace.steps)
    if not steps:
        raise TraceError("the trace has no recorded steps to draw")
    if hasattr(trace, "snapshots"):
        return [G for _, G in trace.snapshots(steps)]
    return [trace.snapshot(s) for s in steps]


class Counter:
    """Counts frames as they are drawn and reports them to progress(done, total), if given."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def tick(self):
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _save_figure(fig, path):
    path = Path(path)
    with written_whole(path) as temp:
        fig.savefig(temp, format=path.suffix.lstrip(".") or "png")
    return path


# ---- GIF encoding ---------------------------------------------------------

class GifWriter:
    """Writes RGB frames to a binary file as one looping GIF with a single palette, each frame as it comes.

    The palette is fixed at the first frame: samples of the colour maps in
    `cmaps` (so colours that appear later are there), greys, and the first
    frame's own colours.  Every frame maps each pixel to its nearest palette
    colour through a lookup table, without dithering (dither noise would
    change from frame to frame and defeat the compression).

    Frames after the first mark unchanged pixels transparent and store only
    the box where they differ from the frame before, so they cost next to
    nothing; the GIF keeps each frame on screen (disposal 1).  A frame equal
    to the one before lengthens it instead.  The palette is written once, as
    the global colour table.  Only the frame before and the frame waiting for
    its duration are held, however long the animation; the bytes are those
    Pillow's ``save_all`` writes for the same frames (which holds them all).
    """

    def __init__(self, file, cmaps=(), frame_ms=FRAME_MS, last_frame_ms=LAST_FRAME_MS):
        self.file = file
        self.cmaps = list(cmaps)
        self.frame_ms, self.last_frame_ms = frame_ms, last_frame_ms
        self.lookup = self.palette = None
        self.previous = self.coded = None  # the last frame's palette indices, and as written (unchanged: TRANSPARENT)
        self.waiting = None  # [indices, offset, duration] of the frame whose duration is not known yet
        self.written = 0

    def add(self, rgb):
        """Take the next frame, (H, W, 3) uint8."""
        if self.lookup is None:
            colours = build_palette(rgb, self.cmaps)
            self.lookup, self.palette = nearest_lookup(colours), distinct_palette(colours).tobytes()
        frame = quantize(rgb, self.lookup)
        if self.previous is None:
            self.waiting, coded = [frame, (0, 0), self.frame_ms], frame
        else:
            coded = np.where(frame == self.previous, np.uint8(TRANSPARENT), frame)
            differs = coded != self.coded
            if differs.any():
                rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
                self._write_waiting()
                self.waiting = [coded[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], (int(cols[0]), int(rows[0])),
                                self.frame_ms]
            else:
                self.waiting[2] += self.frame_ms
        self.previous, self.coded = frame, coded

    def finish(self):
        """Write the last frame (shown `last_frame_ms`) and the GIF's end; SimnetError if no frame came."""
        if self.waiting is None:
            raise SimnetError("no frames to write")
        self.waiting[2] += self.last_frame_ms - self.frame_ms
        if self.written:
            self._write_waiting()
            self.file.write(b";")
        else:  # one frame in all: a still picture, as Pillow writes one
            self._image(self.waiting[0]).save(self.file, format="GIF", **self._info(self.waiting[2]))
        self.waiting = self.previous = self.coded = None

    def _image(self, indices):
        from PIL import Image
        image = Image.fromarray(indices)
        image.putpalette(self.palette)
        return image

    def _info(self, duration):
        return {"duration": duration, "loop": 0, "transparency": TRANSPARENT, "disposal": 1, "optimize": False,
                "palette": self.palette}

    def _write_waiting(self):
        from PIL import GifImagePlugin
        indices, offset, duration = self.waiting
        image, info = self._image(indices), self._info(duration)
        if not self.written:
            self.file.write(b"".join(GifImagePlugin.getheader(image, self.palette, info)[0]))
        self.file.write(b"".join(GifImagePlugin.getdata(image, offset, **info)))
        self.written += 1


def build_palette(rgb, cmaps, size=TRANSPARENT):
    """Up to `size` distinct colours: colour-map samples, greys, then the most common other colours of `rgb`."""
    from PIL import Image
    anchors = [np.linspace(0, 255, 16).round()[:, None].repeat(3, axis=1)]
    for cmap in cmaps:
        anchors.append(np.asarray(cmap(np.linspace(0, 1, 64)))[:, :3] * 255)
    fixed = np.unique(np.concatenate(anchors).round().astype(np.uint8), axis=0)
    room = size - len(fixed)
    if room <= 0:
        return fixed[:size]
    own = Image.fromarray(np.ascontiguousarray(rgb)).quantize(colors=room, method=Image.Quantize.MEDIANCUT,
                                                               dither=Image.Dither.NONE)
    used = sorted(set(np.asarray(own).ravel().tolist()))
    colours = np.asarray(own.getpalette()[:3 * 256], np.uint8).reshape(-1, 3)[used]
    colours = colours[~(colours[:, None, :] == fixed[None, :, :]).all(axis=2).any(axis=1)]
    return np.concatenate([fixed, np.unique(colours, axis=0)])[:size]


def distinct_palette(colours):
    """256 RGB colours: `colours` (distinct, at most 255) in their slots, every other slot a colour of its own.

    Pillow matches a global palette to the frames' palettes by colour; with
    no colour twice, that match keeps every index, TRANSPARENT included.
    """
    out = np.zeros((256, 3), np.uint8)
    out[:len(colours)] = colours
    taken = {tuple(c) for c in out[:len(colours)].tolist()}
    spare = (c for c in ((k & 255, k >> 8, 1) for k in range(1 << 16)) if c not in taken)
    for slot in range(len(colours), 256):
        out[slot] = next(spare)
    return out


def nearest_lookup(palette):
    """For every colour at SHADES bits per channel, the index of the nearest palette colour."""
    levels = 1 << SHADES
    centres = (np.arange(levels) * (256 // levels) + (128 // levels)).astype(np.int32)
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1).reshape(-1, 3)
    pal = palette.astype(np.int32)
    out = np.empty(len(grid), np.uint8)
    for start in range(0, len(grid), 4096):
        d = ((grid[start:start + 4096, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
        out[start:start + 4096] = d.argmin(axis=1)
    return out


def quantize(rgb, lookup):
    """(H, W, 3) uint8 -> (H, W) palette indices through the lookup table."""
    shift = 8 - SHADES
    r, g, b = (rgb[..., i] >> shift for i in range(3))
    return lookup[(r.astype(np.intp) << (2 * SHADES)) | (g.astype(np.intp) << SHADES) | b]
