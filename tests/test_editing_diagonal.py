"""DiagonalGAN content/style tools (jaxstyle.editing) on the official-format fixture model.

Expected values are computed here from the handle's own mapping and synthesis functions, with
codes built by hand (per-slot arrays, truncation written out), not from the tools' earlier output.
"""

import json

import jax
import numpy as np
import pytest
from conftest import FIXTURES, rel_err
from PIL import Image

from jaxstyle.editing import attention, content_style, diagonal_cli
from jaxstyle.images import to_uint8

MODEL = FIXTURES / "diagonalgan_visible.npz"


@pytest.fixture(scope="module")
def net():
    from jaxstyle.interop import load_diagonalgan
    return load_diagonalgan(MODEL)


@pytest.fixture(scope="module")
def means(net):
    return tuple(np.asarray(m) for m in net.mean_codes())


def mapped(net, seeds, domain, mean=None, psi=1.0):
    """(N, dim) codes of the seeds: the documented seed convention, truncation written out."""
    index = {"style": 0, "content": 1}[domain]
    z = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(s), index), (net.G.z_dim,)))
                  for s in seeds])
    mapping = net.style_mapping if domain == "style" else net.content_mapping
    codes = np.asarray(mapping(padded(z)))[:len(seeds)]
    return codes if psi == 1 else mean + psi * (codes - mean)


def padded(x, n=8):
    """x with rows appended up to n: one batch size keeps the number of compilations down."""
    x = np.asarray(x, np.float32)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def synth(net, styles, contents, **kw):
    """Images of codes (N, dim) or (N, slots, dim), generated in one padded per-slot batch."""
    styles, contents = (np.repeat(np.asarray(x, np.float32)[:, None], net.num_slots, axis=1)
                        if np.ndim(x) == 2 else x for x in (styles, contents))
    return np.asarray(net.synthesis(padded(styles), padded(contents), **kw))[:len(styles)]


def assert_close(actual, expected, tol=2e-6):
    """Relative to the largest magnitude, as the parity tests (random-weight images reach |x| ~ 15)."""
    assert rel_err(actual, expected) < tol, rel_err(actual, expected)


def test_grid_cell_is_that_style_and_content_rendered_alone(net, means):
    fig = content_style.content_style_grid(net, [0, 1, 2], [3, 4], means=means)
    s = mapped(net, [0, 1, 2], "style", means[0], 0.7)
    c = mapped(net, [3, 4], "content", means[1], 0.8)
    assert fig.cells.shape == (3, 2, 32, 32, 3)
    pairs = synth(net, np.repeat(s, 2, axis=0), np.tile(c, (3, 1)))
    assert_close(fig.cells.reshape(pairs.shape), pairs)
    alone = np.asarray(net.synthesis(s[2:3], c[1:2]))[0]  # one image, one code for every slot
    assert_close(fig.cells[2, 1], alone)
    assert np.abs(fig.cells[0, 0] - fig.cells[0, 1]).max() > 1e-2  # content matters at all
    # Layout: white corner, content sources on top, style sources on the left, body below/right.
    assert fig.grid.shape == (4 * 32, 3 * 32, 3)
    assert (fig.grid[:32, :32] == 255).all()
    top = synth(net, mapped(net, [4], "style", means[0], 0.7), c[1:2])[0]
    assert np.abs(fig.grid[:32, 64:96].astype(int) - to_uint8(top).astype(int)).max() <= 1
    assert (fig.grid[3 * 32:, 2 * 32:] == to_uint8(fig.cells[2, 1])).all()


def test_mixing_content_slots_match_explicit_per_slot_codes(net, means):
    fig = content_style.mixing(net, "content", [3, 2], [0, 1], [5, 6], means=means, header=False)
    s = mapped(net, [0, 1], "style", means[0], 0.7)
    c_src = mapped(net, [0, 1], "content", means[1], 0.8)
    c_tgt = mapped(net, [5, 6], "content", means[1], 0.8)
    for i in range(2):
        for j in range(2):
            per_slot = np.repeat(c_src[i][None, None], 8, axis=1)
            per_slot[0, 2] = per_slot[0, 3] = c_tgt[j]  # block 1 (8x8) reads slots 2 and 3
            assert_close(fig.cells[i, j], synth(net, s[i:i + 1], per_slot)[0])
    source = synth(net, s[:1], c_src[:1])[0]
    assert np.abs(fig.cells[0, 0] - source).max() > 1e-3
    assert fig.grid.shape == (2 * 32, 2 * 32, 3)


