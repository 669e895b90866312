"""Pictures: frames follow the numbers, fixed colour scales, frame counts, legible layouts, GIFs."""
import copy
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageSequence

import simnet as sn
from simnet.core.events import EventLog
from simnet.viz.frames import (CHANGE_LEVELS, CHANGES, GRADIENTS, HOLD, LEVELS, VALUES, Film, square_root_norm,
                           held_levels)
from simnet.viz.gif import GifWriter, build_palette, distinct_palette, nearest_lookup, quantize, write_looks
from simnet.viz.render import film_gif, loss_figure, render_gif, render_run, write_gif
from simnet.trace.snapshot import SnapshotBuilder
from simnet.viz.message_sweep import SweepFilm, from_snapshot, read_sweep


def xor_data(samples=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(samples, 2)).astype(float)
    Y = (X[:, :1] != X[:, 1:]).astype(float)
    return X + rng.normal(scale=0.05, size=X.shape), Y


def recorded_run(sizes=(2, 4, 1), steps=12, every=3, seed=0, inputs=None):
    """A short bce run; returns (net, builder, event log, data)."""
    X, Y = xor_data()
    if inputs is not None:
        X = np.random.default_rng(seed).normal(size=(len(X), inputs))
    Y = np.repeat(Y, sizes[-1], axis=1)
    net = sn.Network.layered(list(sizes), output="sigmoid", seed=seed)
    builder, log = SnapshotBuilder(every=every), EventLog()

    class Both:
        def __call__(self, event):
            builder(event)
            log(event)

        def on_batch(self, batch):
            builder.on_batch(batch)
            log.on_batch(batch)

    net.train(X, Y, steps=steps, lr=0.5, loss="bce", recorder=Both())
    return net, builder, log, (X, Y)


def snapshots(builder):
    return [builder.snapshots[s] for s in sorted(builder.snapshots)]


def gif_frames(path_or_bytes):
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def centre_px(picture, name):
    """The (row, column) pixel at the centre of neuron `name` in a picture's frames."""
    x, y = picture.ax.transData.transform(picture.xy[picture.nodes.index(name)])
    return int(round(picture.geo.height_px - y)), int(round(x))


def changes_only_around(picture, before, after, names, margin=8):
    """Whether `after` differs from `before`, and only within `margin` pixels of the box around neurons `names`."""
    differs = np.any(after != before, axis=2)
    rows, cols = np.nonzero(differs)
    centres = np.array([centre_px(picture, name) for name in names])
    (r0, c0), (r1, c1) = centres.min(axis=0) - margin, centres.max(axis=0) + margin
    return differs.any() and rows.min() >= r0 and rows.max() <= r1 and cols.min() >= c0 and cols.max() <= c1


class LiveRun:
    """The events and snapshots of a live run, read the way a trace is read."""

    def __init__(self, log, builder):
        self.log, self.builder = log, builder
        self.steps = sorted(builder.snapshots)

    def events(self, step=None, kind=None):
        return [e.as_dict() for e in self.log.events
                if (step is None or e.step == step) and (kind is None or e.kind == kind)]

    def snapshot(self, step):
        return self.builder.snapshots[step]


# ---- frames follow the numbers ----------------------------------------------

@pytest.mark.parametrize("kind", ["activations", "weights"])
def test_a_frame_changes_where_a_weight_changes_and_nowhere_else(kind):
    _, builder, _, _ = recorded_run(sizes=(3, 5, 4, 1), inputs=3)
    last = snapshots(builder)[-1]
    same, changed = copy.deepcopy(last), copy.deepcopy(last)
    changed.edges["h1_2", "h2_1"]["weight"] *= -3.0
    frames = [last, same, changed] if kind == "activations" else [last, last, same, last, changed]
    film = Film(frames)
    picture = film.picture(kind)
    for f in film.frames:  # same step, loss and accuracy in every title
        f.step = 7
    drawn = [picture.draw(film.look(i, kind, picture)) for i in range(len(film))]
    before, unchanged, after = (drawn[0], drawn[1], drawn[2]) if kind == "activations" else drawn[2:]
    assert np.array_equal(before, unchanged)
    assert changes_only_around(picture, before, after, ["h1_2", "h2_1"])  # on the changed connection


