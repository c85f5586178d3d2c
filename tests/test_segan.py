"""SEGAN subspaces (METHODS.md 2.2-2.6): modes 1-3 against NumPy closed forms, mode 3 = StyleGAN2 at
initialisation, EigenGAN's orthogonality regulariser, the segan preset training, the traversal CLI."""

import re
import sys
import types

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import losses
from jaxstyle.editing import traversal
from jaxstyle.models import Generator
from jaxstyle.nn.subspace import (EDITS, EigenSpace, EigenSpace2Style, EigenSpaceOnlyL, direction_norms,
                                  subspace_bases, subspace_params)
from jaxstyle.parallel import make_mesh
from jaxstyle.training.loop import ConfigError, build
from jaxstyle.training.state import ema_beta
from jaxstyle.training.steps import Trainer
from train_helpers import ROOT, tiny_config

SMALL = dict(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=2, channel_base=64, channel_max=8)
LAYERS = ["b4/conv1", "b4/torgb", "b8/conv0", "b8/conv1", "b8/torgb"]


def strip_subspaces(tree):
    """Returns params without any 'subspace' entry (the baseline generator's params)."""
    if not isinstance(tree, dict):
        return tree
    return {k: strip_subspaces(v) for k, v in tree.items() if k != "subspace"}


def rng(seed):
    return np.random.default_rng(seed)


# ---- the layers against their closed forms ----

def edited(module, params, w, factor=None, shift=None):
    edits = {k: v for k, v in (("factor", factor), ("shift", shift)) if v is not None}
    variables = {"params": params, **({EDITS: edits} if edits else {})}
    return np.asarray(module.apply(variables, jnp.asarray(w)), np.float64)


def random_params(r, c, d, mu_shape, seed):
    g = rng(seed)
    return {"U": g.normal(size=(r, r, c, d)).astype(np.float32), "L": g.normal(size=d).astype(np.float32),
            "mu": g.normal(size=mu_shape).astype(np.float32)}


def test_mode2_closed_form_matches_the_broadcast_implementation():
    r, c, d, b = 4, 5, 6, 3
    p = random_params(r, c, d, (d,), 0)
    w = rng(1).normal(size=(b, d)).astype(np.float32)
    factor = np.float32(0.7)
    U, L, mu = (p[k].astype(np.float64) for k in ("U", "L", "mu"))
    closed = (L * U.sum(axis=(0, 1, 2)) * w) * factor + mu  # METHODS 2.6 item 2
    # The official forward literally: (B, C, r, r, D) products summed over C, r, r.
    U_official = U.transpose(2, 0, 1, 3)
    broadcast = (U_official[None] * (L[None] * w * factor)[:, None, None, None, :]).sum(axis=(1, 2, 3)) + mu
    np.testing.assert_allclose(closed, broadcast, rtol=1e-10)
    out = edited(EigenSpace2Style(r, c), p, w, factor=factor)
    np.testing.assert_allclose(out, closed, rtol=1e-5, atol=1e-5)


def test_mode1_eigenspace_is_u_diag_l_w_plus_mu_and_linear():
    r, c, d, b = 4, 3, 5, 2
    p = random_params(r, c, d, (r, r, c), 2)
    w1, w2 = rng(3).normal(size=(2, b, d)).astype(np.float32)
    U, L, mu = (p[k].astype(np.float64) for k in ("U", "L", "mu"))
    layer = EigenSpace(r, c)
    h1 = edited(layer, p, w1)
    np.testing.assert_allclose(h1, np.einsum("ijck,bk->bijc", U, L * w1) + mu, rtol=1e-5, atol=1e-5)
    a, bb = 0.3, -1.7  # h(a w1 + b w2) - mu = a (h(w1) - mu) + b (h(w2) - mu)
    mix = edited(layer, p, a * w1 + bb * w2)
    np.testing.assert_allclose(mix - mu, a * (h1 - mu) + bb * (edited(layer, p, w2) - mu), atol=1e-4)
    np.testing.assert_allclose(edited(layer, p, w1, factor=np.float32(0)), np.broadcast_to(mu, h1.shape), atol=1e-6)
    # Shifting coordinate k by delta moves h by delta L_k U[..., k].
    shift = np.zeros(d, np.float32)
    shift[2] = 0.5
    np.testing.assert_allclose(edited(layer, p, w1, shift=shift) - h1,
                               np.broadcast_to(0.5 * L[2] * U[..., 2], h1.shape), atol=1e-5)


