"""Official network pickles and rosinality checkpoints, loaded safely, and `python -m jaxstyle.convert`.

The .pkl / .pt fixtures were written by torch (tests/fixtures/make_pickle_fixtures.py, README there);
odd and malicious files are written here with plain `pickle`, so the tests need no torch.
References: the official PyTorch outputs in stylegan2_ada_visible.npz, a torch transcription of
rosinality's forward pass (rosinality_visible.npz), a NumPy mapping network written below, and
the same weights loaded from the fixture-format .npz.
"""

import collections
import functools
import io
import json
import os
import pickle
import re
import sys
import zipfile
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FIXTURES, read_fixture, rel_err
from ml_collections import ConfigDict

from jaxstyle import convert as convert_cli
from jaxstyle.interop import (ConversionError, StyleGAN2, from_official, load_stylegan2_ada, network_pickle,
                              torch_pickle)
from jaxstyle.interop.torch_pickle import PersistentObject, UnsafePickleError

TOL = 1e-5
PKL, COND, ROSI = (FIXTURES / n for n in ("stylegan2_ada_visible.pkl", "stylegan2_cond.pkl", "rosinality_visible.pt"))


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def nhwc(x):
    return jnp.asarray(np.asarray(x).transpose(0, 2, 3, 1))


def outputs(net, z, c=None, reals=None):
    """Returns W, images (noise const and none), truncated images (psi 0.5) and D logits of a handle."""
    return _forward(net.G, net.D)(net.g_vars, net.d_vars, net.w_avg, z, c, reals)


@functools.lru_cache(maxsize=None)
def _forward(G, D):
    """Returns `outputs` jitted for one pair of networks (handles of equal networks share it)."""
    @jax.jit
    def run(g_vars, d_vars, w_avg, z, c, reals):
        net = StyleGAN2(G, D, g_vars, d_vars, w_avg)
        ws = net.mapping(z, c)
        out = {"ws": ws, "img_const": net.synthesis(ws), "img_none": net.synthesis(ws, noise_mode="none"),
               "img_trunc": net.generate(z, c, psi=0.5)}
        if reals is not None:
            out["logits"] = net.discriminate(reals, c)
        return out
    return run


# --- writing torch-format files without torch --------------------------------------------------

class Global:
    """Pickles as the global `module.name`, which need not be importable here."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # the pickler wants a reduce function to be callable
        raise AssertionError("only pickled, never called")


class Reduce:
    """Pickles as fn(*args)."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class Pickler(pickle._Pickler):  # the pure-Python pickler lets Global choose its own opcode
    dispatch: ClassVar = {**pickle._Pickler.dispatch,
                          Global: lambda self, g: self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode())}

    def persistent_id(self, obj):
        return getattr(obj, "record", None)


class Storage:
    def __init__(self, key, numel):
        self.record = ("storage", Global("torch", "FloatStorage"), key, "cpu", numel)


