"""Drawing primitives for toyfaces: signed distances, pixel coverage, compositing and colours.

All functions are vectorised NumPy on float32 arrays that broadcast over (N, H, W); colours and
the canvas are planar, (3, N, H, W), because NumPy's loops over a trailing axis of 3 run several
times slower than over whole rows. A signed distance is negative inside a shape and measured in
the units of its coordinates; `coverage` turns it into the fraction of a pixel the shape covers,
which is what anti-aliases every edge. Only +, -, *, /, sqrt, abs, min, max and clip touch
pixels: IEEE arithmetic rounds those exactly whatever SIMD path NumPy takes, so a batch renders
bit-identically to its members rendered one at a time.
"""

import numpy as np


def pixel_grid(resolution):
    """Returns (x, y), the pixel-centre coordinates in [-1, 1], shaped (1, 1, R) and (1, R, 1)."""
    t = ((2.0 * np.arange(resolution) + 1.0) / resolution - 1.0).astype(np.float32)
    return t.reshape(1, 1, -1), t.reshape(1, -1, 1)


def coverage(d, inv_pixel):
    """Returns the covered fraction of each pixel for signed distance d: a ramp one pixel wide."""
    # inv_pixel converts the distance's units to pixels; the ramp approximates a box filter.
    return np.minimum(np.maximum(0.5 - d * inv_pixel, 0.0), 1.0)


def circle(x, y, r):
    """Returns the signed distance to a circle of radius r centred at the origin."""
    return np.sqrt(x * x + y * y) - r


def ellipse(x, y, a, b):
    """Returns the first-order signed distance to the origin-centred ellipse of semi-axes a, b."""
    # (k0 - 1) / |grad k0|: exact on the boundary, which is all that coverage needs.
    # |grad k0| = k1 / k0 lies in [1 / max(a, b), 1 / min(a, b)]; clamping k0 / k1 to that
    # range changes nothing except at the centre, where 0 / 0 becomes the inscribed radius.
    xa, yb = x / a, y / b
    k0 = np.sqrt(xa * xa + yb * yb)
    xaa, ybb = xa / a, yb / b
    k1 = np.sqrt(xaa * xaa + ybb * ybb)
    return (k0 - 1.0) * np.maximum(k0 / (k1 + 1e-30), np.asarray(np.minimum(a, b), np.float32))


def lens(x, y, half_width, half_height):
    """Returns the signed distance to an almond: two circular arcs meeting at (+-half_width, 0)."""
    # Both arcs pass through the corners and through (0, -+half_height); the |x| bound keeps the
    # distance honest beyond the corners, where a nearly shut eye's arcs are almost flat.
    radius = (half_width * half_width + half_height * half_height) / (2.0 * half_height)
    offset = radius - half_height
    upper = np.sqrt(x * x + (y - offset) ** 2) - radius
    lower = np.sqrt(x * x + (y + offset) ** 2) - radius
    return np.maximum(np.maximum(upper, lower), np.abs(x) - half_width)


def segment(x, y, x0, y0, x1, y1, r):
    """Returns the signed distance to a capsule: the segment (x0, y0)-(x1, y1) thickened by r."""
    dx, dy = x1 - x0, y1 - y0
    px, py = x - x0, y - y0
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2) - r


def bowed_curve(x, y, half_width, sag):
    """Returns (distance to the arc y = sag * (1 - (x / half_width)^2), the arc's height at x)."""
    # Inside the span the vertical offset divided by the slope's secant is the distance to first
    # order; beyond it the nearest point is the arc's end, which rounds the ends like a capsule.
    u = x / half_width
    inside = np.abs(u) <= 1.0
    curve = sag * (1.0 - u * u)
    slope = -2.0 * sag * u / half_width
    near = np.abs(y - curve) / np.sqrt(1.0 + slope * slope)
    end_x = np.where(x < 0.0, -half_width, half_width)
    far = np.sqrt((x - end_x) ** 2 + y * y)
    return np.where(inside, near, far), curve


def over(canvas, alpha, colour):
    """Returns `canvas` (3, N, H, W) with `colour` (3, ...) composited over it in place at alpha."""
    canvas += alpha * (colour - canvas)
    return canvas


def rgb(r, g, b):
    """Returns a constant colour shaped (3, 1, 1, 1) to broadcast against a planar canvas."""
    return np.array([r, g, b], np.float32).reshape(3, 1, 1, 1)


def hsv(h, s, v):
    """Returns planar RGB (3, ...) in [0, 1] for hues h (period 1), saturation s and value v."""
    h = np.asarray(h, np.float32)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = np.mod(n + 6.0 * h, 6.0)
        channels.append(v - (v * s) * np.minimum(np.maximum(np.minimum(k, 4.0 - k), 0.0), 1.0))
    return np.stack(channels)


def palette(t, stops):
    """Returns planar RGB (3, ...) float32, piecewise linear along `stops` (K, 3) at t in [0, 1]."""
    t = np.asarray(t, np.float32)
    stops = np.asarray(stops, np.float32)
    pos = t * np.float32(len(stops) - 1)
    i = np.clip(np.floor(pos).astype(np.int64), 0, len(stops) - 2)
    w = (pos - i.astype(np.float32))[..., None]
    return np.moveaxis(stops[i] + w * (stops[i + 1] - stops[i]), -1, 0)
