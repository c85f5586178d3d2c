"""A folder or .zip of PNG/JPEG images as a Source (the StyleGAN2-ADA dataset layout).

Images are found recursively, selected by extension (.png .jpg .jpeg, any case) and sorted by
relative path. Hidden files and folders (names starting with ".") and macOS "__MACOSX" folders
are skipped, so zips made on a Mac work. Each image becomes 8-bit RGB (`to_rgb`), is centre-cropped
to a square and resized with PIL's LANCZOS filter, as the official dataset_tool does (EXIF
orientation tags and ICC profiles are ignored).
Labels come from `dataset.json` at the dataset root: {"labels": [["dir/img.png", 3], ...]}.
"""

import io
import json
import os
import zipfile

import numpy as np
from PIL import Image

from jaxstyle.data.source import DataError, xflip_index

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
RESAMPLE = Image.Resampling.LANCZOS
LABELS_FORMAT = ('{"labels": [["relative/path.png", CLASS_INDEX or [floats]], ...]} '
                 'or {"labels": null}')
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_rgb(image):
    """Returns `image` as an 8-bit RGB PIL image.

    Grayscale is repeated into three channels; 16-bit grayscale is scaled (x / 257, so 65535 ->
    255) rather than clipped; anything with transparency (RGBA, LA, P or L with a transparent
    colour) is alpha-composited over a white background; CMYK and other modes use PIL's convert
    (no ICC colour management). PIL itself keeps the high byte of 16-bit RGB(A) PNGs.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        # PIL's convert("L") clips 16-bit values at 255, turning almost every pixel white.
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode == "RGB":
        return image
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def center_crop_resize(image, resolution):
    """Returns the centred largest square of `image`, resized to resolution^2 (LANCZOS)."""
    w, h = image.size
    side = min(w, h)
    if (w, h) != (side, side):
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), RESAMPLE)
    return image


def too_small_error(what, size, resolution, smallest=None):
    """Returns the DataError for an image whose shorter side is below `resolution`."""
    w, h = size
    lower = f"a resolution <= {smallest}" if smallest else "a lower resolution"
    return DataError(
        f"{what} is {w}x{h}, smaller than the target resolution {resolution}: use {lower}, "
        f"pass allow_upscale=True (upscaled images are blurry), or remove the small images")


def read_labels(text, where, names):
    """Returns (labels, label_dim) for `names` from dataset.json: class ints (N,) or floats (N, D).

    Returns (None, 0) for {"labels": null}. Raises DataError naming `where` and the bad entry.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{where} is not valid JSON ({e}); expected {LABELS_FORMAT}") from None
    if not isinstance(data, dict) or "labels" not in data:
        raise DataError(f'{where} has no "labels" key; expected {LABELS_FORMAT}')
    entries = data["labels"]
    if entries is None:
        return None, 0
    if not isinstance(entries, list):
        raise DataError(f'{where}: "labels" must be a list or null, got {type(entries).__name__}; '
                        f"expected {LABELS_FORMAT}")
    table = {}
    for k, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DataError(f'{where}: labels entry {k} is {_short(entry)}, expected '
                            f'["relative/path.png", label]')
        path, label = entry[0].replace("\\", "/"), entry[1]
        if not (_is_class(label) or _is_vector(label)):
            raise DataError(f"{where}: the label of {path!r} (entry {k}) is {_short(label)}; "
                            f"a label is a class index (an int >= 0) or a non-empty list of "
                            f"numbers")
        if path in table:
            raise DataError(f"{where}: {path!r} is labelled twice (entry {k}); keep one entry")
        table[path] = label
    missing = [n for n in names if n not in table]
    if missing:
        raise DataError(f"{where} has no label for {missing[0]!r} ({len(missing)} of {len(names)} "
                        f"images lack one): add an entry for every image, as {LABELS_FORMAT}")
    values = [table[n] for n in names]
    classes = [_is_class(v) for v in values]
    if any(classes) and not all(classes):
        odd = names[classes.index(not classes[0])]
        raise DataError(f"{where} mixes class indices and lists of numbers (see {odd!r}): use one "
                        f"kind for every image")
    if classes[0]:
        indices = np.asarray(values, np.int64)
        return indices, int(indices.max()) + 1
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        odd = next(n for n, v in zip(names, values) if len(v) != len(values[0]))
        raise DataError(f"{where}: label lists have different lengths {sorted(lengths)} (see "
                        f"{odd!r}); every image needs a list of the same length")
    vectors = np.asarray(values, np.float32)
    if not np.all(np.isfinite(vectors)):
        raise DataError(f"{where} has NaN or infinite label values; replace them with numbers")
    return vectors, vectors.shape[1]


