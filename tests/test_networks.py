"""Generator and discriminator structure, truncation, style mixing and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import Discriminator, Generator, mix_styles, synthesis_num_ws, truncate, update_w_avg

SMALL = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def small_g():
    """A 16x16 generator with random weights, non-zero noise strengths and a random w_avg."""
    G = Generator(img_resolution=16, **SMALL)
    v = G.init({"params": jax.random.key(0)}, jnp.zeros((1, 16)), noise_mode="const")
    v = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.3 if "noise_strength" in jax.tree_util.keystr(p) else x, v)
    w_avg = jax.random.normal(jax.random.key(1), (16,))
    synth = jax.jit(lambda ws: G.apply(v, ws, "const", method=Generator.synthesize))
    return G, v, w_avg, synth


def test_truncation_psi_zero_gives_identical_images(small_g):
    G, v, w_avg, synth = small_g
    z = jax.random.normal(jax.random.key(2), (4, 16))
    ws = G.apply(v, z, None, w_avg, 0.0, method=Generator.map)
    img = np.asarray(synth(ws))
    np.testing.assert_allclose(img, np.broadcast_to(img[:1], img.shape), atol=1e-6)
    # Another batch size may pick another convolution algorithm: equal to rounding.
    np.testing.assert_allclose(img[:1], synth(jnp.broadcast_to(w_avg, (1, G.num_ws, 16))), atol=1e-5)
    assert np.std(synth(G.apply(v, z, method=Generator.map)), axis=0).mean() > 1e-3


def test_truncation_psi_one_is_identity_and_cutoff_limits_slots():
    ws = jax.random.normal(jax.random.key(3), (2, 6, 4))
    w_avg = jnp.arange(4.0)
    np.testing.assert_array_equal(truncate(ws, w_avg, 1.0), ws)
    t = np.asarray(truncate(ws, w_avg, 0.5, cutoff=2))
    np.testing.assert_allclose(t[:, :2], np.asarray(w_avg) + 0.5 * (np.asarray(ws[:, :2]) - np.asarray(w_avg)))
    np.testing.assert_array_equal(t[:, 2:], ws[:, 2:])


def test_mixing_equals_explicit_w_plus(small_g):
    G, v, w_avg, synth = small_g
    ws1 = G.apply(v, jax.random.normal(jax.random.key(4), (3, 16)), method=Generator.map)
    ws2 = G.apply(v, jax.random.normal(jax.random.key(5), (3, 16)), method=Generator.map)
    for k in range(1, G.num_ws):
        explicit = np.concatenate([np.asarray(ws1)[:, :k], np.asarray(ws2)[:, k:]], axis=1)
        np.testing.assert_array_equal(mix_styles(ws1, ws2, k), explicit)
        # Equal inputs; on GPU two calls may pick different convolution algorithms.
        np.testing.assert_allclose(synth(mix_styles(ws1, ws2, k)), synth(jnp.asarray(explicit)), atol=1e-6)
    # One cutoff per sample, as a training step draws them.
    per_sample = np.asarray(mix_styles(ws1, ws2, jnp.array([1, 3, 5])))
    np.testing.assert_array_equal(per_sample[1, :3], ws1[1, :3])
    np.testing.assert_array_equal(per_sample[1, 3:], ws2[1, 3:])


def test_w_avg_update_is_official_lerp():
    w = jax.random.normal(jax.random.key(6), (8, 6, 4))
    w_avg = jnp.ones(4)
    want = np.asarray(w[:, 0]).mean(0) * 0.005 + 0.995
    np.testing.assert_allclose(update_w_avg(w_avg, w), want, rtol=1e-6)


@pytest.mark.parametrize("res,expected_ws", [(4, 2), (8, 4), (32, 8), (256, 14), (1024, 18)])
def test_every_power_of_two_resolution_builds(res, expected_ws):
    G = Generator(img_resolution=res, img_channels=3, z_dim=8, w_dim=8, mapping_layers=1,
                  channel_base=4096, channel_max=32)
    assert G.num_ws == synthesis_num_ws(res) == expected_ws
    out = jax.eval_shape(lambda: G.init_with_output({"params": jax.random.key(0)},
                                                    jnp.zeros((2, 8)), noise_mode="const"))
    img, variables = out
    assert img.shape == (2, res, res, 3)
    # The channel rule: min(channel_base // res, channel_max) feature maps at each resolution.
    synthesis = variables["params"]["synthesis"]
    for r in [2**i for i in range(2, res.bit_length())]:
        assert synthesis[f"b{r}"]["conv1"]["kernel"].shape[-1] == min(4096 // r, 32)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_image_channels_and_architectures_run(channels, architecture):
    G = Generator(img_resolution=8, img_channels=channels, architecture=architecture, **SMALL)
    img, v = G.init_with_output({"params": jax.random.key(0)}, jnp.ones((2, 16)), noise_mode="const")
    assert img.shape == (2, 8, 8, channels) and np.isfinite(np.asarray(img)).all()
    D = Discriminator(img_resolution=8, img_channels=channels, architecture=architecture,
                      channel_base=256, channel_max=16, mbstd_group_size=2)
    logits, _ = D.init_with_output(jax.random.key(1), img)
    assert logits.shape == (2, 1) and np.isfinite(np.asarray(logits)).all()


def test_conditional_networks():
    G = Generator(img_resolution=8, c_dim=5, **SMALL)
    c = jax.nn.one_hot(jnp.array([0, 3]), 5)
    img, v = G.init_with_output({"params": jax.random.key(0)}, jnp.ones((2, 16)), c, noise_mode="const")
    assert "embed" in v["params"]["mapping"]
    other = G.apply(v, jnp.ones((2, 16)), c[::-1], noise_mode="const")
    assert not np.allclose(img, other)  # the label matters
    with pytest.raises(ValueError, match="conditional.*pass c"):
        G.apply(v, jnp.ones((2, 16)), noise_mode="const")
    D = Discriminator(img_resolution=8, c_dim=5, channel_base=256, channel_max=16, mbstd_group_size=2)
    logits, dv = D.init_with_output(jax.random.key(1), img, c)
    assert logits.shape == (2, 1) and "mapping" in dv["params"]


def test_bad_configurations_fail_clearly():
    with pytest.raises(ValueError, match="power of two from 4 to 1024, got 48"):
        Generator(img_resolution=48, **SMALL).init(jax.random.key(0), jnp.zeros((1, 16)))
    with pytest.raises(ValueError, match="unknown synthesis architecture 'unet'"):
        Generator(img_resolution=8, architecture="unet", **SMALL).init(jax.random.key(0), jnp.zeros((1, 16)))
    G = Generator(img_resolution=8, **SMALL)
    v = G.init({"params": jax.random.key(0)}, jnp.zeros((1, 16)), noise_mode="const")
    with pytest.raises(ValueError, match=r"ws must have shape \(B, 4, w_dim\)"):
        G.apply(v, jnp.zeros((1, 6, 16)), "const", method=Generator.synthesize)
    with pytest.raises(ValueError, match="truncation.*needs w_avg"):
        G.apply(v, jnp.zeros((1, 16)), psi=0.5, method=Generator.map)
    D = Discriminator(img_resolution=8, channel_base=256, channel_max=16)
    with pytest.raises(ValueError, match=r"expected images \(B, 8, 8, 3\) NHWC"):
        D.init(jax.random.key(0), jnp.zeros((4, 3, 8, 8)))
