"""Official-tool figures (jaxstyle.editing.figures, jaxstyle.editing.video) on the fixture models.

Expected values are built here from the handles' own mapping and synthesis functions, with latents
drawn as the official tools draw them, truncation and mixing written out in NumPy, and slerp in its
closed form sin((1-t)θ)/sin θ â + sin(tθ)/sin θ b̂; never from the figure code's earlier output.
"""

import os
import re

import jax
import numpy as np
import pytest
from conftest import FIXTURES, rel_err
from PIL import Image

from jaxstyle.editing import figures, video
from jaxstyle.images import to_uint8

SG2 = str(FIXTURES / "stylegan2_ada_visible.npz")          # 16x16, 6 W+ slots, z_dim 32
DIAGONAL = str(FIXTURES / "diagonalgan_visible.npz")       # 32x32, 8 slots


def latents(seeds, z_dim):
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32)


def ws_of(net, z, psi=1.0):
    """W+ codes of latents z, truncated by hand on every slot."""
    w = np.asarray(net.mapping(z))
    w_avg = np.asarray(net.w_avg)
    return w_avg + np.float32(psi) * (w - w_avg)


_SYNTHESIS = {}


def images(net, ws):
    """The handle's own synthesis (constant noise), jitted once on a batch padded to 8 rows."""
    ws = np.asarray(ws, np.float32)
    assert len(ws) <= 8
    if id(net) not in _SYNTHESIS:
        _SYNTHESIS[id(net)] = jax.jit(lambda w: net.synthesis(w, "const"))
    padded = np.concatenate([ws, np.repeat(ws[-1:], 8 - len(ws), axis=0)])
    return np.asarray(_SYNTHESIS[id(net)](padded))[:len(ws)]


def shoemake(a, b, t):
    """Closed-form slerp of the unit vectors of a and b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    theta = np.arccos(np.clip(a @ b, -1, 1))
    return (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)


def tiles(grid, size):
    """The grid's (rows, cols, size, size, 3) tiles."""
    r, c = grid.shape[0] // size, grid.shape[1] // size
    return grid.reshape(r, size, c, size, 3).transpose(0, 2, 1, 3, 4)


def test_mixing_cell_is_row_codes_with_column_slots(sg2_net):
    rows, cols, psi = [0, 1, 2], [3, 4], 0.7
    per_row = [(0, 2, 3), (4, 5), (1,)]
    fig = figures.mixing_grid(sg2_net, rows, cols, per_row, psi=psi)
    w_rows, w_cols = ws_of(sg2_net, latents(rows, 32), psi), ws_of(sg2_net, latents(cols, 32), psi)
    expected = []
    for i, slots in enumerate(per_row):
        for j in range(len(cols)):
            w = w_rows[i].copy()
            w[list(slots)] = w_cols[j][list(slots)]
            expected.append(w)
    want = images(sg2_net, expected).reshape(fig.cells.shape)
    assert rel_err(fig.cells, want) < 1e-5
    # Official layout: black corner, column images on top, row images down the left.
    t = tiles(fig.grid, 16).astype(int)
    assert t.shape[:2] == (len(rows) + 1, len(cols) + 1) and not t[0, 0].any()
    assert np.abs(t[0, 1:] - to_uint8(images(sg2_net, w_cols))).max() <= 1
    assert np.abs(t[1:, 0] - to_uint8(images(sg2_net, w_rows))).max() <= 1
    assert np.abs(t[1:, 1:] - to_uint8(want)).max() <= 1


def test_mixing_one_range_for_all_rows(sg2_net):
    fine = figures.parse_slots("fine", 6, figures.slot_resolutions(sg2_net))    # slots 3-5 at 16x16
    fig = figures.mixing_grid(sg2_net, [5, 6], [7], fine)
    w_rows, w_cols = ws_of(sg2_net, latents([5, 6], 32)), ws_of(sg2_net, latents([7], 32))
    w_rows[:, 3:] = w_cols[:, 3:]
    assert rel_err(fig.cells[:, 0], images(sg2_net, w_rows)) < 1e-5