def save_zip(path, obj):
    """Writes `obj` (dicts of float32 arrays and plain values) as torch.save's zip format; returns path."""
    storages = {}

    def tensors(x):
        if isinstance(x, np.ndarray):
            key = str(len(storages))
            storages[key] = np.ascontiguousarray(x, "<f4").tobytes()
            stride = [s // 4 for s in np.ascontiguousarray(x, "<f4").strides]
            return Reduce(Global("torch._utils", "_rebuild_tensor_v2"),
                          (Storage(key, x.size), 0, x.shape, tuple(stride), False, collections.OrderedDict()))
        return {k: tensors(v) for k, v in x.items()} if isinstance(x, dict) else x

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(tensors(obj))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
    return path


def persistent(class_name, state, module_src="class Generator: pass\n"):
    """Returns what torch_utils.persistence pickles for an object: the official record."""
    meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
    return Reduce(Global("torch_utils.persistence", "_reconstruct_persistent_obj"), (meta,))


def save_pickle(path, obj):
    buf = io.BytesIO()
    Pickler(buf, protocol=4).dump(obj)
    path.write_bytes(buf.getvalue())
    return path


# --- official network pickles ------------------------------------------------------------------

@pytest.fixture(scope="module")
def pkl_net():
    return load_stylegan2_ada(PKL)


def test_pickle_reproduces_the_official_outputs_and_the_npz_import(pkl_net, sg2_net, sg2_fixture):
    fx = sg2_fixture
    z, reals = fx["in/z"], nhwc(fx["out/reals"])
    got, npz = outputs(pkl_net, z, reals=reals), outputs(sg2_net, z, reals=reals)
    for name in got:
        np.testing.assert_array_equal(got[name], npz[name], err_msg=name)
    assert rel_err(got["ws"], fx["out/ws"]) < TOL
    assert rel_err(nchw(got["img_const"]), fx["out/img_const"]) < TOL
    assert rel_err(nchw(got["img_none"]), fx["out/img_none"]) < TOL
    assert rel_err(nchw(got["img_trunc"]), fx["out/img_trunc_psi0.5_const"]) < TOL
    assert rel_err(got["logits"], fx["out/d_logits_reals"]) < TOL
    np.testing.assert_array_equal(pkl_net.w_avg, fx["G/mapping.w_avg"])


def test_pickle_G_is_the_trained_generator(pkl_net):
    g = load_stylegan2_ada(PKL, which="G")
    flat = lambda v: dict(jax.tree_util.tree_flatten_with_path(v)[0])
    ema, trained = flat(pkl_net.g_vars), flat(g.g_vars)
    differ = [jax.tree_util.keystr(k) for k in ema if not np.array_equal(ema[k], trained[k])]
    assert differ == ["['params']['synthesis']['b4']['const']"]
    key = next(k for k in ema if jax.tree_util.keystr(k) == differ[0])
    np.testing.assert_array_equal(trained[key], 2 * ema[key])


def test_pickle_is_read_as_records_without_importing_its_modules():
    obj = torch_pickle.load(PKL)
    assert sorted(obj) == ["D", "G", "G_ema", "augment_pipe", "training_set_kwargs"]
    g = obj["G_ema"]
    assert isinstance(g, PersistentObject) and g.class_name == "Generator" and g.version == 6
    assert "class SynthesisNetwork" in g.module_src          # kept as text
    assert isinstance(g.state["_init_kwargs"]["mapping_kwargs"], torch_pickle.EasyDictRecord)
    assert isinstance(g.state["_modules"]["mapping"].state["_modules"]["fc0"].state["weight_gain"], float)
    assert not {"torch_utils.persistence", "dnnlib.util", "training.networks"} & set(sys.modules)


def numpy_mapping(state, z, c, num_layers, lr=0.01):
    """Returns w of the official conditional MappingNetwork in NumPy (normalize z and embed(c), concat, fc)."""
    def fc(x, name, gain=1.0, act=False):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        y = x @ (w * gain / np.sqrt(w.shape[1])).T + b * gain
        return np.where(y >= 0, y, 0.2 * y) * np.sqrt(2) if act else y

    norm = lambda x: x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    x = np.concatenate([norm(z), norm(fc(c, "mapping.embed"))], axis=1)
    for i in range(num_layers):
        x = fc(x, f"mapping.fc{i}", lr, act=True)
    return x


def test_conditional_stylegan3_module_pickle():
    net, npz = load_stylegan2_ada(COND), load_stylegan2_ada(FIXTURES / "stylegan2_cond.npz")
    assert (net.G.c_dim, net.G.conv_clamp, net.D.conv_clamp, net.D.mbstd_group_size) == (3, 256, 256, 2)
    rng = np.random.default_rng(0)
    z, c = rng.standard_normal((4, 8)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    reals = jnp.asarray(rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32))
    got, want = outputs(net, z, c, reals), outputs(npz, z, c, reals)
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    state = {k[2:]: v for k, v in read_fixture("stylegan2_cond.npz").items() if k.startswith("G/")}
    assert rel_err(got["ws"][:, 0], numpy_mapping(state, z, c, num_layers=2)) < TOL
    np.testing.assert_array_equal(load_stylegan2_ada(COND, which="G").w_avg, -net.w_avg)


# --- rosinality checkpoints --------------------------------------------------------------------

@pytest.fixture(scope="module")
def rosi():
    return read_fixture("rosinality_visible.npz")


@pytest.fixture(scope="module")
def rosi_net():
    return load_stylegan2_ada(ROSI)


def test_rosinality_matches_its_forward_pass(rosi_net, rosi):
    z, reals = rosi["in/z"], nhwc(rosi["in/reals"])
    got = outputs(rosi_net, z, reals=reals)
    assert rel_err(got["ws"][:, 0], rosi["out/ws"]) < TOL
    assert rel_err(nchw(got["img_const"]), rosi["out/img_const"]) < TOL
    assert rel_err(nchw(got["img_none"]), rosi["out/img_zero_noise"]) < TOL
    assert rel_err(rosi_net.w_avg, rosi["out/w_mean"]) < TOL
    assert rel_err(nchw(got["img_trunc"]), rosi["out/img_trunc0.5"]) < TOL
    assert rel_err(got["logits"], rosi["out/d_logits"]) < TOL
    G = rosi_net.G
    assert (G.img_resolution, G.z_dim, G.mapping_layers, G.channel_max, rosi_net.D.mbstd_group_size) == (16, 8, 2, 8, 4)


def test_rosinality_equals_the_npz_import(rosi_net, rosi):
    npz = load_stylegan2_ada(FIXTURES / "rosinality_visible.npz")
    z, reals = rosi["in/z"], nhwc(rosi["in/reals"])
    got, want = outputs(rosi_net, z, reals=reals), outputs(npz, z, reals=reals)
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    g = load_stylegan2_ada(ROSI, which="G")
    np.testing.assert_array_equal(g.g_vars["params"]["synthesis"]["b4"]["const"],
                                  2 * rosi_net.g_vars["params"]["synthesis"]["b4"]["const"])


@pytest.fixture(scope="module")
def rosi_ckpt():
    return torch_pickle.load(ROSI)


def test_rosinality_checkpoint_contents(rosi_ckpt):
    assert sorted(rosi_ckpt) == ["ada_aug_p", "args", "d", "d_optim", "g", "g_ema", "g_optim"]
    assert rosi_ckpt["args"]["size"] == 16 and rosi_ckpt["args"]["arch"] == "stylegan2"


def test_convert_weight_output_with_latent_avg_and_module_prefix(tmp_path, rosi_ckpt, rosi_net, rosi):
    latent_avg = np.linspace(-1, 1, 8).astype(np.float32)
    g_ema = {f"module.{k}": v for k, v in rosi_ckpt["g_ema"].items()}
    net = load_stylegan2_ada(save_zip(tmp_path / "ffhq.pt", {"g_ema": g_ema, "latent_avg": latent_avg}))
    np.testing.assert_array_equal(net.w_avg, latent_avg)
    assert_same_tree(net.g_vars, rosi_net.g_vars)
    assert net.D is None
    with pytest.raises(ConversionError, match="holds no G "):
        load_stylegan2_ada(tmp_path / "ffhq.pt", which="G")


def rosi_variant(tmp_path, ckpt, part, edit):
    """Writes the rosinality checkpoint with `edit` applied to ckpt[part] (a state_dict or args)."""
    changed = {k: dict(v) if isinstance(v, dict) else v for k, v in ckpt.items() if k in ("g", "d", "g_ema", "args")}
    edit(changed[part])
    return save_zip(tmp_path / "bad.pt", changed)


@pytest.mark.parametrize("part,edit,message", [
    ("g_ema", lambda s: s.pop("convs.2.conv.modulation.weight"), r"g_ema: missing key 'convs.2.conv.modulation.weight'"),
    ("g_ema", lambda s: s.update({"convs.1.extra": np.zeros(3, np.float32)}), r"g_ema: unexpected key 'convs.1.extra'"),
    ("d", lambda s: s.update({"convs.2.conv1.0.weight": np.zeros((8, 8, 1, 3, 3), np.float32)}),
     r"D: key 'b8.conv0.weight' has shape \(8, 8, 1, 3, 3\), expected \(8, 8, 3, 3\); "
     r"in the file: d\['convs.2.conv1.0.weight'\]"),
    ("g_ema", lambda s: s.update({"convs.0.conv.weight": np.zeros((2, 8, 8, 3, 3), np.float32)}),
     r"g_ema: key 'convs.0.conv.weight' has shape \(2, 8, 8, 3, 3\); expected leading axes \(1,\)"),
    ("g_ema", lambda s: s.update({"to_rgbs.1.upsample.kernel": np.eye(4, dtype=np.float32)}),
     r"g_ema: key 'to_rgbs.1.upsample.kernel' is not the \[1, 3, 3, 1\] blur kernel"),
    ("args", lambda a: a.update(size=32), r"args.size=32 but the weights have size 16"),
    ("args", lambda a: a.update(arch="swagan"), r"args.arch='swagan'; only rosinality's 'stylegan2'"),
])
def test_rosinality_mismatches_name_the_key(tmp_path, rosi_ckpt, part, edit, message):
    with pytest.raises(ConversionError, match=message):
        load_stylegan2_ada(rosi_variant(tmp_path, rosi_ckpt, part, edit))


# --- mismatches and unsupported networks in official pickles ------------------------------------

@pytest.fixture
def snapshot():
    return torch_pickle.load(PKL)   # fresh records: the tests edit them


def submodule(net, path):
    for part in path.split("."):
        net = net.state["_modules"][part]
    return net


@pytest.mark.parametrize("edit,message", [
    (lambda o: submodule(o["G_ema"], "synthesis.b8.conv0.affine").state["_parameters"].pop("weight"),
     "G: missing key 'synthesis.b8.conv0.affine.weight'"),
    (lambda o: submodule(o["G_ema"], "synthesis.b16").state["_parameters"].update(extra=np.zeros(3, np.float32)),
     "G: unexpected key 'synthesis.b16.extra'"),
    (lambda o: submodule(o["D"], "b4.fc").state["_parameters"].update(weight=np.zeros((32, 256), np.float32)),
     r"D: key 'b4.fc.weight' has shape \(32, 256\), expected \(32, 512\)"),
    (lambda o: [o.pop("G"), o["G_ema"].state["_init_kwargs"]["mapping_kwargs"].update(layer_features=16)],
     "G.mapping: constructor argument layer_features=16 is not supported"),
    (lambda o: [o.pop("G"), o["G_ema"].state["_init_kwargs"]["synthesis_kwargs"].update(use_noise=False)],
     "G.synthesis: constructor argument use_noise=False is not supported"),
    (lambda o: o["G_ema"].state["_init_kwargs"].update(z_dim=64), "G and G_ema were built with different arguments"),
    (lambda o: o.update(D=o["augment_pipe"]), "D is a 'AugmentPipe', expected the official Discriminator"),
])
def test_pickle_mismatches_name_the_key(snapshot, edit, message):
    edit(snapshot)
    with pytest.raises(ConversionError, match=message):
        from_official(network_pickle.from_snapshot(snapshot, "net.pkl"))


def test_pickles_converted_from_tensorflow_load(snapshot, pkl_net):
    """Official legacy.py, converting TF pickles (ffhq.pkl, ...), spells out every default."""
    for key in ("G", "G_ema"):
        kw = snapshot[key].state["_init_kwargs"]
        kw["mapping_kwargs"].update(embed_features=None, layer_features=None, activation="lrelu",
                                    lr_multiplier=0.01, w_avg_beta=0.995)
        kw["synthesis_kwargs"].update(architecture="skip", resample_filter=[1, 3, 3, 1], use_noise=True,
                                      activation="lrelu")
    snapshot["D"].state["_init_kwargs"].update(
        cmap_dim=None, block_kwargs=dict(activation="lrelu", resample_filter=[1, 3, 3, 1], freeze_layers=0),
        mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None, activation="lrelu",
                            lr_multiplier=0.1),
        epilogue_kwargs=dict(mbstd_group_size=32, mbstd_num_channels=1, activation="lrelu"))
    net = from_official(network_pickle.from_snapshot(snapshot, "ffhq.pkl"))
    assert (net.G, net.D) == (pkl_net.G, pkl_net.D)   # mbstd group as the layer holds it, not the kwarg
    assert_same_tree(net.g_vars, pkl_net.g_vars)