def test_mode3_only_l_and_per_sample_factor():
    d = 4
    L = rng(4).normal(size=d).astype(np.float32)
    w = rng(5).normal(size=(3, d)).astype(np.float32)
    factor = np.array([1.0, 0.0, -2.0], np.float32)
    out = edited(EigenSpaceOnlyL(), {"L": L}, w, factor=factor)
    np.testing.assert_allclose(out, w * L * factor[:, None], rtol=1e-6)


def test_direction_norms_equal_the_jacobian_columns():
    r, c, d = 4, 3, 5
    w = jnp.asarray(rng(6).normal(size=(1, d)), jnp.float32)
    cases = [(1, EigenSpace(r, c), random_params(r, c, d, (r, r, c), 7)),
             (2, EigenSpace2Style(r, c), random_params(r, c, d, (d,), 8)),
             (3, EigenSpaceOnlyL(), {"L": rng(9).normal(size=d).astype(np.float32)})]
    for mode, module, p in cases:
        jac = jax.jacobian(lambda x: module.apply({"params": p}, x))(w)  # (1, ..., 1, d)
        columns = np.asarray(jac).reshape(-1, d)
        np.testing.assert_allclose(direction_norms(mode, p), np.linalg.norm(columns, axis=0), rtol=1e-5)


def test_u_is_initialised_as_torch_orthogonal_rows_over_channels():
    # torch orthogonal_ on (C, r, r, D): the C rows of its (C, r*r*D) view are orthonormal.
    p = EigenSpace(4, 6).init(jax.random.key(0), jnp.zeros((1, 8)))["params"]
    rows = np.moveaxis(np.asarray(p["U"]), 2, 0).reshape(6, -1)
    np.testing.assert_allclose(rows @ rows.T, np.eye(6), atol=1e-5)
    np.testing.assert_array_equal(p["L"], np.ones(8))
    np.testing.assert_array_equal(p["mu"], np.zeros((4, 4, 6)))


# ---- the synthesis network ----
# One eager init (mode 1) serves every test here: other modes' weights are derived from it, so the
# baseline and the subspace generators share their weights by construction.

@pytest.fixture(scope="module")
def z():
    return jnp.asarray(rng(10).normal(size=(2, SMALL["z_dim"])), jnp.float32)


@pytest.fixture(scope="module")
def v1(z):
    """Variables of a mode-1 generator at initialisation."""
    return flax.core.unfreeze(Generator(subspace_mode=1, **SMALL).init({"params": jax.random.key(0)}, z,
                                                                        noise_mode="const"))


def with_subspaces(variables, make):
    """Returns variables whose every layer's subspace params are make(mode-1 params of that layer)."""
    out = jax.tree_util.tree_map(lambda x: x, variables)  # a copy of the containers
    for name, sub in subspace_params(variables["params"]["synthesis"]).items():
        block, layer = name.split("/")
        out["params"]["synthesis"][block][layer]["subspace"] = make(sub)
    return out


def test_mode3_at_initialisation_equals_the_baseline_exactly(z, v1):
    d = SMALL["w_dim"]
    L0 = EigenSpaceOnlyL().init(jax.random.key(0), jnp.zeros((1, d)))["params"]["L"]  # mode 3's init
    v3 = with_subspaces(v1, lambda sub: {"L": L0})
    v0 = {**v1, "params": strip_subspaces(v1["params"])}  # the same weights, without the subspaces
    G0, G3 = Generator(**SMALL), Generator(subspace_mode=3, **SMALL)
    for G, v in ((G0, v0), (G3, v3)):  # each tree is exactly what that generator's init makes
        shapes = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, z, noise_mode="const"))
        assert jax.tree_util.tree_structure(v) == jax.tree_util.tree_structure(flax.core.unfreeze(shapes))
    np.testing.assert_array_equal(G3.apply(v3, z, noise_mode="const"), G0.apply(v0, z, noise_mode="const"))


