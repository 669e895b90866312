"""GIF encoding: frames drawn by a Picture, streamed to a file with one palette.

GIFs use one palette for all their frames (the colour maps' colours plus the
frame's own), and each frame after the first stores only the pixels that
changed, which keeps a 200-frame animation small.
"""
from pathlib import Path

import numpy as np

from ..errors import SimnetError
from ..files import written_whole

__all__ = ["FRAME_MS", "LAST_FRAME_MS", "Counter", "GifWriter", "build_palette", "distinct_palette",
           "nearest_lookup", "quantize", "write_looks"]

FRAME_MS, LAST_FRAME_MS = 100, 2000
TRANSPARENT = 255  # palette slot left free: "this pixel did not change"
SHADES = 5  # bits per channel of the colour lookup table


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


class Counter:
    """Counts frames as they are drawn and reports them to progress(done, total), if given."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def tick(self):
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


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