def test_stylegan3_alias_free_generator_is_refused(tmp_path):
    synthesis = persistent("SynthesisNetwork", {"_modules": {"input": persistent("SynthesisInput", {}),
                                                             "L0_36_512": persistent("SynthesisLayer", {})}})
    g = persistent("Generator", {"_modules": {"synthesis": synthesis}, "_init_kwargs": {"z_dim": 512}},
                   module_src='"""Alias-Free Generative Adversarial Networks"""\nclass SynthesisInput: pass\n')
    path = save_pickle(tmp_path / "stylegan3-t.pkl", {"G": g, "G_ema": g, "D": None})
    with pytest.raises(ConversionError, match=r"StyleGAN3 alias-free generator \(training.networks_stylegan3\)"):
        load_stylegan2_ada(path)


# --- nothing in a file is executed --------------------------------------------------------------

class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_module_src_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    src = f"open({str(marker)!r}, 'w').close()\nclass Generator:\n    pass\n"
    path = save_pickle(tmp_path / "net.pkl", {"G_ema": persistent("Generator", {"_init_kwargs": {}}, src)})
    record = torch_pickle.load(path)["G_ema"]
    assert record.module_src == src and not marker.exists()
    with pytest.raises(ConversionError, match="not a StyleGAN2 generator"):
        load_stylegan2_ada(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "in_state", "args_class", "object_dtype"])