def test_weights_picture_holds_a_level_while_a_value_wobbles_at_its_edge():
    _, builder, _, _ = recorded_run(sizes=(3, 5, 4, 1), inputs=3)
    base = copy.deepcopy(snapshots(builder)[-1])
    for name in base.nodes:
        base.nodes[name]["gradient"] = 0.0
    big, wobbly, node = ("h1_0", "h2_0"), ("h1_2", "h2_1"), "h2_3"
    norm = square_root_norm(1.0)  # both scales: the largest change and gradient below are 1.0

    def around(boundary, levels, offset):
        """A value `offset` levels beyond the boundary between levels `boundary` - 1 and `boundary`."""
        return float(norm.inverse((boundary + offset) / levels))

    inside = HOLD / 2
    up, down = around(6, CHANGE_LEVELS, inside), around(6, CHANGE_LEVELS, -inside)
    g_up, g_down = around(10, LEVELS, inside), around(10, LEVELS, -inside)
    change_far, gradient_far = around(7, CHANGE_LEVELS, 0.5), around(11, LEVELS, 0.5)
    # drawn in the colours of their own values, both would flicker
    assert CHANGES(norm(up)) != CHANGES(norm(down)) and GRADIENTS(norm(g_up)) != GRADIENTS(norm(g_down))
    frames, G = [base], base
    for change, gradient in [(up, g_up), (down, g_down), (up, g_up), (down, g_down),
                             (change_far, g_down), (change_far, gradient_far)]:
        G = copy.deepcopy(G)
        G.edges[wobbly]["weight"] += change
        G.edges[big]["weight"] += 1.0 if len(frames) == 1 else 0.0
        G.nodes["h1_0"]["gradient"], G.nodes[node]["gradient"] = (1.0 if len(frames) == 1 else 0.0), gradient
        frames.append(G)
    film = Film(frames)
    assert film.scales["change"] == 1.0 and film.scales["gradient"] == 1.0
    for f in film.frames:
        f.step = 7
    picture = film.picture("weights")
    drawn = [picture.draw(film.look(i, "weights", picture)) for i in range(len(film))]
    assert np.array_equal(drawn[2], drawn[3]) and np.array_equal(drawn[3], drawn[4])
    assert changes_only_around(picture, drawn[4], drawn[5], list(wobbly))  # the connection moved two levels
    assert changes_only_around(picture, drawn[5], drawn[6], [node], margin=picture.geo.node_px)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=30),
       st.sampled_from([CHANGE_LEVELS, LEVELS]), st.floats(0.05, 0.5))
def test_held_levels_stay_near_the_value_and_move_only_when_it_leaves(values, levels, hold):
    where = np.array(values)
    shown = held_levels(where, levels, hold)
    own = np.minimum((where * levels).astype(int), levels - 1)
    assert np.array_equal(shown[0], own[0])
    # a shown level is never more than `hold` of a level away from the value
    assert np.all(where >= (shown - hold) / levels - 1e-12) and np.all(where <= (shown + 1 + hold) / levels + 1e-12)
    for t in range(1, len(where)):
        moved = shown[t] != shown[t - 1]
        left = (where[t] < (shown[t - 1] - hold) / levels) | (where[t] > (shown[t - 1] + 1 + hold) / levels)
        assert np.array_equal(moved, left & (own[t] != shown[t - 1]))
        assert np.array_equal(shown[t][moved], own[t][moved])


