"""Progress bars for long work: a tqdm bar on a terminal, nothing otherwise; a live picture in a notebook."""
import time
from contextlib import contextmanager

from .errors import SimnetError

__all__ = ["DRAWING_SHARE", "FASTEST_REDRAW", "LOG_SPAN", "LiveView", "bar", "frame_progress", "live_view", "log_scale",
           "loss_svg", "step_progress", "svg_data"]

# the most of a run's time a live picture may take: it is redrawn only as often as this allows
DRAWING_SHARE = 0.1
# seconds between redraws at the least: however cheap a picture is to draw, sending it out of the kernel and
# showing it costs more than drawing it (a 1.3 s run in a kernel: 1.17x with a redraw every 0.1 s, 1.10x every
# 0.25 s, 1.07x drawn only at the start and the end)
FASTEST_REDRAW = 0.25


@contextmanager
def bar(show, total, description, unit):
    """A tqdm bar on stderr when `show`, else None.

    >>> with bar(False, 10, "training", "step") as b:
    ...     print(b)
    None
    """
    if not show:
        yield None
        return
    from tqdm import tqdm
    progress = tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield progress
    finally:
        progress.close()


def step_progress(progress_bar):
    """A progress(step, loss) callback moving `progress_bar` one step at a time, or None without a bar."""
    if progress_bar is None:
        return None

    def progress(step, loss):
        progress_bar.update(1)
        if step % 25 == 0:
            progress_bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    return progress


def frame_progress(progress_bar):
    """A progress(done, total) callback moving `progress_bar`, or None without a bar."""
    if progress_bar is None:
        return None

    def progress(done, total):
        if progress_bar.total != total:
            progress_bar.total = total
        progress_bar.update(done - progress_bar.n)
    return progress


LOG_SPAN = 100  # a curve whose positive values span more than this factor is drawn on a log scale


def log_scale(low, high):
    """Whether a curve of values from `low` to `high` is drawn on a log scale.

    >>> log_scale(0.001, 1.0), log_scale(0.5, 2.0), log_scale(0.0, 1.0)
    (True, False, False)
    """
    return low > 0 and high / low > LOG_SPAN


def loss_svg(steps, losses, width=520, height=110, most=400):
    """A small SVG line of `losses` over `steps` (log scale when they span more than a factor of 100).

    >>> loss_svg([1, 2, 3], [1.0, 0.5, 0.25]).startswith("<svg")
    True
    """
    import math
    points = [(s, v) for s, v in zip(steps, losses) if math.isfinite(v)]
    if len(points) > most:  # a line of a few hundred points looks the same and costs nothing to send
        points = points[::math.ceil(len(points) / most)] + points[-1:]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    smallest, largest = min(v for _, v in points), max(v for _, v in points)
    logarithmic = log_scale(smallest, largest)
    scale = math.log10 if logarithmic else float
    ys = [scale(v) for _, v in points]
    low, high = min(ys), max(ys)
    first, last = points[0][0], points[-1][0]
    left, right, top, bottom = 60, 10, 8, 22

    def x(s):
        return left + (s - first) / max(last - first, 1) * (width - left - right)

    def y(v):
        return top + (high - v) / ((high - low) or 1.0) * (height - top - bottom)

    line = " ".join(f"{x(s):.1f},{y(v):.1f}" for (s, _), v in zip(points, ys))
    label = 'font: 10px sans-serif; fill: #444'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<polyline points="{line}" fill="none" stroke="#b2182b" stroke-width="1.2"/>'
            f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" style="{label}">{largest:.4g}</text>'
            f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" style="{label}">'
            f'{smallest:.4g}</text>'
            f'<text x="{left}" y="{height - 6}" style="{label}">batch loss{" (log)" if logarithmic else ""}, '
            f'steps {first} to {last}</text></svg>')


def svg_data(svg):
    """The display data of SVG text, to show as it is.

    >>> svg_data("<svg/>")
    {'image/svg+xml': '<svg/>'}
    """
    return {"image/svg+xml": svg}


class LiveView:
    """One inline picture that `draw()` (SVG text) redraws while a run goes on, under a notebook progress bar,
    with the batch loss so far as a line under it.

    Called as progress(step, loss) after every step.  A redraw waits until the
    time since the last one is at least 1/DRAWING_SHARE times what drawing took,
    so that drawing costs at most about DRAWING_SHARE of the run, and at least
    FASTEST_REDRAW; the last step is always drawn (by :meth:`close`).
    """

    def __init__(self, draw, total, description="training"):
        try:
            from IPython.display import display
            from tqdm.notebook import tqdm
            self.bar = tqdm(total=total, desc=description, unit="step", leave=True)
        except ImportError:  # tqdm's notebook bar says so when ipywidgets is missing
            raise SimnetError("show=True draws in a Jupyter notebook with widgets; install them with: "
                              "pip install 'simnet[notebook]'") from None
        self.draw = draw
        self.steps, self.losses = [], []
        start = time.perf_counter()
        # raw: IPython's SVG object would parse every picture again with minidom, costing more than drawing it
        self.handle = display(svg_data(draw()), raw=True, display_id=True)
        if self.handle is None:  # outside IPython: nothing shows the picture, nor could redraw it
            self.bar.close()
            raise SimnetError("show=True draws in a Jupyter notebook, and this is not one; train without show")
        self.curve = display(svg_data(loss_svg([], [])), raw=True, display_id=True)
        self.drawn_at = time.perf_counter()
        self.drawing, self.pending = self.drawn_at - start, False

    def __call__(self, step, loss):
        self.bar.update(1)
        self.steps.append(step)
        self.losses.append(loss)
        self.pending = True
        now = time.perf_counter()
        if now - self.drawn_at >= max(self.drawing / DRAWING_SHARE, FASTEST_REDRAW):
            self.bar.set_postfix(step=step, loss=f"{loss:.4g}", refresh=False)
            self.redraw()

    def redraw(self):
        start = time.perf_counter()
        self.handle.update(svg_data(self.draw()), raw=True)
        self.curve.update(svg_data(loss_svg(self.steps, self.losses)), raw=True)
        self.drawn_at = time.perf_counter()
        self.drawing, self.pending = self.drawn_at - start, False

    def close(self):
        if self.pending:
            self.redraw()
        self.bar.close()


@contextmanager
def live_view(draw, total, description="training"):
    """A :class:`LiveView` for the block, drawn a last time and its bar closed at the end."""
    view = LiveView(draw, total, description)
    try:
        yield view
    finally:
        view.close()
