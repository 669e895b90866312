"""sweep.png: the loss of each configuration over the steps (mean, min-max band, every seed faint) and the
final metric against each swept setting."""
import warnings

import numpy as np

from ..errors import SimnetError
from ..files import written_whole
from ..progress import log_scale
from ..trace import open_trace
from .plan import value_text

__all__ = ["MOST_CURVES", "aligned", "band", "draw_sweep", "loss_curves", "sweep_figure"]

MOST_CURVES = 10  # configurations drawn as curves: more would be a tangle


def loss_curves(run_dirs):
    """(steps, losses) of the runs in `run_dirs`: the steps any run recorded, one row of batch losses per
    run that has a readable trace (NaN where it has no step)."""
    histories = []
    for run_dir in run_dirs:
        try:
            with open_trace(run_dir) as trace:
                histories.append(trace.history())
        except (SimnetError, OSError):
            continue
    return aligned(histories, "loss")


def aligned(histories, quantity):
    """(steps, values): the steps any of `histories` (:meth:`Trace.history` dicts) recorded, and one row of
    their `quantity` per history (NaN where it has no step)."""
    steps = np.unique(np.concatenate([h["step"] for h in histories])) if histories else np.zeros(0, int)
    values = np.full((len(histories), len(steps)), np.nan)
    for row, h in zip(values, histories):
        row[np.searchsorted(steps, h["step"])] = h[quantity]
    return steps, values


def band(values):
    """(mean, min, max) over the rows of `values` at each column, ignoring NaN (NaN where a column has none)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step no run reached, or where every run had diverged
        return np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)


def sweep_figure(groups, keys, title):
    """A matplotlib Figure: loss per step for each configuration of `groups` (see
    :class:`.sweep.Groups`) and the final metric against each of the swept `keys`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    configs = list(groups.configs.items())
    accuracy = any(c["accuracy"] for _, c in configs)
    metric = "accuracy" if accuracy else "loss"
    panels = max(1, len(keys))
    fig = Figure(figsize=(max(9, 4 * panels), 8), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, panels, height_ratios=[3, 2], hspace=0.45, wspace=0.3,
                            left=0.08, right=0.97, top=0.9, bottom=0.08)
    top = fig.add_subplot(grid[0, :])
    colours = [f"C{i % 10}" for i in range(len(configs))]
    everything = []
    for (name, c), colour in zip(configs[:MOST_CURVES], colours):
        steps, losses = loss_curves(c["dirs"])
        if not len(losses):
            continue
        mean, low, high = band(losses)
        for row in losses:
            top.plot(steps, row, color=colour, alpha=0.35, linewidth=0.7)
        top.fill_between(steps, low, high, color=colour, alpha=0.15, linewidth=0)
        top.plot(steps, mean, color=colour, linewidth=1.6, label=f"{name} ({len(losses)} seeds)")
        everything.append(losses[np.isfinite(losses)])
    finite = np.concatenate(everything) if everything else np.zeros(0)
    if finite.size and log_scale(finite.min(), finite.max()):
        top.set_yscale("log")
        top.set_ylim(top=min(top.get_ylim()[1], 1e250))
    top.set_xlabel("step")
    top.set_ylabel("batch loss")
    top.grid(alpha=0.3)
    shown = "" if len(configs) <= MOST_CURVES else f"; the first {MOST_CURVES} of {len(configs)} configurations"
    top.set_title(f"batch loss: mean line, min-max band over seeds, each seed faint{shown}", fontsize=9, loc="left")
    if len(configs) > 1:
        top.legend(fontsize=7, loc="best", framealpha=0.85)
    for i, key in enumerate(keys or [None]):
        ax = fig.add_subplot(grid[1, i])
        _metric_panel(ax, configs, key, metric)
    fig.suptitle(title, fontsize=11, x=0.08, ha="left")
    return fig


def _metric_panel(ax, configs, key, metric):
    """Final `metric` of every run (dots) and each value's mean (bar) against swept `key`."""
    by_value = {}
    for _, c in configs:
        value = dict(c["settings"]).get(key) if key else "all"
        by_value.setdefault(value_text(value), []).extend(c[metric])
    labels = list(by_value)
    rng = np.random.default_rng(0)  # jitter only spreads the dots: the same picture every time
    for x, label in enumerate(labels):
        values = np.asarray(by_value[label], float)
        if values.size:
            ax.scatter(x + rng.uniform(-0.12, 0.12, values.size), values, s=12, color="#2166ac", alpha=0.6,
                       linewidths=0)
            ax.hlines(values.mean(), x - 0.3, x + 0.3, color="#b2182b", linewidth=2)
    ax.set_xticks(range(len(labels)), [label[:14] for label in labels], fontsize=8,
                  rotation=30 if len(labels) > 4 else 0)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    if metric == "accuracy":
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(key or "every run")
    ax.set_ylabel(f"final {metric}" + ("" if metric == "accuracy" else " (data set)"))
    ax.set_title(f"final {metric}: runs (dots), mean (red)", fontsize=8, loc="left")
    ax.grid(alpha=0.3, axis="y")


def draw_sweep(directory, groups, keys, scenario):
    """Write `directory`/sweep.png for a sweep of `scenario` (nothing when no run finished); its path or None."""
    if not any(c["dirs"] for c in groups.configs.values()):
        return None
    runs = sum(c["runs"] for c in groups.configs.values())
    fig = sweep_figure(groups, keys, f"sweep of {scenario.name}: {runs} runs, {len(groups.configs)} configurations")
    path = directory / "sweep.png"
    with written_whole(path) as temp:
        fig.savefig(temp, format="png")
    return path