def test_weights_picture_sizes_each_connection_by_its_colour_level():
    _, builder, _, _ = recorded_run(sizes=(2, 6, 1), steps=12, every=1)
    film = Film(snapshots(builder))
    picture = film.picture("weights")
    for i in range(len(film)):
        look = film.look(i, "weights", picture)
        width = {}
        for colour, w in zip(map(tuple, look.edge_color), look.edge_width):
            width.setdefault(colour, set()).add(w)
        assert all(len(ws) == 1 for ws in width.values())  # one width per colour: a new level redraws a line once
        levels = film.held["change"][i]
        distance = np.abs(levels - CHANGE_LEVELS // 2)
        order = np.argsort(distance)
        assert np.all(np.diff(look.edge_width[order]) >= 0)  # wider the further from "no change"


def test_training_frames_differ_from_step_to_step():
    _, builder, _, data = recorded_run()
    film = Film(snapshots(builder), data=data)
    picture = film.picture("activations")
    drawn = [picture.draw(film.look(i, "activations", picture)) for i in range(len(film))]
    assert all(not np.array_equal(a, b) for a, b in zip(drawn, drawn[1:]))


def test_colour_scale_is_fixed_across_frames():
    _, builder, _, _ = recorded_run(sizes=(3, 4, 1), inputs=3)
    calm, wild = copy.deepcopy(snapshots(builder)[-1]), copy.deepcopy(snapshots(builder)[-1])
    for G, other in ((calm, 0.1), (wild, 4.0)):
        G.nodes["h1_0"]["activation"] = 0.3
        G.nodes["h1_1"]["activation"] = other
    film = Film([calm, wild])
    picture = film.picture("activations")
    first, second = (picture.draw(film.look(i, "activations", picture)) for i in range(2))
    r, c = centre_px(picture, "h1_0")
    assert np.array_equal(first[r, c], second[r, c])
    scale = film.scales["activation"]
    assert scale == 5.0  # the largest activation of any frame, rounded up to a round number
    expected = np.array(VALUES((0.3 + scale) / (2 * scale))[:3]) * 255
    assert np.abs(first[r, c].astype(float) - expected).max() <= 2
    r1, c1 = centre_px(picture, "h1_1")
    assert not np.array_equal(first[r1, c1], second[r1, c1])


# ---- GIFs ---------------------------------------------------------------------

@pytest.mark.parametrize("every, expected_steps", [(3, [0, 3, 6, 9, 12, 14]), (5, [0, 5, 10, 14])])
def test_frame_count_follows_the_record_interval(tmp_path, every, expected_steps):
    _, builder, _, data = recorded_run(steps=14, every=every)
    assert sorted(builder.snapshots) == expected_steps
    for kind in ("activations", "weights"):
        path = write_gif(snapshots(builder), kind, tmp_path / f"{kind}.gif", data=data)
        with Image.open(path) as im:
            assert im.n_frames == len(expected_steps)


def test_the_same_run_gives_the_same_gif_byte_for_byte(tmp_path):
    first, second = (recorded_run(seed=3) for _ in range(2))
    a = write_gif(snapshots(first[1]), "activations", tmp_path / "a.gif", data=first[3]).read_bytes()
    b = write_gif(snapshots(second[1]), "activations", tmp_path / "b.gif", data=second[3]).read_bytes()
    assert a == b


@pytest.mark.parametrize("kind", ["activations", "weights"])
def test_gif_frames_decode_to_what_was_drawn(tmp_path, kind):
    _, builder, _, data = recorded_run()
    film = Film(snapshots(builder), data=data)
    picture = film.picture(kind)
    drawn = [picture.draw(film.look(i, kind, picture)) for i in range(len(film))]
    path = film_gif(film, kind, tmp_path / "a.gif")
    decoded = gif_frames(path)
    assert len(decoded) == len(drawn)
    for original, back in zip(drawn, decoded):
        # one palette for all frames: each pixel lands on a near colour, most on the same one
        error = np.abs(original.astype(int) - back.astype(int)).max(axis=2)
        assert np.mean(error <= 24) > 0.99


def test_gif_palette_keeps_every_colour_in_its_slot_and_repeats_none():
    rng = np.random.default_rng(0)
    colours = np.unique(rng.integers(0, 3, size=(40, 3)).astype(np.uint8), axis=0)  # includes black
    palette = distinct_palette(colours)
    assert palette.shape == (256, 3)
    assert np.array_equal(palette[:len(colours)], colours)
    assert len(np.unique(palette, axis=0)) == 256


def test_progress_counts_every_frame(tmp_path):
    _, builder, _, _ = recorded_run(steps=6, every=2)
    calls = []
    write_gif(snapshots(builder), "weights", tmp_path / "w.gif", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 4) for i in range(1, 5)]


