"""The fixture-format importer: exact round trip, and one clear error for every mismatch."""

import json

import numpy as np
import pytest

from jaxstyle.interop import ConversionError, export_state_dict, load_stylegan2_ada


def write_fixture(path, arrays):
    np.savez(path, **arrays)
    return path


def test_export_round_trips_the_official_state_dict(sg2_net, sg2_fixture):
    for prefix, variables in (("G/", sg2_net.g_vars), ("D/", sg2_net.d_vars)):
        exported = export_state_dict(variables)
        official = {k[2:]: v for k, v in sg2_fixture.items()
                    if k.startswith(prefix) and not k.endswith("resample_filter") and k != "G/mapping.w_avg"}
        assert sorted(exported) == sorted(official)
        for name, value in official.items():
            np.testing.assert_array_equal(exported[name], value, err_msg=name)
    np.testing.assert_array_equal(sg2_net.w_avg, sg2_fixture["G/mapping.w_avg"])


@pytest.mark.parametrize("edit,message", [
    (lambda a: a.pop("G/synthesis.b8.conv0.affine.weight"), "G: missing key 'synthesis.b8.conv0.affine.weight'"),
    (lambda a: a.update({"D/b4.fc.weight": np.zeros((32, 256), np.float32)}),
     r"D: key 'b4.fc.weight' has shape \(32, 256\), expected \(32, 512\)"),
    (lambda a: a.update({"G/synthesis.b16.extra": np.zeros(3, np.float32)}), "G: unexpected key 'synthesis.b16.extra'"),
    (lambda a: a.update({"D/b8.resample_filter": np.eye(4, dtype=np.float32)}),
     r"D: key 'b8.resample_filter' is not the \[1, 3, 3, 1\] filter"),
])
def test_mismatches_name_the_key(tmp_path, sg2_fixture, edit, message):
    arrays = dict(sg2_fixture)
    edit(arrays)
    with pytest.raises(ConversionError, match=message):
        load_stylegan2_ada(write_fixture(tmp_path / "bad.npz", arrays))


def test_unsupported_constructor_argument_is_named(tmp_path, sg2_fixture):
    arrays = dict(sg2_fixture)
    meta = json.loads(bytes(arrays["meta_json"]))
    meta["G_kwargs"]["synthesis_kwargs"]["kernel_size"] = 5
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with pytest.raises(ConversionError, match="G.synthesis: constructor argument kernel_size=5"):
        load_stylegan2_ada(write_fixture(tmp_path / "bad.npz", arrays))


def test_not_a_fixture_file(tmp_path):
    with pytest.raises(ConversionError, match="no meta_json entry"):
        load_stylegan2_ada(write_fixture(tmp_path / "plain.npz", {"x": np.zeros(3)}))
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_stylegan2_ada(tmp_path / "missing.npz")


def test_random_noise_needs_a_key(sg2_net, sg2_fixture):
    with pytest.raises(ValueError, match="needs key="):
        sg2_net.synthesis(sg2_fixture["out/ws"], noise_mode="random")
    import jax
    a = sg2_net.synthesis(sg2_fixture["out/ws"], noise_mode="random", key=jax.random.key(0))
    b = sg2_net.synthesis(sg2_fixture["out/ws"], noise_mode="random", key=jax.random.key(1))
    assert a.shape == (4, 16, 16, 3) and not np.allclose(a, b)
