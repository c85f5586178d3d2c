"""Image grids and PNG output."""

import os
import tempfile

import numpy as np
from PIL import Image


def to_uint8(images, drange=(-1.0, 1.0)):
    """Returns images (B, H, W, C) mapped from `drange` to uint8 [0, 255], rounded and clipped."""
    lo, hi = drange
    x = (np.asarray(images, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def make_grid(images, rows, cols):
    """Returns one uint8 image (rows*H, cols*W, C) tiling the first rows*cols images row by row."""
    images = np.asarray(images)
    b, h, w, c = images.shape
    if b < rows * cols:
        raise ValueError(f"a {rows}x{cols} grid needs {rows * cols} images, got {b}")
    grid = images[: rows * cols].reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * h, cols * w, c)


def save_png(image, path):
    """Writes a uint8 (H, W, C) image (C = 1, 3 or 4) to `path` atomically; returns the path."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 1|3|4) image, got {image.dtype} {image.shape}")
    if image.shape[-1] == 1:
        image = image[..., 0]
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves a half-written PNG.
    fd, tmp = tempfile.mkstemp(suffix=".png.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(image).save(f, format="PNG")
        os.chmod(tmp, 0o644)  # mkstemp creates private files; an image is for sharing
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
