"""Export any source as PNGs plus dataset.json, like the official StyleGAN2-ADA dataset_tool.

    python -m jaxstyle.data.export toyfaces:1000 data/toyfaces64.zip --resolution 64
    python -m jaxstyle.data.export ~/photos data/photos128 --resolution 128 --max-images 5000

DEST is a folder, or a zip when it ends in .zip. Images go to 00000/img00000000.png, ... (1000
per folder) and dataset.json holds {"labels": [[path, class or [floats]], ...] or null}, plus a
"factors" entry ([[path, [floats]], ...]) for sources with ground truth. A preview grid goes to
DEST_preview.png. Everything is written into a hidden temporary sibling and renamed into place at
the end, so an interrupted export leaves nothing half-written.
"""

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

from jaxstyle.data.registry import SPEC_FORMS, open_source
from jaxstyle.data.source import DataError
from jaxstyle.images import make_grid, save_png

PREVIEW_IMAGES = 64


def archive_name(index):
    """Returns the official dataset_tool's relative path for image `index`."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def label_entries(names, labels):
    """Returns dataset.json "labels": class ints when every row is one-hot, else lists, or None."""
    if labels is None:
        return None
    labels = np.asarray(labels, np.float32)
    one_hot = bool(np.all((labels == 0) | (labels == 1)) and np.all(labels.sum(axis=1) == 1))
    values = labels.argmax(axis=1).tolist() if one_hot else labels.tolist()
    return [[n, v] for n, v in zip(names, values)]


def default_preview(dest):
    """Returns DEST_preview.png beside DEST (DEST without a trailing .zip)."""
    base = os.path.normpath(dest)
    if base.lower().endswith(".zip"):
        base = base[:-4]
    return base + "_preview.png"


def _examples(source, count, chunk=64):
    # Sources with get_batch (toyfaces) render a batch at once, about twice as fast.
    for start in range(0, count, chunk):
        indices = np.arange(start, min(count, start + chunk))
        if not hasattr(source, "get_batch"):
            yield from (source[int(i)] for i in indices)
            continue
        batch = source.get_batch(indices)
        yield from ({k: v[j] for k, v in batch.items()} for j in range(len(indices)))


def _png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class _Writer:
    """Writes files into a hidden temporary sibling of DEST (a folder, or a zip)."""

    def __init__(self, dest):
        self.dest = os.path.normpath(dest)
        parent, base = os.path.split(os.path.abspath(self.dest))
        os.makedirs(parent, exist_ok=True)
        self.is_zip = self.dest.lower().endswith(".zip")
        if self.is_zip:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
            os.close(fd)
            self._zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED)  # PNGs are compressed
        else:
            self.tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".tmp", dir=parent)

    def write(self, name, data):
        if self.is_zip:
            self._zip.writestr(name, data)
            return
        path = os.path.join(self.tmp, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def commit(self):
        if self.is_zip:
            self._zip.close()
        # mkstemp/mkdtemp make private (0600/0700) files; give DEST the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, (0o666 if self.is_zip else 0o777) & ~umask)
        if os.path.lexists(self.dest):  # only reached with --overwrite
            old = self.tmp + ".old"
            os.replace(self.dest, old)
            os.replace(self.tmp, self.dest)
            shutil.rmtree(old) if os.path.isdir(old) else os.unlink(old)
        else:
            os.replace(self.tmp, self.dest)

    def abort(self):
        if self.is_zip:
            self._zip.close()
            os.unlink(self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def export(source, dest, max_images=None, preview=None):
    """Returns the number of images written from `source` to `dest` (+ dataset.json, preview)."""
    count = len(source) if max_images is None else min(len(source), max_images)
    if count < 1:
        raise DataError("nothing to export: the source is empty or --max-images is below 1")
    writer = _Writer(dest)
    names, labels, factors, shown = [], [], [], []
    try:
        for index, example in enumerate(_examples(source, count)):
            names.append(archive_name(index))
            writer.write(names[-1], _png_bytes(example["image"]))
            if "label" in example:
                labels.append(example["label"])
            if "factors" in example:
                factors.append(np.asarray(example["factors"], np.float32).tolist())
            if len(shown) < PREVIEW_IMAGES:
                shown.append(example["image"])
        meta = {"labels": label_entries(names, labels if labels else None)}
        if factors:
            meta["factors"] = [[n, f] for n, f in zip(names, factors)]
            for key in ("factor_names", "content_factors", "style_factors"):
                if hasattr(source, key):
                    meta[key] = list(getattr(source, key))
        writer.write("dataset.json", json.dumps(meta).encode())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    cols = min(8, len(shown))
    save_png(make_grid(np.stack(shown), len(shown) // cols, cols), preview or default_preview(dest))
    return count


def parse_args(argv):
    """Returns the parsed command line."""
    p = argparse.ArgumentParser(prog="python -m jaxstyle.data.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help=f"dataset spec: {SPEC_FORMS}")
    p.add_argument("dest", help="output folder, or a .zip file")
    p.add_argument("--resolution", type=int, default=None,
                   help="output side in pixels (default: for folders the smallest image's "
                        "shorter side; required for toyfaces and tfds)")
    p.add_argument("--max-images", type=int, default=None, help="export only the first N")
    p.add_argument("--preview", default=None, help="preview grid PNG (default DEST_preview.png)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST and the preview")
    p.add_argument("--seed", type=int, default=None, help="toyfaces seed")
    p.add_argument("--split", default=None, help="tfds split (default train)")
    p.add_argument("--data-dir", default=None, help="tfds data_dir")
    p.add_argument("--label-key", default=None, help="tfds ClassLabel feature to export as labels")
    p.add_argument("--no-labels", action="store_true", help="ignore a folder's dataset.json")
    p.add_argument("--allow-upscale", action="store_true", help="upscale smaller images")
    return p.parse_args(argv)


def main(argv=None):
    """Returns the exit status of the export command line (0 done, 2 refused or failed)."""
    args = parse_args(argv)
    preview = args.preview or default_preview(args.dest)
    for path in (args.dest, preview):
        if os.path.lexists(path) and not args.overwrite:
            print(f"error: {path} exists; choose another destination or pass --overwrite",
                  file=sys.stderr)
            return 2
    try:
        source = open_source(args.source, args.resolution, seed=args.seed, split=args.split,
                             data_dir=args.data_dir, label_key=args.label_key,
                             use_labels=False if args.no_labels else "auto",
                             allow_upscale=args.allow_upscale or None)
        count = export(source, args.dest, args.max_images, preview)
    except (DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = source.resolution
    print(f"wrote {count} images ({res}x{res}) to {args.dest}; preview {preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
