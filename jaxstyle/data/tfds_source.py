"""Datasets prepared by tensorflow-datasets, as a Source read without TensorFlow.

`tfds.data_source` reads examples by index without TensorFlow only when the dataset was prepared
with file_format="array_record" (preparing itself needs TensorFlow and usually a download).
A dataset prepared only as tfrecord is read into memory with TensorFlow when TensorFlow is
installed (fine for small datasets); otherwise it must be re-prepared. Images are converted as
folder images are (jaxstyle.data.folder.to_rgb, centre crop, LANCZOS resize).
"""

import importlib.util
import os
import warnings

import numpy as np
from PIL import Image

from jaxstyle.data.folder import center_crop_resize, to_rgb, too_small_error
from jaxstyle.data.source import DataError, xflip_index


def prepare_command(name, data_dir=None):
    """Returns the shell command that prepares TFDS dataset `name` as array_record in `data_dir`."""
    where = f", data_dir={os.fspath(data_dir)!r}" if data_dir else ""
    return ('python -c "import tensorflow_datasets as tfds; '
            f"tfds.builder({name!r}{where}, file_format='array_record').download_and_prepare()\"")


_PREPARE_NOTE = ("(preparing needs TensorFlow, `pip install tensorflow`, and for most datasets a "
                 "download; some need files fetched by hand, see the dataset's TFDS catalog page)")


def _tensorflow_available():
    return importlib.util.find_spec("tensorflow") is not None


def array_to_image(array, where):
    """Returns a PIL image of a uint8 or uint16 (H, W[, C]) array, C in 1..4; 16-bit scaled to 8."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (2, 3, 4)):
        raise DataError(f"{where}: expected an (H, W, 1|2|3|4) image, got shape {a.shape}")
    if a.dtype == np.uint16:
        a = np.rint(a / 257.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise DataError(f"{where}: image dtype {a.dtype} is not supported (uint8 or uint16)")
    return Image.fromarray(a)


class TFDSSource:
    """Source of one split of a TFDS dataset; labels are one-hot ClassLabel values.

    name: "NAME", "NAME/CONFIG" or "NAME[/CONFIG]:VERSION", as tfds.builder takes it.
    split: any TFDS split string ("train", "train[:1000]", ...).
    data_dir: where the dataset is prepared (None: TFDS_DATA_DIR or ~/tensorflow_datasets).
    label_key: a ClassLabel feature to use as labels, or None for no labels.
    xflip: doubles the length; index i >= N is example i - N mirrored left-right.
    allow_upscale: accept images smaller than `resolution` (upscaled with LANCZOS).
    """

    num_channels = 3

    def __init__(self, name, resolution, split="train", data_dir=None, image_key="image",
                 label_key=None, xflip=False, allow_upscale=False):
        import tensorflow_datasets as tfds  # lazily: importing it takes about half a second

        self.name, self.split, self.image_key, self.label_key = name, split, image_key, label_key
        self.data_dir = os.fspath(data_dir) if data_dir else None
        self.resolution = int(resolution)
        self.xflip, self.allow_upscale = bool(xflip), bool(allow_upscale)
        self._where = self.data_dir or tfds.core.constants.DATA_DIR
        builder = self._builder(tfds)
        self._data = self._open(tfds, builder)
        self.label_dim = self._check_features(builder.info.features)

    def _builder(self, tfds):
        try:
            return tfds.builder(self.name, data_dir=self.data_dir)
        except tfds.core.DatasetNotFoundError:
            raise DataError(
                f"TFDS knows no dataset {self.name!r} and none is prepared under {self._where}: "
                f"check the name (tfds.list_builders() lists them) and data_dir") from None
        except Exception as e:  # a builder's own imports or config can fail in many ways
            raise DataError(
                f"cannot open TFDS dataset {self.name!r}: {type(e).__name__}: {e}") from None

    def _open(self, tfds, builder):
        try:
            return builder.as_data_source(split=self.split)
        except Exception as e:  # sorted out below by asking the builder what is on disk
            failure = e
        command = prepare_command(self.name, self.data_dir)
        if not builder.is_prepared():
            raise DataError(f"TFDS dataset {self.name!r} is not prepared in {self._where}; prepare "
                            f"it as array_record with: {command} {_PREPARE_NOTE}")
        if isinstance(failure, NotImplementedError):  # prepared, but not in a random-access format
            if _tensorflow_available():
                return self._read_with_tensorflow(tfds, builder, command)
            raise DataError(
                f"TFDS dataset {self.name!r} in {self._where} is prepared as tfrecord, which needs "
                f"TensorFlow to read; re-prepare it as array_record (into another data_dir, or "
                f"after deleting {builder.data_dir}) with: {command} {_PREPARE_NOTE}")
        raise DataError(f"cannot read split {self.split!r} of TFDS dataset {self.name!r} in "
                        f"{self._where}: {failure}") from None

    def _read_with_tensorflow(self, tfds, builder, command):
        warnings.warn(f"TFDS dataset {self.name!r} is prepared only as tfrecord: reading split "
                      f"{self.split!r} into memory with TensorFlow, which suits small datasets; "
                      f"for large ones prepare it as array_record with: {command}", stacklevel=3)
        return list(tfds.as_numpy(builder.as_dataset(split=self.split)))

    def _check_features(self, features):
        keys = sorted(features.keys())
        for role, key in (("image_key", self.image_key), ("label_key", self.label_key)):
            if key is not None and key not in keys:
                raise DataError(f"{role}={key!r} is not a feature of TFDS dataset {self.name!r}; "
                                f"its features are {keys}")
        shape = getattr(features[self.image_key], "shape", None)
        if shape and len(shape) == 3 and None not in shape[:2] and not self.allow_upscale:
            if min(shape[:2]) < self.resolution:
                raise too_small_error(f"every image of TFDS dataset {self.name!r}",
                                      (shape[1], shape[0]), self.resolution, min(shape[:2]))
        if self.label_key is None:
            return 0
        num_classes = getattr(features[self.label_key], "num_classes", None)
        if not num_classes:
            raise DataError(f"label_key={self.label_key!r} of TFDS dataset {self.name!r} is a "
                            f"{type(features[self.label_key]).__name__}, not a ClassLabel; "
                            f"use a ClassLabel feature or label_key=None")
        return int(num_classes)

    def __len__(self):
        """Returns the number of examples (twice the split's size with xflip)."""
        return len(self._data) * (2 if self.xflip else 1)

    def __getitem__(self, index):
        """Returns {"image": uint8 (R, R, 3)} plus "label" float32 one-hot when label_key is set."""
        j, mirrored = xflip_index(index, len(self._data), self.xflip)
        record = self._data[j]
        where = f"example {j} of TFDS dataset {self.name!r} split {self.split!r}"
        image = to_rgb(array_to_image(record[self.image_key], where))
        if min(image.size) < self.resolution and not self.allow_upscale:
            raise too_small_error(where, image.size, self.resolution)
        image = np.asarray(center_crop_resize(image, self.resolution))
        if mirrored:
            image = np.ascontiguousarray(image[:, ::-1])
        example = {"image": image}
        if self.label_dim:
            label = int(record[self.label_key])
            if not 0 <= label < self.label_dim:
                raise DataError(f"{where}: label {label} is outside 0..{self.label_dim - 1}")
            example["label"] = np.zeros(self.label_dim, np.float32)
            example["label"][label] = 1.0
        return example
