"""TFDS sources: a real array_record dataset built here without TensorFlow, and tfds' mock_data."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxstyle.data.registry import open_source
from jaxstyle.data.source import DataError, Source
from test_data_sources import noise, pil_resize


# ---- TFDS: a real array_record dataset built here without TensorFlow, and tfds' mock_data ----


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """Returns (tfds, data_dir) with dataset "jaxstyle_tiny" prepared there as array_record."""
    tfds = pytest.importorskip("tensorflow_datasets")
    data_dir = tmp_path_factory.mktemp("tfds")
    with tfds.core.registered.skip_registration():  # readers must find it from its files alone

        class JaxstyleTiny(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=4),
                    "score": tfds.features.Scalar(np.float32)}))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples()}

            def _generate_examples(self):
                # PIL images, so that encoding them does not need TensorFlow.
                for i in range(5):
                    image = Image.fromarray(noise(8 + 2 * i, 10, seed=i))
                    yield i, {"image": image, "label": i % 4, "score": float(i)}

        JaxstyleTiny(data_dir=data_dir, file_format="array_record").download_and_prepare()
    return tfds, data_dir


def crop_resize(array, r):
    """Returns the centred square of `array` by slicing, resized by PIL only when needed."""
    h, w = array.shape[:2]
    s = min(h, w)
    square = array[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return square if s == r else pil_resize(square, r)


def test_tfds_array_record_without_tensorflow(tiny_tfds):
    from jaxstyle.data.tfds_source import TFDSSource
    tfds, data_dir = tiny_tfds
    src = TFDSSource("jaxstyle_tiny", 8, data_dir=data_dir, label_key="label", xflip=True)
    raw = tfds.data_source("jaxstyle_tiny", split="train", data_dir=data_dir, download=False)
    assert isinstance(src, Source) and (len(src), src.label_dim) == (10, 4)
    assert sorted(raw[i]["image"].shape[0] for i in range(5)) == [8, 10, 12, 14, 16]
    assert sorted(int(raw[i]["label"]) for i in range(5)) == [0, 0, 1, 2, 3]
    for i in range(5):
        np.testing.assert_array_equal(src[i]["image"], crop_resize(raw[i]["image"], 8))
        np.testing.assert_array_equal(src[i]["label"], np.eye(4)[raw[i]["label"]])
        np.testing.assert_array_equal(src[i + 5]["image"], src[i]["image"][:, ::-1])
    assert "label" not in TFDSSource("jaxstyle_tiny", 8, data_dir=data_dir)[0]


@pytest.mark.parametrize("kwargs,pattern", [
    ({"split": "test"}, r"cannot read split 'test' .*Unknown split"),
    ({"image_key": "img"}, r"image_key='img' is not a feature .*\['image', 'label', 'score'\]"),
    ({"label_key": "score"}, r"label_key='score' .* is a Scalar, not a ClassLabel"),
])
def test_tfds_bad_arguments(tiny_tfds, kwargs, pattern):
    from jaxstyle.data.tfds_source import TFDSSource
    with pytest.raises(DataError, match=pattern):
        TFDSSource("jaxstyle_tiny", 8, data_dir=tiny_tfds[1], **kwargs)


def test_tfds_small_image_of_unknown_size(tiny_tfds):
    from jaxstyle.data.tfds_source import TFDSSource
    tfds, data_dir = tiny_tfds
    src = TFDSSource("jaxstyle_tiny", 12, data_dir=data_dir)  # sizes vary: checked per example
    raw = tfds.data_source("jaxstyle_tiny", split="train", data_dir=data_dir, download=False)
    small = next(i for i in range(5) if raw[i]["image"].shape[0] == 8)
    with pytest.raises(DataError, match=rf"example {small} of .*10x8.*allow_upscale"):
        src[small]
    upscaled = TFDSSource("jaxstyle_tiny", 12, data_dir=data_dir, allow_upscale=True)[small]
    np.testing.assert_array_equal(upscaled["image"], crop_resize(raw[small]["image"], 12))


def test_tfds_not_prepared_and_unknown(tmp_path):
    from jaxstyle.data.tfds_source import TFDSSource
    with pytest.raises(DataError, match=(
            rf"'mnist' is not prepared in {tmp_path}.*tfds.builder\('mnist', data_dir="
            r"'.*', file_format='array_record'\).download_and_prepare\(\).*needs TensorFlow")):
        TFDSSource("mnist", 28, data_dir=tmp_path)
    with pytest.raises(DataError, match="TFDS knows no dataset 'no_such_set_xyz'"):
        TFDSSource("no_such_set_xyz", 28, data_dir=tmp_path)


@pytest.fixture
def tfrecord_only(tiny_tfds, tmp_path):
    """Returns a data_dir whose jaxstyle_tiny claims to be prepared as tfrecord only."""
    import shutil
    shutil.copytree(tiny_tfds[1] / "jaxstyle_tiny", tmp_path / "jaxstyle_tiny")
    version = tmp_path / "jaxstyle_tiny" / "1.0.0"
    info = json.loads((version / "dataset_info.json").read_text())
    (version / "dataset_info.json").write_text(json.dumps({**info, "fileFormat": "tfrecord"}))
    for f in version.glob("*.array_record-*"):
        f.rename(version / f.name.replace("array_record", "tfrecord"))
    return tmp_path


def test_tfds_tfrecord_without_tensorflow(tfrecord_only, monkeypatch):
    from jaxstyle.data import tfds_source
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: False)
    with pytest.raises(DataError, match=r"prepared as tfrecord.*re-prepare it as array_record.*"
                                        r"file_format='array_record'"):
        tfds_source.TFDSSource("jaxstyle_tiny", 8, data_dir=tfrecord_only)


def test_tfds_tfrecord_read_into_memory_with_tensorflow(tfrecord_only, monkeypatch):
    # TensorFlow is not installed here, so its two calls are stood in for.
    from jaxstyle.data import tfds_source
    import tensorflow_datasets as tfds
    records = [{"image": noise(8, 12, seed=k), "label": k} for k in range(3)]
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "as_dataset", lambda self, split: records)
    monkeypatch.setattr(tfds, "as_numpy", lambda ds: iter(ds))
    with pytest.warns(UserWarning, match="into memory with TensorFlow"):
        src = tfds_source.TFDSSource("jaxstyle_tiny", 8, data_dir=tfrecord_only, label_key="label")
    assert len(src) == 3
    np.testing.assert_array_equal(src[2]["image"], records[2]["image"][:, 2:10])
    np.testing.assert_array_equal(src[2]["label"], [0, 0, 1, 0])


def test_tfds_mock_data_and_registry():
    tfds = pytest.importorskip("tensorflow_datasets")
    from jaxstyle.data.tfds_source import TFDSSource
    with tfds.testing.mock_data(num_examples=4):
        src = open_source("tfds:mnist", 16, label_key="label", split="train")
        raw = tfds.data_source("mnist", split="train")
        assert isinstance(src, TFDSSource) and (len(src), src.label_dim) == (4, 10)
        for i in range(4):
            gray = pil_resize(raw[i]["image"][..., 0], 16)
            np.testing.assert_array_equal(src[i]["image"], np.repeat(gray[..., None], 3, -1))
            np.testing.assert_array_equal(src[i]["label"], np.eye(10)[raw[i]["label"]])
        with pytest.raises(DataError, match=r"every image of TFDS dataset 'mnist' is 28x28, "
                                            r"smaller than the target resolution 32"):
            TFDSSource("mnist", 32)
