"""ImageFolder (folders and zips), image modes, labels and every bad input; the source registry.

Expectations are computed independently: NumPy slices for crops, PIL's own resize for resizing,
the alpha-compositing formula for transparency.
"""

import io
import json
import pickle
import struct
import sys
import types
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxstyle.data.folder import ImageFolder
from jaxstyle.data.registry import open_source
from jaxstyle.data.source import DataError, Source


def noise(h, w, c=3, seed=0):
    """Returns a random uint8 (h, w, c) image (c = 0 for 2-D)."""
    shape = (h, w, c) if c else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path, image, **kwargs):
    """Writes an array or PIL image to `path` (format from the extension); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    image.save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG", **kwargs)
    return path


def png16(array):
    """Returns the bytes of a 16-bit PNG of a uint16 (H, W, C) array, written by hand."""
    h, w, c = array.shape
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) +
            chunk(b"IEND", b""))


def pil_resize(array, r):
    """Returns `array` resized to r x r by PIL's LANCZOS filter."""
    return np.asarray(Image.fromarray(array).resize((r, r), Image.Resampling.LANCZOS))


def write_labels(root, entries):
    """Writes dataset.json {"labels": entries} (or raw text) under `root`."""
    text = entries if isinstance(entries, str) else json.dumps({"labels": entries})
    (root / "dataset.json").write_text(text)


@pytest.fixture
def labelled(tmp_path):
    """A folder of 3 PNGs in two sub-folders with class labels, plus unrelated files."""
    root = tmp_path / "data"
    save(root / "b" / "x.png", noise(8, 8, seed=1))
    save(root / "a" / "z.PNG", noise(8, 12, seed=2))
    save(root / "a" / "y.png", noise(16, 16, seed=3))
    (root / "notes.txt").write_text("not an image")
    save(root / ".hidden" / "skip.png", noise(8, 8))
    write_labels(root, [["a/z.PNG", 0], ["a/y.png", 2], ["b/x.png", 1]])
    return root


def test_folder_sorts_crops_and_resizes(labelled):
    src = ImageFolder(labelled, 8)
    assert isinstance(src, Source)
    assert src.names == ["a/y.png", "a/z.PNG", "b/x.png"]
    assert (len(src), src.resolution, src.num_channels, src.label_dim) == (3, 8, 3, 0)
    assert set(src[0]) == {"image"}
    np.testing.assert_array_equal(src[0]["image"], pil_resize(noise(16, 16, seed=3), 8))
    np.testing.assert_array_equal(src[1]["image"], noise(8, 12, seed=2)[:, 2:10])
    np.testing.assert_array_equal(src[2]["image"], noise(8, 8, seed=1))
    assert src[-1]["image"].dtype == np.uint8
    with pytest.raises(IndexError):
        src[3]


def test_mixed_sizes_and_jpeg(tmp_path):
    big = noise(20, 12, seed=4)
    save(tmp_path / "tall.png", big)
    jpg = save(tmp_path / "w.JPEG", noise(6, 10, seed=5), quality=90)
    src = ImageFolder(tmp_path, 6)
    np.testing.assert_array_equal(src[0]["image"], pil_resize(big[4:16], 6))
    np.testing.assert_array_equal(src[1]["image"], np.asarray(Image.open(jpg))[:, 2:8])


def test_resolution_none_uses_smallest_side(labelled):
    assert ImageFolder(labelled, None).resolution == 8


def test_class_labels_one_hot_and_xflip(labelled):
    src = ImageFolder(labelled, 8, use_labels=True, xflip=True)
    assert (len(src), src.label_dim) == (6, 3)
    np.testing.assert_array_equal(src[0]["label"], [0, 0, 1])
    np.testing.assert_array_equal(src[1]["label"], [1, 0, 0])
    assert src[1]["label"].dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(src[i + 3]["image"], src[i]["image"][:, ::-1])
        np.testing.assert_array_equal(src[i + 3]["label"], src[i]["label"])


