"""DiagonalGAN content/style tools: truncated codes, per-slot mixing and interpolation, grids.

The modes of the official generate.py (sample, mixing, interpolation, with a domain "style" or
"content" and target layers = slots) plus a content x style grid, on a
`jaxstyle.models.diagonalgan.DiagonalGAN` handle. Each returns a `Figure`: the uint8 grid the
command line saves and the float images in its cells, so callers can check or reuse them.

A sample is named by a seed: its style and content latents are two independent draws from that
seed, so a sample is the same whatever else is in the batch. Codes are handled per slot,
(N, num_slots, dim); in the AdaIN network block i (4 * 2**i px) reads slots 2i and 2i+1.
Sampling-time truncation as the official code: codes are lerped toward the mean codes (over
10 x 1024 samples) with psi 0.7 for styles, and 1.0 (sample) or 0.8 (mixing, interpolation)
for contents.
"""

from typing import NamedTuple

import jax
import numpy as np

from jaxstyle.images import to_uint8

DOMAINS = ("style", "content")
PSI_STYLE = 0.7
PSI_CONTENT_SAMPLE = 1.0
PSI_CONTENT_EDIT = 0.8
CHUNK = 8  # images per generator call: every batch is padded to it, so one compile serves all


class Codes(NamedTuple):
    """Per-slot codes of N samples, each (N, num_slots, dim)."""

    styles: np.ndarray
    contents: np.ndarray


class Figure(NamedTuple):
    """A saved grid and what is in it."""

    grid: np.ndarray   # uint8 (H, W, 3), headers included: what the command line writes
    cells: np.ndarray  # float32 (rows, cols, r, r, 3) in about [-1, 1]: the body, no headers


def require_content(net):
    """Returns net; raises ValueError when it has no content codes (not a DiagonalGAN handle)."""
    if not all(hasattr(net, a) for a in ("content_mapping", "attention_layers", "num_slots")):
        raise ValueError(f"{type(net).__name__} has no content codes: these tools need a DiagonalGAN "
                         "model (jaxstyle.interop.load_diagonalgan or "
                         "jaxstyle.training.restore.load_diagonalgan_run)")
    return net


