"""Perceptual path length (StyleGAN, Karras et al. 2019), as the official metric computes it.

For each pair of latents (z0, z1) and a t: interpolate in Z (slerp of the normalised z, then map)
or in W (map, then lerp), at t and t + eps (eps = 1e-4); synthesise both; optionally crop to the
face region (rows 3/8..7/8, columns 2/8..6/8); box-downsample by an integer factor if larger than
256; the pair's value is d(img_t, img_t+eps) / eps^2. Values outside [P1 (numpy 'lower'), P99
('higher')] are dropped and the rest averaged. sampling 'full' draws t ~ U(0, 1); 'end' uses t = 0,
as the official code does (the paper says t in {0, 1}; by the symmetry of the pair both give the
same distribution).

The generator is a `PPLModel`: one mapping per latent code and a synthesis taking the mapped codes
in order. Build one with `PPLModel.single(mapping, synthesis, z_dim)`, `from_stylegan2(handle)` or
`from_diagonalgan(handle)`. For two-code generators, `domain` picks which codes move along the
path ('style', 'content' or 'joint' for DiagonalGAN; a tuple of code indices in general); the
others are drawn once per pair and held. Joint interpolation slerps (or lerps) each code in its
own space with the same t, since each mapping normalises its own input.

Noise: StyleGAN2 handles synthesise with noise_mode 'const' (the stored noise buffers), so both
images of a pair, and every pair, see the same noise. The official code also shares noise within a
minibatch but draws new noise per minibatch; with 'const' the noise is one fixed draw instead.
DiagonalGAN has no noise.

    from jaxstyle.metrics.ppl import PPLModel, perceptual_path_length
    result = perceptual_path_length(PPLModel.from_stylegan2(G), num_samples=50_000, space="w",
                                    sampling="end", crop=True)
    result["ppl"]

The distance is LPIPS VGG16 v0.1 (`jaxstyle.metrics.lpips`) by default, or "oracle_features":
the squared L2 distance between the toyfaces oracle's penultimate features (not LPIPS; numbers are
not comparable with published PPL). The result says which was used under "distance".
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

EPSILON = 1e-4
FACE_CROP = (3 / 8, 7 / 8, 2 / 8, 6 / 8)   # (top, bottom, left, right) fractions of the image
MAX_SIZE = 256
DIAGONALGAN_DOMAINS = {"style": (0,), "content": (1,), "joint": (0, 1)}


@dataclasses.dataclass(frozen=True)
class PPLModel:
    """A generator as PPL sees it: `mappings[i](z_i) -> w_i`, `synthesis(w_0, w_1, ...) -> images`.

    Images are NHWC in about [-1, 1]. `z_dims[i]` is the size of code i's input latent.
    """

    mappings: tuple
    synthesis: Callable
    z_dims: tuple
    domains: dict = dataclasses.field(default_factory=dict)   # named code subsets, e.g. "style": (0,)

    @classmethod
    def single(cls, mapping, synthesis, z_dim):
        """Returns a one-code PPLModel from mapping(z) -> w and synthesis(w) -> images."""
        return cls((mapping,), synthesis, (int(z_dim),))

    @classmethod
    def from_stylegan2(cls, handle):
        """Returns a PPLModel for a `jaxstyle.interop.StyleGAN2` handle, synthesising with const noise."""
        return cls.single(handle.mapping, lambda ws: handle.synthesis(ws, noise_mode="const"), handle.G.z_dim)

    @classmethod
    def from_diagonalgan(cls, handle):
        """Returns a two-code PPLModel (style, content) for a `jaxstyle.models.diagonalgan.DiagonalGAN`."""
        z_dim = int(handle.G.z_dim)
        return cls((handle.style_mapping, handle.content_mapping), handle.synthesis, (z_dim, z_dim),
                   DIAGONALGAN_DOMAINS)

    def code_indices(self, domain):
        """Returns the tuple of code indices that `domain` (None, a name or indices) interpolates."""
        if domain is None:
            return tuple(range(len(self.mappings)))
        if isinstance(domain, str):
            if domain not in self.domains:
                raise ValueError(f"unknown domain {domain!r}; this model has {sorted(self.domains) or 'none'}")
            return self.domains[domain]
        indices = tuple(int(i) for i in domain)
        if not indices or any(not 0 <= i < len(self.mappings) for i in indices):
            raise ValueError(f"domain {domain} must name codes among 0..{len(self.mappings) - 1}")
        return indices


def normalize(v):
    """Returns v scaled to unit L2 norm along the last axis."""
    return v / jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))


def slerp(a, b, t):
    """Returns the spherical interpolation of the unit vectors a/|a|, b/|b| at t (unit norm)."""
    a, b = normalize(a), normalize(b)
    d = jnp.sum(a * b, axis=-1, keepdims=True)
    p = t * jnp.arccos(d)
    c = normalize(b - d * a)
    return normalize(a * jnp.cos(p) + c * jnp.sin(p))


def lerp(a, b, t):
    """Returns a + (b - a) t, broadcasting t (B, 1) over any trailing code axes."""
    t = jnp.reshape(t, t.shape[:1] + (1,) * (a.ndim - 1))
    return a + (b - a) * t


def draw_t(key, n, sampling):
    """Returns t (n, 1): U(0, 1) for 'full', zeros for 'end' (the official code's U(0, 0))."""
    if sampling == "full":
        return jax.random.uniform(key, (n, 1))
    if sampling == "end":
        return jnp.zeros((n, 1))
    raise ValueError(f"sampling must be 'full' or 'end', not {sampling!r}")


def crop_box(size, crop):
    """Returns (top, bottom, left, right) pixel indices for an image of side `size`, or None.

    crop True is the official face crop: with c = size // 8, rows 3c:7c and columns 2c:6c. A tuple
    of fractions (top, bottom, left, right) gives int(fraction * size).
    """
    if crop is None or crop is False:
        return None
    if crop is True:
        c = size // 8
        return 3 * c, 7 * c, 2 * c, 6 * c
    return tuple(int(f * size) for f in crop)


def downsample_factor(size, max_size=MAX_SIZE):
    """Returns the official box-downsampling factor: size // max_size if size > max_size, else 1."""
    return size // max_size if size > max_size else 1


@functools.partial(jax.jit, static_argnames=("box", "factor"))
def prepare_images(images, box=None, factor=1):
    """Returns NHWC images cropped to `box` and box-averaged by `factor` (reshape and mean)."""
    if box is not None:
        top, bottom, left, right = box
        images = images[:, top:bottom, left:right]
    if factor > 1:
        b, h, w, c = images.shape
        images = images.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
    return images


def filter_outliers(values):
    """Returns (kept values, lo, hi): values in [P1 'lower', P99 'higher'], as the official code."""
    values = np.asarray(values, np.float64)
    lo = np.percentile(values, 1, method="lower")
    hi = np.percentile(values, 99, method="higher")
    return values[(lo <= values) & (values <= hi)], float(lo), float(hi)


@functools.partial(jax.jit, static_argnames=("space",))
def _endpoints(z0, z1, t, eps, space):
    """Returns the two latents of each pair at t and t + eps in Z (slerp) or the inputs (W)."""
    if space == "z":
        return slerp(z0, z1, t), slerp(z0, z1, t + eps)
    return z0, z1


@jax.jit
def _lerp_pair(w0, w1, t, eps):
    return lerp(w0, w1, t), lerp(w0, w1, t + eps)


def _pair_codes(model, keys, moving, n, t, space, eps):
    """Returns (codes at t, codes at t + eps), one mapped code per mapping."""
    at_t, at_eps = [], []
    for i, (mapping, z_dim) in enumerate(zip(model.mappings, model.z_dims)):
        key0, key1 = jax.random.split(keys[i])
        z0 = jax.random.normal(key0, (n, z_dim))
        if i not in moving:
            w = mapping(z0)          # held code: the same for both images of a pair
            at_t.append(w), at_eps.append(w)
            continue
        z1 = jax.random.normal(key1, (n, z_dim))
        if space == "z":
            e0, e1 = _endpoints(z0, z1, t, eps, space)
            w = mapping(jnp.concatenate([e0, e1]))     # one mapping call for both ends
            at_t.append(w[:n]), at_eps.append(w[n:])
        else:
            w = mapping(jnp.concatenate([z0, z1]))
            w0, w1 = _lerp_pair(w[:n], w[n:], t, eps)
            at_t.append(w0), at_eps.append(w1)
    return at_t, at_eps


def resolve_distance(distance, resolution):
    """Returns (name, fn(img0, img1) -> (B,)) for 'lpips', 'oracle_features', an LPIPSDistance or a callable."""
    if distance == "lpips":
        from jaxstyle.metrics.lpips import load_lpips
        return "lpips", load_lpips()
    if distance == "oracle_features":
        from jaxstyle.metrics.oracle import load_oracle
        oracle = load_oracle(resolution)
        return "oracle_features", lambda a, b: jnp.sum((oracle.features(a) - oracle.features(b)) ** 2, axis=-1)
    if callable(distance):
        from jaxstyle.metrics.lpips import LPIPSDistance
        return ("lpips" if isinstance(distance, LPIPSDistance) else getattr(distance, "name", "custom")), distance
    raise ValueError(f"distance must be 'lpips', 'oracle_features' or a callable, not {distance!r}")


def perceptual_path_length(model: PPLModel, num_samples=50_000, space="w", sampling="end",
                           distance="lpips", batch=16, seed=0, crop=False, domain=None,
                           epsilon=EPSILON, return_values=False):
    """Returns a dict: "ppl" (mean of the kept per-pair values), "distance" ('lpips',
    'oracle_features' or the callable's name), "num_samples", "num_kept", "lo", "hi", the settings,
    and with return_values=True "values", every per-pair d / eps^2 (float64, before filtering).

    space 'z' | 'w'; sampling 'full' | 'end'; crop False | True (official face crop) | fractions;
    domain: None (all codes), a name from model.domains, or code indices. Pairs are drawn in
    batches of `batch` from jax.random.key(seed), so a run is reproducible for a given batch size.
    """
    if space not in ("z", "w"):
        raise ValueError(f"space must be 'z' or 'w', not {space!r}")
    moving = model.code_indices(domain)
    key = jax.random.key(seed)
    name, dist_fn = None, None
    values = []
    for start in range(0, num_samples, batch):
        n = min(batch, num_samples - start)
        keys = jax.random.split(jax.random.fold_in(key, start), len(model.mappings) + 1)
        t = draw_t(keys[-1], n, sampling)
        at_t, at_eps = _pair_codes(model, keys, moving, n, t, space, epsilon)
        img0, img1 = model.synthesis(*at_t), model.synthesis(*at_eps)
        size = img0.shape[1]
        box = crop_box(size, crop)
        cropped = size if box is None else box[1] - box[0]
        factor = downsample_factor(cropped)
        img0, img1 = prepare_images(img0, box, factor), prepare_images(img1, box, factor)
        if dist_fn is None:
            name, dist_fn = resolve_distance(distance, img0.shape[1])
        values.append(np.asarray(dist_fn(img0, img1), np.float64) / epsilon ** 2)
    values = np.concatenate(values)
    kept, lo, hi = filter_outliers(values)
    result = {"ppl": float(np.mean(kept)), "distance": name, "space": space, "sampling": sampling,
              "crop": crop, "domain": domain, "epsilon": epsilon, "num_samples": int(values.size),
              "num_kept": int(kept.size), "lo": lo, "hi": hi}
    if return_values:
        result["values"] = values
    return result
