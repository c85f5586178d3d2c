"""torch.save files read without torch and without executing them (jaxstyle.interop.torch_pickle),
and official DiagonalGAN `.model` checkpoints loaded through `load_diagonalgan`.

The torch fixtures were written by real torch (tests/fixtures/make_torch_fixtures.py); the odd
cases (big-endian, damaged layouts, malicious pickles) are written here with plain `pickle`.
"""

import collections
import io
import os
import pickle
import re
import struct
import zipfile
from typing import ClassVar

import jax
import numpy as np
import pytest
from conftest import FIXTURES, read_fixture, rel_err

from jaxstyle.interop import ConversionError, load_diagonalgan, torch_pickle
from jaxstyle.interop import diagonalgan as dg
from jaxstyle.interop.torch_pickle import TorchPickleError, UnsafePickleError

TOL = 1e-5
MODEL = FIXTURES / "diagonalgan_visible.model"


# --- a minimal torch.save (zip format) writer, so odd files can be made without torch ---------

class Global:
    """Pickles as the global `module.name`, which need not be importable here."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # the pickler wants a reduce function to be callable
        raise AssertionError("only pickled, never called")


class Storage:
    """Pickles as torch's storage record (a persistent id): ('storage', type, key, location, numel)."""

    def __init__(self, key, storage_type, numel):
        self.record = ("storage", Global("torch", storage_type), key, "cpu", numel)


class Reduce:
    """Pickles as fn(*args)."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class TorchPickler(pickle._Pickler):  # the pure-Python pickler lets Global choose its own opcode
    dispatch: ClassVar = {**pickle._Pickler.dispatch,
                          Global: lambda self, g: self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode())}

    def persistent_id(self, obj):
        return getattr(obj, "record", None)


def tensor(storage, offset, size, stride):
    """Returns what torch pickles for a tensor over `storage` with the given layout."""
    fn = Global("torch._utils", "_rebuild_tensor_v2")
    return Reduce(fn, (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()))


def torch_zip(path, obj, storages, byteorder="little"):
    """Writes `obj` and raw storages {key: bytes} in torch.save's zip format; returns path."""
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
    return path