def test_mode2_with_unit_column_sums_equals_the_baseline(z, v1):
    # METHODS 2.6 item 1: with sum_{i,j,c} U[..., k] = 1 and mu = 0, mode 2 is the baseline too.
    v2 = with_subspaces(v1, lambda sub: {"U": jnp.full_like(sub["U"], 1.0 / np.prod(sub["U"].shape[:3])),
                                         "L": sub["L"], "mu": jnp.zeros_like(sub["L"])})
    out = Generator(subspace_mode=2, **SMALL).apply(v2, z, noise_mode="const")
    ref = Generator(**SMALL).apply({**v1, "params": strip_subspaces(v1["params"])}, z, noise_mode="const")
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert np.abs(np.asarray(ref)).max() > 0.1  # not trivially zero


def test_mode1_adds_the_subspace_to_every_layer_output(z, v1):
    # U = 0, mu = 1 on the last ToRGB shifts the image by exactly 1 less its old h (skip: the last add).
    G1 = Generator(subspace_mode=1, **SMALL)
    base = np.asarray(G1.apply(v1, z, noise_mode="const"))
    sub = v1["params"]["synthesis"]["b8"]["torgb"]["subspace"]
    moved = with_subspaces(v1, lambda s: s)
    moved["params"]["synthesis"]["b8"]["torgb"]["subspace"] = {
        **sub, "U": jnp.zeros_like(sub["U"]), "mu": sub["mu"] + 1.0}
    w_last = np.asarray(G1.apply(v1, z, method=G1.map))[:, -1]
    h_old = np.einsum("ijck,bk->bijc", np.asarray(sub["U"]), np.asarray(sub["L"]) * w_last)
    np.testing.assert_allclose(np.asarray(G1.apply(moved, z, noise_mode="const")), base - h_old + 1.0, atol=1e-5)
    assert list(subspace_params(v1["params"]["synthesis"])) == LAYERS  # every conv and ToRGB, coarse to fine


def test_subspace_needs_modconv_and_a_known_mode(z):
    with pytest.raises(ValueError, match="unknown subspace mode 4"):
        jax.eval_shape(lambda: Generator(subspace_mode=4, **SMALL).init({"params": jax.random.key(0)}, z))
    with pytest.raises(ValueError, match="need style_op 'modconv'"):
        jax.eval_shape(lambda: Generator(subspace_mode=2, style_op="adain", **SMALL).init(
            {"params": jax.random.key(0)}, z))


# ---- the orthogonality regulariser ----