def check_domain(domain):
    """Returns domain; raises ValueError unless it is "style" or "content"."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: use 'style' or 'content'")
    return domain


def check_slots(net, slots):
    """Returns the slots as a sorted tuple of distinct ints; raises ValueError naming bad ones."""
    slots = tuple(sorted({int(s) for s in slots}))
    bad = [s for s in slots if not 0 <= s < net.num_slots]
    if bad:
        layout = ("AdaIN block i, 4*2^i px, reads slots 2i and 2i+1" if net.G.style_op == "adain" else
                  "modulated-conv block i >= 1, 4*2^i px, reads slots 2i-1 and 2i, its ToRGB 2i+1")
        raise ValueError(f"slot(s) {bad} out of range: this model has {net.num_slots} slots per domain, "
                         f"0..{net.num_slots - 1} coarse to fine ({layout})")
    return slots


def latents(seeds, z_dim, domain):
    """Returns (len(seeds), z_dim) float32 latents, one independent N(0, I) draw per seed and domain."""
    index = DOMAINS.index(check_domain(domain))
    if not len(seeds):
        raise ValueError("no seeds given")
    draw = [jax.random.normal(jax.random.fold_in(jax.random.key(int(s)), index), (z_dim,)) for s in seeds]
    return np.stack([np.asarray(z) for z in draw])


def truncate(codes, mean, psi):
    """Returns mean + psi * (codes - mean); codes themselves when psi == 1 (no rounding)."""
    codes = np.asarray(codes, np.float32)
    if psi == 1:
        return codes
    mean = np.asarray(mean, np.float32)
    return mean + np.float32(psi) * (codes - mean)


def means_for(net, psi_style, psi_content, means=None):
    """Returns (style mean, content mean): `means` if given, else net.mean_codes() when a psi
    differs from 1 (10 x 1024 samples, as official), else (None, None)."""
    if means is not None:
        return means
    if psi_style == 1 and psi_content == 1:
        return None, None
    return tuple(np.asarray(m) for m in net.mean_codes())


def draw(net, seeds, psi_style=PSI_STYLE, psi_content=PSI_CONTENT_SAMPLE, means=None):
    """Returns the truncated per-slot Codes of the samples named by `seeds`."""
    require_content(net)
    style_mean, content_mean = means_for(net, psi_style, psi_content, means)
    z_dim = net.G.z_dim
    styles = chunked(lambda z, _: net.style_mapping(z), [latents(seeds, z_dim, "style")])
    contents = chunked(lambda z, _: net.content_mapping(z), [latents(seeds, z_dim, "content")])
    styles, contents = truncate(styles, style_mean, psi_style), truncate(contents, content_mean, psi_content)
    return Codes(per_slot(styles, net.num_slots), per_slot(contents, net.num_slots))


def per_slot(codes, num_slots):
    """Returns codes as (N, num_slots, dim): a (N, dim) code repeated in every slot."""
    codes = np.asarray(codes, np.float32)
    if codes.ndim == 2:
        codes = np.repeat(codes[:, None], num_slots, axis=1)
    if codes.ndim != 3 or codes.shape[1] != num_slots:
        raise ValueError(f"expected codes (N, dim) or (N, {num_slots}, dim), got {codes.shape}")
    return codes


def replace_slots(codes, other, slots):
    """Returns codes (N, S, dim) whose `slots` are taken from other (N or 1, S, dim)."""
    out = np.array(np.broadcast_to(codes, np.broadcast_shapes(np.shape(codes), np.shape(other))))
    out[:, list(slots)] = np.broadcast_to(other, out.shape)[:, list(slots)]
    return out


def lerp_slots(a, b, t, slots):
    """Returns a (N, S, dim) with `slots` moved toward b by t (t = 1 gives b's codes there)."""
    return replace_slots(a, a + np.float32(t) * (np.asarray(b) - a), slots)


def chunked(fn, arrays, per_sample_edits=None, chunk=CHUNK):
    """Returns fn(*arrays, edits) over batches of exactly `chunk` rows, joined again.

    The last batch is padded by repeating its last row, so one compiled generator serves every
    batch size. fn returns an array or a (array, {name: array}) pair; per_sample_edits is
    {name: (N, H, W)} or None, sliced alongside.
    """
    n = len(arrays[0])
    outputs = []
    for i in range(0, n, chunk):
        idx = np.minimum(np.arange(i, i + chunk), n - 1)
        edits = {k: np.asarray(v)[idx] for k, v in per_sample_edits.items()} if per_sample_edits else None
        outputs.append(jax.device_get(fn(*(np.asarray(a)[idx] for a in arrays), edits)))
    m = n - (len(outputs) - 1) * chunk  # real rows in the last batch

    def join(parts):
        return np.concatenate(list(parts[:-1]) + [parts[-1][:m]])
    if isinstance(outputs[0], tuple):
        return join([o[0] for o in outputs]), {k: join([o[1][k] for o in outputs]) for k in outputs[0][1]}
    return join(outputs)


def render(net, codes, attention_edits=None):
    """Returns float32 images (N, r, r, 3) of Codes; attention_edits {layer: (N, H, W)} per sample."""
    return chunked(lambda s, c, e: net.synthesis(s, c, attention_edits=e), codes, attention_edits)


def framed_grid(body, row_heads=None, col_heads=None):
    """Returns a uint8 grid of body (R, C, r, r, 3), with a header column/row of images if given.

    The corner is white: it belongs to neither header.
    """
    body = np.asarray(body)
    blank = np.ones(body.shape[2:], np.float32)
    cells = [list(row) for row in body]
    if row_heads is not None:
        cells = [[h] + row for h, row in zip(row_heads, cells)]
    if col_heads is not None:
        cells = [([blank] if row_heads is not None else []) + list(col_heads)] + cells
    tiles = to_uint8(np.stack([np.stack(row) for row in cells]))
    r, c, h, w, ch = tiles.shape
    return tiles.transpose(0, 2, 1, 3, 4).reshape(r * h, c * w, ch)


def sample(net, seeds, cols=4, psi_style=PSI_STYLE, psi_content=PSI_CONTENT_SAMPLE, means=None):
    """Returns a Figure of the samples named by seeds, row by row, `cols` per row.

    Cells past the last sample (when len(seeds) is not a multiple of cols) are white.
    """
    if cols < 1:
        raise ValueError(f"cols must be positive, got {cols}")
    images = render(net, draw(net, seeds, psi_style, psi_content, means))
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    pad = np.ones((rows * cols - len(images),) + images.shape[1:], np.float32)
    cells = np.concatenate([images, pad]).reshape((rows, cols) + images.shape[1:])
    return Figure(framed_grid(cells), cells)


def content_style_grid(net, style_seeds, content_seeds, psi_style=PSI_STYLE,
                       psi_content=PSI_CONTENT_EDIT, means=None, header=True):
    """Returns a Figure whose cell (i, j) has sample style_seeds[i]'s style and sample
    content_seeds[j]'s content; the headers show the source samples themselves."""
    means = means_for(net, psi_style, psi_content, means)
    styled = draw(net, style_seeds, psi_style, psi_content, means)
    contented = draw(net, content_seeds, psi_style, psi_content, means)
    rows, cols = len(style_seeds), len(content_seeds)
    pairs = Codes(np.repeat(styled.styles, cols, axis=0), np.tile(contented.contents, (rows, 1, 1)))
    cells = _cells(render(net, pairs), rows, cols)
    if not header:
        return Figure(framed_grid(cells), cells)
    return Figure(framed_grid(cells, render(net, styled), render(net, contented)), cells)


def mixing(net, domain, slots, source_seeds, target_seeds, psi_style=PSI_STYLE,
           psi_content=PSI_CONTENT_EDIT, means=None, header=True):
    """Returns a Figure whose cell (i, j) is source i with the `slots` of its `domain` codes taken
    from target j (official generate.py mode "mixing"); headers: sources left, targets on top."""
    check_domain(domain)
    slots = check_slots(net, slots)
    means = means_for(net, psi_style, psi_content, means)
    sources = draw(net, source_seeds, psi_style, psi_content, means)
    targets = draw(net, target_seeds, psi_style, psi_content, means)
    rows, cols = len(source_seeds), len(target_seeds)
    field = DOMAINS.index(domain)
    base = Codes(*(np.repeat(x, cols, axis=0) for x in sources))
    donor = np.tile(targets[field], (rows, 1, 1))
    mixed = base._replace(**{f"{domain}s": replace_slots(base[field], donor, slots)})
    cells = _cells(render(net, mixed), rows, cols)
    if not header:
        return Figure(framed_grid(cells), cells)
    return Figure(framed_grid(cells, render(net, sources), render(net, targets)), cells)


def interpolation(net, domain, slots, start_seeds, end_seeds, steps=7, psi_style=PSI_STYLE,
                  psi_content=PSI_CONTENT_EDIT, means=None):
    """Returns a Figure whose row i moves the `slots` of sample start_seeds[i]'s `domain` codes
    linearly to end_seeds[i]'s over `steps` columns (t = 0 .. 1); everything else stays the start's."""
    check_domain(domain)
    slots = check_slots(net, slots)
    if len(start_seeds) != len(end_seeds):
        raise ValueError(f"{len(start_seeds)} start seeds but {len(end_seeds)} end seeds: "
                         "give one end per start")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends), got {steps}")
    means = means_for(net, psi_style, psi_content, means)
    starts = draw(net, start_seeds, psi_style, psi_content, means)
    ends = draw(net, end_seeds, psi_style, psi_content, means)
    field = DOMAINS.index(domain)
    ts = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    moved = np.stack([lerp_slots(starts[field], ends[field], t, slots) for t in ts], axis=1)
    codes = Codes(*(np.repeat(x, steps, axis=0) for x in starts))
    codes = codes._replace(**{f"{domain}s": moved.reshape(codes[field].shape)})
    cells = _cells(render(net, codes), len(start_seeds), steps)
    return Figure(framed_grid(cells), cells)


def _cells(images, rows, cols):
    return images.reshape((rows, cols) + images.shape[1:])


def zoom(grid, factor):
    """Returns a uint8 grid enlarged `factor` times by pixel repetition (for small models)."""
    if factor < 1:
        raise ValueError(f"zoom must be a positive integer, got {factor}")
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1) if factor > 1 else grid

