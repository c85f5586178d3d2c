"""Projection (image -> latent), as StyleGAN2-ADA projector.py and Image2StyleGAN.

References are written here: the official schedules as closed forms in plain Python, the noise
regulariser and the w statistics in NumPy, LPIPS through the tested LPIPS module, and images
that the fixture networks generate from codes chosen here.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from jaxstyle.editing import projection as P
from jaxstyle.editing import projection_cli

SG2 = FIXTURES / "stylegan2_ada_visible.npz"      # 16x16, w_dim 32, 6 slots, noise in every layer
DIAG = FIXTURES / "diagonalgan_visible.npz"       # 32x32 AdaIN + DAT, code_dim 32, no noise
STEPS = 40                                         # shared by the w test and the CLI run: one compile


@pytest.fixture(scope="module")
def sg2():
    from jaxstyle.interop import load_stylegan2_ada
    net = load_stylegan2_ada(SG2)
    return net, P.for_stylegan2(net.G, net.g_vars, num_samples=4000)


@pytest.fixture(scope="module")
def sg2_synthesis(sg2):
    """The fixture generator's synthesis with its constant noise, jitted (eager runs op by op)."""
    return jax.jit(lambda ws: sg2[0].synthesis(ws))


@pytest.fixture(scope="module")
def sg2_targets(sg2, sg2_synthesis):
    """Two images the fixture generator makes from known w (one w for every slot, constant noise)."""
    net, _ = sg2
    ws = jax.jit(lambda z: net.mapping(z))(jax.random.normal(jax.random.key(1), (2, net.G.z_dim)))
    return ws, np.asarray(sg2_synthesis(ws))


# ---------------------------------------------------------------------------------- closed forms

def official_lr(step, num_steps, lr0=0.1, rampdown=0.25, rampup=0.05):
    t = step / num_steps
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr0 * ramp * min(1.0, t / rampup)


@pytest.mark.parametrize("step,num_steps,lr0,rampdown,rampup", [
    (0, 1000, 0.1, 0.25, 0.05), (1, 1000, 0.1, 0.25, 0.05), (25, 1000, 0.1, 0.25, 0.05),
    (49, 1000, 0.1, 0.25, 0.05), (50, 1000, 0.1, 0.25, 0.05), (400, 1000, 0.1, 0.25, 0.05),
    (751, 1000, 0.1, 0.25, 0.05), (900, 1000, 0.1, 0.25, 0.05), (999, 1000, 0.1, 0.25, 0.05),
    (7, 200, 0.3, 0.5, 0.1), (150, 200, 0.3, 0.5, 0.1)])
def test_learning_rate_is_the_official_ramp(step, num_steps, lr0, rampdown, rampup):
    got = float(P.learning_rate(step, num_steps, lr0, rampdown, rampup))
    assert got == pytest.approx(official_lr(step, num_steps, lr0, rampdown, rampup), rel=1e-5, abs=1e-9)


def test_learning_rate_landmarks():
    # Zero at the start, the full rate on the plateau, half way down the cosine at t = 0.875.
    assert float(P.learning_rate(0, 1000)) == 0.0
    assert float(P.learning_rate(500, 1000)) == pytest.approx(0.1)
    assert float(P.learning_rate(875, 1000)) == pytest.approx(0.05, rel=1e-5)


@pytest.mark.parametrize("step", [0, 100, 374, 750, 900])
def test_latent_noise_scale_is_official(step):
    t = step / 1000
    expected = 2.5 * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
    assert float(P.latent_noise_scale(step, 1000, 2.5)) == pytest.approx(expected, rel=1e-5, abs=1e-12)


