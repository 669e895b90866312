"""Pictures: time per frame against a naive renderer, frames/s on a large network, sizes of both GIFs.

The naive reference is measured in the same run: for every frame a new
matplotlib figure, ``nx.draw`` with node colours from the activations and
edge colours and widths from the weights, rendered to pixels with Agg.
simnet builds its figure once and redraws only what changes.

    python3 benchmarks/bench_render.py
"""
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simnet as sn  # noqa: E402
from simnet.scenario import datasets  # noqa: E402
from simnet.viz.frames import Film  # noqa: E402
from simnet.viz.render import film_gif  # noqa: E402
from simnet.trace.snapshot import SnapshotBuilder  # noqa: E402

SPEEDUP_TARGET = 8.0
LARGE_FPS_TARGET = 5.0
GIF_BYTES_TARGET = 2_000_000


def moons_run(steps, every):
    """micrograd's moons network (2-16-16-1 ReLU, hinge) trained with a SnapshotBuilder; (snapshots, data)."""
    X, y = datasets.generate("moons", 100, 0.1, 1)
    net = sn.Network.layered([2, 16, 16, 1], hidden="relu", output="linear", seed=1)
    builder = SnapshotBuilder(every=every)
    net.train(X, y, steps=steps, lr=0.1, loss="hinge", l2=1e-4, recorder=builder)
    return [builder.snapshots[s] for s in sorted(builder.snapshots)], (X, y)


def large_run(steps, seed=0):
    """A 200-neuron network with 5,000 connections (random between layers 10-60-60-60-10, a few skips)."""
    rng = np.random.default_rng(seed)
    sizes = [10, 60, 60, 60, 10]
    net = sn.Network(seed=seed)
    layers = []
    for depth, size in enumerate(sizes):
        role = "input" if depth == 0 else "output" if depth == len(sizes) - 1 else "hidden"
        layers.append([net.add_neuron(f"n{depth}_{i}", role=role, activation="tanh").name for i in range(size)])
    pairs = [(s, t) for a, b in zip(layers, layers[1:]) for s in a for t in b]
    pairs += [(s, t) for s in layers[1] for t in layers[3]]
    for k in rng.choice(len(pairs), 5000, replace=False):
        net.connect(*pairs[k])
    X = rng.normal(size=(32, sizes[0]))
    Y = rng.normal(size=(32, sizes[-1]))
    builder = SnapshotBuilder(every=1)
    net.train(X, Y, steps=steps, lr=0.01, loss="mse", recorder=builder)
    return [builder.snapshots[s] for s in sorted(builder.snapshots)]