def test_orthogonality_loss_equals_the_closed_form_and_its_gradient():
    g = rng(11)
    bases = [g.normal(size=(4, 4, 3, 6)).astype(np.float32), g.normal(size=(2, 2, 5, 4)).astype(np.float32)]
    expected, grads = 0.0, []
    for U in bases:
        f = U.astype(np.float64).reshape(-1, U.shape[-1])
        e = f.T @ f - np.eye(f.shape[1])
        expected += 0.5 * np.sum(e**2)
        grads.append((2 * f @ e).reshape(U.shape))  # d/dU of 0.5 ||U^T U - I||^2 = 2 U (U^T U - I)
    bases = [jnp.asarray(U) for U in bases]
    np.testing.assert_allclose(losses.orthogonality_loss(bases), expected, rtol=1e-5)
    for got, want in zip(jax.grad(losses.orthogonality_loss)(bases), grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert float(losses.orthogonality_loss([])) == 0.0


def test_orthogonality_loss_is_zero_for_orthonormal_columns():
    q, _ = np.linalg.qr(rng(12).normal(size=(4 * 4 * 3, 6)))
    U = jnp.asarray(q.reshape(4, 4, 3, 6), jnp.float32)
    assert float(losses.orthogonality_loss([U, U])) < 1e-10


def test_subspace_bases_finds_every_u(z):
    def params(mode):
        return jax.eval_shape(lambda: Generator(subspace_mode=mode, **SMALL).init(jax.random.key(0), z))["params"]
    assert [U.shape[:3] for U in subspace_bases(params(1))] == [(4, 4, 8), (4, 4, 3), (8, 8, 8), (8, 8, 8), (8, 8, 3)]
    assert subspace_bases(params(3)) == []


# ---- the preset ----

def test_paper_preset_has_segans_hyperparameters():
    sys.path.insert(0, ROOT)
    from configs import segan
    c = segan.get_config("paper")
    o, m = c.objective, c.model
    assert (c.data.resolution, m.z_dim, m.w_dim, m.subspace_mode, m.mapping_layers) == (64, 64, 64, 2, 8)
    assert (o.batch_size, o.g_lr, o.d_lr, o.r1_gamma, o.r1_interval, o.pl_weight, o.pl_interval) == \
        (16, 0.002, 0.002, 10.0, 16, 2.0, 4)
    assert o.style_mixing_prob == 0 and o.orth_weight == 0 and o.ema_rampup is None
    np.testing.assert_allclose(float(ema_beta(o.batch_size, o.ema_kimg)), 0.5 ** (32 / 10000), rtol=1e-6)
    assert min(m.channel_base // 64, m.channel_max) == 128 and min(m.d_channel_base // 64, m.d_channel_max) == 512
    assert c.total_kimg == 1600  # 100k iterations of 16
    G, D, objective = build(c, types.SimpleNamespace(resolution=64, num_channels=3, label_dim=0))
    assert (G.num_ws, G.subspace_mode, G.channel_max, D.channel_max) == (10, 2, 128, 512)  # style_num 10 at 64
    assert objective.pl_batch_shrink == 1  # SEGAN's path length runs on the whole batch
    assert segan.get_config().model.subspace_mode == 2
    with pytest.raises(ValueError, match="unknown segan variant"):
        segan.get_config("huge")


def test_orth_weight_without_bases_is_a_config_error():
    from jaxstyle.data.registry import open_source
    config = tiny_config("segan", **{"model.subspace_mode": 3, "objective.orth_weight": 1.0})
    with pytest.raises(ConfigError, match="orth_weight needs subspace bases"):
        build(config, open_source("toyfaces", 16))


@pytest.fixture(scope="module")
def trained():
    """(G, state) after 2 iterations of the segan preset (mode 2, orthogonality regulariser on) at 8x8
    on one device, through the Trainer train.py uses; no R1 or path length (their double backward
    is the costliest compile and nothing in it is SEGAN's)."""
    config = tiny_config("segan", **{"objective.orth_weight": 1.0, "objective.pl_weight": 0.0,
                                     "objective.r1_gamma": 0.0})
    G, D, objective = build(config, types.SimpleNamespace(resolution=8, num_channels=3, label_dim=0))
    trainer = Trainer(G, D, objective, make_mesh(jax.devices()[:1]))
    state = trainer.init_state(jax.random.key(0))
    reals = {"image": jnp.asarray(rng(13).uniform(-1, 1, size=(8, 8, 8, 3)), jnp.float32)}
    history = []
    for step in range(2):
        state, metrics = trainer.iteration(state, reals, step)
        history.append({k: float(v) for k, v in metrics.items()})
    return G, state, history


def test_tiny_segan_trains_with_finite_losses(trained):
    G, state, history = trained
    assert G.subspace_mode == 2 and int(state.step) == 2
    for metrics in history:
        assert {"loss/G", "loss/D", "loss/orth"} <= set(metrics)
        assert all(np.isfinite(v) for v in metrics.values())
    assert history[0]["loss/orth"] > 0  # SEGAN's init is not column-orthonormal
    layers = subspace_params(state.g_ema["params"]["synthesis"])
    assert list(layers) == LAYERS
    # The G step moved the subspaces (they are trained, and the regulariser reaches them).
    assert not np.allclose(state.g["params"]["synthesis"]["b8"]["conv0"]["subspace"]["L"], 1.0)


# ---- the traversal ----

@pytest.fixture(scope="module")
def small_model(trained):
    """The tiny trained generator as a SubspaceModel."""
    G, state, _ = trained
    return traversal.subspace_model(G, state.g_ema, state.w_avg)


def test_traversal_rows_columns_and_centre(small_model):
    fig = traversal.traverse(small_model, ["b8/conv0", 0], dims=[1, 3], t_range=(-2, 2), steps=3)
    assert [(layer, k) for layer, k, _ in fig.rows] == [("b8/conv0", 1), ("b8/conv0", 3), ("b4/conv1", 1),
                                                        ("b4/conv1", 3)]
    assert fig.cells.shape == (4, 3, 8, 8, 3)
    np.testing.assert_allclose(fig.ts, [-2, 0, 2])
    # The middle column (t = 0) is the unedited sample; the ends differ from it.
    w = traversal.sample_w(small_model, 0)[None]
    plain = traversal.render_shifted(small_model, w, {})[0]
    for row in fig.cells:
        np.testing.assert_allclose(row[1], plain, atol=1e-6)
        assert np.abs(row[0] - plain).max() > 1e-4


def test_factor_effects_are_mean_end_to_end_changes(small_model):
    class ChannelMeans:  # a stand-in oracle: the mean colour of an image
        factor_names = ("r", "g", "b")

        def predict(self, images):
            return np.asarray(images).mean(axis=(1, 2))
    row = ("b8/conv1", 2, None)
    names, effects = traversal.factor_effects(small_model, [row], (-1.5, 2.0), seeds=[0, 1], oracle=ChannelMeans())
    expected = np.mean([np.abs(np.diff(ChannelMeans().predict(traversal.traverse(
        small_model, ["b8/conv1"], dims=[2], t_range=(-1.5, 2.0), steps=2, seed=seed).cells[0]), axis=0))[0]
        for seed in (0, 1)], axis=0)
    assert names == ["r", "g", "b"] and effects.shape == (1, 3)
    np.testing.assert_allclose(effects[0], expected, rtol=1e-4, atol=1e-6)


def test_traversal_cli_writes_a_labelled_png(small_model, tmp_path, monkeypatch, capsys):
    from PIL import Image
    monkeypatch.setattr(traversal, "open_run", lambda workdir: small_model)
    out = tmp_path / "t.png"
    argv = ["--workdir", "RUN", "--out", str(out), "--layer", "2", "b8/torgb", "--top", "2", "--range", "-2,2",
            "--steps", "3", "--zoom", "2"]
    assert traversal.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[:4]] == ["b8/conv0"] * 2 + ["b8/torgb"] * 2
    strengths = [float(ln.split()[-1]) for ln in lines[:4]]
    assert strengths[0] >= strengths[1] and strengths[2] >= strengths[3]  # strongest first
    width, height = Image.open(out).size
    assert height == 14 + 4 * 16 and width > 3 * 16  # header row, 4 rows of 8 px zoomed twice


@pytest.mark.parametrize("args, message", [
    (["--layer", "99"], "layer 99 out of range"),
    (["--layer", "b8/dat1"], "unknown subspace layer 'b8/dat1'"),
    (["--dims", "16"], r"dim\(s\) \[16\] out of range"),
    (["--range", "3,-3"], "finite LOW < HIGH"),
    (["--range", "abc"], "LOW,HIGH"),
    (["--steps", "1"], "at least 2"),
    (["--top", "0"], "must be positive"),
])
def test_traversal_cli_bad_input_exits_2_and_writes_nothing(small_model, tmp_path, monkeypatch, capsys,
                                                           args, message):
    monkeypatch.setattr(traversal, "open_run", lambda workdir: small_model)
    out = tmp_path / "sub" / "t.png"
    assert traversal.main(["--workdir", str(tmp_path), "--out", str(out)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and re.search(message, err) and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workdir, message", [
    ("/nonexistent/run", "work directory /nonexistent/run not found"),
    (".", "config.json not found"),
])
def test_traversal_cli_needs_a_run(tmp_path, monkeypatch, capsys, workdir, message):
    monkeypatch.chdir(tmp_path)
    assert traversal.main(["--workdir", workdir, "--out", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_generator_without_subspaces_is_refused(v1):
    v0 = {**v1, "params": strip_subspaces(v1["params"])}
    with pytest.raises(ValueError, match="no SEGAN subspaces.*configs/segan.py"):
        traversal.subspace_model(Generator(**SMALL), v0, jnp.zeros(SMALL["w_dim"]))
