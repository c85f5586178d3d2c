"""A DiagonalGAN generator with its weights: the two mappings and the synthesis as plain functions.

One handle for every generator with content codes (content_op "dat"): the official AdaIN model
imported by `jaxstyle.interop.load_diagonalgan`, and jaxstyle-trained `diagonalgan` and
`diagonal-stylegan2` checkpoints. Slots: a code (B, dim) feeds every slot; (B, num_slots, dim)
feeds each slot its own (block i of the AdaIN synthesis reads slots 2i and 2i+1).
DAT layers are named by their module path, for example "b8/dat1" (AdaIN) or "b8/conv0/dat"
(modulated conv); `attention_maps` returns one map per layer and `attention_edits` scales them.
"""

import dataclasses
import functools
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp

from jaxstyle.models.generator import Generator
from jaxstyle.nn.dat import EDITS


@functools.partial(jax.jit, static_argnames=("G", "noise_mode", "resolution", "maps"))
def _synthesize(G, variables, styles, contents, edits, alpha, noise_mode, resolution, maps):
    variables = {**variables, EDITS: edits} if edits else variables
    if not maps:
        return G.apply(variables, styles, noise_mode, contents, resolution, alpha, method=Generator.synthesize)
    img, state = G.apply(variables, styles, noise_mode, contents, resolution, alpha,
                         method=Generator.synthesize, mutable=["intermediates"])
    found = flax.traverse_util.flatten_dict(state["intermediates"], sep="/")
    prefix, suffix = "synthesis/", "/attention"
    return img, {k[len(prefix):-len(suffix)]: v[0] for k, v in found.items()}


@functools.partial(jax.jit, static_argnames=("G", "content"))
def _map(G, variables, z, content):
    if content:
        return G.apply(variables, z, method=Generator.map_content)[:, 0]
    return G.apply(variables, z, method=Generator.map)[:, 0]


@dataclasses.dataclass(frozen=True)
class DiagonalGAN:
    """A Generator with content codes and its variables ('params', and 'buffers' for noise)."""

    G: Generator
    variables: Any
    noise_mode: str = "const"
    size: Optional[int] = None                 # the trained resolution when below the network's (official --size)

    def __post_init__(self):
        if not self.G.has_content:
            raise ValueError("DiagonalGAN needs a generator with content_op 'dat'")

    @property
    def num_slots(self):
        return self.G.num_ws

    @property
    def resolution(self):
        """Returns the default output resolution: `size`, else the network's."""
        return self.size or self.G.img_resolution

    def style_mapping(self, z_style):
        """Returns style codes (B, dim)."""
        return _map(self.G, self.variables, jnp.asarray(z_style), False)

    def content_mapping(self, z_content):
        """Returns content codes (B, dim)."""
        return _map(self.G, self.variables, jnp.asarray(z_content), True)

    def synthesis(self, styles, contents, resolution=None, alpha=1.0, attention_edits=None):
        """Returns images (B, r, r, 3) NHWC, float32 in about [-1, 1].

        alpha < 1 blends with the previous resolution's ToRGB, nearest-upsampled, as the
        official fade-in does (AdaIN synthesis). attention_edits: {layer: scale} multiplies
        that layer's attention map d by scale, (H, W) or (B, H, W).
        """
        # As the official code, an alpha outside [0, 1) (its default is -1) means no fade-in.
        alpha = alpha if not isinstance(alpha, (int, float)) or 0 <= alpha < 1 else 1.0
        return _synthesize(self.G, self.variables, jnp.asarray(styles), jnp.asarray(contents),
                           self._edits(attention_edits), alpha, self.noise_mode, resolution or self.size, False)

    def attention_maps(self, styles, contents, resolution=None, attention_edits=None):
        """Returns (images, {layer: attention map d (B, H, W) in [0, 1]}) for every DAT layer."""
        return _synthesize(self.G, self.variables, jnp.asarray(styles), jnp.asarray(contents),
                           self._edits(attention_edits), 1.0, self.noise_mode, resolution or self.size, True)

    def mean_codes(self, n=10240, seed=0, batch=1024):
        """Returns (style mean, content mean), each (dim,), over n random latents (official: 10 x 1024)."""
        key_s, key_c = jax.random.split(jax.random.key(seed))
        total_s = total_c = 0.0
        for i in range(0, n, batch):
            m = min(batch, n - i)
            total_s += jnp.sum(self.style_mapping(jax.random.normal(jax.random.fold_in(key_s, i), (m, self.G.z_dim))), 0)
            total_c += jnp.sum(self.content_mapping(jax.random.normal(jax.random.fold_in(key_c, i), (m, self.G.z_dim))), 0)
        return total_s / n, total_c / n

    @property
    def attention_layers(self):
        """Returns the names of the DAT layers, coarse to fine."""
        flat = flax.traverse_util.flatten_dict(self.variables["params"]["synthesis"], sep="/")
        names = [k[:-len("/gamma")] for k in flat if k.endswith("/gamma")]
        return sorted(names, key=lambda n: (int(n.split("/")[0][1:]), n))

    def _edits(self, attention_edits):
        if not attention_edits:
            return None
        nested = {}
        for layer, scale in attention_edits.items():
            if layer not in self.attention_layers:
                raise ValueError(f"no DAT layer {layer!r}; layers are {', '.join(self.attention_layers)}")
            node = nested.setdefault("synthesis", {})
            for part in layer.split("/"):
                node = node.setdefault(part, {})
            node["scale"] = jnp.asarray(scale, jnp.float32)
        return nested