def test_code_in_a_pickle_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        path = save_pickle(tmp_path / "net.pkl", {"G_ema": Evil(marker)})
    elif payload == "builtins.exec":
        code = Reduce(Global("builtins", "exec"), (f"open({str(marker)!r}, 'w').close()",))
        path = save_pickle(tmp_path / "net.pkl", {"G": code, "G_ema": None})
    elif payload == "in_state":  # deep inside an otherwise well-formed persistent object
        path = save_pickle(tmp_path / "net.pkl", {"G_ema": persistent("Generator", {"z_dim": Evil(marker)})})
    elif payload == "args_class":  # rosinality args of a class other than argparse.Namespace
        args = Reduce(Global("train", "Options"), ())
        path = save_zip(tmp_path / "ckpt.pt", {"g_ema": {}, "args": args})
    else:
        path = save_pickle(tmp_path / "net.pkl", {"G_ema": Reduce(Global("numpy", "dtype"), ("O",))})
    expected = {"os.system": r"refusing to load (posix|os|nt)\.system", "builtins.exec": r"refusing to load builtins\.exec",
                "in_state": r"refusing to load (posix|os|nt)\.system", "args_class": r"refusing to load train\.Options",
                "object_dtype": r"refusing numpy\.dtype\('O'\)"}[payload]
    with pytest.raises(UnsafePickleError, match=expected):
        load_stylegan2_ada(path)
    assert convert_cli.main([str(path), str(tmp_path / "run")]) == 2
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_stylegan2_ada(tmp_path / "missing.pkl")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConversionError, match="not a checkpoint jaxstyle reads; expected an official"):
        load_stylegan2_ada(tmp_path / "notes.txt")
    with pytest.raises(ConversionError, match=r"holds a, b, not a StyleGAN2 checkpoint"):
        load_stylegan2_ada(save_pickle(tmp_path / "dict.pkl", {"a": 1, "b": 2}))