def test_truncation_psi_one_is_untruncated_and_psi_zero_is_w_avg(sg2_net):
    seeds = [0, 1, 2]
    fig = figures.truncation_sweep(sg2_net, seeds, psis=[1.0, 0.0])
    assert fig.cells.shape[:2] == (3, 2)
    assert rel_err(fig.cells[:, 0], images(sg2_net, ws_of(sg2_net, latents(seeds, 32)))) < 1e-5
    w_avg = np.broadcast_to(np.asarray(sg2_net.w_avg), (3, 6, 32))
    assert rel_err(fig.cells[:, 1], images(sg2_net, w_avg)) < 1e-5


def test_truncation_cutoff_leaves_later_slots_untouched(sg2_net):
    seeds, cutoff = [3, 4], 2
    fig = figures.truncation_sweep(sg2_net, seeds, psis=[0.0, 0.5], cutoff=cutoff)
    w = ws_of(sg2_net, latents(seeds, 32))
    for col, psi in enumerate([0.0, 0.5]):
        want = w.copy()
        want[:, :cutoff] = ws_of(sg2_net, latents(seeds, 32), psi)[:, :cutoff]
        assert rel_err(fig.cells[:, col], images(sg2_net, want)) < 1e-5
    t = figures.truncated(w, sg2_net.w_avg, 0.0, cutoff)
    assert np.array_equal(t[:, cutoff:], w[:, cutoff:])
    assert np.allclose(t[:, :cutoff], np.asarray(sg2_net.w_avg), atol=1e-6)
    with pytest.raises(ValueError, match="cutoff 7 out of range"):
        figures.truncated(w, sg2_net.w_avg, 0.5, 7)


def test_random_noise_is_one_draw_shared_by_every_image(sg2_net):
    ws = figures.mapped(sg2_net, [0] * 9)  # two padded batches of 8
    random = figures.render(sg2_net, ws, "random")
    assert np.array_equal(random, np.broadcast_to(random[:1], random.shape))
    assert np.abs(random[0] - images(sg2_net, ws[:1])[0]).max() > 0.1  # not the constant noise


def test_slerp_matches_closed_form():
    rng = np.random.default_rng(0)
    for _ in range(3):
        a, b = rng.normal(size=16) * 3, rng.normal(size=16) * 0.5
        theta = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        ts = np.linspace(0, 1, 9)
        got = figures.slerp(np.broadcast_to(a, (9, 16)), np.broadcast_to(b, (9, 16)), ts)
        want = np.stack([shoemake(a, b, t) for t in ts])
        assert np.abs(got - want).max() < 1e-6
        assert np.allclose(got[0], a / np.linalg.norm(a), atol=1e-6)
        assert np.allclose(got[-1], b / np.linalg.norm(b), atol=1e-6)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
        angles = np.arccos(np.clip(got @ (a / np.linalg.norm(a)), -1, 1))
        assert np.allclose(angles, ts * theta, atol=1e-3)  # arccos is steep near 1
    same = figures.slerp(np.ones((2, 4)), np.ones((2, 4)), np.array([0.3, 1.0]))
    assert np.allclose(same, 0.5)  # identical keyframes: no NaN, the unit vector itself


def test_transitions_loop_back_to_the_first_keyframe():
    start, end, t = figures.transitions(3, 4, loop=True)
    assert len(t) == 12
    assert list(start) == [0] * 4 + [1] * 4 + [2] * 4 and list(end) == [1] * 4 + [2] * 4 + [0] * 4
    assert np.allclose(t, np.tile([0, 0.25, 0.5, 0.75], 3))
    start, end, t = figures.transitions(3, 4, loop=False)
    assert len(t) == 9 and (start[-1], t[-1]) == (2, 0.0)
    keys = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = figures.keyframe_path(keys, 4, loop=True)
    assert np.array_equal(path[::4], keys)
    assert np.allclose(path[11], keys[2] + 0.75 * (keys[0] - keys[2]))
    with pytest.raises(ValueError, match="at least 2 keyframes"):
        figures.transitions(1, 4)


