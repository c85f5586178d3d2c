"""toyfaces: API, determinism, and that every factor does what its name says, measured on pixels.

Regions are found independently of the renderer's internals: the pixels that change when one
colour factor flips are where that colour is drawn (skin, hair, background, shirt). Geometry is
then compared with the closed forms in the module docstring.
"""

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxstyle.data import source, toyfaces
from jaxstyle.data.source import DataError
from jaxstyle.data.toyfaces import FACTOR_NAMES, ToyFaces, render

F = len(FACTOR_NAMES)
CONTENT = ("face_x", "face_y", "face_scale", "head_turn", "head_tilt", "smile", "eye_openness")


def face(**values):
    """Returns a factor vector: everything at 0.5 (eyes open at 0.8) except `values`."""
    f = np.full(F, 0.5, np.float32)
    f[FACTOR_NAMES.index("eye_openness")] = 0.8
    for name, value in values.items():
        f[FACTOR_NAMES.index(name)] = value
    return f


def draw(f, resolution=64):
    """Returns the render of factors f as int32, ready for differences."""
    return render(f, resolution).astype(np.int32)


def changed(f, name, a, b, resolution=64, threshold=0):
    """Returns the mask of pixels that differ when factor `name` goes from a to b in f."""
    lo, hi = f.copy(), f.copy()
    lo[FACTOR_NAMES.index(name)], hi[FACTOR_NAMES.index(name)] = a, b
    return np.abs(draw(lo, resolution) - draw(hi, resolution)).max(-1) > threshold


def skin(f, resolution=64):
    """Returns the mask of pixels drawn in (any shade of) the skin colour."""
    return changed(f, "skin_hue", 0.1, 0.9, resolution)