# --- python -m jaxstyle.convert -----------------------------------------------------------------

@pytest.fixture(scope="module")
def preset():
    """The default preset with a batch small enough for a quick resume."""
    config = convert_cli.load_preset(convert_cli.DEFAULT_PRESET)
    config.objective.batch_size = 4
    return config


@pytest.fixture(scope="module")
def converted(tmp_path_factory, preset):
    dst = tmp_path_factory.mktemp("runs") / "from_pkl"
    convert_cli.convert(PKL, dst, preset)
    return dst


def assert_same_tree(a, b):
    for (path, x), (_, y) in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_flatten_with_path(b)[0]):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_converted_run_loads_as_a_train_py_run(converted, pkl_net):
    from jaxstyle.training.loop import identity
    from jaxstyle.training.restore import load_run
    assert sorted(os.listdir(converted)) == ["checkpoints", "config.json", "config.py"]
    # train.py --config DST/config.py resumes when this config's identity is the checkpoint's;
    # load_run restores with config.json's, as train.py does.
    config = convert_cli.load_preset(converted / "config.py")
    saved = ConfigDict(json.loads((converted / "config.json").read_text()))
    assert json.loads(json.dumps(identity(config))) == json.loads(json.dumps(identity(saved)))
    assert (config.model.z_dim, config.model.channel_max, config.objective.mbstd_group_size) == (32, 32, 2)
    run = load_run(str(converted))
    assert int(run.state.step) == 0 and run.nimg == 0 and run.G.img_resolution == 16
    assert_same_tree(run.state.g_ema, pkl_net.g_vars)
    assert_same_tree(run.state.d, pkl_net.d_vars)
    assert_same_tree(run.state.g, load_stylegan2_ada(PKL, which="G").g_vars)
    np.testing.assert_array_equal(run.state.w_avg, pkl_net.w_avg)
    assert_same_tree(run.state.g_opt, run.init.g_opt)   # fresh Adam states