def test_a_failed_write_leaves_no_gif(tmp_path):
    _, builder, _, _ = recorded_run(steps=3, every=3)
    picture = Film(snapshots(builder)).picture("weights")
    with pytest.raises(sn.SimnetError, match="x.gif: no frames"):
        write_looks(picture, [], tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def pillow_gif(frames, durations):
    """The GIF Pillow's save_all writes for these frames, coded as GifWriter codes them (all held at once)."""
    colours = build_palette(frames[0], [VALUES])
    lookup, palette = nearest_lookup(colours), distinct_palette(colours).tobytes()
    images, previous = [], None
    for rgb in frames:
        frame = quantize(rgb, lookup)
        coded = frame if previous is None else np.where(frame == previous, np.uint8(255), frame)
        previous = frame
        image = Image.fromarray(coded)
        image.putpalette(palette)
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   transparency=255, disposal=1, optimize=False, palette=palette)
    return out.getvalue()


@pytest.mark.parametrize("pattern", ["0", "000", "0123", "0012", "0112", "0122", "01011", "010"])
def test_streamed_gif_equals_pillows_and_holds_two_frames(pattern):
    """Each letter a frame (equal letters, equal frames): the bytes are Pillow's, written as the frames come."""
    rng = np.random.default_rng(1)
    base = (VALUES(rng.random((30, 40)), bytes=True)[..., :3])
    looks = {}
    for letter in sorted(set(pattern)):
        frame = base.copy()
        frame[rng.integers(0, 30, 5), rng.integers(0, 40, 5)] = rng.integers(0, 256, (5, 3), dtype=np.uint8)
        looks[letter] = frame
    frames = [looks[c] for c in pattern]
    out = io.BytesIO()
    writer = GifWriter(out, [VALUES], 100, 2000)
    for i, frame in enumerate(frames):
        before = out.tell()
        writer.add(frame)
        # a frame sends the one waiting to the file, unless both store nothing new (a third equal frame):
        # then it only lengthens it; one frame waits at most
        lengthens = i > 1 and pattern[i] == pattern[i - 1] == pattern[i - 2]
        assert (out.tell() > before) == (i > 0 and not lengthens)
    writer.finish()
    assert out.getvalue() == pillow_gif(frames, [100] * (len(frames) - 1) + [2000])


# ---- legibility ---------------------------------------------------------------

@pytest.mark.parametrize("sizes, inputs", [((2, 8, 8, 1), None), ((3, 20, 6, 2), 3)])
def test_nodes_and_names_do_not_overlap(sizes, inputs):
    _, builder, _, data = recorded_run(sizes=sizes, steps=3, every=3, inputs=inputs)
    film = Film(snapshots(builder), data=data if inputs is None else None)
    picture = film.picture("activations")
    picture.draw(film.look(0, "activations", picture))
    renderer = picture.canvas.get_renderer()
    names = [label.get_window_extent(renderer) for label in picture.labels]
    assert len(names) == len(picture.nodes) and all(label.get_fontsize() >= 7 for label in picture.labels)
    half = (picture.tile_half_px if picture.geo.heat else picture.geo.node_px / 2)
    centres = picture.ax.transData.transform(picture.xy)
    boxes = [(x - half, y - half, x + half, y + half) for x, y in centres]
    boxes += [(b.x0, b.y0, b.x1, b.y1) for b in names]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert picture.geo.heat == (inputs is None)  # two inputs: each neuron drawn as its heatmap


def test_two_input_networks_get_a_decision_surface_from_the_snapshot_weights():
    net, builder, _, data = recorded_run(steps=6, every=6)
    film = Film(snapshots(builder), data=data)
    grid = film.grid()
    # the probed output equals the trained network's own forward pass on the same points
    assert np.allclose(film.frames[-1].outputs[film.nodes.index("y0")].ravel(), net.forward(grid)[:, 0], atol=1e-6)
    picture = film.picture("activations")
    frame = picture.draw(film.look(1, "activations", picture))
    # the panel shows each probed value in the colour the surface's colour bar gives it
    top, bottom, left, right = picture.surface_box
    values = film.frames[1].outputs[film.nodes.index("y0")]  # rows from the bottom of the plane
    rows = (bottom - 1 - np.arange(top, bottom) - 0) * 64 // (bottom - top)
    cols = (np.arange(left, right) - left) * 64 // (right - left)
    expected = VALUES(film.surface_norm(values[rows][:, cols].astype(float)), bytes=True)[..., :3]
    same = np.all(frame[top:bottom, left:right] == expected, axis=2)
    assert same.mean() > 0.9  # all but the data points drawn on top


