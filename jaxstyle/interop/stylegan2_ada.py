"""Official StyleGAN2-ADA weights <-> jaxstyle parameter trees, and the fixture-format loader.

jaxstyle's module tree mirrors the official one (`synthesis.b16.conv0.affine`, ...), so a
parameter's official name is its path joined by dots, with three differences handled here:
kernels are stored as (in, out) / HWIO instead of (out, in) / OIHW, the constant input is
HWC instead of CHW, and noise parameters sit in a `noise` submodule.
"""

import dataclasses
import json
import re
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models.discriminator import Discriminator
from jaxstyle.models.generator import Generator
from jaxstyle.nn.upfirdn2d import setup_filter


class ConversionError(ValueError):
    """A checkpoint does not match the network it is being loaded into."""


def _official_name(path):
    name = ".".join(path)
    name = name.replace(".noise.noise_", ".noise_")
    return name[: -len("kernel")] + "weight" if name.endswith("kernel") else name


def _to_jax_layout(name, value):
    if name.endswith(".weight") and value.ndim == 2:
        return value.T
    if name.endswith(".weight") and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if name.endswith(".const"):
        return value.transpose(1, 2, 0)  # CHW -> HWC
    return value


def _from_jax_layout(name, value):
    if name.endswith(".weight") and value.ndim == 2:
        return value.T
    if name.endswith(".weight") and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    if name.endswith(".const"):
        return value.transpose(2, 0, 1)
    return value


def import_state_dict(module, example_args, state_dict, resample_filter=(1, 3, 3, 1), what="G"):
    """Returns (variables, leftovers): `module`'s variables filled from an official state_dict.

    Every expected entry must be present with the right shape; `resample_filter` buffers
    must equal the module's filter; other entries are returned in `leftovers` (for
    example `mapping.w_avg`). Raises ConversionError naming the first bad key.
    """
    shapes = jax.eval_shape(lambda: module.init({"params": jax.random.key(0)}, *example_args))
    state = {k: np.asarray(v) for k, v in state_dict.items()}
    used = set()

    def fill(path, leaf):
        keys = tuple(getattr(p, "key", p) for p in path)[1:]  # drop the collection name
        name = _official_name(keys)
        if name not in state:
            raise ConversionError(f"{what}: missing key {name!r} (expected shape "
                                  f"{_from_jax_layout(name, np.empty(leaf.shape)).shape})")
        value = _to_jax_layout(name, state[name])
        if value.shape != leaf.shape:
            raise ConversionError(f"{what}: key {name!r} has shape {state[name].shape}, expected "
                                  f"{_from_jax_layout(name, np.empty(leaf.shape)).shape}")
        used.add(name)
        return jnp.asarray(value, dtype=leaf.dtype)

    variables = jax.tree_util.tree_map_with_path(fill, shapes)
    expected_filter = setup_filter(resample_filter)
    leftovers = {}
    for name, value in state.items():
        if name in used:
            continue
        if name.endswith("resample_filter"):
            if value.shape != expected_filter.shape or not np.allclose(value, expected_filter):
                raise ConversionError(f"{what}: key {name!r} is not the {list(resample_filter)} "
                                      "filter this network uses")
            continue
        leftovers[name] = value
    return variables, leftovers


