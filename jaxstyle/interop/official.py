"""One entry point from a StyleGAN2 checkpoint file, of any supported kind, to OfficialWeights.

The kind is read from the file's content, not its name: a zip without torch's data.pkl is a
fixture-format .npz; a plain pickle holding G_ema as a `torch_utils.persistence` object is an
official stylegan2-ada-pytorch / stylegan3 network snapshot; a torch.save file (zip or legacy)
holding `g_ema` is a rosinality stylegan2-pytorch checkpoint. Everything goes through
`torch_pickle`'s allowlist: nothing in a file is executed, and torch is not needed.
"""

from jaxstyle.interop import network_pickle, rosinality, torch_pickle
from jaxstyle.interop.stylegan2_ada import ConversionError, read_fixture_weights

KINDS = ("an official stylegan2-ada-pytorch / stylegan3 network pickle (.pkl), a rosinality "
         "stylegan2-pytorch checkpoint (.pt) or a fixture-format .npz")


def read_official(path):
    """Returns the OfficialWeights of the checkpoint at `path` (see the module docstring).

    Raises FileNotFoundError for a missing file, UnsafePickleError for a pickle that asks for
    anything outside the allowlist, TorchPickleError for a damaged file and ConversionError for
    a file of another kind or with unsupported contents, each naming the problem."""
    try:
        kind = torch_pickle.file_format(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such checkpoint: {path}") from None
    if kind == "other-zip":
        return read_fixture_weights(path)
    if kind is None:
        raise ConversionError(f"{path} is not a checkpoint jaxstyle reads; expected {KINDS}")
    obj = torch_pickle.load(path)
    if network_pickle.is_snapshot(obj):
        return network_pickle.from_snapshot(obj, path)
    if rosinality.is_rosinality(obj):
        return rosinality.from_checkpoint(obj, path)
    held = ", ".join(map(str, sorted(obj, key=str))) if isinstance(obj, dict) else type(obj).__name__
    raise ConversionError(f"{path} holds {held or 'an empty dict'}, not a StyleGAN2 checkpoint; expected {KINDS}")