def test_a_network_shows_itself_as_a_png_in_notebooks():
    net = sn.Network.layered([3, 4, 2], seed=0)
    png = net._repr_png_()
    assert png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as im:
        assert im.width > 300 and im.height > 200
    assert net.step == 0 and net.bus.seq == 0  # drawing it changed nothing and told nobody


# ---- the sweep ------------------------------------------------------------------

def skip_net(seed):
    """A DAG with a skip connection and a neuron that feeds two layers."""
    net = sn.Network(seed=seed)
    for name in ("x0", "x1"):
        net.add_neuron(name, role="input")
    for name in ("a", "b", "c"):
        net.add_neuron(name, activation="tanh")
    net.add_neuron("y", role="output", activation="sigmoid")
    for s, t in [("x0", "a"), ("x1", "a"), ("x1", "b"), ("a", "c"), ("b", "c"), ("a", "y"), ("c", "y"), ("x0", "y")]:
        net.connect(s, t)
    return net


def test_sweep_rebuilt_from_a_snapshot_matches_the_recorded_messages():
    X, Y = xor_data()
    net = skip_net(4)
    builder, log = SnapshotBuilder(every=2), EventLog()
    net.train(X, Y, steps=4, lr=0.3, loss="bce", recorder=lambda e: (builder(e), log(e)))
    live = LiveRun(log, builder)
    recorded, rebuilt = read_sweep(live, 4), from_snapshot(builder.snapshots[4])
    assert recorded.origin == "messages" and rebuilt.origin == "snapshot"
    assert [n for n, _ in recorded.forward] == [n for n, _ in rebuilt.forward]
    assert [n for n, _ in recorded.backward] == [n for n, _ in rebuilt.backward]
    for part in ("forward", "backward"):
        assert np.allclose([v for _, v in getattr(recorded, part)], [v for _, v in getattr(rebuilt, part)])
    for part in ("sent", "sent_back"):
        a, b = getattr(recorded, part), getattr(rebuilt, part)
        assert a.keys() == b.keys()
        for name in a:
            assert [k for k, _ in a[name]] == [k for k, _ in b[name]]
            assert np.allclose([v for _, v in a[name]], [v for _, v in b[name]], rtol=1e-9, atol=1e-15)
    assert recorded.delta == pytest.approx(rebuilt.delta)


def test_sweep_frames_walk_forward_then_back_then_update():
    X, Y = xor_data()
    net = skip_net(5)
    builder, log = SnapshotBuilder(every=1), EventLog()
    net.train(X, Y, steps=2, lr=0.3, loss="bce", recorder=lambda e: (builder(e), log(e)))
    film = SweepFilm(read_sweep(LiveRun(log, builder), 2))
    looks = list(film.looks())
    assert len(looks) == 6 + 1 + 6 + 1  # one frame per neuron each way, the loss, the updates
    lit = [int(np.sum(look.node_mark)) if look.node_mark is not None else 0 for look in looks[:6]]
    assert lit == [1] * 6
    assert [t.split(": ")[1].split(" ")[0] for t in (look.title for look in looks[:6])] == \
        [n for n, _ in film.sweep.forward]
    assert "loss" in looks[6].title and "update" in looks[-1].title
    # the first forward frame shows the messages x0 sent, with their values
    texts = [t for t in looks[0].edge_text if t]
    assert len(texts) == len(list(film.sweep.graph.successors("x0")))


def test_sweep_of_a_step_without_messages_or_snapshot_says_what_is_needed():
    _, builder, log, _ = recorded_run(steps=6, every=3)
    live = LiveRun(EventLog(), builder)  # no events kept
    with pytest.raises(sn.TraceError, match='detail="messages"'):
        read_sweep(live, 4)
    assert read_sweep(live, 3).origin == "snapshot"


# ---- from a recorded trace -------------------------------------------------------

