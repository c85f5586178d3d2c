"""DiagonalGAN attention maps: show every DAT layer's map d, and edit one map directly.

Each DAT layer scales the features by (1 + gamma * d) with d = sigmoid(fc(content)), one map per
layer at the layer's resolution. `attention_figure` shows them per sample; `manipulate` edits d
in a rectangle of one layer (scale it, or copy it shifted elsewhere), as in the paper's
attention-map figures. An edit reaches the network as a per-sample multiplicative scale on d
(d > 0 always, so any new map is d times new / d); d of the other layers depends on the content
code alone, so they stay as they were.
"""

import math
from typing import NamedTuple

import numpy as np

from jaxstyle.editing.content_style import (PSI_CONTENT_SAMPLE, PSI_STYLE, chunked, draw,
                                            framed_grid, require_content)

COLORMAPS = ("gray", "heat")


class AttentionFigure(NamedTuple):
    """Images and every DAT layer's maps of some samples, and their grid."""

    grid: np.ndarray    # uint8: rows = samples, columns = image, then one map per layer coarse to fine
    images: np.ndarray  # float32 (N, r, r, 3) in about [-1, 1]
    maps: dict          # {layer: (N, H, W) float32 in [0, 1]}


class Manipulation(NamedTuple):
    """One layer's attention map edited, and the images before and after."""

    grid: np.ndarray         # uint8: rows = samples, columns = image, map, edited map, edited image
    images: np.ndarray       # float32 (N, r, r, 3), unedited
    edited_images: np.ndarray
    map: np.ndarray          # float32 (N, H, W): the layer's d
    edited_map: np.ndarray   # float32 (N, H, W): d after the edit (may exceed 1 when scaled up)


def check_layer(net, layer):
    """Returns layer; raises ValueError listing the model's DAT layers when it is not one of them."""
    if layer not in net.attention_layers:
        raise ValueError(f"unknown DAT layer {layer!r}: this model's layers are "
                         f"{', '.join(net.attention_layers)}")
    return layer


def attention_maps(net, codes, attention_edits=None):
    """Returns (images (N, r, r, 3), {layer: d (N, H, W)}) for Codes, in fixed-size batches."""
    return chunked(lambda s, c, e: net.attention_maps(s, c, attention_edits=e), codes, attention_edits)


def upsample_nearest(maps, size):
    """Returns maps (N, h, w) repeated to (N, size, size); size must be a multiple of h and w."""
    maps = np.asarray(maps)
    fy, fx = size // maps.shape[1], size // maps.shape[2]
    if fy * maps.shape[1] != size or fx * maps.shape[2] != size:
        raise ValueError(f"cannot upsample a {maps.shape[1:]} map to {size} by repetition")
    return np.repeat(np.repeat(maps, fy, axis=1), fx, axis=2)


def colorize(maps, colormap="gray"):
    """Returns maps (N, H, W), clipped to [0, 1], as images (N, H, W, 3) in [-1, 1].

    "gray": black (0) to white (1); "heat": black, red, yellow, white in equal thirds.
    """
    v = np.clip(np.asarray(maps, np.float32), 0.0, 1.0)
    if colormap == "gray":
        rgb = np.stack([v, v, v], axis=-1)
    elif colormap == "heat":
        rgb = np.stack([np.clip(3 * v - k, 0.0, 1.0) for k in range(3)], axis=-1)
    else:
        raise ValueError(f"unknown colormap {colormap!r}: use one of {', '.join(COLORMAPS)}")
    return rgb * 2.0 - 1.0


def attention_figure(net, seeds, psi_style=PSI_STYLE, psi_content=PSI_CONTENT_SAMPLE, means=None,
                     colormap="gray"):
    """Returns an AttentionFigure of the samples named by seeds."""
    require_content(net)
    images, maps = attention_maps(net, draw(net, seeds, psi_style, psi_content, means))
    maps = {layer: maps[layer] for layer in net.attention_layers}
    shown = [colorize(upsample_nearest(maps[layer], images.shape[1]), colormap) for layer in maps]
    return AttentionFigure(framed_grid(np.stack([images] + shown, axis=1)), images, maps)


def _cut(value, size):
    # Fractions such as 0.3 * 10 land a hair off an integer; round before floor/ceil.
    return round(value * size, 6)


def region_pixels(region, size):
    """Returns (row0, row1, col0, col1), the half-open pixel box of a size x size map that a
    region (y0, x0, y1, x1) in fractions of the map touches; raises ValueError when invalid."""
    y0, x0, y1, x1 = (float(v) for v in region)
    if not (0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1):
        raise ValueError(f"region {tuple(region)} is not y0 x0 y1 x1 with 0 <= y0 < y1 <= 1 and "
                         "0 <= x0 < x1 <= 1 (fractions of the map)")
    return (math.floor(_cut(y0, size)), math.ceil(_cut(y1, size)),
            math.floor(_cut(x0, size)), math.ceil(_cut(x1, size)))


def shift_pixels(shift, size):
    """Returns (dy, dx) in whole pixels of a size x size map for a shift in fractions of the map."""
    dy, dx = (float(v) for v in shift)
    return round(_cut(dy, size)), round(_cut(dx, size))


def edit_map(d, region, scale=1.0, shift=None):
    """Returns a copy of maps d (..., H, W): inside `region`, d times scale; with `shift`
    (dy, dx fractions), the region's values times scale are written to the region moved by the
    shift instead, and the source region is left as it was. Raises ValueError when the moved
    region leaves the map."""
    d = np.asarray(d, np.float32)
    h, w = d.shape[-2:]
    if h != w:
        raise ValueError(f"expected square maps, got {h}x{w}")
    r0, r1, c0, c1 = region_pixels(region, h)
    dy, dx = shift_pixels(shift, h) if shift is not None else (0, 0)
    if not (0 <= r0 + dy and r1 + dy <= h and 0 <= c0 + dx and c1 + dx <= w):
        raise ValueError(f"region {tuple(region)} shifted by {tuple(shift or (0, 0))} leaves the {h}x{w} map "
                         f"(rows {r0 + dy}..{r1 + dy}, columns {c0 + dx}..{c1 + dx}); use a smaller shift")
    out = d.copy()
    out[..., r0 + dy:r1 + dy, c0 + dx:c1 + dx] = np.float32(scale) * d[..., r0:r1, c0:c1]
    return out


def manipulate(net, layer, region, scale=2.0, shift=None, seeds=(0, 1, 2, 3), psi_style=PSI_STYLE,
               psi_content=PSI_CONTENT_SAMPLE, means=None, colormap="gray"):
    """Returns a Manipulation: `layer`'s attention map edited by `edit_map` for each sample."""
    require_content(net)
    check_layer(net, layer)
    if scale < 0:
        raise ValueError(f"scale must be >= 0 (d is a sigmoid, in [0, 1]), got {scale}")
    codes = draw(net, seeds, psi_style, psi_content, means)
    images, maps = attention_maps(net, codes)
    d = maps[layer]
    new = edit_map(d, region, scale, shift)
    # The network multiplies d by the edit; where d underflowed to 0 no scale can help, keep it.
    factor = np.where(d > 0, new / np.where(d > 0, d, 1), 1).astype(np.float32)
    edited_images, edited_maps = attention_maps(net, codes, {layer: factor})
    size = images.shape[1]
    shown = [colorize(upsample_nearest(m, size), colormap) for m in (d, edited_maps[layer])]
    grid = framed_grid(np.stack([images, *shown, edited_images], axis=1))
    return Manipulation(grid, images, edited_images, d, edited_maps[layer])
