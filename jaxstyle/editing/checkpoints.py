"""One way for every editing tool to open a generator: a train.py run or a checkpoint file."""

import json
import os

import numpy as np


def open_generator(workdir=None, model=None, size=None):
    """Returns the generator handle of a train.py work directory or a checkpoint file: a
    jaxstyle.interop.StyleGAN2 (official .pkl, rosinality .pt, fixture .npz, StyleGAN2 runs), or
    a DiagonalGAN (official .model, DiagonalGAN .npz, runs with content codes; `size` picks the
    resolution of an official checkpoint trained below its full size).

    Raises FileNotFoundError or ValueError with a message that names the problem and the fix.
    """
    from jaxstyle.editing.diagonal_cli import open_model as open_diagonalgan
    from jaxstyle.interop import StyleGAN2, load_stylegan2_ada
    if workdir is not None:
        path = os.path.join(workdir, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: --workdir takes the work directory of a train.py run")
        with open(path) as f:
            if json.load(f).get("model", {}).get("content_op") == "dat":
                return open_diagonalgan(workdir)
        from jaxstyle.training.restore import load_run
        run = load_run(workdir)
        if not run.grown:
            raise ValueError(f"{workdir} is still growing (at {run.phase.resolution} px): the editing "
                             "tools need a run trained to full resolution")
        return StyleGAN2(run.G, None, run.state.g_ema, None, run.state.w_avg)
    if not os.path.isfile(model):
        raise FileNotFoundError(f"model {model} not found: --model takes a checkpoint file (official .pkl, "
                                "rosinality .pt, fixture .npz, DiagonalGAN .model), --workdir a train.py run")
    if model.endswith(".model") or (model.endswith(".npz") and "code_dim" in _npz_meta(model)):
        return open_diagonalgan(model, size)
    try:
        return load_stylegan2_ada(model)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as e:  # unpickling/zip errors of a file that is not a checkpoint at all
        raise ValueError(f"cannot read {model} as a StyleGAN2 checkpoint ({type(e).__name__}: {e}); pass an "
                         "official .pkl, a rosinality .pt, a fixture-format .npz, an official DiagonalGAN "
                         ".model or a --workdir") from e


def _npz_meta(path):
    # Only the small meta_json entry; the importers read the rest.
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(bytes(data["meta_json"])) if "meta_json" in data.files else {}
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path} as a fixture-format .npz ({e}); pass a checkpoint or a "
                         "--workdir") from e