def export_state_dict(variables):
    """Returns the official-layout state_dict (name -> NumPy array) of a jaxstyle module's variables."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
        name = _official_name(tuple(getattr(p, "key", p) for p in path)[1:])
        out[name] = _from_jax_layout(name, np.asarray(leaf))
    return out


_G_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
           "synthesis_kwargs"}
_MAPPING_KEYS = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier"}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "conv_clamp", "architecture"}
_D_KEYS = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base",
           "channel_max", "conv_clamp", "cmap_dim", "num_fp16_res", "block_kwargs",
           "mapping_kwargs", "epilogue_kwargs"}
# Options that leave the function a network computes unchanged: mixed precision changes rounding
# only (jaxstyle computes in float32), fused_modconv_default picks the same modulated conv's
# formulation, w_avg_beta and freeze_layers (Freeze-D) act during training only.
_IGNORED = {"num_fp16_res", "fp16_channels_last", "w_avg_beta", "fused_modconv_default", "freeze_layers"}


# Arguments jaxstyle's networks fix, accepted when they hold that value: official legacy.py,
# converting TF pickles (ffhq.pkl, ...), spells every default out.
_FIXED = {"activation": "lrelu", "resample_filter": [1, 3, 3, 1], "use_noise": True}
# Official D mapping defaults (used when c_dim > 0), which jaxstyle's Discriminator fixes.
_D_MAPPING_FIXED = {"activation": "lrelu", "lr_multiplier": 0.01}


def _unsupported(what, key, value):
    return ConversionError(f"{what}: constructor argument {key}={value!r} is not supported")


def _fixed(key, value, fixed=_FIXED):
    """Returns whether argument `key` can be dropped: ignored, or holding the value jaxstyle fixes."""
    if key in _IGNORED:
        return True
    if key not in fixed:
        return False
    return (list(value) if isinstance(value, (list, tuple)) else value) == fixed[key]


def generator_from_kwargs(kw, modconv="activation"):
    """Returns the jaxstyle Generator for official `Generator(**G_kwargs)`."""
    args, w_dim = {}, kw.get("w_dim", 512)
    for key, value in kw.items():
        if key == "mapping_kwargs":
            for k, v in value.items():
                if k in _MAPPING_KEYS:
                    args[_MAPPING_KEYS[k]] = v
                elif k == "embed_features" and (v in (None, w_dim) or not kw.get("c_dim")):
                    continue
                elif not (_fixed(k, v) or (k == "layer_features" and v in (None, w_dim))):
                    raise _unsupported("G.mapping", k, v)
        elif key == "synthesis_kwargs":
            for k, v in value.items():
                if k in _SYNTHESIS_KEYS:
                    args[k] = v
                elif not _fixed(k, v):
                    raise _unsupported("G.synthesis", k, v)
        elif key in _G_KEYS:
            args[key] = value
        else:
            raise _unsupported("G", key, value)
    return Generator(modconv=modconv, **args)


def discriminator_from_kwargs(kw):
    """Returns the jaxstyle Discriminator for official `Discriminator(**D_kwargs)`. Without labels
    (c_dim 0) the label mapping network and cmap_dim are not built, so their arguments are moot."""
    args, conditional = {}, bool(kw.get("c_dim"))
    for key, value in kw.items():
        if key == "epilogue_kwargs":
            for k, v in value.items():
                if k in ("mbstd_group_size", "mbstd_num_channels"):
                    args[k] = v
                elif not _fixed(k, v):
                    raise _unsupported("D.epilogue", k, v)
        elif key == "mapping_kwargs" and conditional:
            for k, v in value.items():
                if k == "num_layers":
                    args["mapping_layers"] = v
                elif not (_fixed(k, v, _D_MAPPING_FIXED)
                          or (k in ("embed_features", "layer_features") and v in (None, kw.get("cmap_dim")))):
                    raise _unsupported("D.mapping", k, v)
        elif key == "block_kwargs":
            for k, v in value.items():
                if not _fixed(k, v):
                    raise _unsupported("D.block", k, v)
        elif key in ("mapping_kwargs", "cmap_dim") and not conditional:
            continue
        elif key in _D_KEYS and key not in _IGNORED:
            args[key] = value
        elif key not in _IGNORED:
            raise _unsupported("D", key, value)
    return Discriminator(**args)


@dataclasses.dataclass(frozen=True)
class StyleGAN2:
    """A loaded generator and discriminator with their weights closed over.

    `mapping`, `synthesis` and `discriminate` are pure functions of arrays: jit them,
    differentiate through them, vmap them.
    """

    G: Generator
    D: Optional[Discriminator]
    g_vars: Any
    d_vars: Any
    w_avg: jax.Array

    @property
    def num_ws(self):
        return self.G.num_ws

    def mapping(self, z, c=None, psi=1.0, cutoff=None):
        """Returns W+ codes (B, num_ws, w_dim); psi != 1 truncates slots < cutoff towards w_avg."""
        return self.G.apply(self.g_vars, z, c, self.w_avg, psi, cutoff, method=Generator.map)

    def synthesis(self, ws, noise_mode="const", key=None):
        """Returns images (B, R, R, C) float32 NHWC; noise_mode "random" needs a PRNG key."""
        if noise_mode == "random" and key is None:
            raise ValueError('noise_mode="random" needs key=jax.random.key(seed)')
        rngs = {"noise": key} if key is not None else {}
        return self.G.apply(self.g_vars, ws, noise_mode, rngs=rngs, method=Generator.synthesize)

    def generate(self, z, c=None, psi=1.0, cutoff=None, noise_mode="const", key=None):
        """Returns images (B, R, R, C) from latents z."""
        return self.synthesis(self.mapping(z, c, psi, cutoff), noise_mode, key)

    def discriminate(self, img, c=None, num_shards=1):
        """Returns logits (B, 1) for NHWC images."""
        if self.D is None:
            raise ValueError("this checkpoint holds no discriminator")
        return self.D.apply(self.d_vars, img, c, num_shards)


def read_fixture_npz(path):
    """Returns (arrays, meta) of a fixture-format .npz: official state_dict entries under G/ and D/,
    and meta_json with the constructor arguments. Nothing pickled is loaded."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no such checkpoint: {path}") from None
    if "meta_json" not in arrays:
        raise ConversionError(f"{path}: no meta_json entry; expected the fixture format "
                              "(G/<name>, D/<name> state_dict entries and meta_json)")
    return arrays, json.loads(bytes(arrays["meta_json"]))


W_AVG_SAMPLES = 4096  # rosinality's generate.py averages w over 4096 latents for truncation