def growing_run(tmp_path, detail="updates", every=4, steps=12):
    """A recorded run that adds a neuron mid-way, with a live SnapshotBuilder listening alongside."""
    X, Y = xor_data()
    net = sn.Network.layered([2, 3, 1], output="sigmoid", seed=2)
    builder = SnapshotBuilder(every=every)
    net.bus.subscribe(builder, kinds=builder.kinds)

    def grow(net, step):
        if step == 6:
            net.add_neuron("h_new")
            net.connect("x0", "h_new")
            net.connect("h_new", "y0")

    recorder = sn.Recorder(tmp_path / "run", every=every, detail=detail)
    try:
        net.train(X, Y, steps=steps, lr=0.5, loss="bce", recorder=recorder, before_step=grow)
    finally:
        recorder.close()
    return builder, sn.open_trace(tmp_path / "run"), (X, Y)


@pytest.mark.parametrize("kind", ["activations", "weights"])
def test_a_replayed_trace_draws_the_live_gif_byte_for_byte(tmp_path, kind):
    builder, trace, data = growing_run(tmp_path)
    with trace:
        assert list(trace.steps) == sorted(builder.snapshots)
        replayed = render_gif(trace, kind, tmp_path / "replayed.gif", data=data).read_bytes()
    live = write_gif(snapshots(builder), kind, tmp_path / "live.gif", data=data).read_bytes()
    assert replayed == live
    assert len(gif_frames(live)) == len(builder.snapshots)


def test_render_run_writes_the_gifs_and_the_loss_plot(tmp_path):
    _, trace, data = growing_run(tmp_path)
    out = tmp_path / "pictures"
    out.mkdir()
    calls = []
    stored = (tmp_path / "run" / "trace.sqlite").read_bytes()
    with trace:
        written = render_run(trace, out, data=data, progress=lambda done, total: calls.append((done, total)))
        frames = len(trace.steps)
    assert sorted(p.name for p in written) == ["activations.gif", "loss.png", "weights.gif"]
    assert sorted(p.name for p in out.iterdir()) == ["activations.gif", "loss.png", "weights.gif"]
    assert calls == [(i, 2 * frames) for i in range(1, 2 * frames + 1)]
    with Image.open(out / "loss.png") as im:
        assert im.size == (800, 400)
    assert (tmp_path / "run" / "trace.sqlite").read_bytes() == stored  # drawing only reads


def test_probing_for_heatmaps_changes_no_snapshot():
    _, builder, _, data = recorded_run(steps=4, every=2)
    graphs = snapshots(builder)
    before = [(dict(G.graph), list(G.nodes(data=True)), list(G.edges(data=True))) for G in copy.deepcopy(graphs)]
    film = Film(graphs, data=data)
    assert all(f.outputs is not None for f in film.frames)
    assert [(dict(G.graph), list(G.nodes(data=True)), list(G.edges(data=True))) for G in graphs] == before


def test_a_trace_shows_its_last_step_as_a_png_in_notebooks(tmp_path):
    builder, trace, data = growing_run(tmp_path)
    with trace:
        png = trace._repr_png_()
        last = trace.steps[-1]
    with Image.open(io.BytesIO(png)) as im:
        shown = np.asarray(im.convert("RGB"))
    film = Film([builder.snapshots[last]])
    picture = film.picture("activations")
    assert np.array_equal(shown, picture.draw(film.look(0, "activations", picture)))


def test_loss_plot_marks_each_scripted_action_with_its_label():
    history = {"step": np.arange(1, 21), "loss": np.linspace(1, 0.1, 20), "accuracy": np.linspace(0.5, 1, 20)}
    actions = [{"step": 6, "action": "add_neuron", "label": "add h_new"},
               {"step": 15, "action": "set_learning_rate", "label": "lr 0.01"}]
    fig = loss_figure(history, actions)
    ax = fig.axes[0]
    marks = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert marks == [6, 15]
    labels = fig.axes[-1].texts  # on the accuracy axes, drawn over both curves
    assert [t.get_text().strip() for t in labels] == ["add h_new", "lr 0.01"]
    assert [t.get_position()[0] for t in labels] == [6, 15]
    assert fig.axes[1].get_ylabel() == "accuracy"
    crowded = [{"step": 301, "action": "add_neuron", "label": f"add g{i}"} for i in range(5)]
    assert [t.get_text().strip() for t in loss_figure(history, crowded).axes[-1].texts] == \
        ["add g0, add g1, add g2 +2 more"]