def naive_frames(film, kind, count=None):
    """The reference: every frame a new figure of the same size and content, drawn with nx.draw.

    Same colours as simnet's frame (taken from the same Look), the same
    panels: the network with names, heatmap tiles at the nodes and the
    decision surface with its data points when simnet draws them, colour
    bars and a title.  Returns seconds per frame.
    """
    import networkx as nx
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    ours = film.picture(kind)
    g = ours.geo
    positions = film.layout.positions()
    count = count or len(film)
    start = time.perf_counter()
    for i in range(count):
        look = film.look(i, kind, ours)
        fig = Figure(figsize=(g.width_px / 100, g.height_px / 100), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes([0, 0.08, 0.6, 0.82])
        shown = [n for n, keep in zip(film.nodes, look.node_shown) if keep]
        edges = [e for e, width in zip(film.edges, look.edge_width) if width > 0]
        G = nx.DiGraph()
        G.add_nodes_from(shown)
        G.add_edges_from(edges)
        colour = dict(zip(film.nodes, look.node_color))
        nx.draw(G, positions, ax=ax, nodelist=shown, node_color=[colour[n] for n in shown],
                edgelist=edges, edge_color=look.edge_color[look.edge_width > 0],
                width=look.edge_width[look.edge_width > 0], with_labels=True, font_size=8, arrows=False,
                node_size=(g.node_px * 0.72) ** 2, edgecolors="#303030")
        if look.heat is not None:
            for name, tile in zip(film.nodes, look.heat):
                x, y = positions[name]
                ax.imshow(tile, extent=(x - 0.1, x + 0.1, y - 0.3, y + 0.3), origin="lower", zorder=4)
        for j, bar in enumerate(ours.bars):
            fig.colorbar(ScalarMappable(norm=bar.norm, cmap=bar.cmap), cax=fig.add_axes([0.9 + 0.04 * j, 0.2, 0.01, 0.6]))
        if look.surface is not None:
            side = fig.add_axes([0.63, 0.25, 0.22, 0.5])
            side.imshow(look.surface, extent=film.extent, origin="lower", aspect="auto")
            X, Y = film.data
            side.scatter(X[:, 0], X[:, 1], s=9, c=np.asarray(Y).ravel(), cmap="RdBu_r", edgecolors="white")
        fig.suptitle(look.title)
        canvas.draw()
        np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return (time.perf_counter() - start) / count


def simnet_frames(graphs, kind, data=None):
    """simnet's path: (film, set-up seconds, seconds per frame) for drawing every graph as a `kind` frame."""
    start = time.perf_counter()
    film = Film(graphs, data=data)
    picture = film.picture(kind)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(len(film)):
        picture.draw(film.look(i, kind, picture))
    return film, setup, (time.perf_counter() - start) / len(film)


def section(quick=False):
    """The markdown section of the pictures benchmark."""
    lines = ["## Pictures", ""]
    frames = 20 if quick else 60
    graphs, data = moons_run(frames - 1, 1)
    rows = []
    for kind, what in (("activations", "activations GIF frame: network, heatmap tiles, decision surface"),
                       ("weights", "weights GIF frame: network only")):
        film, setup, ours = simnet_frames(graphs, kind, data)
        naive = naive_frames(film, kind, count=frames // 2)
        rows.append((what, naive, ours, ours + setup / len(graphs)))
    lines += [f"2-16-16-1 moons network, {len(graphs)} frames. Reference: a new figure of the same size and "
              "content for every frame, drawn with `nx.draw` (+ `imshow` for the heatmaps and the surface).", "",
              "| frame | naive ms | simnet ms | speed-up | simnet ms incl. set-up | speed-up |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {what} | {naive * 1e3:.0f} | {ours * 1e3:.1f} | {naive / ours:.1f}x | {amortised * 1e3:.1f} | "
              f"{naive / amortised:.1f}x |" for what, naive, ours, amortised in rows]
    worst = min(naive / ours for _, naive, ours, _ in rows)
    lines += ["", f"Target: at least {SPEEDUP_TARGET:g}x faster per frame: "
              f"**{'met' if worst >= SPEEDUP_TARGET else 'NOT met'}** (lowest {worst:.1f}x).", ""]

    large = large_run(5 if quick else 15)
    film, setup, ours_large = simnet_frames(large, "activations")
    naive_large = naive_frames(film, "activations", count=3)
    fps = 1.0 / ours_large
    lines += [f"200 neurons, 5,000 connections, {len(large)} frames: simnet {fps:.1f} frames/s "
              f"({ours_large * 1e3:.0f} ms per frame, set-up {setup:.2f} s); the naive reference "
              f"{1 / naive_large:.2f} frames/s ({naive_large / ours_large:.1f}x slower).", "",
              f"Target: at least {LARGE_FPS_TARGET:g} frames/s: **{'met' if fps >= LARGE_FPS_TARGET else 'NOT met'}**.",
              ""]

    gif_frames = 40 if quick else 200
    graphs, data = moons_run(2 * (gif_frames - 1), 2)
    film = Film(graphs, data=data)
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("activations", "weights"):
            start = time.perf_counter()
            path = film_gif(film, kind, Path(tmp) / f"{kind}.gif")
            seconds = time.perf_counter() - start
            from PIL import Image
            with Image.open(path) as im:
                sizes[kind] = (os.path.getsize(path), im.width, im.height, im.n_frames, seconds)
    budget = GIF_BYTES_TARGET * gif_frames / 200
    lines += [f"GIFs of the moons run, {gif_frames} frames (every 2 steps):", "",
              "| GIF | size | per frame | pixels | frames/s drawing and encoding |", "|---|---|---|---|---|"]
    lines += [f"| {kind} | {size / 1e6:.2f} MB | {size / count / 1e3:.1f} kB | {w}x{h} | {count / seconds:.0f} |"
              for kind, (size, w, h, count, seconds) in sizes.items()]
    within = all(size < budget for size, *_ in sizes.values())
    each = ", ".join(f"{kind} {size / 1e6:.2f} MB ({size / budget:.0%} of it)" for kind, (size, *_) in sizes.items())
    lines += ["", "Target: each 200-frame moons GIF under 2 MB"
              + (f" (scaled to {gif_frames} frames: {budget / 1e6:.2f} MB)" if gif_frames != 200 else "")
              + f": {each}: **{'met' if within else 'NOT met'}**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(quick="--quick" in sys.argv))