def test_float_labels_auto_and_ignored(labelled):
    write_labels(labelled, [["a/z.PNG", [0.5, -1]], ["a/y.png", [2, 3.25]], ["b/x.png", [0, 0]]])
    src = ImageFolder(labelled, 8, use_labels="auto")
    assert src.label_dim == 2
    np.testing.assert_array_equal(src[0]["label"], np.float32([2, 3.25]))
    write_labels(labelled, "{ broken")
    assert ImageFolder(labelled, 8).label_dim == 0  # use_labels=False never reads dataset.json
    (labelled / "dataset.json").unlink()
    assert ImageFolder(labelled, 8, use_labels="auto").label_dim == 0
    write_labels(labelled, None)
    assert ImageFolder(labelled, 8, use_labels="auto").label_dim == 0


def test_zip_with_top_folder_matches_folder(labelled, tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(labelled.rglob("*")):
            z.write(f, "top/" + f.relative_to(labelled).as_posix())
        z.writestr("top/__MACOSX/._a.png", b"mac junk")
    folder = ImageFolder(labelled, 8, use_labels=True, xflip=True)
    zipped = pickle.loads(pickle.dumps(ImageFolder(archive, 8, use_labels=True, xflip=True)))
    assert zipped.names == folder.names and len(zipped) == len(folder)
    for i in range(len(folder)):
        for key in ("image", "label"):
            np.testing.assert_array_equal(zipped[i][key], folder[i][key])


def test_grayscale_and_16_bit(tmp_path):
    gray = noise(4, 4, c=0)
    save(tmp_path / "a_gray.png", gray)
    wide = np.array([[0, 257, 65535, 32896]] * 4, np.uint16)
    (tmp_path / "b_gray16.png").write_bytes(png16(wide[..., None]))
    rgb16 = np.stack([wide, wide[:, ::-1], np.full_like(wide, 65280)], axis=-1)
    (tmp_path / "c_rgb16.png").write_bytes(png16(rgb16))
    src = ImageFolder(tmp_path, 4)
    np.testing.assert_array_equal(src[0]["image"], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(src[1]["image"][0, :, 0], [0, 1, 255, 128])
    assert np.all(src[1]["image"] == src[1]["image"][..., :1])
    # PIL reads 16-bit colour as its high byte: 65535 -> 255, 65280 -> 255, never clipped.
    np.testing.assert_array_equal(src[2]["image"], (rgb16 >> 8).astype(np.uint8))


def over_white(rgb, alpha):
    """Returns rgb composited over white by the textbook formula, rounded."""
    a = alpha[..., None].astype(np.float64) / 255
    return np.rint(rgb * a + 255 * (1 - a)).astype(np.int64)


def test_transparency_over_white(tmp_path):
    rgba = noise(4, 4, c=4, seed=6)
    save(tmp_path / "a_rgba.png", rgba)
    la = noise(4, 4, c=2, seed=7)
    save(tmp_path / "b_la.png", Image.fromarray(la, "LA"))
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putpixel((1, 1), 1)
    save(tmp_path / "c_pal.png", palette, transparency=0)
    src = ImageFolder(tmp_path, 4)
    assert np.abs(src[0]["image"] - over_white(rgba[..., :3], rgba[..., 3])).max() <= 1
    gray3 = np.repeat(la[..., :1], 3, axis=-1)
    assert np.abs(src[1]["image"] - over_white(gray3, la[..., 1])).max() <= 1
    expected = np.full((4, 4, 3), 255)
    expected[1, 1] = [200, 100, 50]
    np.testing.assert_array_equal(src[2]["image"], expected)


def test_cmyk_jpeg(tmp_path):
    path = save(tmp_path / "c.jpg", Image.new("CMYK", (4, 4), (0, 255, 0, 0)))
    image = ImageFolder(tmp_path, 4)[0]["image"]
    assert image.shape == (4, 4, 3)
    assert image[..., 0].min() > 200 and image[..., 1].max() < 50  # magenta: red and blue, no green
    np.testing.assert_array_equal(image, np.asarray(Image.open(path).convert("RGB")))


def test_upscale_only_when_allowed(tmp_path):
    small = noise(6, 6)
    save(tmp_path / "big.png", noise(16, 16))
    save(tmp_path / "small.png", small)
    with pytest.raises(DataError, match=r"small\.png.*6x6.*resolution 8.*<= 6.*allow_upscale"):
        ImageFolder(tmp_path, 8)
    src = ImageFolder(tmp_path, 8, allow_upscale=True)
    np.testing.assert_array_equal(src[1]["image"], pil_resize(small, 8))


# ---- bad input: each stops with one DataError naming the file and the fix ----


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="nope.*does not exist"):
        ImageFolder(tmp_path / "nope", 8)


def test_file_that_is_not_a_zip_or_folder(tmp_path):
    path = save(tmp_path / "one.png", noise(8, 8))
    with pytest.raises(DataError, match="one.png is a file but not a .zip"):
        ImageFolder(path, 8)


@pytest.mark.parametrize("extra", [None, "notes.txt"])
def test_empty_folder(tmp_path, extra):
    if extra:
        (tmp_path / extra).write_text("hi")
    with pytest.raises(DataError, match=r"no images in .*\.png, \.jpg, \.jpeg"):
        ImageFolder(tmp_path, 8)


def test_zip_without_images(tmp_path):
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as z:
        z.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match="no images in .*e.zip"):
        ImageFolder(tmp_path / "e.zip", 8)


