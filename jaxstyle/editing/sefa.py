"""SeFa: closed-form factorization of the style affines (Shen & Zhou, CVPR 2021), and editing.

Every layer's style is an affine map of its w slot, s = A w + b. Moving w by alpha * n moves
the styles by alpha * A n, so the directions that move the styles most are the top
eigenvectors of A^T A over the chosen layers. Two forms, as the two public implementations code
them (METHODS.md sec. 4):

- "genforce" (genforce/sefa utils.py `factorize_weight`): per chosen slot the affine of the
  layer genforce names layer{idx} (the conv reading the slot; for the last slot, which only
  the final ToRGB reads, that ToRGB). Their weights (w_dim, C) are concatenated along columns,
  every column (one style channel's w_dim vector) is scaled to unit norm, and W W^T (w_dim x
  w_dim) is eigen-decomposed. genforce calls `np.linalg.eig` in float32 and leaves the order as
  returned; here `eigh` in float64, sorted by eigenvalue, descending.
- "rosinality" (rosinality/stylegan2-pytorch closed_form_factorization.py): the raw modulation
  weights (C, w_dim) stacked along rows, no normalisation, directions = the right singular
  vectors of the SVD, eigenvalues = squared singular values. Its name filter drops `to_rgbs.*`
  but keeps `to_rgb1`, the 4x4 ToRGB (it reads slot 1), so that affine is in by default
  (first_torgb=True); first_torgb=False drops every ToRGB.

With the same affines and unit-norm columns the two forms give the same eigenvalues and the
same directions up to sign. Directions here are rows n_k of unit norm, each signed so that its
largest-magnitude component is positive (eigenvectors have no sign of their own).

Slots are those of the synthesis network (`synthesis_num_ws`): modulated conv (StyleGAN2-ADA,
genforce) block 4*2^k reads 2k-1 (conv0), 2k (conv1) and 2k+1 (its ToRGB, shared with the next
block's conv0); AdaIN (StyleGAN1, DiagonalGAN) block 4*2^k reads 2k and 2k+1. Weights are used
as stored (jaxstyle kernels are the official weights transposed, equalized-LR gain applied at
run time); the gain is one constant for every affine, so neither form depends on it.

Layer ranges by name (StyleGAN paper sec. 3.1: styles at 4^2-8^2 are coarse, 16^2-32^2 middle,
64^2-1024^2 fine), a slot belonging to the resolution of the conv layer(s) reading it:
"coarse" <= 8 px, "middle" 16-32 px, "fine" >= 64 px, and, so that a generator below 64 px has
fine styles, the output resolution's slots always count as fine. For the 32x32 toy model
(8 slots): coarse 0-2, middle 3-4, fine 5-7. genforce's interactive tool offers 0-1, 2-5 and
6-13 for its 18-slot models; give such ranges as indices ("0-1", "2,3,4,5").

    python -m jaxstyle.editing.sefa --workdir runs/default --out sefa.png   # see sefa_cli.py
"""

import math
import re
import sys
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict

FORMS = ("genforce", "rosinality")
RANGES = ("all", "coarse", "middle", "fine")
COARSE_MAX, MIDDLE_MAX = 8, 32     # px; StyleGAN sec. 3.1
_AFFINE = re.compile(r"^b(\d+)/(conv0|conv1|torgb|adain1|adain2)/affine/kernel$")


class StyleAffine(NamedTuple):
    """One layer's style affine and the w slot it reads."""

    path: str            # module path in the synthesis network, e.g. "b8/conv0"
    slot: int
    kind: str            # "conv" (modulated conv), "torgb" or "adain"
    resolution: int
    kernel: np.ndarray   # (w_dim, C) as stored: the official (C, w_dim) weight transposed


class Factorization(NamedTuple):
    """Directions that move the chosen layers' styles most, and how much."""

    directions: np.ndarray   # (K, w_dim) float64, unit rows n_k, eigenvalue descending
    eigenvalues: np.ndarray  # (K,) float64, descending
    slots: tuple             # the chosen w slots (edit these)
    layers: tuple            # module paths of the affines used, coarse to fine
    form: str


