"""toyfaces: cartoon faces rendered from known content and style factors (the embedded default).

Every example is drawn from a factor vector in [0, 1]^F, so metrics can ask whether a generator's
content code moves only content factors. Content factors are spatial, style factors are colours:

    face_x, face_y    head centre: x in [-0.3, 0.3], y in [-0.18, 0.18]; the image spans [-1, 1]
                      on both axes, y pointing down
    face_scale        head half-height in [0.42, 0.62]
    head_turn         eyes, nose and mouth slide sideways inside the head (a 3/4 view); 1 = right
    head_tilt         in-plane rotation of the head by 2 * atan(0.2 * (2 t - 1)) radians, clockwise
                      on screen for t > 0.5 (at most 22.6 degrees)
    smile             mouth curvature: 0 = frown, 0.5 = straight, 1 = open smile
    eye_openness      eye height: 0 = shut (a line), 1 = wide open
    skin_hue          skin tone along a palette from pale to dark brown
    hair_hue          hair and eyebrow colour: hue 0.8 t (an arc of the hue circle, red to
                      purple, so that 0 and 1 differ and the factor can be regressed)
    background_hue    hue 0.8 t of the background's vertical gradient
    shirt_hue         hue 0.8 t of the shoulders
    brightness        gain in [0.75, 1.2] applied to the whole image last
    contrast          gain in [0.65, 1.35] about mid-grey applied before brightness

Style factors never move geometry and content factors never change a colour (only which pixels
a colour covers). Factors come from a counter-based hash of (seed, index), so an example is the
same in every process, at every resolution, whichever other examples were asked for.

    python -m jaxstyle.data.toyfaces --preview docs/toyfaces_preview.png
"""

import argparse
import numbers
import operator

import numpy as np

from jaxstyle.data import toyfaces_draw as draw
from jaxstyle.data.source import DataError

CONTENT_FACTORS = ("face_x", "face_y", "face_scale", "head_turn", "head_tilt", "smile",
                   "eye_openness")
STYLE_FACTORS = ("skin_hue", "hair_hue", "background_hue", "shirt_hue", "brightness", "contrast")
FACTOR_NAMES = CONTENT_FACTORS + STYLE_FACTORS
MIN_RESOLUTION, MAX_RESOLUTION = 16, 256

# Closed forms the module docstring states (tests measure renders against them).
FACE_X = (-0.3, 0.3)
FACE_Y = (-0.18, 0.18)
FACE_SCALE = (0.42, 0.62)
TILT_HALF_TAN = 0.2
BRIGHTNESS = (0.75, 1.2)
CONTRAST = (0.65, 1.35)
HUE_ARC = 0.8  # hue factors span hues [0, 0.8]: a full circle would make 0 and 1 the same colour

# Head-local units: the head is an ellipse with these semi-axes; features are placed in them.
HEAD_A, HEAD_B = 0.78, 1.0
SKIN_TONES = ((1.00, 0.87, 0.78), (0.97, 0.77, 0.62), (0.86, 0.63, 0.45), (0.66, 0.45, 0.30),
              (0.42, 0.28, 0.19))
LIGHT = (np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])).astype(np.float32)
# Images rendered together so each float32 temporary stays near the CPU's L2 cache.
_CHUNK_PIXELS = 1 << 15


def _lerp(t, lo_hi):
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * t


def _splitmix64(x):
    # SplitMix64's finaliser: a bijective mix of 64-bit counters into well-spread bits.
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hashed_factors(seed, indices):
    """Returns float32 factors (N, F) in [0, 1) for `indices`, a pure function of (seed, index)."""
    indices = np.atleast_1d(np.asarray(indices, np.uint64))
    key = _splitmix64(np.atleast_1d(np.uint64(seed)))
    base = _splitmix64(key ^ indices)[:, None]
    counters = np.arange(len(FACTOR_NAMES), dtype=np.uint64)[None, :]
    bits = _splitmix64(base + counters * np.uint64(0x632BE59BD9B4E019))
    # The top 24 bits are exactly representable in float32.
    return ((bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24))