def test_convert_refuses_and_leaves_nothing(tmp_path, capsys):
    from PIL import Image
    taken, images = tmp_path / "taken", tmp_path / "images"
    for folder in (taken, images):
        folder.mkdir()
    (taken / "keep.txt").write_text("mine")
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(images / f"{i}.png")
    (images / "dataset.json").write_text(json.dumps({"labels": [["0.png", 0], ["1.png", 1]]}))  # 2 classes
    cases = [([str(FIXTURES / "missing.pkl"), str(tmp_path / "a")], "no such checkpoint"),
             ([str(PKL), str(taken)], "exists and is not empty"),
             ([str(COND), str(tmp_path / "b"), "--data", str(images)],
              "takes 3 label dimensions but --data .* has 2: pass an image folder or .zip whose dataset.json"),
             ([str(COND), str(tmp_path / "b")], "toyfaces renders .* from 16 to 256; got 8"),
             ([str(PKL), str(tmp_path / "c"), "--config", str(tmp_path / "none.py")], "preset .* not found"),
             ([str(PKL), str(tmp_path / "no" / "d")], "parent directory .* does not exist")]
    for argv, message in cases:
        assert convert_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert sorted(os.listdir(tmp_path)) == ["images", "taken"] and os.listdir(taken) == ["keep.txt"]


def test_convert_failing_while_writing_leaves_nothing(tmp_path, preset, monkeypatch):
    from jaxstyle.checkpoint import Checkpointer

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(Checkpointer, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        convert_cli.convert(PKL, tmp_path / "run", preset)
    assert os.listdir(tmp_path) == []