def centroid(mask):
    """Returns the (x, y) centroid of a mask in pixel-index coordinates."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def to_pixels(coord, resolution):
    """Returns the pixel-index coordinate of an image coordinate in [-1, 1]."""
    return (coord + 1.0) * resolution / 2.0 - 0.5


def box_down(image, k):
    """Returns the float64 mean over k x k blocks of an (H, W, C) image."""
    h, w, c = image.shape
    return image.astype(np.float64).reshape(h // k, k, w // k, k, c).mean((1, 3))


# --- API -------------------------------------------------------------------------------------

def test_api_shapes_and_partition():
    ds = ToyFaces(resolution=64, size=100, seed=0)
    ex = ds[3]
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == (64, 64, 3)
    assert ex["factors"].dtype == np.float32 and ex["factors"].shape == (F,)
    assert len(ds) == 100 and ds.resolution == 64 and ds.num_channels == 3 and ds.label_dim == 0
    assert isinstance(ds, source.Source)
    assert ds.factor_names == list(FACTOR_NAMES)
    assert set(ds.content_factors) | set(ds.style_factors) == set(ds.factor_names)
    assert not set(ds.content_factors) & set(ds.style_factors)
    for name in CONTENT:
        assert name in ds.content_factors
    for name in ("skin_hue", "background_hue", "hair_hue", "brightness", "contrast"):
        assert name in ds.style_factors
    batch = ds.get_batch([1, 2, 3])
    assert batch["image"].shape == (3, 64, 64, 3) and batch["image"].dtype == np.uint8
    assert batch["factors"].shape == (3, F) and batch["factors"].dtype == np.float32
    assert ds.get_batch([])["image"].shape == (0, 64, 64, 3)
    np.testing.assert_array_equal(ds.factors(3), ex["factors"])
    assert render(face(), 40).shape == (40, 40, 3)
    assert render(np.stack([face()] * 2), 40).shape == (2, 40, 40, 3)


def test_factors_are_uniform_and_independent():
    f = ToyFaces(size=4000).factors(np.arange(4000)).astype(np.float64)
    assert f.min() >= 0.0 and f.max() <= 1.0
    np.testing.assert_allclose(f.mean(0), 0.5, atol=0.03)
    np.testing.assert_allclose(f.std(0), 1 / math.sqrt(12), atol=0.02)
    corr = np.corrcoef(f.T) - np.eye(F)
    assert np.abs(corr).max() < 0.08


def test_sample_factors():
    np.testing.assert_array_equal(toyfaces.sample_factors(7, 5),
                                  ToyFaces(seed=7).factors(np.arange(5)))
    f = toyfaces.sample_factors(np.random.default_rng(0), 6)
    assert f.shape == (6, F) and f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1


# --- determinism -----------------------------------------------------------------------------

def test_same_example_every_time_and_object():
    a, b = ToyFaces(resolution=48, seed=3), ToyFaces(resolution=48, seed=3)
    for i in (0, 1, 999, 49_999):
        np.testing.assert_array_equal(a[i]["image"], a[i]["image"])
        np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
        np.testing.assert_array_equal(a[i]["factors"], b[i]["factors"])
    assert not np.array_equal(a[0]["factors"], ToyFaces(resolution=48, seed=4)[0]["factors"])
    assert not np.array_equal(a[0]["factors"], a[1]["factors"])


def test_batch_equals_single_and_ignores_neighbours():
    ds = ToyFaces(resolution=64, size=1000)
    indices = [17, 3, 3, 999, 0] + list(range(100, 130))  # more than one render chunk
    batch = ds.get_batch(indices)
    for k, i in enumerate(indices):
        np.testing.assert_array_equal(batch["image"][k], ds[i]["image"])
        np.testing.assert_array_equal(batch["factors"][k], ds[i]["factors"])
    alone, among = ds.get_batch([7])["image"][0], ds.get_batch(range(20))["image"][7]
    np.testing.assert_array_equal(alone, among)


def test_same_example_in_another_process():
    code = ("import hashlib; from jaxstyle.data.toyfaces import ToyFaces; "
            "image = ToyFaces(resolution=37, seed=11)[1234]['image']; "
            "print(hashlib.sha256(image.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONHASHSEED="123"))
    here = hashlib.sha256(ToyFaces(resolution=37, seed=11)[1234]["image"].tobytes()).hexdigest()
    assert out.stdout.strip() == here


def test_resolution_independence():
    small, large = ToyFaces(resolution=32), ToyFaces(resolution=64)
    odd, odd3 = ToyFaces(resolution=33), ToyFaces(resolution=99)
    errors, unrelated = [], []
    for i in range(8):
        np.testing.assert_array_equal(small.factors(i), large.factors(i))
        down = box_down(large[i]["image"], 2)
        errors.append(np.abs(down - small[i]["image"]).mean())
        unrelated.append(np.abs(down - small[i + 8]["image"]).mean())
        assert np.abs(box_down(odd3[i]["image"], 3) - odd[i]["image"]).mean() < 2.5
    assert max(errors) < 2.5, errors
    assert min(unrelated) > 5 * max(errors)  # the check can tell faces apart


# --- content factors move geometry -----------------------------------------------------------

def test_face_x_and_face_y_translate_the_head():
    r = 64
    for name, axis, span in (("face_x", 0, 0.6), ("face_y", 1, 0.36)):
        centres = [centroid(skin(face(**{name: v}), r)) for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
        shifts = np.diff([c[axis] for c in centres])
        assert np.all(shifts > 0), (name, shifts)
        np.testing.assert_allclose(centres[-1][axis] - centres[0][axis], span * r / 2, atol=0.5)
        np.testing.assert_allclose(centres[-1][1 - axis], centres[0][1 - axis], atol=0.3)


def test_face_scale_scales_the_head_area():
    r = 128
    areas = [skin(face(face_scale=v), r).sum() for v in (0.0, 0.5, 1.0)]
    assert areas[0] < areas[1] < areas[2]
    lo, hi = toyfaces.FACE_SCALE
    np.testing.assert_allclose(areas[2] / areas[0], (hi / lo) ** 2, rtol=0.06)


def eye_blobs(f, resolution):
    """Returns the centroids (left, right) of the pixels that change when the eyes shut."""
    mask = changed(f, "eye_openness", 0.0, 1.0, resolution)
    xs = np.nonzero(mask)[1]
    split = xs.mean()
    cols = np.arange(resolution)[None, :]
    return centroid(mask & (cols < split)), centroid(mask & (cols >= split))


def test_head_tilt_rotates_the_eye_line():
    r = 128
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        left, right = eye_blobs(face(head_tilt=t), r)
        measured = math.atan2(right[1] - left[1], right[0] - left[0])
        expected = 2 * math.atan(toyfaces.TILT_HALF_TAN * (2 * t - 1))
        assert abs(math.degrees(measured - expected)) < 1.5, (t, measured, expected)


def test_head_turn_shifts_features_inside_the_head():
    r = 128
    centre_x = to_pixels(0.0, r)  # face_x = 0.5 puts the head centre at x = 0
    offsets = []
    for t in (0.0, 0.5, 1.0):
        f = face(head_turn=t)
        left, right = eye_blobs(f, r)
        mouth = centroid(changed(f, "smile", 0.0, 1.0, r))
        offsets.append(((left[0] + right[0]) / 2 - centre_x, mouth[0] - centre_x))
    offsets = np.array(offsets)
    np.testing.assert_allclose(offsets[1], 0.0, atol=0.6)
    assert np.all(offsets[0] < -3) and np.all(offsets[2] > 3), offsets
    np.testing.assert_allclose(offsets[0], -offsets[2], atol=0.6)  # mirror-symmetric
    # The head itself stays put: the skin centroid moves far less than the features.
    heads = [centroid(skin(face(head_turn=t), r))[0] for t in (0.0, 1.0)]
    assert abs(heads[1] - heads[0]) < 0.25 * (offsets[2, 0] - offsets[0, 0])


def head_box(f, resolution):
    """Returns the closed-form head centre (x, y) in pixels and the head scale in pixels."""
    def lerp(name, lo_hi):
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * f[FACTOR_NAMES.index(name)]
    cx = lerp("face_x", toyfaces.FACE_X)
    cy = lerp("face_y", toyfaces.FACE_Y)
    s = lerp("face_scale", toyfaces.FACE_SCALE)
    return to_pixels(cx, resolution), to_pixels(cy, resolution), s * resolution / 2


def test_smile_changes_only_the_mouth_and_bends_it():
    r = 128
    f = face(face_x=0.3, face_y=0.6)
    cx, cy, s = head_box(f, r)
    ys, xs = np.nonzero(changed(f, "smile", 0.0, 1.0, r))
    assert len(ys) > 20
    assert ys.min() > cy + 0.2 * s and ys.max() < cy + 0.9 * s
    assert np.abs(xs - cx).max() < 0.45 * s
    # Mouth pixels: much darker than the (palest) skin, in the lower face. Their height at the
    # centre column against at the corners tells frown from smile (y grows downwards).
    bend = []
    rows, cols = np.mgrid[:r, :r]
    lower_face = (rows > cy + 0.2 * s) & (rows < cy + 0.9 * s) & (np.abs(cols - cx) < 0.5 * s)
    for smile in (0.0, 1.0):
        g = face(face_x=0.3, face_y=0.6, skin_hue=0.0, smile=smile)
        green = draw(g, r)[..., 1]
        dark = green < 0.5 * np.median(green[skin(g, r)])
        ys, xs = np.nonzero(dark & lower_face)
        middle = np.abs(xs - cx) < 0.05 * s
        corners = np.abs(xs - cx) > 0.2 * s
        bend.append(ys[middle].mean() - ys[corners].mean())
    assert bend[0] < -1 and bend[1] > 1, bend


def test_eye_openness_changes_only_the_eyes_and_opens_them():
    r = 128
    f = face()
    cx, cy, s = head_box(f, r)
    ys, xs = np.nonzero(changed(f, "eye_openness", 0.0, 1.0, r))
    assert ys.min() > cy - 0.35 * s and ys.max() < cy + 0.15 * s
    assert np.abs(xs - cx).max() < 0.6 * s
    # Mass of change from shut eyes grows with openness.
    sizes = [changed(face(), "eye_openness", 0.0, v, r).sum() for v in (0.25, 0.5, 0.75, 1.0)]
    assert np.all(np.diff(sizes) > 0), sizes


def test_content_factors_do_not_recolour():
    # The shirt is a flat colour: its most common pixel value must not depend on pose.
    values = set()
    for name in CONTENT:
        for v in (0.0, 1.0):
            image = render(face(**{name: v}), 64)
            shirt = changed(face(**{name: v}), "shirt_hue", 0.0, 0.5)
            colours, counts = np.unique(image[shirt], axis=0, return_counts=True)
            values.add(tuple(colours[counts.argmax()]))
    assert len(values) == 1, values


# --- style factors recolour without moving anything ------------------------------------------

COLOUR_FLIPS = {"skin_hue": (0.1, 0.9), "hair_hue": (0.0, 0.5), "background_hue": (0.0, 0.5),
                "shirt_hue": (0.0, 0.5)}


def skin_weight(f, lo=0.3, hi=0.9):
    """Returns the skin-flip difference normalised to max 1: coverage x shading of the skin."""
    # Skin is drawn as skin colour times a per-pixel factor (shading, darker nose, ears, neck), so
    # this map holds the skin's inner geometry, whatever the skin colour.
    a, b = f.copy(), f.copy()
    a[FACTOR_NAMES.index("skin_hue")], b[FACTOR_NAMES.index("skin_hue")] = lo, hi
    d = np.abs(draw(a) - draw(b)).sum(-1).astype(np.float64)
    return d / d.max()


def affine_residual(a, b):
    """Returns the worst residual, in levels, of a per-channel affine fit of image b from a."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    unclipped = (a > 2) & (a < 253) & (b > 2) & (b < 253)
    worst = 0.0
    for c in range(3):
        m = unclipped[..., c]
        x = np.stack([a[..., c][m], np.ones(m.sum())], 1)
        coef = np.linalg.lstsq(x, b[..., c][m], rcond=None)[0]
        worst = max(worst, np.abs(x @ coef - b[..., c][m]).max())
    return worst


