"""Official DiagonalGAN (cyclomon/DiagonalGAN `StyledGenerator`) weights -> jaxstyle, and the loader.

The official generator is rosinality's progressive StyleGAN1 with a second (content) mapping
network and DAT layers; jaxstyle runs it as the synthesis network with style_op "adain" and
content_op "dat". Official names translate by rule (`official_name`); EqualLR's raw
`weight_orig` is stored as is, since jaxstyle applies the same sqrt(2/fan_in) at run time.
"""

import dataclasses
import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.interop.stylegan2_ada import ConversionError, read_fixture_npz
from jaxstyle.models.mapping import MappingNetwork
from jaxstyle.models.synthesis import SynthesisNetwork, channels_for

BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16.0


def official_name(prefix, path):
    """Returns the official state_dict name of a jaxstyle parameter path (mapping or synthesis)."""
    if prefix in ("style", "pix"):
        k, leaf = int(path[0][2:]), path[1]
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
    raise ConversionError(f"no official name for jaxstyle parameter {'/'.join(path)}")


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


def _fill(module, args, state, prefix, used):
    shapes = jax.eval_shape(lambda: module.init({"params": jax.random.key(0)}, *args))

    def fill(path, leaf):
        keys = tuple(getattr(p, "key", p) for p in path)[1:]
        name = official_name(prefix, keys)
        if name not in state:
            raise ConversionError(f"missing key {name!r}")
        used.add(name)
        return _to_jax(name, np.asarray(state[name]), leaf.shape)
    return jax.tree_util.tree_map_with_path(fill, shapes)


@dataclasses.dataclass(frozen=True)
class DiagonalGAN:
    """A loaded DiagonalGAN generator: style and content mapping, and the synthesis network."""

    style_net: MappingNetwork
    content_net: MappingNetwork
    synth: SynthesisNetwork
    style_vars: Any
    content_vars: Any
    synth_vars: Any

    @property
    def num_slots(self):
        return self.synth.num_ws

    def style_mapping(self, z_style):
        """Returns style codes (B, dim)."""
        return self.style_net.apply(self.style_vars, z_style)

    def content_mapping(self, z_content):
        """Returns content codes (B, dim)."""
        return self.content_net.apply(self.content_vars, z_content)

    def synthesis(self, styles, contents, resolution=None, alpha=1.0):
        """Returns images (B, r, r, 3) NHWC; codes (B, dim) for all slots or (B, num_slots, dim).

        alpha < 1 blends with the previous resolution's ToRGB, nearest-upsampled, as the
        official fade-in does.
        """
        return self.synth.apply(self.synth_vars, jnp.asarray(styles), "const", jnp.asarray(contents),
                                resolution, alpha)


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
    mapping = dict(z_dim=code_dim, c_dim=0, w_dim=code_dim, num_ws=None, num_layers=n_mlp,
                   lr_multiplier=1.0, weight_gain=math.sqrt(2), act_gain=1.0)
    style_net, content_net = MappingNetwork(**mapping), MappingNetwork(**mapping)
    synth = SynthesisNetwork(img_resolution=resolution, channel_base=channel_base, channel_max=channel_max,
                             style_op="adain", content_op="dat")
    used = set()
    z = jnp.zeros((1, code_dim))
    style_vars = _fill(style_net, (z,), state, "style", used)
    content_vars = _fill(content_net, (z,), state, "pix", used)
    synth_vars = _fill(synth, (jnp.zeros((1, synth.num_ws, code_dim)), "const",
                               jnp.zeros((1, synth.num_ws, code_dim))), state, "generator", used)
    for name, value in state.items():
        if name in used:
            continue
        if re.fullmatch(r"generator\.progression\.\d+\.conv1\.2\.weight(_flip)?", name):
            if not np.allclose(np.asarray(value)[:, 0], BLUR):
                raise ConversionError(f"key {name!r} is not the [1, 2, 1] blur kernel")
            continue
        raise ConversionError(f"unexpected key {name!r}")
    return DiagonalGAN(style_net, content_net, synth, style_vars, content_vars, synth_vars)