def test_mixing_every_slot_takes_the_targets_codes(net, means):
    s_src, c_src = mapped(net, [0], "style", means[0], 0.7), mapped(net, [0], "content", means[1], 0.8)
    s_tgt, c_tgt = mapped(net, [7], "style", means[0], 0.7), mapped(net, [7], "content", means[1], 0.8)
    every = range(net.num_slots)
    content = content_style.mixing(net, "content", every, [0], [7], means=means, header=False)
    style = content_style.mixing(net, "style", every, [0], [7], means=means, header=False)
    assert_close(content.cells[0, 0], synth(net, s_src, c_tgt)[0])
    assert_close(style.cells[0, 0], synth(net, s_tgt, c_src)[0])


def test_interpolation_ends_are_the_two_samples_and_midpoint_is_the_mean_code(net, means):
    fig = content_style.interpolation(net, "style", range(8), [0, 1], [2, 3], steps=3, means=means)
    s_a, s_b = mapped(net, [0, 1], "style", means[0], 0.7), mapped(net, [2, 3], "style", means[0], 0.7)
    c_a = mapped(net, [0, 1], "content", means[1], 0.8)
    assert fig.cells.shape == (2, 3, 32, 32, 3) and fig.grid.shape == (64, 96, 3)
    assert_close(fig.cells[:, 0], synth(net, s_a, c_a))
    assert_close(fig.cells[:, 1], synth(net, (s_a + s_b) / 2, c_a))
    assert_close(fig.cells[:, 2], synth(net, s_b, c_a))


def test_interpolation_of_some_content_slots(net, means):
    fig = content_style.interpolation(net, "content", [4, 5], [0], [9], steps=2, means=means)
    s = mapped(net, [0], "style", means[0], 0.7)
    c_a, c_b = mapped(net, [0], "content", means[1], 0.8), mapped(net, [9], "content", means[1], 0.8)
    end = np.repeat(c_a[:, None], 8, axis=1)
    end[:, 4:6] = c_b[:, None]
    assert_close(fig.cells[0, 0], synth(net, s, c_a)[0])
    assert_close(fig.cells[0, 1], synth(net, s, end)[0])


def test_truncation_toward_the_mean_per_domain(net, means):
    seeds = [0, 1, 2]
    codes = content_style.draw(net, seeds, psi_style=0.5, psi_content=0.25, means=means)
    np.testing.assert_allclose(codes.styles[:, 3], mapped(net, seeds, "style", means[0], 0.5), atol=1e-6)
    np.testing.assert_allclose(codes.contents[:, 0], mapped(net, seeds, "content", means[1], 0.25), atol=1e-6)
    both = content_style.sample(net, seeds, cols=3, psi_style=0, psi_content=0, means=means).cells[0]
    at_mean = synth(net, means[0][None], means[1][None])[0]
    for image in both:
        assert_close(image, at_mean)
    for domain, psi in (("style", {"psi_style": 0, "psi_content": 1}),
                        ("content", {"psi_style": 1, "psi_content": 0})):
        codes = content_style.draw(net, seeds, means=means, **psi)
        field = codes.styles if domain == "style" else codes.contents
        other = codes.contents if domain == "style" else codes.styles
        assert np.array_equal(field[0], field[1]) and np.array_equal(field[0], field[2]), domain
        assert np.abs(other[0] - other[1]).max() > 1e-3, domain  # the other domain still varies


def test_samples_depend_on_their_seed_alone(net, means):
    a = content_style.sample(net, [5, 1], cols=2, means=means).cells[0]
    b = content_style.sample(net, [1, 2, 5], cols=3, means=means).cells[0]
    assert_close(a[0], b[2])
    assert_close(a[1], b[0])
    padded = content_style.sample(net, [1, 2, 5], cols=2, means=means)
    assert padded.cells.shape == (2, 2, 32, 32, 3) and (padded.grid[32:, 32:] == 255).all()