@pytest.mark.parametrize("name", toyfaces.STYLE_FACTORS)
def test_style_recolours_without_moving_anything(name):
    a, b = face(**{name: 0.05}), face(**{name: 0.95})
    assert (np.abs(draw(a) - draw(b)).max(-1) > 8).mean() > 0.02  # it does recolour
    # Where each other colour is drawn (skin, hair, background, shirt) stays put.
    for region, (lo, hi) in COLOUR_FLIPS.items():
        if region != name:
            mismatch = changed(a, region, lo, hi) != changed(b, region, lo, hi)
            assert mismatch.mean() < 0.003, (region, mismatch.sum())
    # Features drawn inside the skin (nose, eyes, mouth, lids) stay put too.
    if name in ("brightness", "contrast"):
        # A global colour transform: every unclipped pixel is one affine map of the other image.
        assert affine_residual(draw(a), draw(b)) < 2.5
    elif name == "skin_hue":
        assert np.abs(skin_weight(face(), 0.3, 0.6) - skin_weight(face(), 0.6, 0.9)).max() < 0.08
    else:
        assert np.abs(skin_weight(a) - skin_weight(b)).max() < 0.08


def test_brightness_and_contrast_act_globally():
    means = [draw(face(brightness=v)).mean() for v in (0.0, 0.5, 1.0)]
    assert means[0] < means[1] < means[2]
    stds = [draw(face(contrast=v)).std() for v in (0.0, 0.5, 1.0)]
    assert stds[0] < stds[1] < stds[2]


