"""Subspace traversals of a SEGAN generator: one coordinate of one layer's subspace swept.

    python -m jaxstyle.editing.traversal --workdir runs/segan --out traversal.png \\
        [--layer 2 | b8/conv0 ...] [--dims 0 5 ...] [--top 3] [--range -3,3] [--steps 7]

EigenGAN's traversal figure (LynnHo/EigenGAN-Tensorflow train.py) sweeps one coordinate z_ij
of one layer while the others stay put, with the dims of a layer sorted by |L|. In SEGAN the
coordinates of a layer's subspace are the w it reads (`jaxstyle.nn.subspace`), so here row
(layer, k) shifts coordinate k of that layer's subspace by t * sigma_k, sigma_k the standard
deviation of w_k over 1,000 samples of the mapping, for t evenly over the range (the middle
column t = 0 is the sample itself). The other layers, and in mode 1 this layer's modulation,
keep the sample's w. Without --dims each layer shows its --top dims, ranked by how far a step
of one sigma moves the layer: sigma_k |d out / d w_k| (|L_k| ||U_k|| in mode 1, |L_k sum U_k|
in mode 2, |L_k| in mode 3). On toyfaces, --oracle prints the ground-truth factors each row moves
most (the factor oracle's predictions at the two ends, averaged over 16 samples).

Bad input (no run, a run without subspaces, unknown layer, dim out of range, bad range)
prints one line naming the problem and exits with status 2, writing nothing.
"""

import argparse
import functools
import os
import sys
import time
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxstyle.editing.cli import join_list_values
from jaxstyle.images import save_png, to_uint8
from jaxstyle.nn.subspace import EDITS, direction_norms, edits_tree, subspace_params

CHUNK = 16        # images per generator call; batches are padded so one compile serves all
STD_SAMPLES = 1000
PSI = 0.7


class SubspaceModel(NamedTuple):
    """A SEGAN generator ready for traversals."""

    G: Any                 # jaxstyle.models.Generator with subspace_mode 1, 2 or 3
    g_vars: Any            # its (EMA) variables
    w_avg: Any             # (w_dim,) tracked mean of w
    layers: dict           # {'b8/conv0': {U, L, mu}, ...} coarse to fine

    @property
    def mode(self):
        return self.G.subspace_mode


class Traversal(NamedTuple):
    """A traversal figure and what is in it."""

    grid: np.ndarray       # uint8: a label column, a header row of t, then rows x steps images
    cells: np.ndarray      # float32 (rows, steps, r, r, 3) in about [-1, 1]
    rows: list             # [(layer, dim, strength)] of each row
    ts: np.ndarray         # (steps,) shifts in units of sigma


def subspace_model(G, g_vars, w_avg):
    """Returns a SubspaceModel; raises ValueError when G has no SEGAN subspaces."""
    if not getattr(G, "subspace_mode", 0):
        raise ValueError("this generator has no SEGAN subspaces (model.subspace_mode 0): train one with "
                         "configs/segan.py, e.g. python train.py --config configs/segan.py --workdir runs/segan")
    return SubspaceModel(G, g_vars, w_avg, subspace_params(g_vars["params"]["synthesis"]))


def open_run(workdir):
    """Returns the SubspaceModel of the G_ema in a train.py work directory.

    Raises FileNotFoundError or ValueError with a message naming the problem and the fix.
    """
    from jaxstyle.training.restore import load_run
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"work directory {workdir} not found: pass the --workdir of a train.py run "
                                "of configs/segan.py")
    run = load_run(workdir)
    return subspace_model(run.G, run.state.g_ema, run.state.w_avg)


def check_layers(model, layers):
    """Returns layer names for `layers` (indices into model.layers or names); raises ValueError
    listing the model's subspace layers for one that is neither."""
    names = list(model.layers)
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    out = []
    for layer in layers:
        text = str(layer)
        if text.lstrip("-").isdigit():
            i = int(text)
            if not 0 <= i < len(names):
                raise ValueError(f"layer {i} out of range: this model's subspace layers are {listing}")
            out.append(names[i])
        elif text in names:
            out.append(text)
        else:
            raise ValueError(f"unknown subspace layer {text!r}: this model's layers are {listing}")
    return out


def check_dims(model, dims):
    """Returns dims as ints; raises ValueError for one outside 0..D-1."""
    d = model.G.w_dim
    bad = [k for k in dims if not 0 <= int(k) < d]
    if bad:
        raise ValueError(f"dim(s) {bad} out of range: the subspaces have {d} dims (0..{d - 1}), one per w coordinate")
    return [int(k) for k in dims]


