"""Progressive StyleGAN1 / DiagonalGAN parts: fused up/down convs, the fused synthesis block, and
the progressive discriminator.

References are independent NCHW NumPy versions of the official torch definitions (rosinality's
style-based-gan-pytorch `model.py`, which DiagonalGAN's `model.py` copies): EqualLR, FusedUpsample,
FusedDownsample, Blur, ConvBlock and Discriminator.forward. They read official-layout weights,
converted from the jaxstyle parameters by the rule the modules document.
"""

import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest
from conftest import rel_err

from jaxstyle.models import ProgressiveDiscriminator, SynthesisNetwork
from jaxstyle.models.adain_block import AdaINBlock
from jaxstyle.nn.equalized import EqualConv
from jaxstyle.nn.fused_resample import FusedDownsample, FusedUpsample

RNG = np.random.default_rng(11)
TOL = 1e-5


# --- Official definitions, NCHW, float64 -------------------------------------------------------

def he(w, fan_in=None):
    """EqualLR: the raw weight times sqrt(2 / fan_in), fan_in = size(1) * kh * kw."""
    fan_in = fan_in or int(np.prod(w.shape[1:]))
    return w * math.sqrt(2 / fan_in)


def box4(w):
    """The official fused kernel: pad the (., ., 3, 3) kernel by 1, sum its 4 shifts, divide by 4."""
    w = np.pad(w, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) / 4


def fused_upsample(x, weight, bias):
    """FusedUpsample: weight (in, out, 3, 3); conv_transpose2d(stride 2, padding 1)."""
    w = box4(he(weight, weight.shape[0] * 9))
    y = ref.conv_transpose2d(x, w, stride=2)[:, :, 1:-1, 1:-1]  # torch's padding=1 crops 1 per side
    return y + bias[None, :, None, None]


def fused_downsample(x, weight, bias):
    """FusedDownsample: weight (out, in, 3, 3); conv2d(stride 2, padding 1)."""
    return ref.conv2d(x, box4(he(weight)), stride=2, pad=1) + bias[None, :, None, None]


def equal_conv(x, weight, bias, pad):
    return ref.conv2d(x, he(weight), pad=pad) + bias[None, :, None, None]


def blur(x):
    return ref.upfirdn2d(x, np.outer([1, 2, 1], [1, 2, 1]) / 16, pad=(1, 1, 1, 1))


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def avg_pool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def adain(x, style, weight, bias):
    """AdaptiveInstanceNorm: weight (2C, dim) raw, bias (2C,); InstanceNorm2d eps 1e-5, biased var."""
    s = style @ he(weight).T + bias
    c = x.shape[1]
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    return s[:, :c, None, None] * (x - mean) / np.sqrt(var + 1e-5) + s[:, c:, None, None]


def official_discriminator(sd, x, step, alpha=-1.0):
    """Discriminator.forward(input, step, alpha) of the 9-block official model, NCHW."""
    def from_rgb(i, img):
        p = f"from_rgb.{i}.0.conv."
        return lrelu(equal_conv(img, sd[p + "weight_orig"], sd[p + "bias"], 0))

    def conv(p, h, pad):
        return equal_conv(h, sd[p + ".weight_orig"], sd[p + ".bias"], pad)

    def progression(i, h):
        p = f"progression.{i}."
        h = lrelu(conv(p + "conv1.0.conv", h, 1))
        if i == 8:  # ConvBlock(513, 512, 3, 1, 4, 0): no downsampling, a 4x4 valid conv
            return lrelu(conv(p + "conv2.0.conv", h, 0))
        h = blur(h)
        if p + "conv2.1.weight" in sd:  # fused
            return lrelu(fused_downsample(h, sd[p + "conv2.1.weight"], sd[p + "conv2.1.bias"]))
        return lrelu(avg_pool2(conv(p + "conv2.1.conv", h, 1)))

    for i in range(step, -1, -1):
        index = 9 - i - 1
        if i == step:
            out = from_rgb(index, x)
        if i == 0:
            std = np.sqrt(out.var(axis=0) + 1e-8).mean()  # biased variance over the batch
            out = np.concatenate([out, np.full((out.shape[0], 1, 4, 4), std)], axis=1)
        out = progression(index, out)
        if i > 0 and i == step and 0 <= alpha < 1:
            out = (1 - alpha) * from_rgb(index + 1, avg_pool2(x)) + alpha * out
    out = out[:, :, 0, 0]
    return out @ he(sd["linear.linear.weight_orig"]).T + sd["linear.linear.bias"]


# --- jaxstyle parameters <-> official names ----------------------------------------------------