# --- anti-aliasing ---------------------------------------------------------------------------

def partial_edges(image_a, image_b):
    """Returns the fraction of silhouette crossings (adjacent pixel pairs) with a partial pixel."""
    # With only the background colour changed, the difference is background coverage times a
    # slowly varying colour difference; dividing by the local maximum gives the coverage.
    d = np.abs(image_a.astype(np.float64) - image_b).sum(-1)
    pad = np.pad(d, 2, mode="edge")
    h, w = d.shape
    local_max = np.max([pad[i:i + h, j:j + w] for i in range(5) for j in range(5)], 0)
    share = d / np.maximum(local_max, 1e-9)
    mostly_background, partial = share > 0.5, (share > 0.1) & (share < 0.9)
    crossings = hits = 0
    for axis in (0, 1):
        a, b = (slice(None, -1), slice(1, None)) if axis == 0 else (np.s_[:, :-1], np.s_[:, 1:])
        crossing = mostly_background[a] != mostly_background[b]
        crossings += crossing.sum()
        hits += (crossing & (partial[a] | partial[b])).sum()
    return hits / crossings


def test_edges_are_anti_aliased():
    a, b = face(background_hue=0.0), face(background_hue=0.5)
    assert partial_edges(render(a, 64), render(b, 64)) > 0.75
    assert partial_edges(render(a, 32), render(b, 32)) > 0.75
    # Control: point-sampling a 4x larger render, whose ramps are a quarter pixel, fails.
    assert partial_edges(render(a, 256)[1::4, 1::4], render(b, 256)[1::4, 1::4]) < 0.45


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [15, 257, 0, -32, 32.0, "64", True, None])
def test_bad_resolution_raises(resolution):
    with pytest.raises(DataError, match="16 to 256"):
        ToyFaces(resolution=resolution)
    with pytest.raises(DataError, match="16 to 256"):
        render(face(), resolution)


def test_bad_index_raises():
    ds = ToyFaces(resolution=16, size=10)
    np.testing.assert_array_equal(ds[-1]["image"], ds[9]["image"])
    for i in (10, -11, 10**12):
        with pytest.raises(IndexError):
            ds[i]
    with pytest.raises(IndexError):
        ds.get_batch([0, 10])
    with pytest.raises(TypeError):
        ds[1.5]


def test_bad_arguments_raise():
    with pytest.raises(DataError):
        ToyFaces(size=0)
    with pytest.raises(DataError):
        ToyFaces(seed=-1)
    with pytest.raises(ValueError, match="shaped"):
        render(np.zeros(F - 1), 32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render(np.full(F, 1.5), 32)