@dataclasses.dataclass(frozen=True)
class OfficialWeights:
    """A checkpoint read into official StyleGAN2-ADA form: constructor kwargs and state_dicts
    (official names and layouts) of G_ema, and of G and D where the file holds them."""

    g_kwargs: dict
    d_kwargs: Optional[dict]
    states: dict               # "G_ema" (always), "G", "D" -> {official name: array}
    source: str                # what the file was, for messages
    file_names: dict = dataclasses.field(default_factory=dict)  # "G_ema"/"G"/"D" -> {official: file's name}

    def state(self, which):
        """Returns the state_dict of "G_ema", "G" or "D"; raises ConversionError if absent."""
        if which not in ("G_ema", "G", "D"):
            raise ValueError(f"which must be 'G_ema', 'G' or 'D', got {which!r}")
        if self.states.get(which) is None:
            raise ConversionError(f"{self.source} holds no {which} (it holds {', '.join(sorted(self.states))})")
        return self.states[which]


def load_stylegan2_ada(path, modconv="activation", which="G_ema"):
    """Returns a StyleGAN2 handle on a checkpoint file, recognised by its content: an official
    stylegan2-ada-pytorch or stylegan3 network pickle (.pkl, StyleGAN2 architectures), a
    rosinality stylegan2-pytorch checkpoint (.pt) or a fixture-format .npz. Nothing in the file is
    executed and torch is not needed. `which`: the generator to load, "G_ema" (the moving
    average, what the official tools sample) or "G" (the trained weights)."""
    from jaxstyle.interop.official import read_official
    return from_official(read_official(path), which, modconv)


def read_fixture_weights(path):
    """Returns the OfficialWeights of a fixture-format .npz (its one G serves as G and G_ema)."""
    arrays, meta = read_fixture_npz(path)
    if "G_kwargs" not in meta:
        raise ConversionError(f"{path}: its meta_json has no G_kwargs, so it is not a StyleGAN2 fixture "
                              "(a DiagonalGAN one loads with jaxstyle.interop.load_diagonalgan)")
    g_state = {k[2:]: v for k, v in arrays.items() if k.startswith("G/")}
    d_state = {k[2:]: v for k, v in arrays.items() if k.startswith("D/")} or None
    return OfficialWeights(meta["G_kwargs"], meta.get("D_kwargs"),
                           {"G_ema": g_state, "G": g_state, "D": d_state}, f"{path} (fixture .npz)")


def from_official(weights, which="G_ema", modconv="activation"):
    """Returns a StyleGAN2 handle on generator `which` ("G_ema" or "G") and D of OfficialWeights;
    w_avg is the file's, or estimated with `estimate_w_avg` where the file keeps none."""
    if which not in ("G_ema", "G"):
        raise ValueError(f"which must be 'G_ema' or 'G', got {which!r}")
    g_state = weights.state(which)
    try:
        net = from_state_dicts(weights.g_kwargs, g_state, weights.d_kwargs, weights.states.get("D"), modconv)
    except ConversionError as e:
        raise _in_file_terms(e, weights, which) from None
    if "mapping.w_avg" not in g_state:
        net = dataclasses.replace(net, w_avg=estimate_w_avg(net.G, net.g_vars))
    return net


def _in_file_terms(error, weights, which):
    """Returns `error` extended with the file's own name for the official key it names."""
    found = re.match(r"(G|D): .*?key '([^']+)'", str(error))
    names = weights.file_names.get(which if found and found[1] == "G" else "D", {}) if found else {}
    if found and found[2] in names:
        return ConversionError(f"{error}; in the file: {names[found[2]]}")
    return error


def estimate_w_avg(G, g_vars, n=W_AVG_SAMPLES, seed=0):
    """Returns the mean of w over n latents z drawn by NumPy's default_rng(seed), for files that
    keep no tracked w_avg (rosinality's train.py: its tools average w the same way)."""
    if G.c_dim:
        raise ConversionError("a class-conditional generator needs its tracked w_avg in the file")
    z = np.random.default_rng(seed).standard_normal((n, G.z_dim)).astype(np.float32)
    ws = G.apply(g_vars, jnp.asarray(z), method=Generator.map)
    return jnp.mean(ws[:, 0], axis=0)


def from_state_dicts(g_kwargs, g_state, d_kwargs=None, d_state=None, modconv="activation"):
    """Returns a StyleGAN2 built from official constructor kwargs and state_dicts."""
    G = generator_from_kwargs(g_kwargs, modconv)
    z = jnp.zeros((1, G.z_dim))
    c = jnp.zeros((1, G.c_dim)) if G.c_dim else None
    g_vars, rest = import_state_dict(G, (z, c, None, 1.0, None, "const"), g_state, what="G")
    w_avg = rest.pop("mapping.w_avg", np.zeros(G.w_dim, np.float32))
    if rest:
        raise ConversionError(f"G: unexpected key {sorted(rest)[0]!r}")
    D = d_vars = None
    if d_kwargs is not None and d_state:
        D = discriminator_from_kwargs(d_kwargs)
        img = jnp.zeros((1, D.img_resolution, D.img_resolution, D.img_channels))
        dc = jnp.zeros((1, D.c_dim)) if D.c_dim else None
        d_vars, rest = import_state_dict(D, (img, dc), d_state, what="D")
        if rest:
            raise ConversionError(f"D: unexpected key {sorted(rest)[0]!r}")
    return StyleGAN2(G, D, g_vars, d_vars, jnp.asarray(w_avg))
