"""DiagonalGAN training: the progressive schedule, the optimizer's mapping lr, and both presets
running through train() (tiny sizes)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxstyle.checkpoint import CheckpointMismatch
from jaxstyle.parallel import make_mesh
from jaxstyle.training.loop import train
from jaxstyle.training.progressive import phase_at
from jaxstyle.training.steps import Objective, box_downsample, g_optimizer
from train_helpers import tiny_config

BATCH = {"4": 16, "8": 8, "16": 4}
LR = {"16": 0.0015}


def official_schedule(iterations, init_size, max_size, phase, batch, lr):
    """Yields (resolution, alpha, batch, lr) per iteration as rosinality's / DiagonalGAN's train.py loop."""
    step = int(np.log2(init_size)) - 2
    max_step = int(np.log2(max_size)) - 2
    resolution, used, final = 4 * 2 ** step, 0, False
    b = batch.get(resolution, 8)
    for _ in range(iterations):
        alpha = min(1, 1 / phase * (used + 1))
        if resolution == init_size or final:
            alpha = 1
        if used > phase * 2:
            used = 0
            step += 1
            if step > max_step:
                step, final, alpha = max_step, True, 1
            else:
                alpha = 0
            resolution = 4 * 2 ** step
            b = batch.get(resolution, 8)
        yield resolution, alpha, b, lr.get(resolution, 0.001)
        used += b


def test_schedule_follows_the_official_loop():
    batch, lr = {int(k): v for k, v in BATCH.items()}, {int(k): v for k, v in LR.items()}
    nimg = 0
    for i, (res, alpha, b, rate) in enumerate(official_schedule(400, 4, 16, 40, batch, lr)):
        ph = phase_at(nimg, 4, 16, 0.040, BATCH, LR)
        assert (ph.resolution, ph.batch_size, ph.lr) == (res, b, rate), i
        assert ph.alpha == pytest.approx(alpha), i
        nimg += ph.batch_size
    assert ph.resolution == 16 and ph.alpha == 1


def test_mapping_networks_step_at_a_hundredth_of_the_learning_rate():
    # Adam's first step with beta1 = 0 moves every parameter by lr * g / (|g| + eps) ~ lr.
    params = {"mapping": {"w": jnp.ones(3)}, "content_mapping": {"w": jnp.ones(2)}, "synthesis": {"w": jnp.ones(4)}}
    grads = jax.tree_util.tree_map(lambda p: p * 0.5, params)
    tx = g_optimizer(Objective(batch_size=4, g_lr=0.002, pl_interval=0, mapping_lr_scale=0.01))
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["synthesis"]["w"], -0.002, rtol=1e-4)
    np.testing.assert_allclose(updates["mapping"]["w"], -0.002 * 0.01, rtol=1e-4)
    np.testing.assert_allclose(updates["content_mapping"]["w"], -0.002 * 0.01, rtol=1e-4)
    assert isinstance(g_optimizer(Objective(batch_size=4)), optax.GradientTransformation)


def test_box_downsample_averages_blocks():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    expected = x.reshape(2, 2, 2, 2, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(box_downsample(jnp.asarray(x), 2), expected)
    np.testing.assert_array_equal(box_downsample(jnp.asarray(x), 4), x)


TINY_DGAN = {
    "data.resolution": 16, "data.workers": 1, "model.z_dim": 16, "model.w_dim": 16,
    "model.mapping_layers": 2, "model.channel_base": 128, "model.channel_max": 16,
    "progressive.init_resolution": 8, "progressive.phase_kimg": 0.012,
    "progressive.batch": {"8": 8, "16": 8}, "total_kimg": 0.096, "log_every_kimg": 0.008,
    "sample_every_kimg": 0.048, "checkpoint_every_kimg": 0.048, "sample_grid": (2, 2),
}


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(jax.devices()[:2])


def test_diagonalgan_grows_from_8_to_16_and_resumes_exactly(tmp_path, mesh):
    config = tiny_config("diagonalgan", TINY_DGAN)
    straight = train(config, str(tmp_path / "a"), mesh=mesh, progress=False)
    records = [json.loads(line) for line in open(tmp_path / "a" / "metrics.jsonl")]
    seen = [(r["resolution"], r["alpha"]) for r in records if "resolution" in r]
    # stage 8: 4 iterations of 8 images (first count past 2 * 12), then 16 fading in over 12 images.
    assert seen[:6] == [(8, 1.0), (8, 1.0), (8, 1.0), (8, 1.0), (16, 0.0), (16, pytest.approx(9 / 12))]
    assert seen[-1] == (16, 1.0) and len(seen) == 12
    assert {"loss/ds", "loss/D", "loss/G"} <= set(records[-1])
    g = straight.g["params"]
    assert set(g) == {"mapping", "content_mapping", "synthesis"}
    assert "dat1" in g["synthesis"]["b16"] and not any("noise" in k for k in g["synthesis"]["b16"])
    # Stop inside stage 16's fade-in (the next iteration has alpha 0.75), resume, and land on the
    # same weights.
    part = train(config, str(tmp_path / "b"), mesh=mesh, max_steps=5, progress=False)
    assert int(part.step) == 5
    resumed = train(config, str(tmp_path / "b"), mesh=mesh, progress=False)
    assert int(resumed.step) == int(straight.step) == 12
    for a, b in zip(jax.tree_util.tree_leaves(straight.g_ema), jax.tree_util.tree_leaves(resumed.g_ema)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "a" / "samples").iterdir())[-1] == "latest.png"
    # A changed schedule is another run: resuming it is refused.
    with pytest.raises(CheckpointMismatch, match="progressive.phase_kimg"):
        train(tiny_config("diagonalgan", {**TINY_DGAN, "progressive.phase_kimg": 0.024}), str(tmp_path / "b"),
              mesh=mesh, progress=False)


def test_diagonal_stylegan2_trains_content_codes(tmp_path, mesh):
    config = tiny_config("diagonal_stylegan2", **{"model.mapping_layers": 2, "objective.ds_margin": 10.0})
    state = train(config, str(tmp_path), mesh=mesh, max_steps=2, progress=False)
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    # With a margin above any reachable difference the hinge is active and the loss is positive.
    assert all(0 < r["loss/ds"] < 10 for r in records)
    assert "dat" in state.g["params"]["synthesis"]["b16"]["conv0"]
    assert "noise" not in state.g["params"]["synthesis"]["b16"]["conv0"]
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree_util.tree_leaves(state.g))
    # The run opens as a DiagonalGAN handle; content moves the image, one code per slot works.
    from jaxstyle.training.restore import load_diagonalgan_run
    net = load_diagonalgan_run(str(tmp_path))
    z = jax.random.normal(jax.random.key(1), (3, 16))
    s, c = net.style_mapping(z[:2]), net.content_mapping(z[1:])
    img, maps = net.attention_maps(s, c)
    assert img.shape == (2, 16, 16, 3) and set(maps) == set(net.attention_layers)
    assert maps["b16/conv1/dat"].shape == (2, 16, 16)
    np.testing.assert_allclose(net.synthesis(s, c), img, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(net.synthesis(s, c[::-1]) - img).max()) > 1e-3