def coordinate_std(model, n=STD_SAMPLES, seed=0):
    """Returns sigma (w_dim,): the standard deviation of each w coordinate over n mapped latents."""
    z = jax.random.normal(jax.random.key(seed), (n, model.G.z_dim))
    ws = model.G.apply(model.g_vars, z, method=model.G.map)
    return np.asarray(jnp.std(ws[:, 0], axis=0))


def ranked_dims(model, layer, sigma):
    """Returns (dims, strengths) of one layer, strongest first: strength_k = sigma_k |d out / d w_k|."""
    strength = np.asarray(direction_norms(model.mode, model.layers[layer])) * sigma
    order = np.argsort(-strength, kind="stable")
    return order, strength[order]


@functools.lru_cache(maxsize=8)
def _renderer(G):
    @jax.jit
    def render(g_vars, ws, shifts):
        edits = {EDITS: edits_tree(shifts)}
        return nn.apply(lambda m: m.synthesize(ws, "const"), G)({**g_vars, **edits})
    return render


def render_shifted(model, w, layer_shifts):
    """Returns float32 images (N, r, r, 3) of w (N, w_dim) with per-image shifts {layer: (N, w_dim)}."""
    n, d = w.shape
    render = _renderer(model.G)
    out = []
    for i in range(0, n, CHUNK):
        idx = np.minimum(np.arange(i, i + CHUNK), n - 1)  # pad by repeating the last row
        ws = np.repeat(w[idx][:, None], model.G.num_ws, axis=1)
        shifts = {name: np.asarray(layer_shifts.get(name, np.zeros((n, d), np.float32)))[idx]
                  for name in model.layers}  # every layer present: one compile for all rows
        out.append(np.asarray(render(model.g_vars, ws, shifts)))
    return np.concatenate(out)[:n]


def sample_w(model, seed, psi=PSI):
    """Returns w (w_dim,) of the sample named by seed, truncated toward w_avg by psi."""
    z = jax.random.normal(jax.random.key(int(seed)), (1, model.G.z_dim))
    w = np.asarray(model.G.apply(model.g_vars, z, method=model.G.map))[0, 0]
    return np.asarray(model.w_avg) + np.float32(psi) * (w - np.asarray(model.w_avg)) if psi != 1 else w


def traverse(model, layers=None, dims=None, top=3, t_range=(-3.0, 3.0), steps=7, seed=0, psi=PSI):
    """Returns a Traversal: row (layer, k) shifts coordinate k of that layer by t sigma_k over
    `steps` values of t in t_range. layers default to all; dims default to each layer's `top`."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends of the range), got {steps}")
    if top < 1:
        raise ValueError(f"top must be positive, got {top}")
    lo, hi = t_range
    if not lo < hi:
        raise ValueError(f"the range needs low < high, got {lo},{hi}")
    layers = check_layers(model, list(model.layers) if layers is None else layers)
    dims = None if dims is None else check_dims(model, dims)
    sigma = coordinate_std(model)
    rows = []
    for layer in layers:
        order, strength = ranked_dims(model, layer, sigma)
        by_dim = dict(zip(order.tolist(), strength.tolist()))
        chosen = dims if dims is not None else order[:top].tolist()
        rows += [(layer, k, by_dim[k]) for k in chosen]
    ts = np.linspace(lo, hi, steps, dtype=np.float32)
    n, d = len(rows) * steps, model.G.w_dim
    shifts = {}
    for r, (layer, k, _) in enumerate(rows):
        shift = shifts.setdefault(layer, np.zeros((n, d), np.float32))
        shift[r * steps:(r + 1) * steps, k] = ts * sigma[k]
    w = np.repeat(sample_w(model, seed, psi)[None], n, axis=0)
    cells = render_shifted(model, w, shifts).reshape((len(rows), steps) + (model.G.img_resolution,) * 2 + (-1,))
    labels = [f"{layer} k{k}" for layer, k, _ in rows]
    heads = [f"{t:+.3g}" for t in ts]
    return Traversal(labelled_grid(cells, labels, heads), cells, rows, ts)


def factor_effects(model, rows, t_range=(-3.0, 3.0), seeds=range(16), psi=PSI, oracle=None):
    """Returns (F factor names, (len(rows), F) mean |change| of each oracle-predicted toyfaces factor)
    between the two ends of each row's traversal, over the samples named by seeds."""
    from jaxstyle.metrics.oracle import load_oracle
    oracle = oracle or load_oracle(model.G.img_resolution)
    sigma = coordinate_std(model)
    seeds = list(seeds)
    w = np.stack([sample_w(model, s, psi) for s in seeds])
    n, d = 2 * len(seeds), model.G.w_dim
    effects = []
    for layer, k, _ in rows:
        shift = np.zeros((n, d), np.float32)
        shift[:, k] = np.repeat(np.float32(t_range), len(seeds)) * sigma[k]  # lo for every seed, then hi
        images = render_shifted(model, np.concatenate([w, w]), {layer: shift})
        factors = np.asarray(oracle.predict(images))
        effects.append(np.abs(factors[len(seeds):] - factors[:len(seeds)]).mean(axis=0))
    return list(oracle.factor_names), np.stack(effects)


