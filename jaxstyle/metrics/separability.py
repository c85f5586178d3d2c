"""Linear separability (StyleGAN, Karras et al. 2019, §4.2; SG1 metrics/linear_separability.py).

Generate N images from z ~ N(0, I), label each with a binary attribute classifier, keep the
most confident half per attribute, fit a linear SVM on the latent (z, or w = the last slot of
mapping(z)) to predict the classifier's label, and measure how much of the label the SVM's
prediction leaves unexplained: the conditional entropy H(Y | X) in bits, X the SVM's prediction
on its own training samples, Y the classifier's label. The score is 2 ** (sum over attributes of
H); 1 means every attribute is linearly separable in that space, 2 ** A means none is.

Classifiers give one real score per attribute and a threshold: label = score > threshold,
confidence = |score - threshold|. The official CelebA-HQ classifiers are logits with threshold 0
(max softmax([l, -l]) ranks exactly as |l|); the toyfaces oracle's factors in [0, 1] are cut at
the median of the generated samples ('median'), so every attribute is balanced.
"""

import functools
import warnings

import jax
import numpy as np

# The official code calls sklearn.svm.LinearSVC() with the 2019 defaults; they are spelled out
# because sklearn >= 1.5 changed dual=True to dual='auto' (the primal solver for N > D).
# random_state is fixed for repeatable runs (the official leaves it unseeded).
SVM_OPTIONS = {"penalty": "l2", "loss": "squared_hinge", "dual": True, "tol": 1e-4, "C": 1.0,
               "fit_intercept": True, "intercept_scaling": 1, "max_iter": 1000, "random_state": 0}


# ---------------------------------------------------------------- information (official L65-100)

def _normalize(p):
    p = np.asarray(p, np.float64)
    return p / p.sum()


def entropy(p):
    """Returns the entropy in bits of the distribution `p` (any shape, normalised here)."""
    p = _normalize(p).ravel()
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def mutual_information(p):
    """Returns I(X; Y) in bits of the joint table `p` (rows X, columns Y)."""
    p = _normalize(p)
    px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / (px * py)[nz])))


def conditional_entropy(p):
    """Returns H(Y | X) in bits of the joint table `p` (rows X, columns Y), as H(Y) - I(X; Y).

    Computed as the official code does (not as H(X, Y) - H(X)), clipped at 0 because rounding can
    take it just below; in float64 (the official normalises in float32, a ~1e-7 difference).
    """
    p = _normalize(p)
    return max(0.0, entropy(p.sum(axis=0)) - mutual_information(p))


def joint_table(predictions, targets):
    """Returns the 2x2 table of frequencies p[svm prediction][target] of two 0/1 label vectors."""
    predictions, targets = np.asarray(predictions).astype(int), np.asarray(targets).astype(int)
    table = np.zeros((2, 2))
    np.add.at(table, (predictions, targets), 1.0)
    return table / len(targets)


def separability_score(entropies):
    """Returns 2 ** sum(entropies): the linear separability of one space over all attributes."""
    return float(2.0 ** np.sum(entropies))


# ---------------------------------------------------------------- labels, pruning, SVM

def binarize(scores, threshold="median"):
    """Returns (labels (N, A) in {0, 1}, confidence (N, A)) of attribute scores (N, A).

    label = score > threshold, confidence = |score - threshold|; threshold 'median' cuts each
    attribute at the median of these samples, a number cuts every attribute there.
    """
    scores = np.asarray(scores, np.float64)
    cut = np.median(scores, axis=0, keepdims=True) if threshold == "median" else float(threshold)
    return (scores > cut).astype(np.int64), np.abs(scores - cut)


def most_confident(confidence, num_keep):
    """Returns the indices of the `num_keep` largest confidences, most confident first.

    A stable sort, so ties keep sample order like the official Python sorted().
    """
    return np.argsort(-np.asarray(confidence), kind="stable")[:num_keep]


def svm_predictions(inputs, targets, svm_options=None):
    """Returns a LinearSVC's predictions on its own training set (inputs (N, D), targets (N,)).

    A fit that fails (a single class among the kept samples) counts as a perfect prediction,
    as in the official code; non-convergence within max_iter is accepted as the official does.
    """
    import sklearn.svm
    svm = sklearn.svm.LinearSVC(**{**SVM_OPTIONS, **(svm_options or {})})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the official runs hit it too
            svm.fit(inputs, targets)
    except ValueError:
        return np.asarray(targets)
    return svm.predict(inputs)