def test_attention_maps_have_each_layers_resolution_and_range(net):
    fig = attention.attention_figure(net, [0, 1], psi_style=1)
    assert list(fig.maps) == net.attention_layers
    for layer, d in fig.maps.items():
        r = int(layer.split("/")[0][1:])
        assert d.shape == (2, r, r), layer
        assert d.min() >= 0 and d.max() <= 1 and d.std() > 0, layer
    assert fig.grid.shape == (2 * 32, 9 * 32, 3)
    # Column 1 is b4/dat1, each map value an 8x8 gray block.
    d = fig.maps["b4/dat1"][1]
    expected = np.rint(np.kron(d, np.ones((8, 8))) * 255)
    assert np.abs(fig.grid[32:, 32:64, 0] - expected).max() <= 1
    assert (fig.grid[:, 32:, 0] == fig.grid[:, 32:, 2]).all()  # gray maps


def test_attention_edit_scale_one_is_identity_and_a_region_scale_is_not(net):
    s, c = mapped(net, [0, 1], "style"), mapped(net, [0, 1], "content")
    plain = synth(net, s, c)
    ones = np.ones((8, 8), np.float32)
    np.testing.assert_allclose(synth(net, s, c, attention_edits={"b8/dat1": ones}), plain, atol=1e-6)
    region = ones.copy()
    region[2:6, 2:6] = 2.0
    assert np.abs(synth(net, s, c, attention_edits={"b8/dat1": region}) - plain).max() > 1e-2


def test_manipulate_scales_the_region_of_that_layer_only(net):
    m = attention.manipulate(net, "b8/dat1", (0.25, 0.25, 0.75, 0.75), 2.0, seeds=[0, 1], psi_style=1)
    s, c = mapped(net, [0, 1], "style"), mapped(net, [0, 1], "content")
    _, maps = net.attention_maps(padded(np.repeat(s[:, None], 8, 1)), padded(np.repeat(c[:, None], 8, 1)))
    d = np.asarray(maps["b8/dat1"])[:2]
    expected = d.copy()
    expected[:, 2:6, 2:6] *= 2
    np.testing.assert_allclose(m.map, d, atol=1e-6)
    np.testing.assert_allclose(m.edited_map, expected, atol=1e-5)
    assert_close(m.images, synth(net, s, c))
    mask = np.ones((8, 8), np.float32)
    mask[2:6, 2:6] = 2
    assert_close(m.edited_images, synth(net, s, c, attention_edits={"b8/dat1": mask}), tol=1e-5)
    assert m.grid.shape == (2 * 32, 4 * 32, 3)


def test_manipulate_shift_copies_the_region(net):
    m = attention.manipulate(net, "b16/dat2", (0, 0, 0.25, 0.5), 1.0, shift=(0.5, 0.25), seeds=[3],
                             psi_style=1)
    expected = m.map.copy()
    expected[:, 8:12, 4:12] = m.map[:, 0:4, 0:8]
    np.testing.assert_allclose(m.edited_map, expected, atol=1e-5)
    assert np.abs(m.edited_images - m.images).max() > 1e-3


def test_region_arithmetic():
    assert attention.region_pixels((0.25, 0.5, 0.75, 1.0), 8) == (2, 6, 4, 8)
    assert attention.region_pixels((0.3, 0.3, 0.6, 0.6), 10) == (3, 6, 3, 6)  # 0.3 * 10 is 3.0000000000000004
    assert attention.region_pixels((0.1, 0.1, 0.2, 0.2), 4) == (0, 1, 0, 1)  # any pixel it touches
    assert attention.shift_pixels((0.25, -0.5), 8) == (2, -4)
    for bad in ((0.5, 0, 0.5, 1), (0, 0, 1, 1.5), (-0.1, 0, 1, 1)):
        with pytest.raises(ValueError, match="region"):
            attention.region_pixels(bad, 8)
    d = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    scaled = attention.edit_map(d, (0, 0, 0.5, 0.5), 3.0)
    assert scaled.tolist() == [[[0, 3, 2, 3], [12, 15, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]]
    moved = attention.edit_map(d, (0, 0, 0.5, 0.5), 1.0, shift=(0.5, 0.5))
    assert moved.tolist() == [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [12, 13, 4, 5]]]
    with pytest.raises(ValueError, match="leaves"):
        attention.edit_map(d, (0, 0, 0.5, 0.5), 1.0, shift=(0.75, 0))