def labelled_grid(cells, row_labels, col_labels, zoom=1):
    """Returns a uint8 grid of cells (R, C, r, r, 3), zoomed, with a text column and a text row."""
    tiles = to_uint8(cells)
    tiles = np.repeat(np.repeat(tiles, zoom, axis=2), zoom, axis=3)
    rows, cols, h, w, ch = tiles.shape
    body = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, ch)
    font = ImageFont.load_default()
    label_w = 6 + max(int(font.getlength(t)) for t in row_labels)
    head_h = 14
    canvas = Image.new("RGB", (label_w + cols * w, head_h + rows * h), "white")
    canvas.paste(Image.fromarray(body), (label_w, head_h))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(row_labels):
        draw.text((3, head_h + i * h + max(0, h // 2 - 6)), text, fill="black", font=font)
    for j, text in enumerate(col_labels):
        draw.text((label_w + j * w + max(0, w // 2 - int(font.getlength(text)) // 2), 1), text,
                  fill="black", font=font)
    return np.asarray(canvas)


def parse_range(text):
    """Returns (low, high) from 'LOW,HIGH'; raises ValueError naming the expected form."""
    parts = str(text).split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--range must be LOW,HIGH (two numbers, e.g. -3,3), got {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"--range needs finite LOW < HIGH, got {text!r}")
    return lo, hi


def build_parser():
    """Returns the command line's argparse parser."""
    p = argparse.ArgumentParser(prog="python -m jaxstyle.editing.traversal", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="train.py work directory of a configs/segan.py run")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--layer", nargs="+", help="subspace layers, by index or name (e.g. 2 or b8/conv0); default all")
    p.add_argument("--dims", type=int, nargs="+", help="dims (w coordinates) for every chosen layer; default each "
                                                     "layer's --top strongest")
    p.add_argument("--top", type=int, default=3, help="dims per layer when --dims is not given")
    p.add_argument("--range", default="-3,3", help="LOW,HIGH shift in standard deviations of the coordinate")
    p.add_argument("--steps", type=int, default=7, help="columns, evenly over the range")
    p.add_argument("--seed", type=int, default=0, help="the sample traversed")
    p.add_argument("--psi", type=float, default=PSI, help="truncation of the sample toward w_avg (1 = none)")
    p.add_argument("--zoom", type=int, default=1, help="enlarge the images by pixel repetition")
    p.add_argument("--oracle", action="store_true", help="toyfaces: print the factors each row moves most "
                                                         "(mean |change| over 16 samples, end to end)")
    return p


def main(argv=None):
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(join_list_values(sys.argv[1:] if argv is None else argv, ("--range",)))
    except SystemExit as e:  # argparse has printed the usage problem (or --help)
        return e.code
    start = time.time()
    try:
        t_range = parse_range(args.range)
        if args.steps < 2:
            raise ValueError(f"--steps must be at least 2 (both ends of the range), got {args.steps}")
        if args.top < 1 or args.zoom < 1:
            raise ValueError(f"--top and --zoom must be positive integers, got {args.top} and {args.zoom}")
        model = open_run(args.workdir)
        fig = traverse(model, args.layer, args.dims, args.top, t_range, args.steps, args.seed, args.psi)
        grid = fig.grid if args.zoom == 1 else labelled_grid(
            fig.cells, [f"{la} k{k}" for la, k, _ in fig.rows], [f"{t:+.3g}" for t in fig.ts], args.zoom)
        effects = factor_effects(model, fig.rows, t_range, psi=args.psi) if args.oracle else None
        save_png(grid, args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for i, (layer, k, s) in enumerate(fig.rows):
        moves = ""
        if effects is not None:
            names, change = effects
            top = np.argsort(-change[i])[:2]
            moves = "  moves " + ", ".join(f"{names[j]} {change[i, j]:.3f}" for j in top)
        print(f"{layer:>12} k{k:<3d} strength {s:.4g}{moves}")
    print(f"wrote {args.out}: {len(fig.rows)} rows x {len(fig.ts)} steps, {grid.shape[1]}x{grid.shape[0]} px "
          f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
