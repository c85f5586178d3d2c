"""Linear subspace layers of SEGAN (curefate/SEGan_Pytorch `subspace.py`), after EigenGAN.

EigenGAN (He, Kan, Shan 2021) gives a generator layer a linear subspace: a basis U, the
importance L of each basis vector (the diagonal of a matrix) and an origin mu, so that the
layer's coordinates w move it along U diag(L) w + mu. SEGAN puts such subspaces on a StyleGAN2
and takes the coordinates from the w that the layer already reads (no extra latents, so the
subspace dimension D is w_dim). Each synthesis layer (conv or ToRGB) has its own subspace:

    mode 1  EigenSpace        h = U diag(L) w * factor + mu, (B, r, r, C), added to the layer output
    mode 2  EigenSpace2Style  w'_k = L_k (sum_{i,j,c} U[i,j,c,k]) w_k * factor + mu_k, fed to the affine
    mode 3  EigenSpaceOnlyL   w' = w * L * factor, fed to the affine

Layout NHWC: U is (r, r, C, D) where the official tensor is (C, r, r, D). Initialisation as
official: L = 1, mu = 0, and U by torch's `orthogonal_` on the 4-D tensor, which makes the C
channel slices orthonormal (each a vector of r*r*D entries). So mode 3 starts as the plain
StyleGAN2, exactly.

Edits (traversals, and the official per-layer `sub_factor`) arrive as an optional variable
collection 'subspace_edits' of the layer: 'shift' ((D,) or (B, D)), added to the coordinates,
and 'factor' (a scalar or (B,)), which replaces the official factor 1. A shift moves only this
subspace's coordinates: in mode 1 the layer's modulation still reads the unshifted w.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

SUBSPACE_MODES = (0, 1, 2, 3)  # 0: no subspace (StyleGAN2)
EDITS = "subspace_edits"
NAME = "subspace"              # the submodule name inside a synthesis layer


def segan_orthogonal():
    """Returns the initializer of U (r, r, C, D) equal in law to torch `orthogonal_` on (C, r, r, D):
    the C channel slices, flattened, are orthonormal (when C <= r*r*D)."""
    return nn.initializers.orthogonal(column_axis=2)


def _edited(module, w):
    """Returns the coordinates (w + shift) * factor, with the layer's edits if any."""
    if module.has_variable(EDITS, "shift"):
        w = w + module.get_variable(EDITS, "shift")
    if module.has_variable(EDITS, "factor"):
        factor = jnp.asarray(module.get_variable(EDITS, "factor"), w.dtype)
        w = w * (factor[:, None] if factor.ndim == 1 else factor)
    return w


class EigenSpace(nn.Module):
    """SEGAN mode 1: a feature-space subspace h = U diag(L) w + mu at the layer's resolution."""

    resolution: int                            # r: the layer's output resolution
    channels: int                              # C: the layer's output channels

    @nn.compact
    def __call__(self, w):
        """Returns h (B, r, r, C) for coordinates w (B, D)."""
        r, d = self.resolution, w.shape[-1]
        U = self.param("U", segan_orthogonal(), (r, r, self.channels, d))
        L = self.param("L", nn.initializers.ones, (d,))
        mu = self.param("mu", nn.initializers.zeros, (r, r, self.channels))
        return jnp.einsum("ijck,bk->bijc", U, L * _edited(self, w)) + mu


class EigenSpace2Style(nn.Module):
    """SEGAN mode 2 (`EigenSpace_2style`): U diag(L) w summed over the feature axes, plus mu (D,),
    i.e. a per-coordinate rescaling of w placed before the modulation affine."""

    resolution: int
    channels: int

    @nn.compact
    def __call__(self, w):
        """Returns w' (B, D): w'_k = L_k w_k sum_{i,j,c} U[i,j,c,k] + mu_k."""
        r, d = self.resolution, w.shape[-1]
        U = self.param("U", segan_orthogonal(), (r, r, self.channels, d))
        L = self.param("L", nn.initializers.ones, (d,))
        mu = self.param("mu", nn.initializers.zeros, (d,))
        # The official broadcast sum over (B, C, r, r, D); XLA reduces U first.
        return jnp.einsum("ijck,bk->bk", U, L * _edited(self, w)) + mu


class EigenSpaceOnlyL(nn.Module):
    """SEGAN mode 3 (`EigenSpace_onlyL`): w' = w * L, before the modulation affine."""

    @nn.compact
    def __call__(self, w):
        """Returns w' (B, D) = L * w."""
        L = self.param("L", nn.initializers.ones, (w.shape[-1],))
        return _edited(self, w) * L


def subspace_layer(mode, resolution, channels):
    """Returns the (unbound) subspace module of SEGAN `mode` (1, 2 or 3) for a layer, named NAME."""
    if mode == 1:
        return EigenSpace(resolution, channels, name=NAME)
    if mode == 2:
        return EigenSpace2Style(resolution, channels, name=NAME)
    if mode == 3:
        return EigenSpaceOnlyL(name=NAME)
    raise ValueError(f"unknown subspace mode {mode!r}; use one of {SUBSPACE_MODES} (0 = none)")


def check_mode(mode):
    """Returns mode; raises ValueError unless it is one of SUBSPACE_MODES."""
    if mode not in SUBSPACE_MODES:
        raise ValueError(f"unknown subspace mode {mode!r}; use one of {SUBSPACE_MODES} (0 = none)")
    return mode


def direction_norms(mode, params):
    """Returns (D,): |d out / d w_k| of one subspace layer's params {U, L, mu}, i.e. how far a unit
    step of coordinate k moves it: |L_k| ||U[..., k]|| (mode 1), |L_k sum U[..., k]| (mode 2),
    |L_k| (mode 3)."""
    L = params["L"]
    if mode == 1:
        return jnp.abs(L) * jnp.sqrt(jnp.sum(jnp.square(params["U"]), axis=(0, 1, 2)))
    if mode == 2:
        return jnp.abs(L * jnp.sum(params["U"], axis=(0, 1, 2)))
    if mode == 3:
        return jnp.abs(L)
    raise ValueError(f"unknown subspace mode {mode!r}; use 1, 2 or 3")


def subspace_params(synthesis_params):
    """Returns {'b8/conv0': {U, L, mu}, ...}: every subspace layer of a synthesis network's
    params, coarse to fine (conv0, conv1, torgb within a block)."""
    layers = {}
    for block in sorted(synthesis_params, key=lambda b: int(b[1:]) if b[1:].isdigit() else 0):
        for layer in sorted(synthesis_params[block]):
            sub = synthesis_params[block][layer]
            if isinstance(sub, dict) and NAME in sub:
                layers[f"{block}/{layer}"] = sub[NAME]
    return layers


def subspace_bases(params):
    """Returns the list of every subspace basis U in a pytree of params (modes 1 and 2; mode 3 has none)."""
    key = lambda k: getattr(k, "key", None)
    return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if len(path) >= 2 and key(path[-1]) == "U" and key(path[-2]) == NAME]


def edits_tree(shifts=None, factors=None):
    """Returns the 'subspace_edits' collection for a Generator: {layer 'b8/conv0': shift} and
    {layer: factor} become {'synthesis': {'b8': {'conv0': {'subspace': {...}}}}}."""
    tree = {}
    for kind, values in (("shift", shifts or {}), ("factor", factors or {})):
        for layer, value in values.items():
            block, name = layer.split("/")
            node = tree.setdefault("synthesis", {}).setdefault(block, {}).setdefault(name, {})
            node.setdefault(NAME, {})[kind] = jnp.asarray(value)
    return tree