def test_loss_plot_keeps_long_action_labels_inside_the_chart():
    history = {"step": np.arange(0, 900), "loss": np.linspace(1, 0.1, 900), "accuracy": np.linspace(0.5, 1, 900)}
    actions = [{"step": 300, "action": "add_neuron", "label": f"add neuron g{i} between h1_{i} and y0"}
               for i in range(4)] + [{"step": 2, "action": "set_learning_rate", "label": "lr " + "9" * 80}]
    fig = loss_figure(history, actions)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    chart = fig.axes[0].get_window_extent(renderer)
    texts = fig.axes[-1].texts
    assert len(texts) == 2
    for text in texts:
        box = text.get_window_extent(renderer)
        assert chart.x0 <= box.x0 and box.x1 <= chart.x1 + 1 and chart.y0 <= box.y0 and box.y1 <= chart.y1, \
            (text.get_text(), box, chart)
    assert texts[0].get_text().endswith("+1 more") and "…" in texts[0].get_text()


def test_regression_loss_plot_has_no_accuracy_axis():
    history = {"step": np.arange(1, 6), "loss": np.array([4.0, 2, 1, 0.5, 0.01]), "accuracy": np.full(5, np.nan)}
    fig = loss_figure(history, [])
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "log"


@pytest.mark.parametrize("detail", ["messages", "updates"])
def test_sweep_gif_from_a_trace(tmp_path, detail):
    _, trace, _ = growing_run(tmp_path, detail=detail)
    with trace:
        path = render_gif(trace, "sweep", tmp_path / "sweep.gif", step=7)  # not a snapshot step
        neurons = len(trace.network_at(7).neurons)
        assert read_sweep(trace, 7).origin == ("messages" if detail == "messages" else "snapshot")
    assert len(gif_frames(path.read_bytes())) == 2 * neurons + 2