def test_zip_that_is_not_a_zip(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"PK but not really a zip file" * 10)
    with pytest.raises(DataError, match="fake.zip is not a valid zip"):
        ImageFolder(tmp_path / "fake.zip", 8)


@pytest.mark.parametrize("content", [b"hello, I am text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_header(tmp_path, content):
    save(tmp_path / "good.png", noise(8, 8))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.jpg").write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read image .*sub.bad\.jpg.*remove or replace"):
        ImageFolder(tmp_path, 8)


def truncated(image, fmt):
    """Returns the encoded bytes of `image` with the last third of the file cut off."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    data = buffer.getvalue()
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize("fmt,name", [("PNG", "cut.png"), ("JPEG", "cut.jpg")])
@pytest.mark.parametrize("as_zip", [False, True])
def test_truncated_pixels_caught_by_check(tmp_path, fmt, name, as_zip):
    root = tmp_path / "d"
    save(root / "a.png", noise(64, 64))
    (root / name).write_bytes(truncated(noise(64, 64, seed=9), fmt))
    path = root
    if as_zip:
        path = tmp_path / "d.zip"
        with zipfile.ZipFile(path, "w") as z:
            for f in root.iterdir():
                z.write(f, f.name)
    src = ImageFolder(path, 64)  # the header is intact, so the cheap scan passes
    with pytest.raises(DataError, match=rf"cannot decode image .*{name}.*truncated"):
        src.check()
    with pytest.raises(DataError, match=name):
        src[1]
    assert src[0]["image"].shape == (64, 64, 3)


def test_check_passes_good_data(labelled):
    assert ImageFolder(labelled, 8).check() == 3


@pytest.mark.parametrize("labels,pattern", [
    ("{ not json", r"dataset.json is not valid JSON"),
    ('["a/y.png", 1]', r'dataset.json has no "labels" key'),
    ('{"labels": {"a/y.png": 1}}', r'"labels" must be a list or null'),
    ([["a/y.png", 1], ["b/x.png", 0]], r"no label for 'a/z.PNG' \(1 of 3"),
    ([["a/y.png", 1], ["a/z.PNG"], ["b/x.png", 0]], r"labels entry 1 is \[\"a/z.PNG\"\]"),
    ([["a/y.png", "cat"], ["a/z.PNG", 0], ["b/x.png", 0]], r"label of 'a/y.png' \(entry 0\)"),
    ([["a/y.png", -1], ["a/z.PNG", 0], ["b/x.png", 0]], r"label of 'a/y.png'.*int >= 0"),
    ([["a/y.png", True], ["a/z.PNG", 0], ["b/x.png", 0]], r"label of 'a/y.png'"),
    ([["a/y.png", 1], ["a/z.PNG", [0.5]], ["b/x.png", 0]], r"mixes class indices and lists"),
    ([["a/y.png", [1]], ["a/z.PNG", [0.5, 2]], ["b/x.png", [0]]], r"different lengths \[1, 2\]"),
    ([["a/y.png", 1], ["a/z.PNG", 0], ["b/x.png", 0], ["a/y.png", 2]], r"labelled twice"),
    (None, r'use_labels=True but .*dataset.json has "labels": null'),
])
def test_malformed_dataset_json(labelled, labels, pattern):
    write_labels(labelled, labels)
    with pytest.raises(DataError, match=pattern):
        ImageFolder(labelled, 8, use_labels=True)


def test_labels_requested_without_dataset_json(labelled):
    (labelled / "dataset.json").unlink()
    with pytest.raises(DataError, match="use_labels=True but there is no .*dataset.json"):
        ImageFolder(labelled, 8, use_labels=True)
    with pytest.raises(DataError, match="use_labels must be"):
        ImageFolder(labelled, 8, use_labels="yes")


# ---- registry ----


def test_registry_paths(labelled, tmp_path):
    src = open_source(labelled, 8, use_labels=True, xflip=True, data_dir=None)
    assert isinstance(src, ImageFolder) and (len(src), src.label_dim) == (6, 3)
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.write(labelled / "b" / "x.png", "x.png")
    assert len(open_source(str(tmp_path / "z.zip"), 8)) == 1


def test_registry_toyfaces_arguments(monkeypatch):
    calls = []
    fake = types.ModuleType("jaxstyle.data.toyfaces")
    fake.ToyFaces = lambda **kwargs: calls.append(kwargs) or "toy"
    monkeypatch.setitem(sys.modules, "jaxstyle.data.toyfaces", fake)
    assert open_source("toyfaces", 32) == "toy"
    assert open_source("toyfaces:500", 16, seed=3, split="ignored") == "toy"
    assert calls == [{"resolution": 32, "seed": 0}, {"resolution": 16, "seed": 3, "size": 500}]
    for spec, pattern in [("toyfaces:many", "positive integer"), ("toyfaces:0", "positive")]:
        with pytest.raises(DataError, match=pattern):
            open_source(spec, 32)
    with pytest.raises(DataError, match="xflip"):
        open_source("toyfaces", 32, xflip=True)
    with pytest.raises(DataError, match="needs a resolution"):
        open_source("toyfaces", None)


def test_registry_real_toyfaces():
    pytest.importorskip("jaxstyle.data.toyfaces")
    src = open_source("toyfaces:3", 16, seed=1)
    assert len(src) == 3 and src[0]["image"].shape == (16, 16, 3)


@pytest.mark.parametrize("spec,pattern", [
    ("imagenet", r"unknown dataset 'imagenet' \(no such file or directory\).*toyfaces.*tfds:NAME"),
    ("tfds:", r'"tfds:" needs a dataset name'),
    ("", "non-empty string"),
])
def test_registry_rejects(spec, pattern):
    with pytest.raises(DataError, match=pattern):
        open_source(spec, 8)


def test_registry_rejects_unknown_option_and_plain_file(labelled):
    with pytest.raises(DataError, match=r"unknown dataset option\(s\) \['xfilp'\]"):
        open_source(labelled, 8, xfilp=True)
    with pytest.raises(DataError, match="not a folder or .zip"):
        open_source(labelled / "notes.txt", 8)