def style_affines(variables, max_resolution=None):
    """Returns every StyleAffine of a Generator's variables (or params), ordered by slot and path;
    blocks above max_resolution (an official DiagonalGAN trained below 1024) are left out."""
    params = variables.get("params", variables)
    params = params.get("synthesis", params)
    found = []
    for key, kernel in flatten_dict(params, sep="/").items():
        m = _AFFINE.match(key)
        if not m:
            continue
        res, name = int(m.group(1)), m.group(2)
        if max_resolution is not None and res > max_resolution:
            continue
        k = int(math.log2(res)) - 2
        if name.startswith("adain"):
            kind, slot = "adain", 2 * k + int(name[-1]) - 1
        else:
            kind, slot = ("torgb", 2 * k + 1) if name == "torgb" else ("conv", 2 * k - (name == "conv0"))
        found.append(StyleAffine(f"b{res}/{name}", slot, kind, res, np.asarray(kernel, np.float64)))
    if not found:
        raise ValueError("no style affines found: expected a jaxstyle Generator's variables "
                         "(synthesis/b<res>/<layer>/affine/kernel)")
    return sorted(found, key=lambda a: (a.slot, a.kind == "torgb", a.path))


def slot_resolutions(affines):
    """Returns {slot: resolution}: that of the conv/AdaIN layers reading the slot, else its ToRGB's."""
    res = {}
    for a in sorted(affines, key=lambda a: a.kind == "torgb"):
        res.setdefault(a.slot, a.resolution)
    return dict(sorted(res.items()))


def parse_layers(layers):
    """Returns a range name, or a sorted tuple of ints from "0,1,2" / "0-3" / a sequence of ints.

    Raises ValueError naming the bad part and the accepted forms."""
    if isinstance(layers, str):
        text = layers.replace(" ", "")
        if text in RANGES:
            return text
        slots = set()
        for part in text.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise ValueError(f"bad layers {layers!r} (at {part!r}): use one of {', '.join(RANGES)}, or slot "
                                 "indices such as 0,1,2 or 0-3")
            slots.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
        return tuple(sorted(slots))
    try:
        slots = sorted({int(s) for s in layers})
    except (TypeError, ValueError):
        raise ValueError(f"bad layers {layers!r}: use a range name or slot indices") from None
    if not slots:
        raise ValueError("no layers given: use one of all, coarse, middle, fine, or slot indices")
    return tuple(slots)


def layer_slots(affines, layers="all"):
    """Returns the sorted tuple of slots named by `layers` (see parse_layers) for these affines.

    Raises ValueError for an unknown name, an index out of range, or a range with no slots here."""
    res = slot_resolutions(affines)
    num = len(res)
    parsed = parse_layers(layers)
    layout = ", ".join(f"{s}:{r}px" for s, r in res.items())
    if isinstance(parsed, tuple):
        bad = [s for s in parsed if s not in res]
        if bad:
            raise ValueError(f"slot(s) {bad} out of range: this generator has slots 0..{num - 1} ({layout})")
        return parsed
    return named_slots(parsed, res)


def named_slots(name, resolutions):
    """Returns the sorted slots of a range name (all, coarse, middle, fine; see the module
    docstring) for {slot: resolution}; raises ValueError when the range is empty here."""
    top = max(resolutions.values())
    fine = {s for s, r in resolutions.items() if r > MIDDLE_MAX or r == top}
    pick = {"all": set(resolutions), "fine": fine,
            "coarse": {s for s, r in resolutions.items() if r <= COARSE_MAX} - fine,
            "middle": {s for s, r in resolutions.items() if COARSE_MAX < r <= MIDDLE_MAX} - fine}[name]
    if not pick:
        layout = ", ".join(f"{s}:{r}px" for s, r in resolutions.items())
        raise ValueError(f"layer range {name!r} is empty for this {top}x{top} generator ({layout}); "
                         "give slot indices instead")
    return tuple(sorted(pick))