def sample_factors(rng_or_seed, n):
    """Returns float32 factors (n, F) in [0, 1) from a Generator, or of examples 0..n-1 of seed."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed.random((n, len(FACTOR_NAMES)), dtype=np.float32)
    return hashed_factors(_check_seed(rng_or_seed), np.arange(n))


def render(factors, resolution):
    """Returns uint8 faces (H, W, 3) for factors (F,), or (N, H, W, 3) for factors (N, F)."""
    resolution = check_resolution(resolution)
    f = np.asarray(factors, np.float32)
    if f.ndim not in (1, 2) or f.shape[-1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be shaped (F,) or (N, F) with F = {len(FACTOR_NAMES)} "
                         f"({', '.join(FACTOR_NAMES)}), got {f.shape}")
    if not np.all((f >= 0.0) & (f <= 1.0)):
        raise ValueError("factors must lie in [0, 1] (and be finite)")
    batch = np.atleast_2d(f)
    out = np.empty((len(batch), resolution, resolution, 3), np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (resolution * resolution))
    for start in range(0, len(batch), chunk):
        planar = _render_batch(batch[start:start + chunk], resolution)
        out[start:start + chunk] = planar.transpose(1, 2, 3, 0)
    return out[0] if f.ndim == 1 else out


def check_resolution(resolution):
    """Returns `resolution` as an int if it is an integer in [16, 256]; raises DataError if not."""
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral) or not (
            MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
        raise DataError(f"toyfaces renders square images with an integer resolution from "
                        f"{MIN_RESOLUTION} to {MAX_RESOLUTION}; got {resolution!r}")
    return int(resolution)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 64:
        raise DataError(f"toyfaces seed must be an integer in [0, 2**64); got {seed!r}")
    return int(seed)


class ToyFaces:
    """Random-access cartoon faces with ground-truth factors; ds[i] depends only on (seed, i)."""

    num_channels = 3
    label_dim = 0

    def __init__(self, resolution=64, size=50_000, seed=0):
        self.resolution = check_resolution(resolution)
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise DataError(f"toyfaces size must be a positive integer; got {size!r}")
        self.size = int(size)
        self.seed = _check_seed(seed)
        self.factor_names = list(FACTOR_NAMES)
        self.content_factors = list(CONTENT_FACTORS)
        self.style_factors = list(STYLE_FACTORS)

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"ToyFaces(resolution={self.resolution}, size={self.size}, seed={self.seed})"

    def _indices(self, indices):
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)  # [] arrives as float64
        if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"toyfaces indices must be integers, got {idx.dtype}")
        idx = idx.astype(np.int64)
        bad = (idx < -self.size) | (idx >= self.size)
        if np.any(bad):
            raise IndexError(f"index {idx[bad].flat[0]} is out of range for ToyFaces of size "
                             f"{self.size}")
        return np.where(idx < 0, idx + self.size, idx)

    def factors(self, index):
        """Returns float32 factors (F,) of example `index` (or (N, F) for an array), unrendered."""
        idx = self._indices(index)
        f = hashed_factors(self.seed, idx.reshape(-1))
        return f.reshape(idx.shape + (len(FACTOR_NAMES),))

    def __getitem__(self, index):
        f = self.factors(operator.index(index))
        return {"image": render(f, self.resolution), "factors": f}

    def get_batch(self, indices):
        """Returns {"image": uint8 (N, H, W, 3), "factors": float32 (N, F)}, rendered vectorised."""
        f = self.factors(np.asarray(indices).reshape(-1))
        return {"image": render(f, self.resolution), "factors": f}


# ---------------------------------------------------------------------------------------------
# The renderer: one batch of factors (n, F) -> planar uint8 (3, n, R, R).

def _render_batch(f, resolution):
    n = len(f)
    p = {name: f[:, k].reshape(n, 1, 1) for k, name in enumerate(FACTOR_NAMES)}
    x, y = draw.pixel_grid(resolution)
    canvas = _background(p, x, y)
    skin = draw.palette(p["skin_hue"], SKIN_TONES)
    hair = draw.hsv(HUE_ARC * p["hair_hue"], 0.6, 0.55)
    _body(canvas, p, x, y, resolution, skin)
    _head(canvas, p, x, y, resolution, skin, hair)
    return _lighting(canvas, p)


def _background(p, x, y):
    """Returns the planar (3, n, R, R) float32 background: a vertical gradient with a vignette."""
    top = draw.hsv(HUE_ARC * p["background_hue"], 0.3, 0.95)
    bottom = draw.hsv(HUE_ARC * p["background_hue"] + 0.08, 0.55, 0.7)
    t = (y + 1.0) * 0.5
    vignette = 1.0 - 0.12 * (x * x + y * y)
    return (top + t * (bottom - top)) * vignette


def _pose(p):
    """Returns the head centre (cx, cy) and scale s, each (n, 1, 1), in image coordinates."""
    return (_lerp(p["face_x"], FACE_X), _lerp(p["face_y"], FACE_Y),
            _lerp(p["face_scale"], FACE_SCALE))


def _body(canvas, p, x, y, resolution, skin):
    """Draws the neck and shoulders under the head; they follow position and scale, not tilt."""
    cx, cy, s = _pose(p)
    inv = s * np.float32(resolution / 2)
    lx, ly = (x - cx) / s, (y - cy) / s
    shirt = draw.hsv(HUE_ARC * p["shirt_hue"], 0.55, 0.75)
    neck = draw.segment(lx, ly, 0.0, 0.5, 0.0, 1.2, 0.26)
    draw.over(canvas, draw.coverage(neck, inv), skin * 0.72)
    shoulders = draw.ellipse(lx, ly - 1.95, 1.25, 0.8)
    draw.over(canvas, draw.coverage(shoulders, inv), shirt)
    collar = draw.ellipse(lx, ly - 1.18, 0.3, 0.14)
    draw.over(canvas, draw.coverage(np.maximum(collar, 1.14 - ly), inv), skin * 0.72)


def _head(canvas, p, x, y, resolution, skin, hair):
    """Draws hair, ears, the shaded head and the face features in the head's rotated frame."""
    cx, cy, s = _pose(p)
    # cos and sin from the tangent of the half angle: rational, so exactly reproducible.
    h = TILT_HALF_TAN * (2.0 * p["head_tilt"] - 1.0)
    cos, sin = (1.0 - h * h) / (1.0 + h * h), 2.0 * h / (1.0 + h * h)
    dx, dy = x - cx, y - cy
    lx, ly = (cos * dx + sin * dy) / s, (cos * dy - sin * dx) / s
    inv = s * np.float32(resolution / 2)
    turn = 2.0 * p["head_turn"] - 1.0

    # Hair behind the head, cut off at the jaw with a rounded bottom.
    hair_shape = draw.ellipse(lx, ly + 0.1, 0.96, 1.1)
    back = np.maximum(hair_shape, draw.ellipse(lx, ly + 0.6, 1.3, 1.05))
    draw.over(canvas, draw.coverage(back, inv), hair * 0.8)

    for side in (-1.0, 1.0):
        # The ear on the side the face turns towards hides behind the head.
        ear = draw.ellipse(lx - side * 0.77, ly - 0.05, 0.14 * (1.0 - 0.7 * turn * side), 0.19)
        draw.over(canvas, draw.coverage(ear, inv), skin * 0.85)

    head = draw.ellipse(lx, ly, HEAD_A, HEAD_B)
    draw.over(canvas, draw.coverage(head, inv), skin * _shade(lx, ly, cos, sin))

    # Fringe: hair inside the hair ellipse above a line that sweeps up towards the parting.
    parting = 0.3 + 0.25 * turn
    u = (lx - parting) / 0.35
    line = -0.42 - 0.22 / (1.0 + u * u)
    fringe = np.maximum(hair_shape, ly - line)
    draw.over(canvas, draw.coverage(fringe, inv), hair * _shade(lx, ly + 0.1, cos, sin, 0.96, 1.1))

    nose_x = 0.3 * turn
    nose = draw.segment(lx, ly, nose_x - 0.01 * turn, 0.0, nose_x + 0.05 * turn, 0.2, 0.045)
    draw.over(canvas, draw.coverage(nose, inv), skin * 0.78)

    _eyes(canvas, lx, ly, inv, turn, p["eye_openness"], hair)
    _mouth(canvas, lx, ly, inv, turn, p["smile"])


