"""Linear separability: the official entropy closed forms, pruning, and synthetic generators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.metrics import separability as ls

# ---------------------------------------------------------------- conditional entropy

def test_perfect_prediction_gives_zero_bits_and_score_one():
    h = ls.conditional_entropy([[0.5, 0.0], [0.0, 0.5]])
    assert h == 0.0
    assert ls.separability_score([h]) == 1.0


def test_independent_labels_give_one_bit():
    assert ls.conditional_entropy([[0.25, 0.25], [0.25, 0.25]]) == pytest.approx(1.0, abs=1e-12)
    assert ls.separability_score([1.0] * 40) == 2.0 ** 40


def test_hand_computed_tables():
    # H(Y) = 1; I = .9 log2(.45/.25) + .1 log2(.05/.25) = 0.5310 (METHODS 6.3).
    assert ls.conditional_entropy([[0.45, 0.05], [0.05, 0.45]]) == pytest.approx(0.4690, abs=1e-4)
    # X=0 (p .75): Y ~ (2/3, 1/3), H = 0.9183; X=1 (p .25): Y = 1, H = 0 -> 0.75 * 0.9183.
    assert ls.conditional_entropy([[0.5, 0.25], [0.0, 0.25]]) == pytest.approx(0.75 * 0.918296, abs=1e-5)
    # Counts instead of frequencies are normalised first, as in the official code.
    assert ls.conditional_entropy([[9, 1], [1, 9]]) == pytest.approx(0.4690, abs=1e-4)


def test_joint_table_rows_are_predictions_columns_targets():
    table = ls.joint_table([0, 0, 1, 1], [0, 1, 1, 1])
    np.testing.assert_allclose(table, [[0.25, 0.25], [0.0, 0.5]])


# ---------------------------------------------------------------- labels and pruning

def test_most_confident_keeps_exactly_the_top():
    confidence = np.array([0.1, 0.9, 0.5, 0.9, 0.0, 0.7])
    kept = ls.most_confident(confidence, 3)
    assert list(kept) == [1, 3, 5]            # ties in sample order
    assert len(ls.most_confident(np.random.default_rng(0).random(101), 50)) == 50


def test_binarize_at_median_and_at_threshold():
    scores = np.array([[0.1, -2.0], [0.4, 1.0], [0.9, 3.0], [0.6, -1.0]])
    labels, confidence = ls.binarize(scores)         # medians 0.5 and 0.0
    np.testing.assert_array_equal(labels, [[0, 0], [0, 1], [1, 1], [1, 0]])
    np.testing.assert_allclose(confidence[:, 0], [0.4, 0.1, 0.4, 0.1])
    labels, confidence = ls.binarize(scores, threshold=0.0)
    np.testing.assert_array_equal(labels[:, 1], [0, 1, 1, 0])
    np.testing.assert_allclose(confidence[:, 1], [2, 1, 3, 1])


def test_single_class_counts_as_perfect_prediction():
    np.testing.assert_array_equal(ls.svm_predictions(np.ones((4, 2)), np.zeros(4, int)), np.zeros(4))


# ---------------------------------------------------------------- synthetic generators

Z_DIM = 4
V = np.array([1.0, -2.0, 0.5, 0.3], np.float32)


def mapping(z):
    """W+ with 3 slots, the last one a non-linear (cube) function of z."""
    return jnp.stack([z, 2 * z, z ** 3], axis=1)


def synthesis(ws, key):
    """'Images': the last slot's cube root (z again) and a per-sample random draw from the noise key."""
    z = jnp.cbrt(ws[:, -1])
    return jnp.concatenate([z, jax.random.normal(key, (z.shape[0], 1))], axis=1)


def classify(images):
    z, noise = images[:, :Z_DIM], images[:, Z_DIM]
    return jnp.stack([z @ V,                             # linear in z
                      z[:, 0] * z[:, 1],                 # XOR of two signs
                      jnp.sum(z ** 2, axis=1),           # radial (cut at the median)
                      noise], axis=1)                    # independent of z


@pytest.fixture(scope="module")
def samples():
    return ls.sample_latents_and_scores(mapping, synthesis, classify, Z_DIM, num=1500, batch=100, seed=1)


def test_sampling_shapes_and_last_w_slot(samples):
    assert samples["z"].shape == (1500, Z_DIM)       # 100 rounds up to 104 on 8 devices, last batch trimmed
    assert samples["scores"].shape == (1500, 4)
    np.testing.assert_allclose(samples["w"], samples["z"] ** 3, rtol=1e-5, atol=1e-6)


def test_linear_attribute_is_separable_and_nonlinear_ones_are_not(samples):
    names = ("linear", "xor", "radial", "noise")
    report = ls.separability_from_samples(samples, names, spaces=("z",))["z"]
    h = report["entropy_bits"]
    assert h["linear"] < 0.05
    assert h["xor"] > 0.8 and h["radial"] > 0.8 and h["noise"] > 0.9
    for name in names:    # one attribute at a time: score = 2 ** H
        single = ls.separability_from_samples({**samples, "scores": samples["scores"][:, [names.index(name)]]},
                                              (name,), spaces=("z",))["z"]["score"]
        assert single == pytest.approx(2 ** h[name])
    assert report["score"] == pytest.approx(2 ** sum(h.values()))


def test_linear_separability_end_to_end_scores(samples):
    only_linear = lambda images: classify(images)[:, :1]
    only_xor = lambda images: classify(images)[:, 1:2]
    linear = ls.linear_separability(mapping, synthesis, only_linear, ("linear",), Z_DIM, num=1000, batch=200)
    xor = ls.linear_separability(mapping, synthesis, only_xor, ("xor",), Z_DIM, num=1000, batch=200)
    assert linear["z"]["score"] < 1.05
    assert xor["z"]["score"] > 1.7 and xor["w"]["score"] > 1.7
