"""Equalized layers, bias_act, noise injection and minibatch stddev against closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.nn import EqualConv, EqualDense, NoiseInjection, bias_act, minibatch_stddev
import numpy_reference as ref

RNG = np.random.default_rng(2)


def test_bias_act_closed_form():
    x = jnp.asarray(RNG.standard_normal((3, 4)), jnp.float32)
    b = jnp.asarray(RNG.standard_normal(4), jnp.float32)
    y = np.asarray(x + b)
    lrelu = np.where(y > 0, y, 0.2 * y)
    np.testing.assert_allclose(bias_act(x, b, "lrelu"), lrelu * math.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(bias_act(x, b, "lrelu", gain=0.5), lrelu * 0.5, rtol=1e-6)
    np.testing.assert_allclose(bias_act(x, b, "lrelu", clamp=0.3), np.clip(lrelu * math.sqrt(2), -0.3, 0.3))
    np.testing.assert_allclose(bias_act(x, b), y, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        bias_act(x, b, "gelu")


def test_equal_dense_runtime_gains():
    layer = EqualDense(5, lr_multiplier=0.01, bias_init=0.5)
    x = jnp.asarray(RNG.standard_normal((2, 8)), jnp.float32)
    params = layer.init(jax.random.key(0), x)["params"]
    # Stored weights are N(0, 1) / lr_multiplier; the bias starts at bias_init.
    assert 50 < np.std(params["kernel"]) < 200
    np.testing.assert_allclose(params["bias"], 0.5)
    want = np.asarray(x) @ (np.asarray(params["kernel"]) * 0.01 / math.sqrt(8)) + 0.5 * 0.01
    np.testing.assert_allclose(layer.apply({"params": params}, x), want, rtol=1e-5)


def test_equal_conv_runtime_gain_and_activation():
    layer = EqualConv(4, 3, activation="lrelu")
    x = jnp.asarray(RNG.standard_normal((2, 6, 6, 3)), jnp.float32)
    params = layer.init(jax.random.key(0), x)["params"]
    w = np.asarray(params["kernel"]).transpose(3, 2, 0, 1) / math.sqrt(3 * 9)
    y = ref.conv2d(np.asarray(x).transpose(0, 3, 1, 2), w, pad=1).transpose(0, 2, 3, 1)
    want = np.where(y > 0, y, 0.2 * y) * math.sqrt(2) * 0.5
    np.testing.assert_allclose(layer.apply({"params": params}, x, gain=0.5), want, rtol=1e-4, atol=1e-5)


def test_noise_injection_modes():
    layer = NoiseInjection()
    x = jnp.zeros((2, 4, 4, 3))
    variables = layer.init({"params": jax.random.key(0)}, x, "const")
    assert float(variables["params"]["noise_strength"]) == 0.0  # official init
    variables = jax.tree_util.tree_map(lambda v: v, variables)
    variables["params"]["noise_strength"] = jnp.float32(0.5)
    const = variables["buffers"]["noise_const"]
    out = layer.apply(variables, x, "const")
    np.testing.assert_allclose(out, np.broadcast_to(0.5 * np.asarray(const)[None, :, :, None], x.shape))
    np.testing.assert_array_equal(layer.apply(variables, x, "none"), x)
    r1 = layer.apply(variables, x, "random", rngs={"noise": jax.random.key(1)})
    r2 = layer.apply(variables, x, "random", rngs={"noise": jax.random.key(2)})
    assert not np.allclose(r1, r2)
    np.testing.assert_array_equal(r1[..., 0], r1[..., 2])  # one noise image for all channels
    assert 0.3 < float(np.std(r1)) < 0.7
    with pytest.raises(ValueError, match="unknown noise_mode 'fixed'"):
        layer.apply(variables, x, "fixed")


@pytest.mark.parametrize("group,channels", [(2, 1), (4, 2), (8, 1)])
def test_minibatch_stddev_matches_official_grouping(group, channels):
    x = RNG.standard_normal((8, 4, 3, 3))
    got = minibatch_stddev(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32), group, channels)
    want = ref.minibatch_stddev(x, group, channels)
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, rtol=1e-5)


def test_minibatch_stddev_groups_stay_inside_shards():
    x = RNG.standard_normal((8, 4, 3, 3))
    got = minibatch_stddev(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32), 2, 1, num_shards=4)
    want = np.concatenate([ref.minibatch_stddev(x[i:i + 2], 2) for i in range(0, 8, 2)])
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, rtol=1e-5)
    with pytest.raises(ValueError, match="not a multiple of mbstd group size"):
        minibatch_stddev(jnp.zeros((6, 2, 2, 4)), 4)