def _shade(lx, ly, cos, sin, a=HEAD_A, b=HEAD_B):
    """Returns diffuse shading (n, R, R) of an ellipsoid lit from the upper left of the screen."""
    qx, qy = lx / a, ly / b
    nz = np.sqrt(np.maximum(1.0 - qx * qx - qy * qy, 0.0))
    # The normal lives in the head's frame; rotate it back so the light stays fixed on screen.
    nx, ny = cos * qx - sin * qy, sin * qx + cos * qy
    lit = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0.0, 1.0)
    return 0.62 + 0.45 * lit


def _eyes(canvas, lx, ly, inv, turn, eye_openness, hair):
    """Draws eyebrows and eyes (white, pupil, glint, lid line); eye_openness sets the height."""
    half_height = 0.15 * (0.05 + 0.95 * eye_openness)
    for side in (-1.0, 1.0):
        ex, ey = side * 0.3 + 0.2 * turn, -0.08
        # The eye on the far side of a turned head is foreshortened.
        half_width = 0.17 * (1.0 - 0.3 * turn * side)
        inner, outer = ex - side * 0.7 * half_width, ex + side * 1.1 * half_width
        brow = draw.segment(lx, ly, inner, -0.33, outer, -0.29, 0.035)
        draw.over(canvas, draw.coverage(brow, inv), hair * 0.55)
        eye = draw.lens(lx - ex, ly - ey, half_width, half_height)
        draw.over(canvas, draw.coverage(eye, inv), draw.rgb(0.97, 0.97, 0.95))
        px = ex + 0.35 * half_width * turn
        pupil = np.maximum(draw.circle(lx - px, ly - ey, 0.085), eye)
        draw.over(canvas, draw.coverage(pupil, inv), draw.rgb(0.13, 0.1, 0.1))
        glint = np.maximum(draw.circle(lx - px + 0.025, ly - ey + 0.03, 0.024), eye)
        draw.over(canvas, draw.coverage(glint, inv), draw.rgb(1.0, 1.0, 1.0))
        lid = np.abs(eye) - 0.017
        draw.over(canvas, draw.coverage(lid, inv), draw.rgb(0.15, 0.1, 0.1))


