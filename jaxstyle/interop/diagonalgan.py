"""Official DiagonalGAN (cyclomon/DiagonalGAN `StyledGenerator`) weights -> jaxstyle, and the loader.

The official generator is rosinality's progressive StyleGAN1 with a second (content) mapping
network and DAT layers; jaxstyle runs it as the synthesis network with style_op "adain" and
content_op "dat". Official names translate by rule (`official_name`); EqualLR's raw
`weight_orig` is stored as is, since jaxstyle applies the same sqrt(2/fan_in) at run time.
The 512 and 1024 blocks up-sample with FusedUpsample, whose raw `weight` (in, out, 3, 3) and
`bias` (`progression.{7,8}.conv1.0`) land in `b512/conv1`, `b1024/conv1` (its Blur is `conv1.1`).

`load_diagonalgan` reads official train.py checkpoints (`.model`, through `torch_pickle`: no torch,
nothing in the file executed), bare generator state_dicts saved with torch.save, and the
fixture-format .npz; sizes that a `.model` does not record are read off its key names and shapes.
"""

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.interop import torch_pickle
from jaxstyle.interop.stylegan2_ada import ConversionError, read_fixture_npz
from jaxstyle.models.diagonalgan import DiagonalGAN
from jaxstyle.models.generator import Generator
from jaxstyle.models.synthesis import channels_for

BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
FUSED_MIN_RESOLUTION = 512   # official: the 512 and 1024 blocks up-sample with FusedUpsample
CHECKPOINT_KEYS = ("generator", "discriminator", "g_optimizer", "d_optimizer", "g_running")


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
    res = int(path[0][1:])
    block = f"generator.progression.{int(math.log2(res)) - 2}"
    leaf = "weight_orig" if path[-1] == "kernel" else path[-1]
    part = path[1]
    if part == "const":
        return f"{block}.conv1.input"
    if part == "conv1" and res >= FUSED_MIN_RESOLUTION:
        # FusedUpsample is not wrapped in EqualLR: its raw parameter is `weight`, not `weight_orig`.
        return f"{block}.conv1.0.{'weight' if path[-1] == 'kernel' else 'bias'}"
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
    """Returns the official value `name` in jaxstyle's layout, checked against `shape`."""
    if name.endswith(".conv1.0.weight"):
        value = value.transpose(2, 3, 0, 1)  # FusedUpsample (in, out, kh, kw) -> (kh, kw, in, out)
    elif name.endswith(".input"):
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


def _is_blur(name):
    """Returns whether `name` is a Blur buffer: conv1.2 after nearest + conv, conv1.1 after FusedUpsample."""
    m = re.fullmatch(r"generator\.progression\.(\d+)\.conv1\.([12])\.weight(_flip)?", name)
    return bool(m) and int(m[2]) == (1 if 4 * 2 ** int(m[1]) >= FUSED_MIN_RESOLUTION else 2)


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


def load_diagonalgan(path, which="g_running", size=None):
    """Returns a DiagonalGAN from an official checkpoint: a train.py `.model` (`which` generator:
    "g_running", the moving average generate.py samples from, or "generator"), a generator
    state_dict saved with torch.save, or a fixture-format .npz (G/<official name> and meta_json).
    The file is recognised by its content; nothing in it is executed and torch is not needed.

    size: the resolution the model was trained to (official generate.py --size). The official
    generator always holds all blocks up to 1024, so the weights cannot tell; default: the
    largest block present."""
    if which not in ("g_running", "generator"):
        raise ValueError(f"which must be 'g_running' or 'generator', got {which!r}")
    try:
        kind = torch_pickle.file_format(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such checkpoint: {path}") from None
    if kind == "other-zip":
        arrays, meta = read_fixture_npz(path)
        if not {"code_dim", "n_mlp", "channels"} <= set(meta):
            raise ConversionError(f"{path} is not a DiagonalGAN fixture (no code_dim/n_mlp/channels in its "
                                  "meta_json); a StyleGAN2 file loads with jaxstyle.interop.load_stylegan2_ada")
        state = {k[2:]: v for k, v in arrays.items() if k.startswith("G/")}
        return _sized(from_state_dict(state, meta["code_dim"], meta["n_mlp"], meta["channels"]), size)
    if kind is None:
        raise ConversionError(f"{path} is not a DiagonalGAN checkpoint: neither a torch.save file "
                              "(zip or legacy) nor a fixture-format .npz")
    state = generator_state(torch_pickle.load(path), which, path)
    return _sized(from_state_dict(state, *infer_sizes(state)), size)


def _sized(net, size):
    if size is None:
        return net
    if size not in [4 * 2**i for i in range(9)] or size > net.G.img_resolution:
        raise ValueError(f"size {size} must be a power of two from 4 to the model's {net.G.img_resolution}")
    return dataclasses.replace(net, size=size)


def generator_state(ckpt, which, path="checkpoint"):
    """Returns the generator state_dict (official names, no `module.` prefix) in a loaded
    train.py checkpoint (`ckpt[which]`) or bare state_dict."""
    if isinstance(ckpt, dict) and ckpt.keys() & set(CHECKPOINT_KEYS):
        if which not in ckpt:
            raise ConversionError(f"{path}: no {which!r} entry; the checkpoint holds {sorted(ckpt)}")
        ckpt = ckpt[which]
    if not (isinstance(ckpt, dict) and ckpt and all(isinstance(v, np.ndarray) for v in ckpt.values())):
        raise ConversionError(f"{path}: holds neither a train.py checkpoint ({', '.join(CHECKPOINT_KEYS)}) "
                              "nor a generator state_dict of tensors")
    # A generator saved from inside nn.DataParallel has every name prefixed by `module.`.
    if all(isinstance(k, str) and k.startswith("module.") for k in ckpt):
        return {k[len("module."):]: v for k, v in ckpt.items()}
    return dict(ckpt)


def infer_sizes(state):
    """Returns (code_dim, n_mlp, channels) of an official StyledGenerator state_dict, read off its
    key names and shapes (channels: feature maps per progression block, 4x4 upwards)."""
    mlp = [k for k in state if re.fullmatch(r"style\.\d+\.linear\.weight_orig", k)]
    if "style.1.linear.weight_orig" not in state:
        raise ConversionError("no 'style.1.linear.weight_orig': not a DiagonalGAN StyledGenerator state_dict")
    code_dim = int(np.shape(state["style.1.linear.weight_orig"])[1])
    blocks = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"generator\.to_rgb\.(\d+)\.conv\.weight_orig", k)))
    if not blocks or blocks != list(range(len(blocks))):
        raise ConversionError(f"to_rgb layers {blocks} are not numbered 0..n-1 (generator.to_rgb.<i>.conv.weight_orig)")
    # to_rgb.<i> is an EqualConv2d(C_i, 3, 1): its weight (3, C_i, 1, 1) gives block i's width.
    channels = [int(np.shape(state[f"generator.to_rgb.{i}.conv.weight_orig"])[1]) for i in blocks]
    return code_dim, len(mlp), channels


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
        if _is_blur(name):
            if not np.allclose(np.asarray(value)[:, 0], BLUR):
                raise ConversionError(f"key {name!r} is not the [1, 2, 1] blur kernel")
            continue
        raise ConversionError(f"unexpected key {name!r}")
    return DiagonalGAN(G, variables)