def test_bad_slots_layers_and_models_raise_clear_errors(net):
    with pytest.raises(ValueError, match=r"slot\(s\) \[8\] out of range.*0\.\.7"):
        content_style.mixing(net, "style", [8], [0], [1])
    with pytest.raises(ValueError, match="unknown DAT layer 'b64/dat1'.*b4/dat1"):
        attention.manipulate(net, "b64/dat1", (0, 0, 1, 1))
    with pytest.raises(ValueError, match="unknown domain"):
        content_style.mixing(net, "colour", [0], [0], [1])
    with pytest.raises(ValueError, match="no content codes"):
        content_style.draw(object(), [0])


CLI_CASES = {
    "sample": (["--seeds", "0", "1", "2", "--cols", "2"], (64, 64)),
    "grid": (["--seeds", "0", "1", "--targets", "2", "3", "4"], (3 * 32, 4 * 32)),
    "mixing": (["--domain", "style", "--layers", "6", "7", "--seeds", "0", "--targets", "1", "2"], (64, 96)),
    "interpolation": (["--seeds", "0", "1", "--targets", "2", "3", "--steps", "3"], (64, 96)),
    "attention": (["--seeds", "0", "--colormap", "heat"], (32, 9 * 32)),
    "manipulate": (["--layer", "b16/dat2", "--region", "0", "0", "0.5", "0.5", "--shift", "0.5", "0.5",
                    "--seeds", "0", "1", "--zoom", "2"], (2 * 64, 4 * 64)),
}


@pytest.mark.parametrize("mode", list(CLI_CASES))
def test_cli_writes_each_mode(mode, tmp_path, net, capsys):
    flags, (height, width) = CLI_CASES[mode]
    out = tmp_path / f"{mode}.png"
    assert diagonal_cli.main([mode, "--model", str(MODEL), "--out", str(out)] + flags) == 0
    with Image.open(out) as image:
        assert image.size == (width, height) and image.mode == "RGB"
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_reads_a_work_directory(tmp_path, net, monkeypatch):
    from jaxstyle.training import restore
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({}))
    opened = []
    monkeypatch.setattr(restore, "load_diagonalgan_run", lambda path: opened.append(path) or net)
    out = tmp_path / "s.png"
    assert diagonal_cli.main(["sample", "--model", str(workdir), "--out", str(out), "--seeds", "0"]) == 0
    assert opened == [str(workdir)] and out.exists()


CLI_ERRORS = {
    "missing file": (["sample", "--model", "nope/model.npz"], "nope/model.npz not found"),
    "no content": (["sample", "--model", str(FIXTURES / "stylegan2_ada_visible.npz")], "no content mapping"),
    "empty dir": (["sample", "--model", "{tmp}"], "without config.json"),
    "layer": (["manipulate", "--model", str(MODEL), "--layer", "b64/dat1"], "unknown DAT layer 'b64/dat1'"),
    "slot": (["mixing", "--model", str(MODEL), "--layers", "2", "8"], "slot(s) [8] out of range"),
    "region": (["manipulate", "--model", str(MODEL), "--layer", "b8/dat1",
                "--region", "0.5", "0", "0.2", "1"], "region"),
    "shift": (["manipulate", "--model", str(MODEL), "--layer", "b8/dat1", "--shift", "0.5", "0"], "leaves"),
    "ends": (["interpolation", "--model", str(MODEL), "--seeds", "0", "1", "--targets", "2"], "end seeds"),
}


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_cli_bad_input_exits_2_and_writes_nothing(case, tmp_path, capsys):
    argv, message = CLI_ERRORS[case]
    out = tmp_path / "out.png"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(out)]
    assert diagonal_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert list(tmp_path.iterdir()) == []