def test_interpolation_ws_z_slerp_and_w_lerp(sg2_net):
    seeds, steps, psi = [0, 1, 2, 3], 2, 0.5
    z = latents(seeds, 32)
    ws = figures.interpolation_ws(sg2_net, seeds, steps, "z", True, psi, cells=2)
    assert ws.shape == (4, 2, 6, 32)  # 2 keyframes per cell x 2 steps, looping
    # Cell 1's keyframes are seeds 2 and 3 (cell-major, as gen_video.py); frame 1 is halfway.
    want = ws_of(sg2_net, shoemake(z[2], z[3], 0.5)[None].astype(np.float32), psi)[0]
    assert rel_err(ws[1, 1], want) < 1e-5
    assert rel_err(ws[0, 0], ws_of(sg2_net, z[:1], psi)[0]) < 1e-5
    ws = figures.interpolation_ws(sg2_net, seeds[:3], 2, "w", False, psi)
    keys = ws_of(sg2_net, z[:3], psi)
    assert ws.shape == (5, 1, 6, 32)
    assert rel_err(ws[3, 0], (keys[1] + keys[2]) / 2) < 1e-5 and rel_err(ws[4, 0], keys[2]) < 1e-6


@pytest.fixture(scope="module")
def diagonal_net():
    from jaxstyle.interop import load_diagonalgan
    return load_diagonalgan(DIAGONAL)


def diagonal_codes(net, seeds, domain, mean, psi):
    """(N, dim) codes by the documented convention: an N(0, I) draw per seed and domain."""
    index = {"style": 0, "content": 1}[domain]
    z = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(s), index), (net.G.z_dim,)))
                  for s in seeds])
    codes = np.asarray((net.style_mapping if domain == "style" else net.content_mapping)(z))
    return mean + np.float32(psi) * (codes - mean)


@pytest.mark.parametrize("moving", ["style", "content"])
def test_diagonal_interpolation_moves_one_domain_only(diagonal_net, moving):
    net, seeds = diagonal_net, [0, 1, 2]
    rng = np.random.default_rng(1)
    means = rng.normal(size=(2, net.G.w_dim)).astype(np.float32)
    codes = figures.content_style_interpolation(net, seeds, 2, moving, "w", True, 0.7, 0.8, means)
    fixed = "content" if moving == "style" else "style"
    psi = {"style": 0.7, "content": 0.8}
    i_moving, i_fixed = ("style", "content").index(moving), ("style", "content").index(fixed)
    moved, still = codes[i_moving], codes[i_fixed]
    assert moved.shape == still.shape == (6, 1, net.num_slots, net.G.w_dim)
    keys = diagonal_codes(net, seeds, moving, means[i_moving], psi[moving])
    first = diagonal_codes(net, seeds[:1], fixed, means[i_fixed], psi[fixed])[0]
    assert rel_err(still, np.broadcast_to(first[None, None], still.shape)) < 1e-5
    assert rel_err(moved[::2, 0, 0], keys) < 1e-5
    assert rel_err(moved[5, 0, 3], (keys[2] + keys[0]) / 2) < 1e-5  # the loop closes to keyframe 0


def test_tile_lays_cells_row_by_row():
    cells = np.linspace(-1, 1, 2 * 6 * 2 * 2 * 3, dtype=np.float32).reshape(2, 6, 2, 2, 3)
    frames = figures.tile(cells, (3, 2))
    assert frames.shape == (2, 4, 6, 3)
    assert np.array_equal(frames[1, 2:4, 4:6], to_uint8(cells[1, 5]))  # row 1, column 2


