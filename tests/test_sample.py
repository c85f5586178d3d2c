"""The sampling command: a PNG grid of the right size, and a clean failure on bad input."""

import numpy as np
from PIL import Image

from conftest import FIXTURES
from jaxstyle import sample


def test_writes_a_grid_from_fixture_weights(tmp_path, capsys):
    out = tmp_path / "grid.png"
    rc = sample.main(["--weights", str(FIXTURES / "stylegan2_ada_visible.npz"), "--rows", "2",
                      "--cols", "3", "--psi", "0.5", "--out", str(out)])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    image = np.asarray(Image.open(out))
    assert image.shape == (32, 48, 3) and image.std() > 1  # not a blank image


def test_random_generator_grid(tmp_path):
    out = tmp_path / "sub" / "grid.png"
    assert sample.main(["--resolution", "8", "--rows", "1", "--cols", "2", "--out", str(out)]) == 0
    assert Image.open(out).size == (16, 8)


def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert sample.main(["--resolution", "48", "--out", str(out)]) == 2
    assert "power of two" in capsys.readouterr().err
    assert sample.main(["--weights", str(tmp_path / "nope.npz"), "--out", str(out)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
