"""One entry point from a dataset spec string to a Source.

Specs:
    toyfaces, toyfaces:SIZE      the procedural dataset (jaxstyle.data.toyfaces)
    tfds:NAME, tfds:NAME/CONFIG  a dataset prepared by tensorflow-datasets (as array_record)
    PATH                         an existing folder or .zip of PNG/JPEG images
Options (each source takes those that apply to it; None means the default):
    seed (toyfaces), split, data_dir, image_key, label_key (tfds), use_labels (folders),
    xflip, allow_upscale (folders and tfds).
"""

import os

from jaxstyle.data.source import DataError

SPEC_FORMS = ('"toyfaces" or "toyfaces:SIZE"; "tfds:NAME" or "tfds:NAME/CONFIG" (with options '
              'data_dir and split); or the path of an existing folder or .zip of PNG/JPEG images')
OPTIONS = ("seed", "split", "data_dir", "image_key", "label_key", "use_labels", "xflip",
           "allow_upscale")


def open_source(spec, resolution, **options):
    """Returns the Source that `spec` names, at `resolution` (see the module docstring)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DataError(f"unknown dataset option(s) {unknown}; the options are {list(OPTIONS)}")
    given = {k: v for k, v in options.items() if v is not None}
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text:
        raise DataError(f"dataset spec must be a non-empty string, got {spec!r}; use {SPEC_FORMS}")
    if text == "toyfaces" or text.startswith("toyfaces:"):
        return _toyfaces(text, resolution, given)
    if text.startswith("tfds:"):
        return _tfds(text[len("tfds:"):], resolution, given)
    if os.path.isdir(text) or (os.path.isfile(text) and text.lower().endswith(".zip")):
        from jaxstyle.data.folder import ImageFolder
        pick = {k: given[k] for k in ("xflip", "use_labels", "allow_upscale") if k in given}
        return ImageFolder(text, resolution, **pick)
    reason = "no such file or directory" if not os.path.exists(text) else "not a folder or .zip"
    raise DataError(f"unknown dataset {text!r} ({reason}); use {SPEC_FORMS}")


def _need_resolution(resolution, spec):
    if resolution is None:
        raise DataError(f"dataset {spec!r} needs a resolution (e.g. 64)")
    return resolution


def _toyfaces(spec, resolution, options):
    from jaxstyle.data.toyfaces import ToyFaces  # lazily: written independently of this module

    if options.get("xflip"):
        raise DataError("toyfaces does not support xflip: mirrored images would not match their "
                        "ground-truth factors")
    kwargs = {"resolution": _need_resolution(resolution, spec), "seed": options.get("seed", 0)}
    if ":" in spec:
        size = spec.split(":", 1)[1]
        if not size.isdigit() or int(size) < 1:
            raise DataError(f"toyfaces size must be a positive integer, got {size!r} in {spec!r}")
        kwargs["size"] = int(size)
    return ToyFaces(**kwargs)


def _tfds(name, resolution, options):
    from jaxstyle.data.tfds_source import TFDSSource

    if not name:
        raise DataError(f'"tfds:" needs a dataset name, e.g. "tfds:mnist"; use {SPEC_FORMS}')
    keys = ("split", "data_dir", "image_key", "label_key", "xflip", "allow_upscale")
    return TFDSSource(name, _need_resolution(resolution, f"tfds:{name}"),
                      **{k: options[k] for k in keys if k in options})
