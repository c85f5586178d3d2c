"""Official stylegan2-ada-pytorch and stylegan3 network pickles -> OfficialWeights.

A training snapshot (`network-snapshot-*.pkl`) is a plain pickle of dict(G, D, G_ema,
augment_pipe, training_set_kwargs). Each network is a `torch_utils.persistence` object, which
`torch_pickle` reads as a PersistentObject (class name, state, source text never run). The
state holds what the official constructor was called with (`_init_args`, `_init_kwargs`) and the
module tree (`_parameters`, `_buffers`, `_modules`), from which the state_dict is collected under
the names `Module.state_dict()` gives.

Two official modules define StyleGAN2 networks: stylegan2-ada-pytorch's `training.networks` and
stylegan3's `training.networks_stylegan2`. They differ in constructor form (the latter's
Generator takes the synthesis arguments flat, not as `synthesis_kwargs`) and in one default
(conv_clamp None against 256), so the clamp is read from the layers' own state rather than
assumed. stylegan3's alias-free generator (`training.networks_stylegan3`) is refused.
"""

import numpy as np

from jaxstyle.interop.stylegan2_ada import ConversionError, OfficialWeights
from jaxstyle.interop.torch_pickle import PersistentObject

NETWORKS = {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}
# Positional constructor arguments, in the official order (snapshots normally pass keywords).
POSITIONAL = {"Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"),
              "Discriminator": ("c_dim", "img_resolution", "img_channels")}
G_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def is_snapshot(obj):
    """Returns whether `obj` (as torch_pickle read it) is an official network snapshot."""
    return isinstance(obj, dict) and isinstance(obj.get("G_ema"), PersistentObject)


def from_snapshot(obj, path):
    """Returns the OfficialWeights (G_ema, G, D) of a snapshot dict read by torch_pickle."""
    if not is_snapshot(obj):
        held = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(f"{path}: not an official network snapshot (a dict with G_ema pickled "
                              f"through torch_utils.persistence); it holds {held}")
    states, kwargs = {}, {}
    for key, class_name in NETWORKS.items():
        net = obj.get(key)
        if net is None:
            continue
        check_network(net, class_name, f"{path}: {key}")
        try:
            states[key] = state_dict(net)
            kwargs[key] = (generator_kwargs if class_name == "Generator" else discriminator_kwargs)(net)
        except ConversionError as e:
            raise ConversionError(f"{path}: {key}: {e}") from None
    if "G" in kwargs and kwargs["G"] != kwargs["G_ema"]:
        raise ConversionError(f"{path}: G and G_ema were built with different arguments")
    return OfficialWeights(kwargs["G_ema"], kwargs.get("D"), states,
                           f"{path} (official network pickle, {module_kind(obj['G_ema'])})")


def module_kind(net):
    """Returns which official module a StyleGAN2 generator came from, judged by its constructor
    arguments: stylegan3's networks_stylegan2 takes the synthesis arguments flat."""
    nested = "synthesis_kwargs" in (net.state.get("_init_kwargs") or {})
    return "stylegan2-ada training.networks" if nested else "stylegan3 training.networks_stylegan2"


def check_network(net, class_name, what):
    """Raises ConversionError unless `net` is an official StyleGAN2 `class_name`."""
    if not isinstance(net, PersistentObject):
        raise ConversionError(f"{what} is {type(net).__name__}, not a network pickled through "
                              "torch_utils.persistence")
    if net.class_name != class_name:
        raise ConversionError(f"{what} is a {net.class_name!r}, expected the official {class_name}")
    synthesis = net.state.get("_modules", {}).get("synthesis")
    alias_free = "class SynthesisInput" in net.module_src or (
        isinstance(synthesis, PersistentObject) and "input" in synthesis.state.get("_modules", {}))
    if class_name == "Generator" and alias_free:
        raise ConversionError(f"{what} is a StyleGAN3 alias-free generator (training.networks_stylegan3), "
                              "which jaxstyle does not implement; StyleGAN2 pickles (stylegan2-ada-pytorch, "
                              "or stylegan3 trained with --cfg=stylegan2) load")


def state_dict(net, prefix=""):
    """Returns {name: array} of a network's parameters and persistent buffers, named as torch's
    Module.state_dict() names them (submodule path joined by dots)."""
    state, out = net.state, {}
    skip = state.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(value, np.ndarray):
                raise ConversionError(f"{prefix}{name} is {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise ConversionError(f"submodule {prefix}{name} is {type(child).__name__}, not a network object")
        out.update(state_dict(child, f"{prefix}{name}."))
    return out


def submodule_state(net, path):
    """Returns the state of the submodule at dotted `path`, or None if there is none."""
    for part in path.split("."):
        net = (net.state.get("_modules") or {}).get(part) if net is not None else None
    return net.state if isinstance(net, PersistentObject) else None


def init_kwargs(net):
    """Returns the keyword arguments the official constructor was called with (positional ones named)."""
    args = tuple(net.state.get("_init_args") or ())
    names = POSITIONAL[net.class_name]
    if len(args) > len(names):
        raise ConversionError(f"{net.class_name} was built with {len(args)} positional arguments")
    kwargs = {k: _plain(v) for k, v in (net.state.get("_init_kwargs") or {}).items()}
    return {**dict(zip(names, args)), **kwargs}


def generator_kwargs(net):
    """Returns G's constructor arguments in stylegan2-ada form (synthesis arguments nested), with
    conv_clamp as the synthesis layers hold it, whichever module's default applied."""
    kw = init_kwargs(net)
    synthesis = dict(kw.pop("synthesis_kwargs", {}))
    synthesis.update({k: kw.pop(k) for k in list(kw) if k not in G_ARGS})  # networks_stylegan2: flat
    layer = submodule_state(net, "synthesis.b4.conv1")
    if layer is None:
        raise ConversionError("G has no synthesis.b4.conv1 layer, so it is not a StyleGAN2 generator")
    synthesis["conv_clamp"] = layer.get("conv_clamp")
    return {**kw, "mapping_kwargs": dict(kw.get("mapping_kwargs", {})), "synthesis_kwargs": synthesis}


def discriminator_kwargs(net):
    """Returns D's constructor arguments, with conv_clamp and minibatch-stddev settings as the
    layers hold them (the two official modules default them differently)."""
    kw = init_kwargs(net)
    conv = submodule_state(net, "b4.conv")
    if conv is None:
        raise ConversionError("D has no b4.conv layer, so it is not a StyleGAN2 discriminator")
    kw["conv_clamp"] = conv.get("conv_clamp")
    epilogue = dict(kw.get("epilogue_kwargs", {}))
    mbstd = submodule_state(net, "b4.mbstd")
    epilogue["mbstd_num_channels"] = 0 if mbstd is None else mbstd.get("num_channels")
    if mbstd is not None:
        epilogue["mbstd_group_size"] = mbstd.get("group_size")
    kw["epilogue_kwargs"] = epilogue
    return kw


def _plain(value):
    """Returns value with EasyDicts (and nested ones) as plain dicts."""
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else value