def state_file(path, state, prefix=""):
    """Writes a dict of float32 arrays as torch.save of a state_dict; returns path."""
    storages, obj = {}, collections.OrderedDict()
    for i, (name, value) in enumerate(state.items()):
        storages[str(i)] = np.ascontiguousarray(value, "<f4").tobytes()
        obj[prefix + name] = tensor(Storage(str(i), "FloatStorage", value.size), 0, value.shape,
                                    [s // 4 for s in np.ascontiguousarray(value).strides])
    return torch_zip(path, obj, storages)


# --- the official DiagonalGAN checkpoint --------------------------------------------------------

@pytest.fixture(scope="module")
def fx():
    return read_fixture("diagonalgan_visible.npz")


@pytest.fixture(scope="module")
def net():
    return load_diagonalgan(MODEL)


@pytest.fixture(scope="module")
def official():
    return torch_pickle.load(MODEL)


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def test_model_reproduces_the_official_outputs(net, fx):
    styles, contents = net.style_mapping(fx["in/z_style"]), net.content_mapping(fx["in/z_content"])
    assert rel_err(styles, fx["out/styles"]) < TOL and rel_err(contents, fx["out/contents"]) < TOL
    img = net.synthesis(styles, contents, resolution=32)
    assert rel_err(nchw(img), fx["out/img"]) < TOL
    img2 = net.synthesis(styles, net.content_mapping(fx["in/z_content2"]), resolution=32)
    assert rel_err(nchw(img2), fx["out/img_content2"]) < TOL


def test_model_weights_equal_the_npz_import(net):
    ref = load_diagonalgan(FIXTURES / "diagonalgan_visible.npz")
    assert jax.tree_util.tree_structure(net.variables) == jax.tree_util.tree_structure(ref.variables)
    jax.tree_util.tree_map(np.testing.assert_array_equal, net.variables, ref.variables)


def test_which_picks_generator_or_g_running(net):
    other = load_diagonalgan(MODEL, which="generator")
    const = lambda n: np.asarray(n.variables["params"]["synthesis"]["b4"]["const"])
    np.testing.assert_array_equal(const(other), 2 * const(net))  # the fixture doubled it in 'generator'
    np.testing.assert_array_equal(other.variables["params"]["mapping"]["fc0"]["kernel"],
                                  net.variables["params"]["mapping"]["fc0"]["kernel"])
    with pytest.raises(ValueError, match="which must be 'g_running' or 'generator'"):
        load_diagonalgan(MODEL, which="discriminator")


def test_model_holds_the_whole_training_state(official, fx):
    assert torch_pickle.file_format(MODEL) == "zip"
    assert set(official) == {"generator", "discriminator", "g_optimizer", "d_optimizer", "g_running"}
    g = official["g_running"]
    assert isinstance(g, collections.OrderedDict) and g._metadata[""] == {"version": 1}
    assert list(g) == [k[2:] for k in fx if k.startswith("G/")]
    for name, value in g.items():
        np.testing.assert_array_equal(value, fx["G/" + name], err_msg=name)
        assert value.dtype == np.float32 and value.flags.c_contiguous
    groups = official["g_optimizer"]["param_groups"]
    assert [g["mult"] for g in groups] == [1, 0.01, 0.01] and groups[0]["betas"] == (0.0, 0.99)
    assert official["g_optimizer"]["state"][0]["exp_avg"].shape == (3, 2)
    assert dg.infer_sizes(official["g_running"]) == (32, 2, [32, 32, 32, 16])


def test_bare_state_dict_with_module_prefix_loads(tmp_path, official, net):
    path = state_file(tmp_path / "g.pt", official["g_running"], prefix="module.")  # nn.DataParallel
    bare = load_diagonalgan(path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, bare.variables, net.variables)


def test_checkpoint_without_the_generator_is_named(tmp_path, official):
    path = torch_zip(tmp_path / "d.model", {"discriminator": {}, "generator": {}}, {})
    with pytest.raises(ConversionError, match="no 'g_running' entry; the checkpoint holds"):
        load_diagonalgan(path)


# --- the 512 and 1024 blocks: FusedUpsample -----------------------------------------------------

def official_shapes(code_dim, n_mlp, channels):
    """Returns {name: shape} of the official StyledGenerator's state_dict (cyclomon model.py),
    written out from the official module tree, independently of jaxstyle."""
    out = {}
    for net in ("style", "pix"):
        for k in range(n_mlp):
            out[f"{net}.{2 * k + 1}.linear.weight_orig"] = (code_dim, code_dim)
            out[f"{net}.{2 * k + 1}.linear.bias"] = (code_dim,)
    for i, c in enumerate(channels):
        res, b, cin = 4 * 2**i, f"generator.progression.{i}", channels[i - 1]
        if i == 0:
            out[f"{b}.conv1.input"] = (1, c, 4, 4)
        elif res >= 512:  # fused=True: Sequential(FusedUpsample, Blur)
            out.update({f"{b}.conv1.0.weight": (cin, c, 3, 3), f"{b}.conv1.0.bias": (c,),
                        f"{b}.conv1.1.weight": (c, 1, 3, 3), f"{b}.conv1.1.weight_flip": (c, 1, 3, 3)})
        else:  # Sequential(Upsample, EqualConv2d, Blur)
            out.update({f"{b}.conv1.1.conv.weight_orig": (c, cin, 3, 3), f"{b}.conv1.1.conv.bias": (c,),
                        f"{b}.conv1.2.weight": (c, 1, 3, 3), f"{b}.conv1.2.weight_flip": (c, 1, 3, 3)})
        for j in (1, 2):
            out[f"{b}.adain{j}.style.linear.weight_orig"] = (2 * c, code_dim)
            out[f"{b}.adain{j}.style.linear.bias"] = (2 * c,)
            if res <= 256:  # use_att=False in the fused blocks
                out[f"{b}.adaat{j}.gamma"] = (1, 1, 1, 1)
                out[f"{b}.adaat{j}.fc.linear.weight_orig"] = (res * res, code_dim)
                out[f"{b}.adaat{j}.fc.linear.bias"] = (res * res,)
        out[f"{b}.conv2.conv.weight_orig"] = (c, c, 3, 3)
        out[f"{b}.conv2.conv.bias"] = (c,)
        out[f"generator.to_rgb.{i}.conv.weight_orig"] = (3, c, 1, 1)
        out[f"generator.to_rgb.{i}.conv.bias"] = (3,)
    return out


def random_state(shapes, seed=0):
    """Returns random official weights for `shapes`, with the real [1, 2, 1] Blur buffers."""
    rng = np.random.default_rng(seed)
    blur = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    return {k: np.broadcast_to(blur, s).copy() if re.search(r"\.conv1\.[12]\.weight(_flip)?$", k)
            else rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_official_shapes_match_the_fixture(fx):
    assert official_shapes(32, 2, [32, 32, 32, 16]) == {k[2:]: v.shape for k, v in fx.items() if k.startswith("G/")}


def test_official_name_of_the_fused_up_conv():
    assert dg.official_name(("synthesis", "b512", "conv1", "kernel")) == "generator.progression.7.conv1.0.weight"
    assert dg.official_name(("synthesis", "b1024", "conv1", "bias")) == "generator.progression.8.conv1.0.bias"
    assert dg.official_name(("synthesis", "b256", "conv1", "kernel")) == "generator.progression.6.conv1.1.conv.weight_orig"
    w = np.arange(2 * 5 * 3 * 3, dtype=np.float32).reshape(2, 5, 3, 3)  # (in, out, kh, kw)
    kernel = np.asarray(dg._to_jax("generator.progression.7.conv1.0.weight", w, (3, 3, 2, 5)))
    assert kernel[1, 2, 0, 4] == w[0, 4, 1, 2]


def test_a_512_checkpoint_with_fused_blocks_imports(tmp_path):
    channels = [2, 2, 2, 2, 2, 2, 2, 1]  # 4..512, min(512 / res, 2): a narrowed official layout
    state = random_state(official_shapes(4, 1, channels))
    assert dg.infer_sizes(state) == (4, 1, channels)
    net = load_diagonalgan(state_file(tmp_path / "g512.pt", state))
    p = net.variables["params"]["synthesis"]["b512"]
    w = state["generator.progression.7.conv1.0.weight"]
    np.testing.assert_array_equal(np.asarray(p["conv1"]["kernel"]), w.transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(np.asarray(p["conv1"]["bias"]), state["generator.progression.7.conv1.0.bias"])
    assert not {"dat1", "dat2"} & set(p)
    z = np.ones((1, 4), np.float32)
    assert net.synthesis(net.style_mapping(z), net.content_mapping(z), resolution=512).shape == (1, 512, 512, 3)
    bad = {**state, "generator.progression.7.conv1.2.weight": state["generator.progression.7.conv1.1.weight"]}
    with pytest.raises(ConversionError, match="unexpected key 'generator.progression.7.conv1.2.weight'"):
        load_diagonalgan(state_file(tmp_path / "bad.pt", bad))


# --- generic reading: layouts, dtypes, formats --------------------------------------------------

@pytest.mark.parametrize("name,kind", [("tiny_legacy.pt", "legacy"), ("tiny_zip.pt", "zip")])
def test_tiny_files_read_as_torch_wrote_them(name, kind):
    assert torch_pickle.file_format(FIXTURES / name) == kind
    got, expected = torch_pickle.load(FIXTURES / name), read_fixture("tiny_expected.npz")
    assert set(got) == set(expected) | {"plain"}
    for key, want in expected.items():
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)
    assert got["bfloat16"].dtype == np.float32 and got["half"].dtype == np.float16
    np.testing.assert_array_equal(got["transposed"], np.arange(12, dtype=np.float32).reshape(3, 4).T)
    np.testing.assert_array_equal(got["view"], np.arange(20.0).reshape(4, 5)[1:, 2:])
    assert got["view"].flags.c_contiguous and got["scalar"].shape == () and got["empty"].shape == (0, 3)
    assert got["plain"] == {"name": "tiny", "count": 3, "pair": (1, 2.5), "flag": True, "nothing": None,
                            "raw": b"\x00\xff", "ids": [1, 2]}


def test_big_endian_storages(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = torch_zip(tmp_path / "be.pt", {"w": tensor(Storage("0", "FloatStorage", 6), 0, (3, 2), (1, 3))},
                     {"0": values.astype(">f4").tobytes()}, byteorder="big")
    got = torch_pickle.load(path)["w"]
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values.T)


def test_npz_is_not_a_torch_file():
    assert torch_pickle.file_format(FIXTURES / "diagonalgan_visible.npz") == "other-zip"
    with pytest.raises(TorchPickleError, match="not a torch.save checkpoint"):
        torch_pickle.load(FIXTURES / "diagonalgan_visible.npz")


# --- nothing in a file is executed ---------------------------------------------------------------

class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def legacy_file(path, obj):
    """Writes `obj` after a legacy torch header (magic, protocol, sys info), then no storages."""
    with open(path, "wb") as f:
        for head in (torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(head, f, protocol=2)
        pickle.dump(obj, f, protocol=2)
        pickle.dump([], f, protocol=2)
    return path


@pytest.mark.parametrize("container", ["zip", "bare", "legacy", "nested"])
def test_malicious_pickles_are_refused(tmp_path, container):
    marker = tmp_path / "pwned"
    evil = Evil(marker)
    path = tmp_path / "evil.model"
    if container == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps(evil, protocol=2))
    elif container == "bare":
        path.write_bytes(pickle.dumps(evil, protocol=4))
    elif container == "legacy":
        legacy_file(path, evil)
    else:  # inside an otherwise well-formed checkpoint
        torch_zip(path, {"g_running": {"style.1.linear.weight_orig": evil}}, {})
    with pytest.raises(UnsafePickleError, match=r"refusing to load (posix|os|nt)\.system from .*nothing in the file is executed"):
        torch_pickle.load(path)
    with pytest.raises(UnsafePickleError):
        load_diagonalgan(path)
    assert not marker.exists()


def test_persistent_records_other_than_storages_are_refused(tmp_path):
    class Module:  # torch < 1.0 pickled a module's source code as a persistent record
        record = ("module", "Net", "net.py", "import os")
    TorchPickler(buf := io.BytesIO(), protocol=2).dump({"net": Module()})
    with zipfile.ZipFile(tmp_path / "m.pt", "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
    with pytest.raises(UnsafePickleError, match="refusing persistent record \\('module'"):
        torch_pickle.load(tmp_path / "m.pt")


def test_bytes_only_through_latin1(tmp_path):
    path = torch_zip(tmp_path / "c.pt", Reduce(Global("_codecs", "encode"), ("x", "rot13")), {})
    with pytest.raises(UnsafePickleError, match="refusing _codecs.encode"):
        torch_pickle.load(path)


# --- damaged and foreign files -------------------------------------------------------------------

@pytest.mark.parametrize("layout,message", [
    ((0, (3, 3), (3, 1)), "reaches element 8 of a storage of 6"),   # reads past the end
    ((5, (2,), (1,)), "reaches element 6 of a storage of 6"),        # offset pushes past the end
    ((0, (2, 2), (-1, 1)), "invalid layout"),                         # negative stride
    ((0, (2, 2), (1,)), "invalid layout"),                            # rank mismatch
])
def test_tensors_outside_their_storage_are_refused(tmp_path, layout, message):
    path = torch_zip(tmp_path / "oob.pt", {"w": tensor(Storage("0", "FloatStorage", 6), *layout)},
                     {"0": np.zeros(6, np.float32).tobytes()})
    with pytest.raises(TorchPickleError, match=message):
        torch_pickle.load(path)


def test_missing_or_short_storages_are_named(tmp_path):
    t = tensor(Storage("0", "FloatStorage", 6), 0, (6,), (1,))
    with pytest.raises(TorchPickleError, match="storage '0' is missing from the archive"):
        torch_pickle.load(torch_zip(tmp_path / "a.pt", {"w": t}, {}))
    with pytest.raises(TorchPickleError, match="holds 8 bytes, expected 24; the file may be truncated"):
        torch_pickle.load(torch_zip(tmp_path / "b.pt", {"w": t}, {"0": b"\0" * 8}))


@pytest.mark.parametrize("name", ["diagonalgan_visible.model", "tiny_zip.pt", "tiny_legacy.pt"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_give_a_clear_error(tmp_path, name, keep):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(TorchPickleError, match="truncated"):
        torch_pickle.load(path)
    with pytest.raises(TorchPickleError, match="truncated"):
        load_diagonalgan(path)


def test_legacy_storage_count_past_the_end(tmp_path):
    data = (FIXTURES / "tiny_legacy.pt").read_bytes()
    keys_end = data.index(b"e.", data.index(b"]q\x00(")) + 2  # end of the storage key list
    bad = data[:keys_end] + struct.pack("<q", 2**60) + data[keys_end + 8:]
    (tmp_path / "bad.pt").write_bytes(bad)
    with pytest.raises(TorchPickleError, match="bytes early; the file is truncated"):
        torch_pickle.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"\x89PNG\r\n\x1a\n" + bytes(64)])
def test_foreign_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "x.model"
    path.write_bytes(content)
    assert torch_pickle.file_format(path) is None
    with pytest.raises(TorchPickleError, match="is not a torch.save checkpoint"):
        torch_pickle.load(path)
    with pytest.raises(ConversionError, match="is not a DiagonalGAN checkpoint"):
        load_diagonalgan(path)


def test_a_zip_of_something_else(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(TorchPickleError, match="not a torch.save checkpoint"):
        torch_pickle.load(tmp_path / "other.zip")
    with pytest.raises(ConversionError, match="no meta_json entry"):
        load_diagonalgan(tmp_path / "other.zip")


def test_tensors_that_are_not_a_generator(tmp_path):
    path = torch_zip(tmp_path / "t.pt", {"a": 1}, {})
    with pytest.raises(ConversionError, match="holds neither a train.py checkpoint"):
        load_diagonalgan(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_diagonalgan(FIXTURES / "nope.model")
