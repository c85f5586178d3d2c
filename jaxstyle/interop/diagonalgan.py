"""Official DiagonalGAN (cyclomon/DiagonalGAN `StyledGenerator`) weights -> jaxstyle, and the loader.

The official generator is rosinality's progressive StyleGAN1 with a second (content) mapping
network and DAT layers; jaxstyle runs it as the synthesis network with style_op "adain" and
content_op "dat". Official names translate by rule (`official_name`); EqualLR's raw
`weight_orig` is stored as is, since jaxstyle applies the same sqrt(2/fan_in) at run time.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.interop.stylegan2_ada import ConversionError, read_fixture_npz
from jaxstyle.models.diagonalgan import DiagonalGAN
from jaxstyle.models.generator import Generator
from jaxstyle.models.synthesis import channels_for

BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16.0


def official_name(path):
    """Returns the official state_dict name of a jaxstyle Generator parameter path."""
    top, path = path[0], path[1:]
    if top in ("mapping", "content_mapping"):
        k, leaf = int(path[0][2:]), path[1]
        prefix = "style" if top == "mapping" else "pix"
        return f"{prefix}.{2 * k + 1}.linear.{'weight_orig' if leaf == 'kernel' else 'bias'}"
    if path[0].startswith("torgb"):
        i = int(math.log2(int(path[0][5:]))) - 2
        return f"generator.to_rgb.{i}.conv.{'weight_orig' if path[-1] == 'kernel' else 'bias'}"
    i = int(math.log2(int(path[0][1:]))) - 2
    block = f"generator.progression.{i}"
    leaf = "weight_orig" if path[-1] == "kernel" else path[-1]
    part = path[1]
    if part == "const":
        return f"{block}.conv1.input"
    if part == "conv1":
        return f"{block}.conv1.1.conv.{leaf}"
    if part == "conv2":
        return f"{block}.conv2.conv.{leaf}"
    if part.startswith("adain"):
        return f"{block}.{part}.style.linear.{leaf}"
    if part.startswith("dat"):
        j = part[3:]
        return f"{block}.adaat{j}.gamma" if leaf == "gamma" else f"{block}.adaat{j}.fc.linear.{leaf}"
    raise ConversionError(f"no official name for jaxstyle parameter {'/'.join((top,) + path)}")


def _to_jax(name, value, shape):
    if name.endswith(".input"):
        value = value[0].transpose(1, 2, 0)  # (1, C, H, W) -> (H, W, C)
    elif name.endswith("weight_orig") and value.ndim == 2:
        value = value.T
    elif name.endswith("weight_orig") and value.ndim == 4:
        value = value.transpose(2, 3, 1, 0)
    elif name.endswith(".gamma"):
        value = value.reshape(())
    if value.shape != tuple(shape):
        raise ConversionError(f"key {name!r} has shape {value.shape} after conversion, expected {tuple(shape)}")
    return jnp.asarray(value, jnp.float32)


def _fill(G, state, used):
    args, kwargs = G.example_inputs()
    shapes = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, *args, **kwargs))

    def fill(path, leaf):
        keys = tuple(getattr(p, "key", p) for p in path)[1:]
        name = official_name(keys)
        if name not in state:
            raise ConversionError(f"missing key {name!r}")
        used.add(name)
        return _to_jax(name, np.asarray(state[name]), leaf.shape)
    return jax.tree_util.tree_map_with_path(fill, shapes)


def load_diagonalgan(path):
    """Returns a DiagonalGAN from a fixture-format .npz (G/<official name> entries and meta_json)."""
    arrays, meta = read_fixture_npz(path)
    state = {k[2:]: v for k, v in arrays.items() if k.startswith("G/")}
    return from_state_dict(state, meta["code_dim"], meta["n_mlp"], meta["channels"])


def from_state_dict(state, code_dim, n_mlp, channels):
    """Returns a DiagonalGAN from the official StyledGenerator state_dict and its sizes."""
    resolution = 4 * 2 ** (len(channels) - 1)
    channel_max, channel_base = channels[0], channels[-1] * resolution
    expected = [channels_for(4 * 2**i, channel_base, channel_max) for i in range(len(channels))]
    if expected != list(channels):
        raise ConversionError(f"channel progression {channels} does not follow min(base / res, max)")
    G = Generator(z_dim=code_dim, w_dim=code_dim, img_resolution=resolution, mapping_layers=n_mlp,
                  mapping_lr_multiplier=1.0, mapping_weight_gain=math.sqrt(2), mapping_act_gain=1.0,
                  channel_base=channel_base, channel_max=channel_max, style_op="adain", content_op="dat")
    used = set()
    variables = _fill(G, state, used)
    for name, value in state.items():
        if name in used:
            continue
        if re.fullmatch(r"generator\.progression\.\d+\.conv1\.2\.weight(_flip)?", name):
            if not np.allclose(np.asarray(value)[:, 0], BLUR):
                raise ConversionError(f"key {name!r} is not the [1, 2, 1] blur kernel")
            continue
        raise ConversionError(f"unexpected key {name!r}")
    return DiagonalGAN(G, variables)
