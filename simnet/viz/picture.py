"""The network picture: a matplotlib figure built once, whose artists change from frame to frame.

A :class:`Picture` lays out the furniture (axes, colour bars, legends, name
labels, the data points of the decision-surface panel) once and draws it
once.  Each frame restores that background and draws only the artists that
change (edges, nodes, heatmaps, the surface, the title), which is what makes
animations cheap.  What the colours mean is decided by the caller: a
:class:`Look` holds ready-made colours and widths, so this module knows
matplotlib and nothing of snapshots.

Everything renders with the Agg backend on a figure of its own; pyplot and
the user's backend are never touched.
"""
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .layout import BAR_PX, BOTTOM_PX, RING, SURFACE_PX, TITLE_PX, column_sizes, geometry

__all__ = ["DPI", "EDGE_TEXT_LIMIT", "HEAT_SIDE", "MARKERS", "OUTLINE", "OUTLINE_RGB", "TEXT_SPOTS", "TITLE_BASELINE",
           "TITLE_PT", "Bar", "Look", "Picture", "Stamp", "Surface"]

DPI = 100
MARKERS = {"input": "s", "hidden": "o", "output": "D"}
OUTLINE = "#303030"
OUTLINE_RGB = np.array([0x30, 0x30, 0x30], np.uint8)  # the same, for painting pixels
EDGE_TEXT_LIMIT = 40  # value texts on connections per frame, at most
HEAT_SIDE = 16  # heatmap tiles are 16 x 16 probe points
TEXT_SPOTS = (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8)  # where along an edge its text may go
TITLE_PT, TITLE_BASELINE = 12, 28


@dataclass
class Bar:
    """A colour bar: what the colour means (label), the colour map and its fixed norm."""
    label: str
    cmap: object
    norm: object
    ticks: tuple = None  # names of the values 0, 1, ... (a bar of classes), or None for numbers
    shades: object = None  # a colour map of further colours the picture shows for this bar (a GIF's palette holds them)


@dataclass
class Surface:
    """The decision-surface panel of a two-input network: extent (x0 lo, x0 hi, x1 lo, x1 hi) and data."""
    extent: tuple
    bar: Bar
    title: str
    points: tuple = None  # (X (n, 2), colours (n, 4)) or None
    axis_names: tuple = ("x0", "x1")
    note: str = ""  # said on the panel, over the surface (why it has no points)
    ticks: bool = True  # False for a panel of pictures (receptive fields) rather than a plane


@dataclass
class Look:
    """Everything that changes between frames, ready to draw.

    node_color (N, 4) and node_shown (N,) follow the picture's node order,
    edge_color (E, 4) and edge_width (E,) its edge order.  Optional: heat
    (N, h, w) RGBA images drawn at the nodes; surface (g, g, 4) RGBA; texts on
    edges or next to nodes (None for none); node_mark (N,) bool for a bold
    outline (the neurons that just fired).
    """
    title: str
    node_color: np.ndarray
    node_shown: np.ndarray
    edge_color: np.ndarray
    edge_width: np.ndarray
    heat: np.ndarray = None
    surface: np.ndarray = None
    edge_text: list = None
    node_text: list = None
    node_mark: np.ndarray = None
    caption: str = ""


class Stamp:
    """Black text drawn from glyph bitmaps that freetype renders once per character.

    Titles change every frame; laying out and rendering them anew each time
    would cost more than the rest of the frame.
    """

    def __init__(self, size_pt):
        from matplotlib.font_manager import FontProperties, findfont
        from matplotlib.ft2font import FT2Font
        self.font = FT2Font(findfont(FontProperties(size=size_pt)))
        self.font.set_size(size_pt, DPI)
        self.glyphs = {}

    def _glyph(self, char):
        if char not in self.glyphs:
            from matplotlib.ft2font import LoadFlags
            font = self.font
            font.set_text(char, 0.0, flags=LoadFlags.FORCE_AUTOHINT)
            font.draw_glyphs_to_bitmap(antialiased=True)
            image = np.asarray(font.get_image()).astype(np.uint16)[..., None]
            left = font.get_bitmap_offset()[0] / 64
            advance = font.load_char(ord(char), flags=LoadFlags.FORCE_AUTOHINT).linearHoriAdvance / 65536
            self.glyphs[char] = (image, left, font.get_descent() / 64, advance)
        return self.glyphs[char]

    def width(self, text):
        """The advance of `text` in pixels."""
        return sum(self._glyph(c)[3] for c in text)

    def draw(self, pixels, text, x, baseline):
        """Darken `pixels` (H, W, 4) with `text` starting at column x on row `baseline`."""
        for char in text:
            image, left, descent, advance = self._glyph(char)
            h, w = image.shape[:2]
            top, col = int(round(baseline + descent)) - h, int(round(x + left))
            # a glyph beyond the frame's edge is cut off there (a long title on a narrow frame)
            y0, x0 = max(top, 0), max(col, 0)
            y1, x1 = max(min(top + h, pixels.shape[0]), y0), max(min(col + w, pixels.shape[1]), x0)
            region = pixels[y0:y1, x0:x1, :3]
            region[...] = region * (255 - image[y0 - top:y1 - top, x0 - col:x1 - col]) // 255
            x += advance