def test_gif_frames_size_and_loop(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 12, 3), dtype=np.uint8)
    path = video.write_gif(frames, tmp_path / "a.gif", fps=10)
    with Image.open(path) as im:
        assert (im.n_frames, im.size, im.info["loop"], im.info["duration"]) == (5, (12, 8), 0, 100)
    with Image.open(video.write_gif(frames, tmp_path / "b.gif", loop=3)) as im:
        assert im.info["loop"] == 3
    with pytest.raises(ValueError, match="uint8 frames"):
        video.write_gif(frames.astype(np.float32), tmp_path / "c.gif")
    with pytest.raises(ValueError, match=r"\.gif"):
        video.write_video(frames, tmp_path / "d.avi")
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "b.gif"]


def test_slot_and_seed_specs(sg2_net):
    assert figures.parse_seeds("0,3,5-7") == [0, 3, 5, 6, 7]
    # StyleGAN2's slots at 1024 px, by the resolution of the conv reading each (slot 2k+1 is block
    # 4*2^k's ToRGB and block 4*2^(k+1)'s first conv); the last slot only the 1024 ToRGB reads.
    at_1024 = {s: 4 * 2 ** ((s + 1) // 2) for s in range(17)} | {17: 1024}
    assert figures.parse_slots("coarse", 18, at_1024) == (0, 1, 2)
    assert figures.parse_slots("middle,0", 18, at_1024) == (0, 3, 4, 5, 6)
    assert figures.parse_slots("fine", 18, at_1024) == tuple(range(7, 18))
    assert figures.parse_slots("all", 6) == tuple(range(6))
    at_16 = figures.slot_resolutions(sg2_net)     # 16x16: the output resolution counts as fine
    assert at_16 == {0: 4, 1: 8, 2: 8, 3: 16, 4: 16, 5: 16}
    assert figures.parse_slots("coarse", 6, at_16) == (0, 1, 2)
    assert figures.parse_slots("fine", 6, at_16) == (3, 4, 5)
    for spec, message in [("middle", "is empty"), ("0-6", r"\[6\] out of range"), ("3-1", "end is below")]:
        with pytest.raises(ValueError, match=message):
            figures.parse_slots(spec, 6, at_16)
    with pytest.raises(ValueError, match="2 style ranges for 3 rows"):
        figures.row_styles([(0,), (1,)], 3, 6)


def run_cli(capsys, *argv):
    code = figures.main(list(argv))
    return code, capsys.readouterr()


def test_cli_writes_each_figure(tmp_path, capsys):
    out = tmp_path / "mix.png"
    code, _ = run_cli(capsys, "mixing", "--model", SG2, "--rows", "0-2", "--cols", "3,4", "--styles", "0-1",
                      "--zoom", "2", "--out", str(out))
    grid = np.asarray(Image.open(out))
    assert code == 0 and grid.shape == (4 * 32, 3 * 32, 3) and not grid[:32, :32].any()
    code, _ = run_cli(capsys, "truncation", "--model", SG2, "--seeds", "0,1", "--psis=-1,0,1",
                      "--cutoff", "3", "--out", str(tmp_path / "trunc.png"))
    assert code == 0 and Image.open(tmp_path / "trunc.png").size == (3 * 16, 2 * 16)
    code, _ = run_cli(capsys, "interpolation", "--model", SG2, "--seeds", "0-5", "--grid", "3x1",
                      "--steps", "3", "--space", "z", "--out", str(tmp_path / "interp.gif"))
    with Image.open(tmp_path / "interp.gif") as im:
        assert code == 0 and (im.n_frames, im.size, im.info["loop"]) == (6, (48, 16), 0)


@pytest.mark.parametrize("argv, message", [
    (["mixing", "--rows", "0", "--cols", "1", "--out", "x.gif"], "written as .png"),
    (["mixing", "--rows", "a,b", "--cols", "1", "--out", "x.png"], "bad seed 'a'"),
    (["mixing", "--rows", "5-2", "--cols", "1", "--out", "x.png"], "end is below"),
    (["mixing", "--rows", "4294967296", "--cols", "1", "--out", "x.png"], "seed 4294967296 out of range"),
    (["mixing", "--rows", "0", "--cols", "1", "--out", "x.png"], r"slot\(s\) \[6\] out of range"),
    (["mixing", "--rows", "0", "--cols", "1", "--styles", "middle", "--out", "x.png"], "range .middle. is empty"),
    (["mixing", "--rows", "0", "--cols", "1", "--styles", "0", "1", "--out", "x.png"],
     "2 style ranges for 1 rows"),
    (["truncation", "--cutoff", "9", "--out", "x.png"], "cutoff 9 out of range"),
    (["truncation", "--psis", "1,x", "--out", "x.png"], "bad psi list"),
    (["truncation", "--zoom", "0", "--out", "x.png"], "--zoom"),
    (["interpolation", "--seeds", "0-3", "--out", "x.png"], r"\.gif"),
    (["interpolation", "--seeds", "0", "--out", "x.gif"], "at least 2 keyframes"),
    (["interpolation", "--seeds", "0-2", "--grid", "2x1", "--out", "x.gif"], "do not fill a 2x1 grid"),
    (["interpolation", "--seeds", "0-2", "--fps", "60", "--out", "x.gif"], "--fps"),
    (["interpolation", "--seeds", "0-2", "--domain", "style", "--out", "x.gif"], "for DiagonalGAN models"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    argv = [a if a not in ("x.png", "x.gif") else str(tmp_path / a) for a in argv]
    code, captured = run_cli(capsys, *argv[:1], "--model", SG2, *argv[1:])
    assert code == 2 and captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert re.search(message, captured.err), captured.err
    assert os.listdir(tmp_path) == []


def test_cli_bad_models_exit_2(tmp_path, capsys):
    cases = [(["--model", str(tmp_path / "none.npz")], "not found"),
             (["--workdir", str(tmp_path)], "config.json not found"),
             (["--model", DIAGONAL], "DiagonalGAN model")]
    for source, message in cases:
        code, captured = run_cli(capsys, "mixing", *source, "--rows", "0", "--cols", "1",
                                 "--out", str(tmp_path / "m.png"))
        assert code == 2 and message in captured.err and captured.err.count("\n") == 1
    code, captured = run_cli(capsys, "interpolation", "--model", SG2, "--seeds", "0,1",
                             "--out", str(tmp_path / "v.mp4"))
    if video.mp4_available():
        assert code == 0 and (tmp_path / "v.mp4").stat().st_size > 0
    else:
        assert code == 2 and "imageio-ffmpeg" in captured.err
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("name, kind", [("stylegan2_ada_visible.pkl", "StyleGAN2"), ("rosinality_visible.pt", "StyleGAN2"),
                                        ("stylegan2_ada_visible.npz", "StyleGAN2"),
                                        ("diagonalgan_visible.model", "DiagonalGAN"),
                                        ("diagonalgan_visible.npz", "DiagonalGAN")])
def test_every_tool_opens_every_checkpoint_kind(name, kind):
    """The one opener behind figures, SeFa and projection: official pickles and rosinality files
    are StyleGAN2 generators, DiagonalGAN files DiagonalGAN ones, whatever the suffix says."""
    from jaxstyle.editing.checkpoints import open_generator
    assert type(open_generator(model=str(FIXTURES / name))).__name__ == kind


def test_list_values_may_start_with_a_minus():
    from jaxstyle.editing.cli import join_list_values
    argv = ["truncation", "--psis", "-1,0,1", "--seeds", "0", "--alphas", "-3", "--out", "x.png"]
    assert join_list_values(argv, ("--psis",)) == ["truncation", "--psis=-1,0,1", "--seeds", "0", "--alphas", "-3",
                                                   "--out", "x.png"]
    parsed = figures.build_parser().parse_args(join_list_values(argv[:5] + ["--model", "g.npz", "--out", "x.png"], ("--psis",)))
    assert parsed.psis == "-1,0,1"
    assert join_list_values(["--psis", "--out", "x"], ("--psis",)) == ["--psis", "--out", "x"]   # no value
