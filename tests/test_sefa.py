"""SeFa: both factorization forms against NumPy re-implementations of the official scripts, the
layer ranges against the StyleGAN paper, editing, the oracle-effect measure, and the CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict

from jaxstyle.editing import sefa, sefa_cli
from jaxstyle.models import Generator

from conftest import FIXTURES

W_DIM = 6


@pytest.fixture(scope="module")
def tiny():
    """A 16x16 StyleGAN2 generator (6 slots, 8 and 4 channels) and variables of its shapes, all
    N(0, 1) (only the affine kernels matter here; shapes come without running init)."""
    G = Generator(z_dim=W_DIM, w_dim=W_DIM, img_resolution=16, mapping_layers=1, channel_base=64, channel_max=8)
    shapes = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, jnp.zeros((1, W_DIM)), noise_mode="const"))
    rng = np.random.default_rng(0)
    return G, jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), shapes)


def kernels(variables):
    """Returns {module path under synthesis: affine kernel (w_dim, C)} as float64."""
    flat = flatten_dict(variables["params"]["synthesis"], sep="/")
    return {k[:-len("/affine/kernel")]: np.asarray(v, np.float64) for k, v in flat.items()
            if k.endswith("/affine/kernel")}


def with_kernels(variables, new):
    """Returns variables whose affine kernels are replaced by new {path: (w_dim, C)}."""
    flat = flatten_dict(variables["params"], sep="/")
    for path, value in new.items():
        flat[f"synthesis/{path}/affine/kernel"] = jnp.asarray(value, jnp.float32)
    return {**variables, "params": unflatten_dict(flat, sep="/")}


# Official names of the 16x16 model's style affines (genforce stylegan2_generator.py,
# rosinality model.py), written out by hand from the official forward passes.
GENFORCE = {"layer0": "b4/conv1", "layer1": "b8/conv0", "layer2": "b8/conv1", "layer3": "b16/conv0",
            "layer4": "b16/conv1", "output0": "b4/torgb", "output1": "b8/torgb", "output2": "b16/torgb"}
ROSINALITY = {"conv1.conv.modulation.weight": "b4/conv1", "to_rgb1.conv.modulation.weight": "b4/torgb",
              "convs.0.conv.modulation.weight": "b8/conv0", "convs.1.conv.modulation.weight": "b8/conv1",
              "convs.2.conv.modulation.weight": "b16/conv0", "convs.3.conv.modulation.weight": "b16/conv1",
              "to_rgbs.0.conv.modulation.weight": "b8/torgb", "to_rgbs.1.conv.modulation.weight": "b16/torgb",
              "conv1.conv.modulation.bias": "b4/conv1"}


def genforce_reference(variables, layers, num_layers=6):
    """genforce utils.factorize_weight in NumPy (float64, eig sorted): (eigenvalues, rows)."""
    style = {name: kernels(variables)[path] for name, path in GENFORCE.items()}  # style.weight.T
    picked = []
    for idx in layers:
        name = f"output{idx // 2}" if idx == num_layers - 1 else f"layer{idx}"
        picked.append(style[name])
    weight = np.concatenate(picked, axis=1)
    weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
    values, vectors = np.linalg.eig(weight.dot(weight.T))
    order = np.argsort(values.real)[::-1]
    return values.real[order], vectors.real.T[order]


def rosinality_reference(variables):
    """rosinality closed_form_factorization.py in NumPy: its name filter on a state_dict, SVD."""
    state = {name: kernels(variables)[path].T for name, path in ROSINALITY.items()}
    modulate = {k: v for k, v in state.items() if "modulation" in k and "to_rgbs" not in k and "weight" in k}
    _, s, vt = np.linalg.svd(np.concatenate(list(modulate.values()), 0), full_matrices=False)
    return s ** 2, vt, len(modulate)


def assert_same_directions(a, b, tol=1e-6):
    """Rows of a and b equal up to sign, pairwise."""
    cos = np.abs(np.sum(a * b, axis=1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert np.all(cos > 1 - tol), cos


@pytest.mark.parametrize("layers,slots", [("all", range(6)), ("1,2", [1, 2]), ("0-1", [0, 1]), ([5, 3], [3, 5])])
def test_genforce_matches_reference(tiny, layers, slots):
    fac = sefa.factorize(tiny[1], layers, "genforce")
    values, rows = genforce_reference(tiny[1], list(slots))
    assert fac.slots == tuple(sorted(slots))
    np.testing.assert_allclose(fac.eigenvalues, values, rtol=1e-9, atol=1e-9)
    assert_same_directions(fac.directions, rows)


def test_rosinality_matches_reference(tiny):
    fac = sefa.factorize(tiny[1], "all", "rosinality")
    values, rows, count = rosinality_reference(tiny[1])
    assert count == 6 and len(fac.layers) == 6 and "b4/torgb" in fac.layers  # to_rgb1 passes the filter
    np.testing.assert_allclose(fac.eigenvalues, values, rtol=1e-9)
    assert_same_directions(fac.directions, rows)
    strict = sefa.factorize(tiny[1], "all", "rosinality", first_torgb=False)
    assert not any(p.endswith("torgb") for p in strict.layers) and len(strict.layers) == 5


@pytest.mark.parametrize("form", sefa.FORMS)
def test_directions_orthonormal_sorted_and_extremal(tiny, form):
    fac = sefa.factorize(tiny[1], "all", form)
    d, lam = fac.directions, fac.eigenvalues
    np.testing.assert_allclose(d @ d.T, np.eye(len(d)), atol=1e-10)
    assert np.all(np.diff(lam) <= 1e-12)
    # the matrix each form decomposes, rebuilt here: A n_k = ... and lambda_1 = max ||A v||^2
    k = kernels(tiny[1])
    if form == "genforce":
        a = np.concatenate([k[p] for p in fac.layers], axis=1)
        a = (a / np.linalg.norm(a, axis=0)).T
    else:
        a = np.concatenate([k[p].T for p in fac.layers], axis=0)
    np.testing.assert_allclose(a.T @ a @ d.T, d.T * lam, atol=1e-9 * lam[0])
    v = np.random.default_rng(0).normal(size=(10000, W_DIM))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert np.max(np.sum((v @ a.T) ** 2, axis=1)) <= lam[0] * (1 + 1e-12)


def planted(rng, counts, scales):
    """Returns (Q, columns (w_dim, sum counts)): counts[i] columns +-scales[i] * q_i, shuffled,
    for a random orthonormal Q."""
    q, _ = np.linalg.qr(rng.normal(size=(W_DIM, W_DIM)))
    columns = [s * sign * q[:, i] for i, (n, s) in enumerate(zip(counts, scales)) for sign in np.resize([1, -1], n)]
    return q, np.stack(columns, axis=1)[:, rng.permutation(sum(counts))]


def test_planted_directions_recovered(tiny):
    """Columns that are copies of orthonormal q_i (m_i of them, scale c_i): W W^T after column
    normalisation is sum m_i q_i q_i^T, before it sum m_i c_i^2 q_i q_i^T. So genforce finds
    eigenvalues m_i, rosinality m_i c_i^2, both with eigenvectors q_i."""
    counts, scales = np.array([7, 5, 4, 2, 1, 1]), np.array([1.0, 0.5, 1.5, 0.2, 2.5, 3.5])
    q, columns = planted(np.random.default_rng(1), counts, scales)
    paths = ["b4/conv1", "b8/conv1", "b16/conv1"]  # slots 0, 2, 4: 8 + 8 + 4 = 20 columns
    variables = with_kernels(tiny[1], dict(zip(paths, np.split(columns, [8, 16], axis=1))))
    fac = sefa.factorize(variables, "0,2,4", "genforce")
    np.testing.assert_allclose(fac.eigenvalues, counts, atol=1e-6)
    assert_same_directions(fac.directions[:4], q[:, :4].T)  # distinct counts (the last two tie)
    ros = sefa.factorize(variables, "0,2,4", "rosinality")
    energy = counts * scales ** 2
    order = np.argsort(energy)[::-1]
    np.testing.assert_allclose(ros.eigenvalues, energy[order], rtol=1e-6)  # float32 kernels
    assert_same_directions(ros.directions, q[:, order].T)


def test_forms_agree_on_unit_columns_and_differ_in_scale(tiny):
    """Same affines (conv-only slots 0, 2, 3, 4) with unit-norm columns: same eigenvalues and
    directions (exactly: both sign rows the same way). Scaling one layer changes only rosinality."""
    k = kernels(tiny[1])
    unit = {p: v / np.linalg.norm(v, axis=0) for p, v in k.items()}
    variables = with_kernels(tiny[1], unit)
    g = sefa.factorize(variables, "0,2,3,4", "genforce")
    r = sefa.factorize(variables, "0,2,3,4", "rosinality")
    assert g.layers == r.layers == ("b4/conv1", "b8/conv1", "b16/conv0", "b16/conv1")
    np.testing.assert_allclose(g.eigenvalues, r.eigenvalues, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g.directions, r.directions, atol=1e-6)
    scaled = with_kernels(variables, {"b8/conv1": 5.0 * unit["b8/conv1"]})
    np.testing.assert_allclose(sefa.factorize(scaled, "0,2,3,4", "genforce").eigenvalues, g.eigenvalues,
                               rtol=1e-6)
    assert not np.allclose(sefa.factorize(scaled, "0,2,3,4", "rosinality").eigenvalues, r.eigenvalues, rtol=1e-3)


def fake_params(resolution, style_op="modconv"):
    """Returns synthesis params with only the affine kernels (names as the networks create them)."""
    tree = {}
    for k, res in enumerate(2 ** i for i in range(2, int(np.log2(resolution)) + 1)):
        layers = ("adain1", "adain2") if style_op == "adain" else (("conv1",) if k == 0 else ("conv0", "conv1"))
        for name in layers + (() if style_op == "adain" else ("torgb",)):
            tree[f"b{res}/{name}/affine/kernel"] = np.ones((2, 2))
    return {"params": {"synthesis": unflatten_dict(tree, sep="/")}}


def test_layer_ranges_follow_stylegan_resolutions():
    # StyleGAN sec. 3.1 on its own 1024 AdaIN layout (18 slots): coarse 4-8 px = slots 0-3,
    # middle 16-32 px = 4-7, fine 64-1024 px = 8-17.
    adain = sefa.style_affines(fake_params(1024, "adain"))
    assert sefa.layer_slots(adain, "coarse") == (0, 1, 2, 3)
    assert sefa.layer_slots(adain, "middle") == (4, 5, 6, 7)
    assert sefa.layer_slots(adain, "fine") == tuple(range(8, 18))
    # Modulated conv: block 4*2^k reads 2k-1 and 2k; the last slot is the output's ToRGB.
    mod = sefa.style_affines(fake_params(1024))
    assert sefa.layer_slots(mod, "coarse") == (0, 1, 2)
    assert sefa.layer_slots(mod, "middle") == (3, 4, 5, 6)
    assert sefa.layer_slots(mod, "fine") == tuple(range(7, 18))
    toy = sefa.style_affines(fake_params(32))  # below 64 px the output resolution counts as fine
    assert [sefa.layer_slots(toy, r) for r in ("coarse", "middle", "fine", "all")] == [
        (0, 1, 2), (3, 4), (5, 6, 7), tuple(range(8))]
    with pytest.raises(ValueError, match="'middle' is empty"):
        sefa.layer_slots(sefa.style_affines(fake_params(16)), "middle")
    with pytest.raises(ValueError, match=r"slot\(s\) \[8\] out of range"):
        sefa.layer_slots(toy, "0,8")
    for bad in ("medium", "1-0", "a,b", "", [], ["x"]):
        with pytest.raises(ValueError):
            sefa.parse_layers(bad)
    with pytest.raises(ValueError, match="unknown SeFa form"):
        sefa.factorize(fake_params(32), form="svd")


def test_rosinality_without_conv_slots_is_an_error(tiny):
    with pytest.raises(ValueError, match="leaves out ToRGB"):
        sefa.factorize(tiny[1], "5", "rosinality")


def test_adain_affines_of_diagonalgan():
    from jaxstyle.interop import load_diagonalgan
    net = load_diagonalgan(FIXTURES / "diagonalgan_visible.npz")
    affines = sefa.style_affines(net.variables)
    assert [a.slot for a in affines] == list(range(net.num_slots)) and {a.kind for a in affines} == {"adain"}
    fac = sefa.factorize(net.variables, "coarse")  # 32x32: 4 and 8 px blocks
    assert fac.layers == ("b4/adain1", "b4/adain2", "b8/adain1", "b8/adain2")
    assert all(a.kernel.shape[1] == 2 * c for a, c in zip(affines[::2], [32, 32, 32, 16]))


def test_edit_only_moves_chosen_slots():
    rng = np.random.default_rng(2)
    ws = rng.normal(size=(3, 6, W_DIM)).astype(np.float32)
    n = rng.normal(size=W_DIM)
    np.testing.assert_array_equal(np.asarray(sefa.edit(ws, n, 0.0, [0, 1, 2, 3, 4, 5])), ws)
    alpha = np.array([-2.0, 0.5, 3.0], np.float32)
    out = np.asarray(sefa.edit(ws, n, alpha, [1, 4]))
    np.testing.assert_array_equal(out[:, [0, 2, 3, 5]], ws[:, [0, 2, 3, 5]])
    np.testing.assert_allclose(out[:, [1, 4]], ws[:, [1, 4]] + alpha[:, None, None] * n.astype(np.float32),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        sefa.edit(ws, n, 1.0, [6])


def test_factor_effects_on_a_linear_oracle():
    """render = identity, oracle = w_slot @ M (linear): edits move factor f by c = n_k . M_f per
    unit alpha, so effect = c / std(f), pearson = c s / sqrt(std(f)^2 + c^2 s^2), s^2 = 2 alpha^2 / 3."""
    rng = np.random.default_rng(3)
    n_samples, slots, alpha = 64, (1, 2), 1.5
    ws_all = rng.normal(size=(n_samples, 4, W_DIM)).astype(np.float32)
    m = rng.normal(size=(W_DIM, 5))
    dirs, _ = np.linalg.qr(rng.normal(size=(W_DIM, W_DIM)))
    fac = sefa.Factorization(dirs.T, np.arange(W_DIM, 0, -1.0), slots, (), "genforce")
    subject = sefa_cli.Subject(None, lambda seeds, psi: (ws_all[list(seeds)], None), lambda ws, c: np.asarray(ws))
    predict_slot = lambda slot: (lambda images: np.asarray(images)[:, slot] @ m)
    pearson, effect = sefa_cli.oracle_effects(subject, fac, predict_slot(2), range(n_samples), alpha, top=4)
    c = dirs.T[:4] @ m                                 # (4, 5)
    std = (ws_all[:, 2].astype(np.float64) @ m).std(axis=0)
    s2 = 2 * alpha ** 2 / 3
    np.testing.assert_allclose(effect, c / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pearson, c * np.sqrt(s2) / np.sqrt(std ** 2 + c ** 2 * s2), rtol=1e-4, atol=1e-5)
    pearson, effect = sefa_cli.oracle_effects(subject, fac, predict_slot(3), range(n_samples), alpha, top=2)
    np.testing.assert_allclose(effect, 0, atol=1e-6)   # slot 3 is not edited
    np.testing.assert_allclose(pearson, 0, atol=1e-6)


def run_cli(argv, capsys):
    code = sefa_cli.main(argv)
    return code, capsys.readouterr()


@pytest.mark.parametrize("extra,message", [
    (["--workdir", "/nonexistent/run"], "no config.json"),
    (["--model", "/nonexistent/g.npz"], "not found"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--layers", "9"], "out of range"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--layers", "tiny"], "bad layers"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--form", "svd"], "unknown SeFa form"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--top", "0"], "--top must be"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--top", "40"], "top must be between"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--alphas", "1,x"], "bad alphas"),
    (["--model", str(FIXTURES / "lpips_pairs.npz")], "not a StyleGAN2 fixture"),
    (["--model", str(FIXTURES / "stylegan2_ada_visible.npz"), "--directions-out", "d.txt"], "must end in .npz"),
])
def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    argv = [str(tmp_path / a) if a == "d.txt" else a for a in extra] + ["--out", str(tmp_path / "fig.png")]
    if "--directions-out" not in extra:
        argv += ["--directions-out", str(tmp_path / "d.npz")]
    code, out = run_cli(argv, capsys)
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out.err
    assert list(tmp_path.iterdir()) == []


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    code, _ = run_cli(["--out", str(tmp_path / "f.png")], capsys)  # neither --workdir nor --model
    assert code == 2 and list(tmp_path.iterdir()) == []


def test_cli_writes_figure_and_directions(tmp_path, capsys):
    from PIL import Image

    from jaxstyle.interop import load_stylegan2_ada
    model = FIXTURES / "stylegan2_ada_visible.npz"
    code, out = run_cli(["--model", str(model), "--out", str(tmp_path / "fig.png"), "--layers", "coarse",
                         "--top", "2", "--seeds", "0", "1", "--alphas", "-2,0,2", "--directions-out",
                         str(tmp_path / "dirs.npz")], capsys)
    assert code == 0, out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dirs.npz", "fig.png"]
    # 2 directions x 2 seeds rows of 16 px, one 4 px gap; 3 alpha columns
    assert Image.open(tmp_path / "fig.png").size == (3 * 16, 4 * 16 + 4)
    expected = sefa.factorize(load_stylegan2_ada(model).g_vars, "coarse")
    with np.load(tmp_path / "dirs.npz") as saved:
        np.testing.assert_array_equal(saved["directions"], expected.directions)
        assert tuple(saved["slots"]) == expected.slots == (0, 1, 2)
        assert str(saved["form"]) == "genforce"


def test_figure_cells_are_the_edited_samples(sg2_net):
    """Cell (k, seed, alpha) is the synthesis of w(seed) + alpha n_k in the chosen slots."""
    subject = sefa_cli.subject_for(sg2_net)
    fac = sefa.factorize(sg2_net.g_vars, "1,2")
    figure = sefa_cli.sefa_figure(subject, fac, [3], top=2, alphas=[-1.0, 2.0], psi=1.0)
    ws, _ = subject.codes([3], 1.0)
    want = sg2_net.synthesis(sefa.edit(ws, fac.directions[1], 2.0, (1, 2)))[0]
    np.testing.assert_allclose(figure.cells[1, 1], want, atol=1e-5)
    assert figure.grid.shape == (2 * 16 + 4, 2 * 16, 3)
    assert not np.allclose(figure.cells[1, 0], figure.cells[1, 1], atol=1e-3)