def chosen_affines(affines, slots, form="genforce", first_torgb=True):
    """Returns the affines each form factorizes for the chosen slots (see the module docstring)."""
    check_form(form)
    slots, out = set(slots), []
    for slot in sorted(slots):
        reading = [a for a in affines if a.slot == slot]
        styled = [a for a in reading if a.kind != "torgb"]
        if form == "genforce":
            out += styled or reading  # only the final ToRGB reads the last slot
        else:
            out += styled + [a for a in reading if a.kind == "torgb" and first_torgb and a.resolution == 4]
    if not out:
        raise ValueError(f"form {form!r} has no affines in slots {sorted(slots)}: it leaves out ToRGB "
                         "layers; add conv slots or use form 'genforce'")
    return out


def check_form(form):
    """Returns form; raises ValueError unless it is 'genforce' or 'rosinality'."""
    if form not in FORMS:
        raise ValueError(f"unknown SeFa form {form!r}: use 'genforce' or 'rosinality'")
    return form


def genforce_factorization(weight):
    """Returns (eigenvalues, directions) of weight (w_dim, sum C) with unit-norm columns:
    eigen-decomposition of W W^T, descending; directions as rows."""
    weight = np.asarray(weight, np.float64)
    weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
    values, vectors = np.linalg.eigh(weight @ weight.T)
    order = np.argsort(values)[::-1]
    return np.maximum(values[order], 0.0), _signed(vectors[:, order].T)


def rosinality_factorization(weight):
    """Returns (squared singular values, right singular vectors as rows) of weight (sum C, w_dim)
    in the official (out, in) layout, descending; min(sum C, w_dim) of each."""
    _, singular, vt = np.linalg.svd(np.asarray(weight, np.float64), full_matrices=False)
    return singular ** 2, _signed(vt)


def _signed(rows):
    # Flip each row so that its largest-magnitude entry is positive: a reproducible sign.
    idx = np.argmax(np.abs(rows), axis=1)
    return rows * np.sign(rows[np.arange(len(rows)), idx])[:, None]


def factorize(variables, layers="all", form="genforce", first_torgb=True, max_resolution=None):
    """Returns the Factorization of the style affines of the slots named by `layers`.

    variables: a jaxstyle Generator's variables (or its params); form "genforce" or
    "rosinality"; max_resolution drops blocks above it (see style_affines)."""
    check_form(form)
    affines = style_affines(variables, max_resolution)
    slots = layer_slots(affines, layers)
    used = chosen_affines(affines, slots, form, first_torgb)
    if form == "genforce":
        values, dirs = genforce_factorization(np.concatenate([a.kernel for a in used], axis=1))
    else:
        values, dirs = rosinality_factorization(np.concatenate([a.kernel.T for a in used], axis=0))
    return Factorization(dirs, values, slots, tuple(a.path for a in used), form)


def edit(ws, direction, alpha, slots):
    """Returns W+ codes ws (N, num_ws, w_dim) moved by alpha * direction in `slots` only.

    alpha: a scalar or (N,) per sample. A pure function (jit-able with static slots); alpha 0
    returns ws unchanged."""
    ws = jnp.asarray(ws)
    if ws.ndim != 3:
        raise ValueError(f"ws must be W+ codes (N, num_ws, w_dim), got shape {ws.shape}")
    slots = sorted({int(s) for s in slots})
    bad = [s for s in slots if not 0 <= s < ws.shape[1]]
    if bad:
        raise ValueError(f"slot(s) {bad} out of range for ws with {ws.shape[1]} slots")
    mask = np.zeros((ws.shape[1], 1), np.float32)
    mask[slots] = 1.0
    alpha = jnp.reshape(jnp.asarray(alpha, ws.dtype), (-1, 1, 1))
    step = alpha * (jnp.asarray(mask, ws.dtype) * jnp.asarray(direction, ws.dtype)[None])
    return jnp.where(mask[None] > 0, ws + step, ws)


if __name__ == "__main__":
    from jaxstyle.editing.sefa_cli import main
    sys.exit(main())
