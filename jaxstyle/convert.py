"""Convert a StyleGAN2 checkpoint into a jaxstyle training run: python -m jaxstyle.convert SRC DST

SRC is an official stylegan2-ada-pytorch / stylegan3 network pickle (.pkl, StyleGAN2
architectures), a rosinality stylegan2-pytorch checkpoint (.pt) or a fixture-format .npz, told
apart by content; nothing in it is executed and torch is not needed. DST, a new directory, is
written as train.py writes a run:

    config.json     the --config preset (objective, logging) with the model read off SRC and
                    data from --data at SRC's resolution
    checkpoints/    one checkpoint at iteration 0: G, D, and G_ema in the EMA slot with its
                    w_avg; Adam states and pl_mean start fresh (the files hold none jaxstyle uses)
    config.py       a preset returning config.json, so that training resumes with
                    python train.py --workdir DST  (train.py takes DST/config.py by default)

and every tool that opens a run directory (load_run, evaluate.py, ...) opens DST. A file
without a generator's trained weights (G) starts G from G_ema; one without a discriminator starts
D from the preset's random initialisation. DST is written in a temporary directory beside it and
renamed when complete, so a failure leaves nothing behind; an existing non-empty DST is
refused. Bad input exits 2 with one line on stderr.
"""

import argparse
import dataclasses
import importlib.util
import os
import shutil
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

DEFAULT_PRESET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "default.py")
G_MODEL_KEYS = ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "architecture", "conv_clamp")
PRESET_PY = '''"""Preset of the run in this directory, written by python -m jaxstyle.convert: returns config.json.

    python train.py --workdir {dst}      (the same as --config {dst}/config.py)
"""

import json
import os

import ml_collections


def get_config():
    """Returns this run's config, read from config.json beside this file."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if "sample_grid" in config:
        config.sample_grid = tuple(config.sample_grid)
    return config
'''


def load_preset(path):
    """Returns get_config() of a configs/*.py preset file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"preset {path} not found: --config takes a preset file such as configs/default.py")
    spec = importlib.util.spec_from_file_location("jaxstyle_convert_preset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"preset {path} has no get_config(): --config takes a preset file such as configs/default.py")
    return module.get_config()


def import_networks(weights, modconv="activation"):
    """Returns (G, D, {"g", "g_ema", "d"} variables, w_avg) of OfficialWeights; "g" is G_ema's
    when the file holds no trained G, "d" None when it holds no D."""
    from jaxstyle.interop import from_official
    ema = from_official(weights, "G_ema", modconv)
    g = from_official(weights, "G", modconv) if weights.states.get("G") is not None else ema
    return ema.G, ema.D, {"g": g.g_vars, "g_ema": ema.g_vars, "d": ema.d_vars}, ema.w_avg


def run_config(base, G, D, data):
    """Returns the run config: preset `base` with the model of (G, D) and data `data` at G's resolution."""
    from jaxstyle.training.loop import MODEL_DEFAULTS
    config = base.to_dict()
    config.pop("progressive", None)  # a converted StyleGAN2 trains at full resolution
    config["model"] = {**config["model"], **{k: getattr(G, k) for k in (*MODEL_DEFAULTS, *G_MODEL_KEYS)}}
    config["data"] = {**config["data"], "source": data, "resolution": G.img_resolution}
    if G.c_dim:
        config["data"]["use_labels"] = True
    if D is not None:
        config["model"].update(d_architecture=D.architecture, mbstd_num_channels=D.mbstd_num_channels)
        config["objective"]["mbstd_group_size"] = D.mbstd_group_size
    return ConfigDict(config)


def _fields(module):
    skip = ("parent", "name", "modconv")
    return {f.name: tuple(v) if isinstance(v, list) else v
            for f in dataclasses.fields(module) if f.name not in skip for v in [getattr(module, f.name)]}


def check_expressible(built, imported, what):
    """Raises ConversionError unless train.py's network `built` equals the imported one."""
    from jaxstyle.interop import ConversionError
    want, got = _fields(imported), _fields(built)
    for key, value in want.items():
        if got.get(key) != value:
            raise ConversionError(f"{what}: a jaxstyle run cannot hold this checkpoint's {key}={value!r} "
                                  f"(train.py would build {key}={got.get(key)!r} from the config); "
                                  "jaxstyle.interop.load_stylegan2_ada still loads it for sampling")


def check_data(source, G, data):
    """Raises ConversionError unless the data source matches the generator's images and labels."""
    from jaxstyle.interop import ConversionError
    if source.num_channels != G.img_channels:
        raise ConversionError(f"--data {data!r} has {source.num_channels} channels, the generator makes {G.img_channels}")
    if source.label_dim != G.c_dim:
        fix = (f"pass an image folder or .zip whose dataset.json labels {G.c_dim} classes" if G.c_dim
               else "pass an unlabelled dataset")
        raise ConversionError(f"the generator takes {G.c_dim} label dimensions but --data {data!r} has "
                              f"{source.label_dim}: {fix}")