def nchw(x):
    return np.asarray(x, np.float64).transpose(0, 3, 1, 2)


def oihw(kernel):
    return np.asarray(kernel, np.float64).transpose(3, 2, 0, 1)


def with_random_biases(params):
    """Returns params with every bias drawn N(0, 0.5) (they start at zero), so bias paths count."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    flat = {k: jnp.asarray(RNG.normal(0, 0.5, v.shape), v.dtype) if k[-1] == "bias" else v
            for k, v in flat.items()}
    return flax.traverse_util.unflatten_dict(flat)


def official_state(params, fused_min_resolution):
    """Returns the official state dict for `params` (ProgressiveDiscriminator), by its docstring rule."""
    sd = {}
    for name, p in params.items():
        if name.startswith("fromrgb"):
            i = 10 - int(math.log2(int(name[7:])))
            sd[f"from_rgb.{i}.0.conv.weight_orig"], sd[f"from_rgb.{i}.0.conv.bias"] = oihw(p["kernel"]), p["bias"]
        elif name == "linear":
            sd["linear.linear.weight_orig"], sd["linear.linear.bias"] = np.asarray(p["kernel"]).T, p["bias"]
        else:
            res = int(name[1:])
            i = 10 - int(math.log2(res))
            conv2 = ("conv2.0.conv" if res == 4 else
                     "conv2.1" if res >= fused_min_resolution else "conv2.1.conv")
            for ours, theirs in (("conv1", "conv1.0.conv"), ("conv2", conv2)):
                w = "weight" if theirs == "conv2.1" else "weight_orig"
                sd[f"progression.{i}.{theirs}.{w}"] = oihw(p[ours]["kernel"])
                sd[f"progression.{i}.{theirs}.bias"] = np.asarray(p[ours]["bias"], np.float64)
    return sd


# --- Fused layers ------------------------------------------------------------------------------

def _layer(module, x):
    params = with_random_biases(module.init(jax.random.key(1), x)["params"])
    return params, np.asarray(module.apply({"params": params}, x))


def test_fused_upsample_is_the_official_transposed_conv():
    x = jnp.asarray(RNG.standard_normal((2, 5, 4, 3)), jnp.float32)  # non-square: axis order counts
    params, got = _layer(FusedUpsample(4), x)
    assert got.shape == (2, 10, 8, 4) and params["kernel"].shape == (3, 3, 3, 4)
    weight = np.asarray(params["kernel"], np.float64).transpose(2, 3, 0, 1)  # official (in, out, kh, kw)
    assert rel_err(nchw(got), fused_upsample(nchw(x), weight, np.asarray(params["bias"]))) < TOL


def test_fused_downsample_is_the_official_strided_conv():
    x = jnp.asarray(RNG.standard_normal((2, 8, 6, 3)), jnp.float32)
    params, got = _layer(FusedDownsample(4), x)
    assert got.shape == (2, 4, 3, 4) and params["kernel"].shape == (3, 3, 3, 4)
    assert rel_err(nchw(got), fused_downsample(nchw(x), oihw(params["kernel"]), np.asarray(params["bias"]))) < TOL


def test_fused_downsample_equals_conv_then_average_pool():
    # Why the official code may swap one for the other: the 4x4 kernel is the 3x3 one box-filtered.
    x = jnp.asarray(RNG.standard_normal((2, 8, 8, 3)), jnp.float32)
    params, got = _layer(FusedDownsample(4), x)
    conv = EqualConv(4, 3, weight_gain=math.sqrt(2)).apply({"params": params}, x)
    assert rel_err(got, avg_pool2(nchw(conv)).transpose(0, 2, 3, 1)) < TOL


# --- The fused synthesis block -----------------------------------------------------------------

def test_fused_adain_block_matches_the_official_block():
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 3)), jnp.float32)
    styles = jnp.asarray(RNG.standard_normal((2, 2, 5)), jnp.float32)
    block = AdaINBlock(in_channels=3, out_channels=2, resolution=8, content_op="none", fused_min_resolution=8)
    p = with_random_biases(block.init(jax.random.key(2), x, styles, None)["params"])
    got = block.apply({"params": p}, x, styles, None)
    s = np.asarray(styles, np.float64)
    dense = lambda a: np.asarray(a["affine"]["kernel"], np.float64).T
    h = blur(fused_upsample(nchw(x), np.asarray(p["conv1"]["kernel"], np.float64).transpose(2, 3, 0, 1),
                            np.asarray(p["conv1"]["bias"])))
    h = lrelu(adain(h, s[:, 0], dense(p["adain1"]), np.asarray(p["adain1"]["bias"])))
    h = equal_conv(h, oihw(p["conv2"]["kernel"]), np.asarray(p["conv2"]["bias"]), 1)
    h = lrelu(adain(h, s[:, 1], dense(p["adain2"]), np.asarray(p["adain2"]["bias"])))
    assert got.shape == (2, 8, 8, 2)
    assert rel_err(nchw(got), h) < TOL


def test_adain_synthesis_at_512_uses_the_fused_up_conv():
    net = SynthesisNetwork(img_resolution=512, channel_base=1024, channel_max=4, style_op="adain",
                           content_op="dat")
    ws, contents = jnp.zeros((1, net.num_ws, 8)), jnp.zeros((1, 8))
    params = jax.eval_shape(lambda: net.init(jax.random.key(0), ws, contents=contents))["params"]
    assert params["b512"]["conv1"]["kernel"].shape == (3, 3, 4, 2)  # FusedUpsample, 256 -> 512
    assert params["b512"]["conv1"]["bias"].shape == (2,)
    assert "dat1" not in params["b512"] and "dat1" in params["b256"]
    img = jax.eval_shape(lambda p: net.apply({"params": p}, ws, contents=contents), params)
    assert img.shape == (1, 512, 512, 3)


# --- The progressive discriminator -------------------------------------------------------------

FUSED_FROM = 16  # so the small test model has a fused (16) and a plain (8) downsampling block


@pytest.fixture(scope="module")
def small_d():
    d = ProgressiveDiscriminator(16, channel_base=64, channel_max=8, fused_min_resolution=FUSED_FROM)
    params = d.init(jax.random.key(3), jnp.zeros((4, 16, 16, 3)))["params"]
    return d, with_random_biases(params)


def test_init_creates_every_resolution(small_d):
    d, params = small_d
    names = {"fromrgb16", "fromrgb8", "fromrgb4", "b16", "b8", "b4", "linear"}
    assert set(params) == names
    low = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((4, 8, 8, 3))))["params"]
    assert jax.tree.map(np.shape, low) == jax.tree.map(np.shape, params)
    assert params["b16"]["conv1"]["kernel"].shape == (3, 3, 4, 8)  # channels 4 (16) -> 8 (8)
    assert params["b4"]["conv1"]["kernel"].shape == (3, 3, 9, 8)  # + the stddev channel
    assert params["b4"]["conv2"]["kernel"].shape == (4, 4, 8, 8)


@pytest.mark.parametrize("res,alpha", [(16, 1.0), (8, 1.0), (4, 1.0), (16, 0.3), (8, 0.3), (4, 0.3), (16, -1.0)])
def test_matches_the_official_forward(small_d, res, alpha):
    d, params = small_d
    img = jnp.asarray(RNG.standard_normal((4, res, res, 3)), jnp.float32)
    got = d.apply({"params": params}, img, alpha=alpha)
    want = official_discriminator(official_state(params, FUSED_FROM), nchw(img),
                                  step=int(math.log2(res)) - 2, alpha=alpha)
    assert got.shape == (4, 1)
    assert rel_err(got, want) < TOL


def test_traced_alpha_blends_as_a_python_alpha(small_d):
    d, params = small_d
    img = jnp.asarray(RNG.standard_normal((4, 16, 16, 3)), jnp.float32)
    apply = jax.jit(lambda a: d.apply({"params": params}, img, alpha=a))
    for alpha in (0.3, 1.0):
        np.testing.assert_allclose(apply(jnp.float32(alpha)), d.apply({"params": params}, img, alpha=alpha),
                                   rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_stays_within_each_shard(small_d):
    d, params = small_d
    img = jnp.asarray(RNG.standard_normal((4, 16, 16, 3)), jnp.float32)
    sharded = d.apply({"params": params}, img, num_shards=2)
    halves = np.concatenate([d.apply({"params": params}, img[:2]), d.apply({"params": params}, img[2:])])
    np.testing.assert_allclose(sharded, halves, rtol=1e-5, atol=1e-6)
    assert np.abs(sharded - d.apply({"params": params}, img)).max() > 1e-6  # the statistic did change


def test_rejects_labels_and_bad_inputs(small_d):
    d, params = small_d
    with pytest.raises(ValueError, match="unconditional"):
        ProgressiveDiscriminator(16, c_dim=2).init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)))
    for shape in [(2, 32, 32, 3), (2, 12, 12, 3), (2, 16, 8, 3), (2, 16, 16, 1)]:
        with pytest.raises(ValueError, match="expected images"):
            d.apply({"params": params}, jnp.zeros(shape))