def test_a_picture_that_fails_half_way_leaves_nothing_behind(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    from simnet.viz.render import plot_loss

    def broken(self, target, **kwargs):
        Path(target).write_bytes(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    history = {"step": np.arange(1, 4), "loss": np.array([1.0, 0.5, 0.25]), "accuracy": np.full(3, np.nan)}
    trace = type("T", (), {"history": lambda self: history, "actions": lambda self: []})()
    with pytest.raises(OSError):
        plot_loss(trace, tmp_path / "loss.png")
    assert list(tmp_path.iterdir()) == []


# ---- size bounds ---------------------------------------------------------------

def test_a_picture_too_large_to_draw_is_refused_before_any_figure():
    from simnet.viz.layout import MAX_SIDE_PX, geometry
    from simnet.viz.picture import Picture
    fits = geometry([2, 3000, 1])
    assert fits.height_px <= MAX_SIDE_PX
    column = [f"h{i}" for i in range(5000)]
    positions = {name: (1.0, float(i)) for i, name in enumerate(column)}
    with pytest.raises(sn.SimnetError, match=r"too large to draw: a picture of 5,000 neurons in a column"):
        Picture(positions, column, dict.fromkeys(column, "hidden"), [], bars=[], legend=[])


def test_a_scenario_whose_gifs_cannot_be_drawn_is_refused_before_it_runs(tmp_path):
    from simnet.runner import prepare, run
    from simnet.scenario import loads
    text = ('name = "big"\n[network]\nlayers = [2, 100000, 1]\n[data]\nkind = "xor"\nsamples = 20\n'
            '[training]\nsteps = 2\nlearning_rate = 0.1\n')
    big = loads(text, "big.toml")
    with pytest.raises(sn.ScenarioError, match=r"big.toml: network.layers: too large to draw: .* 900,106 pixels"):
        run(big, tmp_path / "big")
    assert not (tmp_path / "big").exists()  # refused before anything was written
    assert prepare(big, gifs=False) == big
    assert prepare(loads(text + '[record]\ngifs = []\n', "big.toml")).network.layers == (2, 100000, 1)


# ---- honest at the edges -------------------------------------------------------

def test_a_run_that_blows_up_keeps_its_colour_scales_for_the_frames_before(tmp_path):
    from simnet.viz.frames import BLOW_UP, max_abs, nice_scale
    from simnet.scenario import execute, load
    scenario = load(Path(__file__).resolve().parent.parent / "scenarios" / "lr_too_high.toml")
    recorder = sn.Recorder(tmp_path, every=1)
    assert execute(scenario, recorder=recorder).diverged is not None
    recorder.close()
    with sn.open_trace(tmp_path) as trace:
        film = Film([G for _, G in trace.snapshots()])
    assert 1 < film.cut < len(film)
    before, after = film.frames[:film.cut], film.frames[film.cut:]
    largest = lambda frames, name: max(max_abs(getattr(f, name)) for f in frames)
    # the scales fit the frames before the blow-up, whose colours therefore still tell values apart
    assert film.scales["weight"] == nice_scale(largest(before, "weight"))
    assert film.scales["gradient"] == nice_scale(largest(before, "gradient"))
    assert any(largest(after, name) > BLOW_UP * largest(before, name)
               for name in ("activation", "gradient", "weight", "change"))
    picture = film.picture("activations")
    caption = film.look(0, "activations", picture).caption
    assert caption.startswith(f"the run blows up at step {after[0].step}: colour scales fit steps up to "
                              f"{before[-1].step}")
    assert film.look(film.cut - 1, "activations", picture).node_color[:, :3].std() > 0  # not all one white
    for name in ("weights", "activations"):  # every colour-bar title and the legend inside the picture
        picture = film.picture(name)
        renderer = picture.canvas.get_renderer()
        for artist in picture.fig.axes[1:] + picture.fig.legends:
            assert artist.get_tightbbox(renderer).x1 <= picture.geo.width_px


def test_a_steady_run_has_no_blow_up():
    _, builder, _, data = recorded_run(steps=12, every=3)
    film = Film(snapshots(builder), data=data)
    assert film.cut == len(film) and film.clipped() == ""


def test_sweep_values_never_cover_names_or_each_other():
    _, builder, _, _ = recorded_run(sizes=(3, 30, 2), steps=3, every=3, inputs=3)
    film = SweepFilm(from_snapshot(snapshots(builder)[-1]))
    picture = film.picture()
    renderer = picture.canvas.get_renderer()
    shown_values = 0
    for look in list(film.looks())[:8]:
        picture.draw(look)
        values = [t.get_window_extent(renderer) for t in picture.node_texts if t.get_visible()]
        names = [t.get_window_extent(renderer) for t in picture.labels]
        shown_values = max(shown_values, len(values))
        for k, box in enumerate(values):
            assert not any(box.overlaps(name) for name in names)
            assert not any(box.overlaps(other) for other in values[k + 1:])
    assert shown_values > 10  # most values still find a spot


def test_a_long_title_is_written_smaller_rather_than_cut():
    _, builder, _, _ = recorded_run(steps=3, every=3)
    film = Film(snapshots(builder))
    picture = film.picture("weights")
    look = film.look(1, "weights", picture)
    look.title = "a title far longer than the picture is wide, " * 2
    band = picture.draw(look)[:44].min(axis=2) < 100
    columns = np.flatnonzero(band.any(axis=0))
    assert columns.size and columns[0] > 0 and columns[-1] < picture.geo.width_px - 1


def test_a_two_input_network_too_large_to_probe_says_its_surface_is_left_out():
    from simnet.viz.frames import PROBE_LIMIT
    _, builder, _, data = recorded_run(sizes=(2, 50, 50, 1), steps=1, every=1)
    film = Film(snapshots(builder), data=data)
    assert film.surface_norm is None
    picture = film.picture("activations")
    assert picture.surface_axes is None
    assert f"no decision surface or heatmaps: 2,650 connections (they are drawn up to {PROBE_LIMIT:,})" in \
        [t.get_text() for t in picture.fig.texts]
    assert Film(snapshots(recorded_run(steps=1, every=1)[1]), data=data).probe_note == ""