def initial_state(config, G, D, variables, w_avg):
    """Returns the TrainState at iteration 0 holding the imported weights, fresh Adam states and
    pl_mean, replicated as train.py's; raises ConversionError if config's networks differ."""
    from jaxstyle.data.registry import open_source
    from jaxstyle.interop import ConversionError
    from jaxstyle.parallel import make_mesh, replicated
    from jaxstyle.training.loop import build, trainer_for
    options = {k: v for k, v in config.data.to_dict().items() if k in ("seed", "use_labels")}
    source = open_source(config.data.source, config.data.resolution, **options)
    check_data(source, G, config.data.source)
    G_run, D_run, objective = build(config, source)
    check_expressible(G_run, G, "G")
    if D is not None:
        check_expressible(D_run, D, "D")
    group = objective.mbstd_group_size
    if group and objective.batch_size % group:
        raise ConversionError(f"the preset's batch_size {objective.batch_size} is not a multiple of the "
                              f"discriminator's minibatch-stddev group {group}: use a preset whose batch is")
    mesh = make_mesh()
    trainer = trainer_for(G_run, D_run, objective, mesh)
    key = jax.random.key(config.seed)
    # The state's structure, traced but not compiled: a fresh init compiles both networks, which
    # takes long for large ones; only a file without a discriminator needs D's random init.
    abstract = jax.eval_shape(trainer.init_state, key)
    d = variables["d"] if variables["d"] is not None else trainer.init_state(key).d
    state = abstract.replace(
        step=jnp.zeros((), jnp.int32), g=variables["g"], g_ema=variables["g_ema"], d=d,
        g_opt=trainer.g_tx.init(variables["g"]["params"]), d_opt=trainer.d_tx.init(d["params"]),
        w_avg=jnp.asarray(w_avg), pl_mean=jnp.zeros(()), key=jax.random.fold_in(key, 1))
    got, want = (jax.tree_util.tree_structure(s) for s in (state, abstract))
    shapes = jax.tree_util.tree_map(lambda a, b: (a.shape, a.dtype) == (b.shape, b.dtype), state, abstract)
    if got != want or not all(jax.tree_util.tree_leaves(shapes)):
        raise ConversionError("the imported weights do not fill train.py's state; report this as a jaxstyle bug")
    return jax.device_put(state, replicated(mesh))


def write_run(dst, config, state):
    """Writes config.json, config.py and checkpoints/ into a temporary directory and renames it to dst."""
    from jaxstyle.checkpoint import Checkpointer
    from jaxstyle.logging import save_config
    from jaxstyle.training.loop import identity
    dst = os.path.abspath(dst)
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write {dst}: its parent directory {parent} does not exist")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dst)}.", suffix=".converting", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the run directory should not be
        save_config(tmp, config.to_dict())
        with open(os.path.join(tmp, "config.py"), "w") as f:
            f.write(PRESET_PY.format(dst=dst))
        ckpt = Checkpointer(os.path.join(tmp, "checkpoints"), keep=config.get("keep_checkpoints", 3), asynchronous=False)
        seed = config.data.get("seed", 0) + config.seed
        ckpt.save(0, state, {"position": 0, "seed": seed, "nimg": 0}, identity(config))
        ckpt.close()
        refuse_existing(dst)
        if os.path.isdir(dst):
            os.rmdir(dst)  # empty: replaced by the finished run
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def refuse_existing(dst):
    """Raises FileExistsError if dst exists and is not an empty directory."""
    if os.path.exists(dst) and not (os.path.isdir(dst) and not os.listdir(dst)):
        raise FileExistsError(f"{dst} exists and is not empty: pass a new directory to write the run into")


def convert(src, dst, config=None, data="toyfaces", modconv="activation"):
    """Writes a jaxstyle run directory `dst` from checkpoint `src`; returns the OfficialWeights read.

    config: the preset ConfigDict supplying everything but model and data (default configs/default.py).
    Raises FileNotFoundError, FileExistsError, ConversionError, TorchPickleError or DataError with
    a message naming the problem; dst is then left as it was."""
    from jaxstyle.interop import read_official
    refuse_existing(dst)
    weights = read_official(src)
    G, D, variables, w_avg = import_networks(weights, modconv)
    config = run_config(config if config is not None else load_preset(DEFAULT_PRESET), G, D, data)
    state = initial_state(config, G, D, variables, w_avg)
    write_run(dst, config, state)
    return weights


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", help="checkpoint: official .pkl, rosinality .pt or fixture-format .npz")
    p.add_argument("dst", help="new run directory to write")
    p.add_argument("--config", default=DEFAULT_PRESET, help="preset giving objective and logging settings")
    p.add_argument("--data", default="toyfaces", help="dataset spec the run trains on (see jaxstyle.data.registry)")
    args = p.parse_args(argv)
    start = time.time()
    try:
        weights = convert(args.src, args.dst, load_preset(args.config), args.data)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    held = ", ".join(k for k in ("G", "G_ema", "D") if weights.states.get(k) is not None)
    print(f"wrote {args.dst} from {weights.source} ({held}) in {time.time() - start:.1f} s; train on with\n"
          f"  python train.py --config {os.path.join(args.dst, 'config.py')} --workdir {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