def numpy_noise_regularization(maps):
    """projector.py's loop in NumPy, float64: roll by one along x and y, 2x2 average pool to 8x8."""
    total = 0.0
    for n in maps:
        n = np.asarray(n, np.float64)
        while True:
            total += np.mean(n * np.roll(n, 1, axis=1)) ** 2 + np.mean(n * np.roll(n, 1, axis=0)) ** 2
            if n.shape[0] <= 8:
                break
            n = 0.25 * (n[0::2, 0::2] + n[1::2, 0::2] + n[0::2, 1::2] + n[1::2, 1::2])
    return total


def test_noise_regularization_matches_numpy():
    rng = np.random.default_rng(0)
    # Correlated maps (a smoothed field plus an offset) make every term of the pyramid non-zero.
    maps = []
    for size in (4, 8, 16, 32, 64):
        n = rng.standard_normal((size, size))
        maps.append(n + np.roll(n, 1, 0) + 0.5 * np.roll(n, 1, 1) + 0.3)
    got = float(P.noise_regularization([jnp.asarray(m, jnp.float32) for m in maps]))
    assert got == pytest.approx(numpy_noise_regularization(maps), rel=1e-4)
    # Per level: a 32x32 map contributes at 32, 16 and 8 (three levels), not at 4.
    single = float(P.noise_regularization([jnp.asarray(maps[3], jnp.float32)]))
    assert single == pytest.approx(numpy_noise_regularization([maps[3]]), rel=1e-4)