def _sprite(marker, size_pt2, side):
    """Coverage masks (fill, outline, bold outline), each (side, side, 1) in [0, 1], of one centred marker."""
    masks = []
    for face, width in (("black", 0.0), ("none", 1.0), ("none", 2.6)):
        fig = Figure(figsize=(side / DPI, side / DPI), dpi=DPI)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_axis_off()
        ax.set_xlim(0, side)
        ax.set_ylim(0, side)
        fig.patch.set_alpha(0.0)
        ax.scatter([side / 2], [side / 2], s=size_pt2, marker=marker, facecolors=face,
                   edgecolors="black" if width else "none", linewidths=width)
        canvas.draw()
        masks.append(np.asarray(canvas.buffer_rgba())[..., 3:].astype(float) / 255)
    return masks


def _overlaps(box, boxes):
    """Whether `box` (x0, y0, x1, y1) overlaps any row of `boxes`."""
    return bool(np.any((boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2]) & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])))


class Picture:
    """A network figure over fixed nodes and edges; `draw(look)` returns one frame as (H, W, 3) uint8.

    positions: {name: (x, y)} for every node that appears in any frame;
    nodes: names in the order of the Look arrays; roles: {name: role};
    edges: [(source, target)] in the order of the Look arrays;
    bars: colour bars to show; legend: [(label, Line2D kwargs)] for the edges;
    surface: a :class:`Surface` for two-input networks, or None;
    heat_possible: the caller can supply per-node heatmaps (drawn if they fit, explained by heat_caption);
    note: said at the top right where heat_caption would be (what the picture leaves out, and why);
    edge_text / node_text: whether looks carry texts for edges / nodes (edge texts only for small networks);
    columns: the neurons per column to size the picture by, when `positions` do not stand in columns (an input
    image); unlabelled: names drawn without their label (the pixels of an input image).

    Drawing order per frame: the saved background, edges, nodes (markers, or
    heatmap tiles written straight into the pixel buffer), the surface (also
    written into the pixels), texts and title, and last the name labels and
    data points, rendered once into a transparent layer laid over every frame.
    """

    def __init__(self, positions, nodes, roles, edges, *, bars, legend, surface=None,
                 heat_possible=False, heat_caption="", note="", edge_text=False, node_text=False,
                 columns=None, unlabelled=()):
        self.nodes, self.edges = list(nodes), list(edges)
        self.roles = [roles[n] for n in self.nodes]
        self.unlabelled = frozenset(unlabelled)
        self.geo = g = geometry(columns or column_sizes(positions), heat_possible=heat_possible,
                                   surface=surface is not None, bars=len(bars))
        self.bars = list(bars) + ([surface.bar] if surface is not None else [])
        self.fig = Figure(figsize=(g.width_px / DPI, g.height_px / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.under, self.over = [], []  # artists drawn below and above the heatmap tiles
        self.top = []  # fixed artists laid over everything, with the names
        self._network_axes(positions)
        self.xy = np.array([positions[n] for n in self.nodes], dtype=float).reshape(-1, 2)
        self._edges(positions)
        self.centres = self.ax.transData.transform(self.xy) if len(self.xy) else np.zeros((0, 2))  # in pixels
        if g.heat:
            self._tiles()
        else:
            self._markers()
        self.surface_axes = self._surface(surface) if surface is not None else None
        self._labels(positions, edge_text, node_text)
        self._bars(bars)
        self._legend(legend, heat_caption if g.heat else note)
        self.title, self.small_title = Stamp(TITLE_PT), Stamp(TITLE_PT - 3)  # the small one for long titles
        self.caption = self.fig.text(0.5, 4 / g.height_px, "", ha="center", va="bottom", fontsize=8,
                                     color="#444444", animated=True)
        self.over.append(self.caption)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self._overlays = {}

    # ---- building --------------------------------------------------------

    def _px(self, x_px, y_px):
        """A figure-pixel offset as a data-unit offset in the network axes."""
        (x0, y0), (x1, y1) = self.ax.transData.inverted().transform([(0, 0), (x_px, y_px)])
        return x1 - x0, y1 - y0

    def _network_axes(self, positions):
        g = self.geo
        W, H = g.width_px, g.height_px
        ax = self.fig.add_axes([0, BOTTOM_PX / H, g.net_w / W, (H - TITLE_PX - BOTTOM_PX) / H])
        ax.set_axis_off()
        xs = [x for x, _ in positions.values()] or [0.0]
        x_lo, x_hi = min(xs), max(xs)
        per_px = (x_hi - x_lo) / (g.net_w - 150) if x_hi > x_lo else 1.0 / g.column_px
        ax.set_xlim(x_lo - 45 * per_px, x_hi + 105 * per_px)
        half = (H - TITLE_PX - BOTTOM_PX) / g.row_px / 2
        ax.set_ylim(-half, half)
        self.ax = ax

    def _edges(self, positions):
        segments = [(positions[s], positions[t]) for s, t in self.edges]
        self.lines = LineCollection(segments, linewidths=0.0, capstyle="butt", zorder=1, animated=True)
        self.ax.add_collection(self.lines)
        self.under.append(self.lines)

    def _markers(self):
        """Node sprites: each role's marker rendered once as coverage masks, then painted per frame."""
        size_pt2 = (self.geo.node_px * 72 / DPI) ** 2
        side = int(self.geo.node_px * 1.5) + 8
        self.sprites = {}
        for role, marker in MARKERS.items():
            if role in self.roles:
                scale = 0.85 if marker == "s" else 0.8 if marker == "D" else 1.0  # same visual weight per shape
                self.sprites[role] = _sprite(marker, size_pt2 * scale, side)
        H = self.geo.height_px
        self.corners = [(int(round(H - cy)) - side // 2, int(round(cx)) - side // 2) for cx, cy in self.centres]
        self.side = side

    def _tiles(self):
        """Pixel boxes of the heatmap tiles: each an outline, a ring in the node's colour, the tile itself."""
        side = max(HEAT_SIDE, int(self.geo.node_px))
        self.stretch = np.arange(side) * HEAT_SIDE // side  # nearest-neighbour scaling to `side` pixels
        H = self.geo.height_px
        self.boxes = []
        for (cx, cy), role in zip(self.centres, self.roles):
            top, left = int(round(H - cy - side / 2)), int(round(cx - side / 2))
            self.boxes.append((top, left, side, 2 if role == "output" else 1))
        self.tile_half_px = side / 2 + RING + 2

    def _labels(self, positions, edge_text, node_text):
        g = self.geo
        self.labels = []
        if g.labels:
            half = self.tile_half_px if g.heat else g.node_px / 2
            dx, _ = self._px(half + 3, 0)
            for name, (x, y) in zip(self.nodes, self.xy):
                # a neuron drawn as a pixel of an image has no name beside it (its label stays, empty, so that
                # the labels follow the nodes)
                named = name not in self.unlabelled
                label = self.ax.text(x + dx, y, name if named else "", fontsize=g.font_pt, ha="left", va="center",
                                     zorder=5, animated=True,
                                     bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.75)
                                     if named else None)
                self.labels.append(label)
        self.small_pt = max(g.font_pt - 1, 6)
        # a pool of texts that move to whichever connections carry a value in a frame
        self.edge_texts = [self.ax.text(0, 0, "", fontsize=self.small_pt, ha="center", va="center", zorder=6,
                                        animated=True, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none",
                                                                 alpha=0.85))
                           for _ in range(EDGE_TEXT_LIMIT if edge_text else 0)]
        self.node_texts = []
        if node_text and g.labels:
            for x, y in self.xy:
                self.node_texts.append(self.ax.text(x, y, "", fontsize=self.small_pt, zorder=6, animated=True,
                                                    fontweight="bold", bbox=dict(boxstyle="round,pad=0.05",
                                                                                 fc="white", ec="none", alpha=0.85)))
        self.over += self.edge_texts + self.node_texts
        if edge_text or self.node_texts:
            self._text_room(positions)

    def _text_room(self, positions):
        """Pixel boxes where edge texts must not go (nodes and their names) and the edges in pixels."""
        self.segments = np.array([(positions[s], positions[t]) for s, t in self.edges], float).reshape(-1, 2, 2)
        self.segments_px = self.ax.transData.transform(self.segments.reshape(-1, 2)).reshape(-1, 2, 2)
        centres = self.centres
        half = self.geo.node_px / 2 + 1
        em = self.geo.font_pt * DPI / 72
        boxes = [(x - half, y - half, x + half, y + half) for x, y in centres]
        boxes += [(x + half + 2, y - em / 2 - 2, x + half + 6 + 0.62 * em * len(name), y + em / 2 + 2)
                  for (x, y), name in zip(centres, self.nodes)] if self.labels else []
        self.node_room = np.array(boxes, float).reshape(-1, 4)
        self.value_room = np.zeros((0, 4))  # where the values of the frame being drawn went

    def _surface(self, surface):
        """The decision-surface panel; its image is written straight into the pixels of the axes' inside."""
        g = self.geo
        W, H = g.width_px, g.height_px
        left = g.net_w + 30
        bottom = BOTTOM_PX + max((H - TITLE_PX - BOTTOM_PX - SURFACE_PX) // 2, 20)
        ax = self.fig.add_axes([left / W, bottom / H, SURFACE_PX / W, SURFACE_PX / H])
        ax.set_xlim(surface.extent[:2])
        ax.set_ylim(surface.extent[2:])
        ax.set_title(surface.title, fontsize=9)
        ax.set_xlabel(surface.axis_names[0], fontsize=8, labelpad=1)
        ax.set_ylabel(surface.axis_names[1], fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7, length=2, pad=1)
        if not surface.ticks:
            ax.set_xticks([])
            ax.set_yticks([])
        # inside the frame line: rows from the top of the figure, columns from the left
        self.surface_box = (H - bottom - SURFACE_PX + 1, H - bottom - 1, left + 1, left + SURFACE_PX - 1)
        if surface.points is not None:
            X, colours = surface.points
            # the points lie on top of the changing surface: they go into the top layer with the names
            self.top.append(ax.scatter(X[:, 0], X[:, 1], s=12, c=colours, edgecolors="white", linewidths=0.5,
                                       zorder=2, animated=True))
        if surface.note:
            self.top.append(ax.text(0.5, 0.97, surface.note, transform=ax.transAxes, ha="center", va="top",
                                    fontsize=7, zorder=3, animated=True,
                                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}))
        cax = self.fig.add_axes([left / W, (bottom - 34) / H, SURFACE_PX / W, 8 / H])
        self._bar(surface.bar, cax, "horizontal")
        return ax

    def _bars(self, bars):
        g = self.geo
        W, H = g.width_px, g.height_px
        top = H - TITLE_PX - 20
        height = min(max(H - TITLE_PX - BOTTOM_PX - 60, 120), 300)
        for i, bar in enumerate(bars):
            left = W - BAR_PX * (len(bars) - i) + 14
            cax = self.fig.add_axes([left / W, (top - height) / H, 12 / W, height / H])
            self._bar(bar, cax, "vertical")

    def _bar(self, bar, cax, orientation):
        cb = self.fig.colorbar(ScalarMappable(norm=bar.norm, cmap=bar.cmap), cax=cax, orientation=orientation)
        cb.set_label(bar.label, fontsize=8, labelpad=2)
        cb.formatter = FuncFormatter(lambda value, _: f"{value:.2g}")  # short labels: "5e-05", not "0.00005"
        cb.update_ticks()
        if bar.ticks is not None:
            cb.set_ticks(range(len(bar.ticks)), labels=bar.ticks)
        elif orientation == "horizontal":  # a short bar: fewer ticks, so their labels do not touch
            cb.ax.xaxis.set_major_locator(MaxNLocator(5))
        cb.ax.tick_params(labelsize=7, length=2, pad=1)
        cb.outline.set_linewidth(0.5)
        if orientation == "vertical" and self._beyond_right(cax):
            # long tick labels push the title out of the picture: it goes on the bar's other side
            cb.ax.yaxis.set_label_position("left")

    def _beyond_right(self, artist):
        """Whether `artist`, as laid out now, reaches past the figure's right edge."""
        return artist.get_tightbbox(self.canvas.get_renderer()).x1 > self.geo.width_px

    def _legend(self, legend, caption):
        handles = []
        if not self.geo.heat:
            present = {r for r in self.roles}
            handles += [Line2D([], [], linestyle="none", marker=MARKERS[r], markersize=7, markerfacecolor="#dddddd",
                               markeredgecolor=OUTLINE, label=r) for r in MARKERS if r in present]
        handles += [Line2D([], [], label=label, **style) for label, style in legend]
        if handles:
            keys = dict(handles=handles, loc="lower left", fontsize=8, frameon=False, handlelength=1.6,
                        columnspacing=1.2, borderaxespad=0.2)
            shown = self.fig.legend(bbox_to_anchor=(0.0, 14 / self.geo.height_px), ncol=len(handles), **keys)
            if self._beyond_right(shown):  # too long for one row: two, above the caption
                shown.remove()
                self.fig.legend(bbox_to_anchor=(0.0, 16 / self.geo.height_px), ncol=-(-len(handles) // 2), **keys)
        if caption:
            self.fig.text(0.995, 1 - 30 / self.geo.height_px, caption, ha="right", va="top", fontsize=7,
                          color="#555555")

    # ---- one frame -------------------------------------------------------

    def draw(self, look):
        """Render `look` over the fixed background; returns a fresh (H, W, 3) uint8 array (a view of RGBA)."""
        overlay = self._overlay(look.node_shown) if self.labels or self.top else None
        self.canvas.restore_region(self.background)
        self.caption.set_text(look.caption)
        self.caption.set_visible(bool(look.caption))
        self.lines.set_color(look.edge_color)
        self.lines.set_linewidths(look.edge_width)
        if self.node_texts:
            self._place_node_texts(look)
        if self.edge_texts:
            self._place_edge_texts(look)
        for artist in self.under:
            self.fig.draw_artist(artist)
        pixels = np.asarray(self.canvas.buffer_rgba())
        if self.geo.heat:
            self._paint_tiles(pixels, look)
        else:
            self._paint_markers(pixels, look)
        if self.surface_axes is not None and look.surface is not None:
            self._paint_surface(pixels, look.surface)
        for artist in self.over:
            self.fig.draw_artist(artist)
        stamp = self.title if self.title.width(look.title) <= self.geo.width_px - 16 else self.small_title
        stamp.draw(pixels, look.title, (self.geo.width_px - stamp.width(look.title)) / 2, TITLE_BASELINE)
        frame = pixels.copy()  # a contiguous copy is far cheaper than gathering three of four channels
        if overlay is not None:
            where, premultiplied, keep = overlay
            flat = frame.reshape(-1, 4)
            flat[where, :3] = (flat[where, :3] * keep + premultiplied + 127) // 255
        return frame[..., :3]

    def _place_node_texts(self, look):
        """Put each neuron's value below it or, where that covers a node, a name or another value, left of it.

        A value with no free spot is left out rather than drawn over a name; its colour still shows it.
        """
        em = self.small_pt * DPI / 72
        half = self.geo.node_px / 2 + 2
        inverse = self.ax.transData.inverted()
        placed = []
        for i, (text, value) in enumerate(zip(self.node_texts, look.node_text or [None] * len(self.nodes))):
            text.set_visible(False)
            if not value:
                continue
            w, h = 0.62 * em * len(value) + 4, em + 4
            x, y = self.centres[i]
            spots = (((x - w / 2, y - half - h, x + w / 2, y - half), (x, y - half), "center", "top"),
                     ((x - half - w, y - h / 2, x - half, y + h / 2), (x - half, y), "right", "center"))
            for box, anchor, ha, va in spots:
                box = np.array(box)
                if not any(_overlaps(box, room) for room in (self.node_room, np.array(placed).reshape(-1, 4))):
                    placed.append(box)
                    text.set_position(inverse.transform(anchor))
                    text.set_ha(ha)
                    text.set_va(va)
                    text.set_text(value)
                    text.set_visible(True)
                    break
        self.value_room = np.array(placed, float).reshape(-1, 4)

    def _place_edge_texts(self, look):
        """Put each edge's text at the first spot along it (middle first) that covers no node, name or text.

        Wider edges choose first; a text with no free spot is left out rather than drawn over another.
        """
        texts = look.edge_text or ()
        wanted = sorted((j for j, t in enumerate(texts) if t), key=lambda j: -look.edge_width[j])
        taken = [self.node_room, self.value_room]
        em = self.small_pt * DPI / 72
        placed = []
        for j in wanted:
            if len(placed) == len(self.edge_texts):
                break
            w, h = 0.62 * em * len(texts[j]) + 4, em + 4
            (x0, y0), (x1, y1) = self.segments_px[j]
            for t in TEXT_SPOTS:
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                box = np.array([x - w / 2, y - h / 2, x + w / 2, y + h / 2])
                if not any(_overlaps(box, room) for room in taken + [np.array(placed).reshape(-1, 4)]):
                    text = self.edge_texts[len(placed)]
                    placed.append(box)
                    (a, b) = self.segments[j]
                    text.set_position(a + t * (b - a))
                    text.set_text(texts[j])
                    break
        for i, text in enumerate(self.edge_texts):
            text.set_visible(i < len(placed))

    def _paint_markers(self, pixels, look):
        """Composite each shown node's sprite: its fill in the node's colour, then the outline."""
        side = self.side
        outline = OUTLINE_RGB.astype(float)
        colours = np.asarray(look.node_color, float)[:, :3] * 255
        marks = look.node_mark if look.node_mark is not None else np.zeros(len(self.nodes), bool)
        for i, (top, left) in enumerate(self.corners):
            if not look.node_shown[i]:
                continue
            fill, line, bold = self.sprites[self.roles[i]]
            region = pixels[top:top + side, left:left + side, :3]
            base = region.astype(float)
            base += (colours[i] - base) * fill
            base += (outline - base) * (bold if marks[i] else line)
            region[...] = np.rint(base)

    def _paint_tiles(self, pixels, look):
        colours = (np.asarray(look.node_color)[:, :3] * 255).round().astype(np.uint8)
        outline = OUTLINE_RGB
        for i, (top, left, side, width) in enumerate(self.boxes):
            if not look.node_shown[i]:
                continue
            edge = RING + width
            pixels[top - edge:top + side + edge, left - edge:left + side + edge, :3] = outline
            pixels[top - RING:top + side + RING, left - RING:left + side + RING, :3] = colours[i]
            if look.heat is not None:
                tile = look.heat[i][::-1, :, :3]
                pixels[top:top + side, left:left + side, :3] = tile[self.stretch][:, self.stretch]

    def _paint_surface(self, pixels, surface):
        top, bottom, left, right = self.surface_box
        rows, cols = surface.shape[:2]
        # nearest neighbour: pixel row i (from the top) shows grid row rows-1 - i*rows/height
        pick_rows = rows - 1 - np.arange(bottom - top) * rows // (bottom - top)
        pick_cols = np.arange(right - left) * cols // (right - left)
        pixels[top:bottom, left:right, :3] = surface[pick_rows][:, pick_cols, :3]

    def _overlay(self, shown):
        """The top layer (names of the shown nodes, data points) as (flat pixel indices, premultiplied colour,
        255 - alpha), rendered once per set of shown nodes."""
        key = np.asarray(shown, bool).tobytes()
        if key not in self._overlays:
            for label, visible in zip(self.labels, shown):
                label.set_visible(bool(visible))
            self.canvas.get_renderer().clear()
            for artist in self.labels + self.top:
                self.fig.draw_artist(artist)
            layer = np.array(self.canvas.buffer_rgba()).reshape(-1, 4)
            where = np.flatnonzero(layer[:, 3])
            a = layer[where, 3:].astype(np.uint16)
            self._overlays[key] = (where, layer[where, :3].astype(np.uint16) * a, 255 - a)
        return self._overlays[key]

    def colour_maps(self):
        """The colour maps this picture uses (a GIF palette must hold their colours)."""
        return [cmap for bar in self.bars for cmap in (bar.cmap, bar.shades) if cmap is not None]

    def close(self):
        self.fig.clear()

    def png(self, look, path_or_file):
        """Draw `look` and save it as a PNG (path or binary file object)."""
        from PIL import Image
        Image.fromarray(self.draw(look)).save(path_or_file, format="PNG", optimize=True)