def _mouth(canvas, lx, ly, inv, turn, smile):
    """Draws the mouth: a bowed line whose sag is the smile, opening below the line when smiling."""
    mx, my = 0.18 * turn, 0.46
    half_width = 0.28 * (1.0 - 0.15 * np.abs(turn))
    sag = 0.14 * (2.0 * smile - 1.0)
    line, curve = draw.bowed_curve(lx - mx, ly - my, half_width, sag)
    opening = 0.18 * np.maximum(2.0 * smile - 1.0, 0.0) ** 2
    u = (lx - mx) / half_width
    lower = curve + opening * (1.0 - u * u)
    # Inside between the line and the lower lip. Vertical offsets overstate the distance where
    # the lips slope, so they are shrunk a little to keep the ramp about a pixel wide there.
    inside = np.maximum(np.maximum(ly - my - lower, curve - (ly - my)), np.abs(u) - 1.0)
    draw.over(canvas, draw.coverage(inside * 0.8, inv), draw.rgb(0.55, 0.12, 0.16))
    draw.over(canvas, draw.coverage(line - 0.025, inv), draw.rgb(0.35, 0.1, 0.1))


def _lighting(canvas, p):
    """Returns planar uint8 images after contrast about mid-grey, then brightness gain."""
    contrast = _lerp(p["contrast"], CONTRAST)
    brightness = _lerp(p["brightness"], BRIGHTNESS)
    lit = ((canvas - 0.5) * contrast + 0.5) * brightness
    return np.rint(np.clip(lit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _main():
    parser = argparse.ArgumentParser(description="Render a preview grid of toyfaces.")
    parser.add_argument("--preview", required=True, help="PNG path for the grid")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--grid", type=int, default=8, help="rows = columns")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from jaxstyle.images import make_grid, save_png
    ds = ToyFaces(resolution=args.resolution, size=args.grid ** 2, seed=args.seed)
    images = ds.get_batch(np.arange(args.grid ** 2))["image"]
    print(save_png(make_grid(images, args.grid, args.grid), args.preview))


if __name__ == "__main__":
    _main()