def _is_class(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_vector(value):
    return (isinstance(value, list) and len(value) > 0 and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wanted(relpath):
    parts = relpath.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return relpath.lower().endswith(IMAGE_EXTENSIONS)


class _Directory:
    """Files under a directory, by '/'-separated relative path."""

    def __init__(self, root):
        self.root = root
        self.files = []
        for here, dirs, files in os.walk(root):
            dirs.sort()
            rel = os.path.relpath(here, root).replace(os.sep, "/")
            self.files += [f if rel == "." else f"{rel}/{f}" for f in files]

    def where(self, name):
        return os.path.join(self.root, *name.split("/"))

    def open(self, name):
        return open(self.where(name), "rb")

    def read(self, name):
        with self.open(name) as f:
            return f.read()


class _Zip:
    """Files in a zip archive; a single top-level folder holding everything counts as the root."""

    def __init__(self, path):
        self.path, self._pid, self._zip = path, None, None
        names = [n for n in self._archive().namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        single_top = len(tops) == 1 and all("/" in n for n in names)
        self.prefix = f"{tops.pop()}/" if names and single_top else ""
        self.files = [n[len(self.prefix):] for n in names]

    def _archive(self):
        # A ZipFile cannot cross fork or pickle, so each process opens its own.
        if self._pid != os.getpid():
            try:
                self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
            except zipfile.BadZipFile:
                raise DataError(f"{self.path} is not a valid zip file (corrupt or not a zip): "
                                f"re-create it, or unpack the images into a folder") from None
        return self._zip

    def __getstate__(self):
        return {**self.__dict__, "_pid": None, "_zip": None}

    def where(self, name):
        return f"{self.path}:{self.prefix}{name}"

    def open(self, name):
        return self._archive().open(self.prefix + name)

    def read(self, name):
        return self._archive().read(self.prefix + name)


class ImageFolder:
    """Source of the PNG/JPEG images in a folder (recursive) or .zip, with optional labels.

    resolution: output side; None uses the smallest image's shorter side.
    xflip: doubles the length; index i >= N is image i - N mirrored left-right.
    use_labels: True requires dataset.json labels, False ignores dataset.json, "auto" uses them
        when present. Class indices become one-hot float32; lists of floats are used as they are.
    allow_upscale: accept images smaller than `resolution` (upscaled with LANCZOS).
    Construction reads only image headers; call check() to decode every image before training.
    """

    num_channels = 3

    def __init__(self, path, resolution, xflip=False, use_labels=False, allow_upscale=False):
        self.path = os.fspath(path)
        if use_labels not in (True, False, "auto"):
            raise DataError(f'use_labels must be True, False or "auto", got {use_labels!r}')
        if os.path.isdir(self.path):
            self._files = _Directory(self.path)
        elif not os.path.exists(self.path):
            raise DataError(f"dataset path {self.path} does not exist: give an existing folder "
                            f"or .zip of PNG/JPEG images")
        elif self.path.lower().endswith(".zip"):
            self._files = _Zip(self.path)
        else:
            raise DataError(f"{self.path} is a file but not a .zip: give a folder or .zip of "
                            f"PNG/JPEG images")
        self.names = sorted(n for n in self._files.files if _wanted(n))
        if not self.names:
            raise DataError(f"no images in {self.path}: looked for {', '.join(IMAGE_EXTENSIONS)} "
                            f"files (any case, recursively) among {len(self._files.files)} files")
        sizes = [self._header_size(n) for n in self.names]
        sides = [min(s) for s in sizes]
        self.resolution = int(min(sides) if resolution is None else resolution)
        if self.resolution < 1:
            raise DataError(f"resolution must be a positive integer, got {resolution!r}")
        small = [k for k, s in enumerate(sides) if s < self.resolution]
        if small and not allow_upscale:
            first = self.names[small[0]]
            raise too_small_error(f"{self._files.where(first)} ({len(small)} of {len(self.names)} "
                                  f"images are too small)", sizes[small[0]], self.resolution,
                                  min(sides))
        self.xflip = bool(xflip)
        self._labels, self.label_dim = self._read_labels(use_labels)

    def _header_size(self, name):
        # Image.open parses the header only; pixel data is decoded in check() or __getitem__.
        try:
            with self._files.open(name) as f, Image.open(f) as image:
                return image.size
        except DataError:
            raise
        except Exception as e:  # PIL raises many types for bad files
            raise DataError(f"cannot read image {self._files.where(name)} ({e}): it is corrupt "
                            f"or not a PNG/JPEG; remove or replace it") from None

    def _read_labels(self, use_labels):
        if use_labels is False:
            return None, 0
        where = self._files.where("dataset.json")
        if "dataset.json" not in self._files.files:
            if use_labels == "auto":
                return None, 0
            raise DataError(f"use_labels=True but there is no {where}: add one ({LABELS_FORMAT}) "
                            f"or train without labels (use_labels=False)")
        labels, label_dim = read_labels(self._files.read("dataset.json"), where, self.names)
        if labels is None and use_labels is True:
            raise DataError(f'use_labels=True but {where} has "labels": null: add labels or '
                            f"train without labels (use_labels=False)")
        return labels, label_dim

    def __len__(self):
        """Returns the number of examples (twice the number of images with xflip)."""
        return len(self.names) * (2 if self.xflip else 1)

    def __getitem__(self, index):
        """Returns {"image": uint8 (R, R, 3)} plus "label" float32 (label_dim,) when labelled."""
        j, mirrored = xflip_index(index, len(self.names), self.xflip)
        image = np.asarray(center_crop_resize(to_rgb(self._decode(j)), self.resolution))
        if mirrored:
            image = np.ascontiguousarray(image[:, ::-1])
        example = {"image": image}
        if self.label_dim:
            example["label"] = self._label(j)
        return example

    def _label(self, j):
        if self._labels.ndim == 2:
            return self._labels[j].copy()
        one_hot = np.zeros(self.label_dim, np.float32)
        one_hot[self._labels[j]] = 1.0
        return one_hot

    def _decode(self, j):
        name = self.names[j]
        try:
            image = Image.open(io.BytesIO(self._files.read(name)))
            image.load()
            return image
        except DataError:
            raise
        except Exception as e:  # truncated data, bad CRC, bad zlib stream, ...
            raise DataError(f"cannot decode image {self._files.where(name)} ({e}): it is corrupt "
                            f"or truncated; remove or replace it (source.check() decodes every "
                            f"image, to find such files before training)") from None

    def check(self):
        """Returns the number of images, all decoded; raises DataError at the first bad one."""
        for j in range(len(self.names)):
            self._decode(j)
        return len(self.names)