def attribute_entropies(latents, labels, confidence, num_keep=None, svm_options=None):
    """Returns H(Y | X) in bits per attribute (A,) for latents (N, D) and labels, confidence (N, A).

    num_keep defaults to half the samples (the official keeps 100k of 200k).
    """
    latents = np.asarray(latents, np.float64)
    num_keep = len(latents) // 2 if num_keep is None else num_keep
    out = []
    for a in range(labels.shape[1]):
        kept = most_confident(confidence[:, a], num_keep)
        targets = labels[kept, a]
        predictions = svm_predictions(latents[kept], targets, svm_options)
        out.append(conditional_entropy(joint_table(predictions, targets)))
    return np.asarray(out)


# ---------------------------------------------------------------- sampling and the metric

def sample_latents_and_scores(mapping, synthesis, classify, z_dim, num, batch=256, seed=0, mesh=None,
                              progress=False):
    """Returns {"z": (num, z_dim), "w": (num, w_dim), "scores": (num, A)} as NumPy arrays.

    mapping(z) -> w (B, w_dim) or W+ (B, num_ws, w_dim), of which the last slot is kept as the
    official does; synthesis(w, key) -> images (key: this batch's noise); classify(images) -> (B, A).
    Batches are global, split over the mesh's data axis; `batch` is rounded up to a multiple of
    the number of devices and the last batch trimmed.
    """
    from jaxstyle.parallel import data_sharding, make_mesh, replicated
    mesh = make_mesh() if mesh is None else mesh
    shards = mesh.devices.size
    batch = -(-batch // shards) * shards

    @functools.partial(jax.jit, in_shardings=(data_sharding(mesh), None), out_shardings=replicated(mesh))
    def step(z, key):
        w = mapping(z)
        scores = classify(synthesis(w, key))
        return (w[:, -1] if w.ndim == 3 else w), scores

    key = jax.random.key(seed)
    zs, ws, scores = [], [], []
    starts = range(0, num, batch)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="separability", unit="batch")
    for i in starts:
        k_z, k_noise = jax.random.split(jax.random.fold_in(key, i))
        z = np.asarray(jax.random.normal(k_z, (batch, z_dim)))
        # Every host draws the same z; each hands its devices their rows (multi-host jit takes no NumPy).
        w, s = step(jax.make_array_from_callback(z.shape, data_sharding(mesh), lambda index: z[index]), k_noise)
        n = min(batch, num - i)
        zs.append(z[:n]), ws.append(np.asarray(w)[:n]), scores.append(np.asarray(s)[:n])
    return {"z": np.concatenate(zs), "w": np.concatenate(ws), "scores": np.concatenate(scores)}


def separability_from_samples(samples, names, spaces=("z", "w"), threshold="median", num_keep=None,
                              svm_options=None):
    """Returns {space: {"score": 2 ** sum H, "entropy_bits": {name: H}}} from sample_latents_and_scores."""
    labels, confidence = binarize(samples["scores"], threshold)
    report = {}
    for space in spaces:
        h = attribute_entropies(samples[space], labels, confidence, num_keep, svm_options)
        report[space] = {"score": separability_score(h),
                         "entropy_bits": {n: float(v) for n, v in zip(names, h)}}
    return report


def linear_separability(mapping, synthesis, classify, names, z_dim, num=200_000, spaces=("z", "w"),
                        threshold="median", num_keep=None, batch=256, seed=0, mesh=None, progress=False,
                        svm_options=None):
    """Returns {space: {"score", "entropy_bits"}}: the linear separability of z and/or w.

    classify(images) -> (B, A) scores of the attributes `names`; see sample_latents_and_scores for
    mapping and synthesis. The official uses num=200,000 and keeps 100,000 per attribute.
    """
    samples = sample_latents_and_scores(mapping, synthesis, classify, z_dim, num, batch, seed, mesh, progress)
    return separability_from_samples(samples, names, spaces, threshold, num_keep, svm_options)


def oracle_classifier(resolution):
    """Returns (classify, names): the toyfaces oracle's 13 factors in [0, 1] as attribute scores
    (use threshold='median')."""
    from jaxstyle.data.toyfaces import FACTOR_NAMES
    from jaxstyle.metrics.oracle import load_oracle
    oracle = load_oracle(resolution)
    return oracle.predict, tuple(FACTOR_NAMES)


def generator_callables(G, variables):
    """Returns (mapping, synthesis) of a jaxstyle Generator for linear_separability: no truncation,
    random noise inputs (and a random content code per sample for DiagonalGAN generators)."""
    import flax.linen as nn

    def mapping(z):
        return G.apply(variables, z, method="map")

    def synthesis(ws, key):
        k_noise, k_content = jax.random.split(key)

        def run(module):
            contents = None
            if G.has_content:
                contents = module.map_content(jax.random.normal(k_content, (ws.shape[0], G.z_dim)))
            return module.synthesize(ws, "random", contents)
        return nn.apply(run, G)(variables, rngs={"noise": k_noise})
    return mapping, synthesis