def test_normalize_noise_gives_zero_mean_unit_variance():
    n = 3.0 * jax.random.normal(jax.random.key(0), (16, 16)) + 2.0
    out = np.asarray(P.normalize_noise(n), np.float64)
    assert abs(out.mean()) < 1e-6
    assert out.var() == pytest.approx(1.0, rel=1e-5)
    # The official update is a shift and a scale: the map keeps its pattern.
    assert np.corrcoef(out.ravel(), np.asarray(n).ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_latent_stats_are_the_official_mean_and_spread():
    a = np.random.default_rng(1).standard_normal((8, 5)).astype(np.float32)
    mapping = lambda z: jnp.tanh(z @ a) + 0.5
    avg, std = P.latent_stats(mapping, 8, num_samples=3000, seed=123, chunk=700)
    z = np.random.RandomState(123).randn(3000, 8)
    w = np.tanh(z @ a.astype(np.float64)) + 0.5
    assert np.allclose(np.asarray(avg), w.mean(0), atol=1e-5)
    assert std == pytest.approx(np.sqrt(np.sum((w - w.mean(0)) ** 2) / 3000), rel=1e-5)


def test_lpips_from_features_equals_lpips():
    """Target features once, then the lin-weighted comparison: the LPIPS module's number, for any
    weights (random ones here; the module itself is checked against the lpips package elsewhere)."""
    from jaxstyle.metrics.lpips import LPIPS
    x0, x1 = (jax.random.uniform(jax.random.key(i), (2, 16, 16, 3), minval=-1, maxval=1) for i in (0, 1))
    # NumPy draws: generating VGG16's 15M weights with JAX's PRNG on CPU takes longer than the test.
    rng = np.random.default_rng(2)
    shapes = jax.eval_shape(LPIPS().init, jax.random.key(0), x0, x1)["params"]
    params = jax.tree.map(lambda s: jnp.asarray(np.abs(rng.standard_normal(s.shape, np.float32))
                                                * np.sqrt(2.0 / np.prod(s.shape[:-1]))), shapes)
    dist = P.Distance("lpips")

    @jax.jit
    def both(params, x0, x1):
        return dist(params, dist.features(params, x0), x1), LPIPS().apply({"params": params}, x0, x1)
    got, expected = both(params, x0, x1)
    assert np.allclose(np.asarray(got), np.asarray(expected), rtol=1e-5)


# ---------------------------------------------------------------------------------- projection

def test_wplus_with_equal_slots_is_w_mode_at_the_start(sg2, sg2_targets):
    """Loss and gradient at the starting point: W+ with every slot w equals w mode, and the W+
    gradient summed over slots is the w gradient (chain rule through the broadcast)."""
    net, model = sg2
    dist, params = P.make_distance("pixel")
    target = dist.features(params, sg2_targets[1])
    w0, wp = P.initial_codes(model, 2, "w"), P.initial_codes(model, 2, "w+")
    assert wp["w"].shape == (2, net.num_ws, net.G.w_dim) and np.all(np.asarray(wp["w"]) == np.asarray(w0["w"]))
    # Per-image noise maps, as the default (noise-optimising) projection synthesises.
    buffers = P.initial_noise(model, 2, jax.random.key(3))
    f = jax.jit(jax.value_and_grad(lambda codes: jnp.sum(P.reconstruction_distance(model, dist, params, target,
                                                                           codes, buffers))))
    (l0, g0), (lp, gp) = f(w0), f(wp)
    assert float(lp) == pytest.approx(float(l0), rel=1e-6)
    assert np.allclose(np.asarray(gp["w"]).sum(1), np.asarray(g0["w"])[:, 0], rtol=1e-4, atol=1e-6)


def window_means(d, width=10):
    return d[: len(d) // width * width].reshape(-1, width, d.shape[1]).mean(1)


def test_projecting_a_generated_image_recovers_it(sg2, sg2_targets):
    """The official procedure (w and noise maps, noise regularised), pixel distance, few steps."""
    _, model = sg2
    ws, targets = sg2_targets
    result = P.project(model, targets, P.ProjectionConfig(num_steps=STEPS), "pixel")
    d = np.asarray(result.distances)
    assert d.shape == (STEPS, 2)
    # Every 10-step window lower than the one before, and the end far below the start.
    assert np.all(np.diff(window_means(d), axis=0) < 0)
    assert np.all(np.asarray(result.final_distances) < 0.3 * d[0])
    mse = np.mean((np.asarray(result.images) - targets) ** 2, axis=(1, 2, 3))
    assert np.allclose(mse, np.asarray(result.final_distances), rtol=1e-4)
    # The code moved most of the way from w_avg to the w that made the image.
    start = np.linalg.norm(np.asarray(model.code_avg["w"]) - np.asarray(ws[:, 0]), axis=-1)
    end = np.linalg.norm(np.asarray(result.codes["w"][:, 0]) - np.asarray(ws[:, 0]), axis=-1)
    assert np.all(end < 0.5 * start), (start, end)
    # Every optimised noise map of every image left normalised by the last step.
    maps = P.noise_maps(result.buffers)
    assert len(maps) == 5 and all(m.shape[0] == 2 for m in maps)
    for m in maps:
        m = np.asarray(m, np.float64)
        assert np.allclose(m.mean(axis=(1, 2)), 0, atol=1e-5) and np.allclose(m.var(axis=(1, 2)), 1, rtol=1e-4)


def test_diagonalgan_projection_optimises_style_and_content():
    from jaxstyle.interop import load_diagonalgan
    net = load_diagonalgan(DIAG)
    model = P.for_diagonalgan(net, num_samples=2000)
    assert model.code_names == ("style", "content") and not model.has_noise
    slots = lambda c: jnp.repeat(c[:, None], model.num_ws, axis=1)
    styles = net.style_mapping(jax.random.normal(jax.random.key(2), (2, net.G.z_dim)))
    contents = net.content_mapping(jax.random.normal(jax.random.key(3), (2, net.G.z_dim)))
    targets = np.asarray(net.synthesis(slots(styles), slots(contents)))
    result = P.project(model, targets, P.ProjectionConfig(num_steps=30), "pixel")
    d = np.asarray(result.distances)
    assert np.all(np.asarray(result.final_distances) < 0.5 * d[0])
    for name in ("style", "content"):
        moved = np.linalg.norm(np.asarray(result.codes[name][:, 0]) - np.asarray(model.code_avg[name]), axis=-1)
        assert np.all(moved > 0.2 * model.code_std[name]), (name, moved)
        assert result.history[name].shape == (30, 2, 1, net.G.z_dim)
    assert result.buffers is None


# ---------------------------------------------------------------------------------- command line

def write_png(path, array):
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return str(path)


def run_cli(capsys, *args):
    code = projection_cli.main([*map(str, args)])
    return code, capsys.readouterr().err


def test_cli_writes_projection(tmp_path, capsys, sg2, sg2_targets):
    from jaxstyle.images import to_uint8
    model = sg2[1]
    targets = to_uint8(sg2_targets[1])
    paths = [write_png(tmp_path / f"t{i}.png", t) for i, t in enumerate(targets)]
    out = tmp_path / "out"
    code, err = run_cli(capsys, "--model", SG2, "--target", paths[0], "--target", paths[1],
                        "--out", out, "--steps", STEPS, "--distance", "pixel", "--seed", 0, "--video")
    assert code == 0, err
    with Image.open(out / "proj.gif") as gif:
        assert gif.size == (2 * 16, 2 * 16) and gif.n_frames > 1
    grid = np.asarray(Image.open(out / "proj.png"))
    assert grid.shape == (2 * 16, 2 * 16, 3)
    assert np.array_equal(grid[:16, :16], targets[0]) and np.array_equal(grid[16:, :16], targets[1])
    with np.load(out / "projected_w.npz") as f:
        w, d = f["w"], f["distances"]
        noise = {k: f[k] for k in f.files if k.startswith("noise/")}
    assert w.shape == (2, 6, 32) and d.shape == (STEPS, 2)
    assert np.all(d[-1] < 0.5 * d[0])
    assert sorted(noise) == ["noise/b16/conv0", "noise/b16/conv1", "noise/b4/conv1", "noise/b8/conv0",
                             "noise/b8/conv1"]
    assert noise["noise/b16/conv0"].shape == (2, 16, 16)
    # The saved w and noise maps render the saved reconstruction.
    buffers = {"synthesis": {}}
    for name, v in noise.items():
        block, layer = name.split("/")[1:]
        buffers["synthesis"].setdefault(block, {})[layer] = {"noise": {"noise_const": jnp.asarray(v)}}
    recon = to_uint8(P.render(model, {"w": jnp.asarray(w)}, buffers))
    assert np.abs(recon.astype(int) - grid[:, 16:].reshape(2, 16, 16, 3)).max() <= 1


@pytest.mark.parametrize("case", ["missing_target", "wrong_size", "grayscale", "rgba", "missing_model",
                                  "zero_steps", "out_is_file", "bad_space", "no_target"])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case):
    good = write_png(tmp_path / "good.png", np.zeros((16, 16, 3)))
    out = tmp_path / "out"
    args = {"model": SG2, "target": good, "out": out}
    extra, expect = [], "--target"
    if case == "missing_target":
        args["target"], expect = tmp_path / "nope.png", "not found"
    elif case == "wrong_size":
        args["target"], expect = write_png(tmp_path / "big.png", np.zeros((32, 32, 3))), "16x16"
    elif case == "grayscale":
        args["target"], expect = write_png(tmp_path / "g.png", np.zeros((16, 16))), "RGB"
    elif case == "rgba":
        args["target"], expect = write_png(tmp_path / "a.png", np.zeros((16, 16, 4))), "RGB"
    elif case == "missing_model":
        args["model"], expect = tmp_path / "nope.npz", "not found"
    elif case == "zero_steps":
        extra, expect = ["--steps", "0"], "--steps"
    elif case == "out_is_file":
        out.write_text("x")
        expect = "is a file"
    elif case == "bad_space":
        extra, expect = ["--space", "z"], "invalid choice"
    argv = [f"--{k}={v}" for k, v in args.items() if not (case == "no_target" and k == "target")] + extra
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert expect in err
    assert case == "out_is_file" or not out.exists()
