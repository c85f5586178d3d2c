"""The export tool: round trips through PNG folders and zips, labels, factors, and its refusals."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from jaxstyle.data.export import archive_name, export, main
from jaxstyle.data.folder import ImageFolder


def noise(h, w, seed):
    """Returns a random uint8 (h, w, 3) image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def photos(tmp_path):
    """A labelled folder of 5 PNGs of mixed sizes."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for k, (h, w) in enumerate([(12, 12), (16, 10), (10, 14), (20, 20), (11, 13)]):
        Image.fromarray(noise(h, w, k)).save(root / ("sub" if k % 2 else "") / f"p{k}.png")
    labels = [[f"p{k}.png" if k % 2 == 0 else f"sub/p{k}.png", k % 3] for k in range(5)]
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    return root


def siblings(path):
    """Returns the names beside `path` (to see that no temporary file was left behind)."""
    return sorted(os.listdir(os.path.dirname(path)))


@pytest.mark.parametrize("dest_name", ["out", "out.zip"])
def test_round_trip(photos, tmp_path, capsys, dest_name):
    dest = tmp_path / dest_name
    assert main([str(photos), str(dest), "--resolution", "8"]) == 0
    assert "wrote 5 images (8x8)" in capsys.readouterr().out
    original = ImageFolder(photos, 8, use_labels=True)
    copy = ImageFolder(dest, 8, use_labels=True)
    assert len(copy) == 5 and copy.label_dim == 3
    for i in range(5):  # export keeps the source order, and PNG is lossless
        np.testing.assert_array_equal(copy[i]["image"], original[i]["image"])
        np.testing.assert_array_equal(copy[i]["label"], original[i]["label"])
    if dest_name.endswith(".zip"):
        with zipfile.ZipFile(dest) as z:
            meta = json.loads(z.read("dataset.json"))
    else:
        meta = json.loads((dest / "dataset.json").read_text())
    assert meta["labels"][:2] == [["00000/img00000000.png", 0], ["00000/img00000001.png", 2]]
    preview = np.asarray(Image.open(tmp_path / "out_preview.png"))
    assert preview.shape == (8, 5 * 8, 3)  # one row of 5
    np.testing.assert_array_equal(preview[:, 8:16], original[1]["image"])
    assert siblings(dest) == sorted(["photos", dest_name, "out_preview.png"])
    umask = os.umask(0)
    os.umask(umask)
    wanted = (0o666 if dest_name.endswith(".zip") else 0o777) & ~umask
    assert os.stat(dest).st_mode & 0o777 == wanted


def test_no_labels_max_images_and_custom_preview(photos, tmp_path):
    dest, preview = tmp_path / "few", tmp_path / "grid.png"
    assert main([str(photos), str(dest), "--resolution", "8", "--max-images", "2",
                 "--no-labels", "--preview", str(preview)]) == 0
    assert json.loads((dest / "dataset.json").read_text()) == {"labels": None}
    assert len(ImageFolder(dest, 8)) == 2 and preview.exists()


def test_default_resolution_is_smallest_side(photos, tmp_path):
    assert main([str(photos), str(tmp_path / "full")]) == 0
    assert ImageFolder(tmp_path / "full", None).resolution == 10


class VectorSource:
    """A minimal in-memory source with float labels and ground-truth factors."""

    resolution, num_channels, label_dim = 4, 3, 2
    factor_names = ["pose", "hue"]

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": noise(4, 4, i), "label": np.float32([i, 0.5]),
                "factors": np.float32([i / 4, 0.25])}


def test_float_labels_and_factors(tmp_path):
    assert export(VectorSource(), tmp_path / "vec.zip") == 3
    copy = ImageFolder(tmp_path / "vec.zip", 4, use_labels=True)
    np.testing.assert_array_equal(copy[2]["label"], [2, 0.5])
    np.testing.assert_array_equal(copy[1]["image"], noise(4, 4, 1))
    with zipfile.ZipFile(tmp_path / "vec.zip") as z:
        meta = json.loads(z.read("dataset.json"))
    assert meta["factors"][1] == ["00000/img00000001.png", [0.25, 0.25]]
    assert meta["factor_names"] == ["pose", "hue"]


def test_toyfaces_export(tmp_path):
    pytest.importorskip("jaxstyle.data.toyfaces")
    assert main(["toyfaces:4", str(tmp_path / "toy"), "--resolution", "16"]) == 0
    meta = json.loads((tmp_path / "toy" / "dataset.json").read_text())
    from jaxstyle.data.toyfaces import ToyFaces
    toy, copy = ToyFaces(16, 4), ImageFolder(tmp_path / "toy", 16)
    assert len(copy) == 4 and meta["factor_names"] == toy.factor_names
    for i in range(4):  # exported through get_batch, compared with single examples
        np.testing.assert_array_equal(copy[i]["image"], toy[i]["image"])
        assert meta["factors"][i] == [f"{archive_name(i)}", toy[i]["factors"].tolist()]


def test_refuses_existing_destination(photos, tmp_path, capsys):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    assert main([str(photos), str(dest), "--resolution", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "exists" in err and "--overwrite" in err
    assert os.listdir(dest) == ["keep.txt"]
    assert main([str(photos), str(dest), "--resolution", "8", "--overwrite"]) == 0
    assert not (dest / "keep.txt").exists() and len(ImageFolder(dest, 8)) == 5
    assert siblings(dest) == ["out", "out_preview.png", "photos"]
    (tmp_path / "other_preview.png").write_bytes(b"x")
    assert main([str(photos), str(tmp_path / "other"), "--resolution", "8"]) == 2
    assert not (tmp_path / "other").exists()


def test_bad_source_writes_nothing(photos, tmp_path, capsys):
    data = (photos / "p2.png").read_bytes()
    (photos / "p2.png").write_bytes(data[: len(data) * 2 // 3])  # fails only when decoded
    before = siblings(photos)
    for dest in ("out", "out.zip"):
        assert main([str(photos), str(tmp_path / dest), "--resolution", "8"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: cannot decode image ")
        assert "p2.png" in err
    assert siblings(photos) == before
    assert main(["no/such/dir", str(tmp_path / "x"), "--resolution", "8"]) == 2
    assert "unknown dataset 'no/such/dir'" in capsys.readouterr().err


def test_command_line_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "jaxstyle.data.export", str(tmp_path / "missing"),
         str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: unknown dataset") and result.stderr.count("\n") == 1
