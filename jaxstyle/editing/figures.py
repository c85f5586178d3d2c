"""The figures of the official StyleGAN tools, by seeds: style mixing, truncation, interpolation.

    python -m jaxstyle.editing.figures mixing --workdir RUN --rows 0-4 --cols 5-8 --out mix.png
    python -m jaxstyle.editing.figures truncation --model G.npz --seeds 0-3 --out trunc.png
    python -m jaxstyle.editing.figures interpolation --workdir RUN --seeds 0-3 --out interp.gif

- mixing (StyleGAN2-ADA style_mixing.py): cell (i, j) is row seed i's W+ codes with the --styles
  slots taken from column seed j; the column images run along the top, the row images down the
  left, the corner is black. One --styles for every row (official, default 0-6) or one per row
  (StyleGAN1 figure 3). Named ranges are those of jaxstyle.editing.sefa, by the resolution of the
  layers reading a slot: coarse 4-8 px, middle 16-32 px, fine 64 px and up plus the output
  resolution. At 1024 px that is slots 0-2, 3-6, 7-17 (a StyleGAN2 ToRGB shares its slot with
  the next block's first conv; StyleGAN1's AdaIN layout gives the paper's 0-3, 4-7, 8-17).
- truncation (StyleGAN1 figure 8): rows = seeds, columns = psi, w_avg + psi (w - w_avg) on the
  slots below --cutoff (the official truncation_cutoff; all slots by default).
- interpolation (gen_video.py): keyframes = seeds, --steps frames from each to the next, back to
  the first (a loop) unless --no-loop; z slerp or w lerp. DiagonalGAN models can move the style
  codes only, the content codes only, or both (--domain).

A seed names its latent as the official tools do, z = np.random.RandomState(seed).randn(z_dim),
so an imported official checkpoint shows the official image for each seed. DiagonalGAN latents
follow jaxstyle.editing.content_style (one draw per seed and domain).
"""

import argparse
import functools
import os
import re
import sys
import time

import jax
import numpy as np

from jaxstyle.editing import content_style, sefa, video
from jaxstyle.editing.checkpoints import open_generator
from jaxstyle.editing.cli import join_list_values
from jaxstyle.editing.content_style import Codes, Figure, chunked, zoom
from jaxstyle.editing.video import keyframe_path, lerp, slerp, transitions  # noqa: F401 (public here too)
from jaxstyle.images import save_png, to_uint8
from jaxstyle.models.generator import Generator
from jaxstyle.models.mapping import truncate
from jaxstyle.nn.noise import NOISE_MODES

OFFICIAL_STYLES = "0-6"                        # style_mixing.py --styles default
OFFICIAL_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)  # StyleGAN1 figure 8
SPACES = ("z", "w")
DIAGONAL_DOMAINS = ("both",) + content_style.DOMAINS


# ---------------------------------------------------------------------------------------------
# Seeds and slot ranges as the official command lines write them.

def parse_range(text, what="value"):
    """Returns the ints of "a,b,c-d" (official num_range / parse_range); raises ValueError."""
    out = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"bad {what} {part.strip()!r} in {text!r}: write numbers and ranges "
                             "like 0,3,5-8")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"bad {what} range {part.strip()!r}: the end is below the start")
        out.extend(range(lo, hi + 1))
    return out


def parse_seeds(text):
    """Returns the seeds of "a,b,c-d" as a list; raises ValueError outside [0, 2**32)."""
    seeds = parse_range(text, "seed")
    bad = [s for s in seeds if s >= 2 ** 32]
    if bad:
        raise ValueError(f"seed {bad[0]} out of range: seeds are 0 .. 2**32 - 1 (NumPy RandomState)")
    return seeds


def parse_slots(spec, num_ws, resolutions=None):
    """Returns the sorted W+ slots of a spec such as "0-6", "1,3" or "coarse,middle".

    resolutions: {slot: px} (`slot_resolutions(net)`), needed for the names coarse/middle/fine."""
    slots = set()
    for part in str(spec).split(","):
        name = part.strip().lower()
        if name == "all":
            slots.update(range(num_ws))
        elif name in sefa.RANGES:
            if resolutions is None:
                raise ValueError(f"the range name {name!r} needs the model's slot resolutions")
            slots.update(sefa.named_slots(name, resolutions))
        else:
            slots.update(parse_range(part, "slot"))
    return check_slots(slots, num_ws)


def slot_resolutions(net):
    """Returns {slot: resolution of the layers reading it} for a StyleGAN2 handle's synthesis."""
    return sefa.slot_resolutions(sefa.style_affines(net.g_vars))


def check_slots(slots, num_ws):
    """Returns the slots as a sorted tuple; raises ValueError naming any outside 0..num_ws-1."""
    slots = tuple(sorted({int(s) for s in slots}))
    bad = [s for s in slots if not 0 <= s < num_ws]
    if bad or not slots:
        raise ValueError(f"slot(s) {bad or 'none'} out of range: this model has {num_ws} W+ slots, "
                         f"0..{num_ws - 1} coarse to fine; pass --styles within them")
    return slots


def row_styles(styles, rows, num_ws):
    """Returns one slot tuple per row: `styles` for all rows, or a list with one entry per row."""
    styles = list(styles)
    if styles and all(isinstance(s, (int, np.integer)) for s in styles):
        return [check_slots(styles, num_ws)] * rows
    if len(styles) != rows:
        raise ValueError(f"{len(styles)} style ranges for {rows} rows: give one range for all rows "
                         "or one per row")
    return [check_slots(s, num_ws) for s in styles]


def seed_latents(seeds, z_dim):
    """Returns (len(seeds), z_dim) float32 latents, np.random.RandomState(seed).randn(z_dim) each."""
    if not len(seeds):
        raise ValueError("no seeds given")
    return np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# W+ codes and images of a StyleGAN2 handle (jaxstyle.interop.StyleGAN2).

@functools.partial(jax.jit, static_argnames=("G",))
def _map(G, variables, z):
    return G.apply(variables, z, None, method=Generator.map)


@functools.partial(jax.jit, static_argnames=("G", "noise_mode"))
def _synthesize(G, variables, ws, noise_mode, key):
    if noise_mode != "random":
        return G.apply(variables, ws, noise_mode, method=Generator.synthesize)

    # One noise draw for every image, so a cell or frame depends on its codes alone.
    def one(w):
        return G.apply(variables, w[None], "random", rngs={"noise": key}, method=Generator.synthesize)[0]
    return jax.vmap(one)(ws)


def require_stylegan2(net):
    """Returns net; raises ValueError unless it is an unconditional StyleGAN2 handle."""
    if hasattr(net, "content_mapping"):
        raise ValueError("this is a DiagonalGAN model (style and content codes): use the interpolation "
                         "figure with --domain, or python -m jaxstyle.editing.diagonal_cli for mixing grids")
    if not all(hasattr(net, a) for a in ("G", "g_vars", "w_avg")):
        raise ValueError(f"{type(net).__name__} is not a StyleGAN2 handle "
                         "(jaxstyle.interop.load_stylegan2_ada)")
    if net.G.c_dim:
        raise ValueError(f"this generator is conditional (c_dim={net.G.c_dim}); these figures need an "
                         "unconditional one")
    return net


def truncated(ws, w_avg, psi=1.0, cutoff=None):
    """Returns ws (N, num_ws, w_dim) moved toward w_avg by psi on slots below cutoff (all if None)."""
    if cutoff is not None and not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"truncation cutoff {cutoff} out of range: 0..{ws.shape[1]} "
                         "(slots below it are truncated)")
    return np.asarray(truncate(np.asarray(ws, np.float32), np.asarray(w_avg, np.float32), float(psi), cutoff))


def map_latents(net, z, psi=1.0, cutoff=None):
    """Returns the truncated W+ codes (..., num_ws, w_dim) of latents z (..., z_dim)."""
    z = np.asarray(z, np.float32)
    ws = chunked(lambda x, _: _map(net.G, net.g_vars, x), [z.reshape(-1, z.shape[-1])])
    return truncated(ws, net.w_avg, psi, cutoff).reshape(z.shape[:-1] + ws.shape[1:])


def mapped(net, seeds, psi=1.0, cutoff=None):
    """Returns the W+ codes (N, num_ws, w_dim) of the seeds, truncated as official (all slots)."""
    return map_latents(require_stylegan2(net), seed_latents(seeds, net.G.z_dim), psi, cutoff)


def render(net, ws, noise_mode="const", noise_seed=0):
    """Returns float32 images (N, r, r, 3) of W+ codes (N, num_ws, w_dim)."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
    key = jax.random.key(noise_seed)
    return chunked(lambda w, _: _synthesize(net.G, net.g_vars, w, noise_mode, key), [ws])


def framed(cells, row_heads=None, col_heads=None):
    """Returns the uint8 grid of cells (R, C, r, r, 3), column images on top and row images on
    the left when given, the corner black (official style_mixing.py)."""
    tiles = to_uint8(cells)
    if col_heads is not None:
        tiles = np.concatenate([to_uint8(col_heads)[None], tiles])
    if row_heads is not None:
        left = to_uint8(row_heads)
        if col_heads is not None:
            left = np.concatenate([np.zeros_like(left[:1]), left])
        tiles = np.concatenate([left[:, None], tiles], axis=1)
    r, c, h, w, ch = tiles.shape
    return tiles.transpose(0, 2, 1, 3, 4).reshape(r * h, c * w, ch)


def mixing_grid(net, row_seeds, col_seeds, styles=tuple(range(7)), psi=1.0, noise_mode="const"):
    """Returns a Figure whose cell (i, j) is row seed i with the `styles` slots of column seed j.

    styles: slots for every row, or one slot list per row. Truncation (psi) applies to every
    slot before mixing, as official; the grid's headers are the unmixed seeds.
    """
    require_stylegan2(net)
    per_row = row_styles(styles, len(row_seeds), net.num_ws)
    rows, cols = mapped(net, row_seeds, psi), mapped(net, col_seeds, psi)
    mixed = np.repeat(rows, len(cols), axis=0).reshape((len(rows), len(cols)) + rows.shape[1:])
    for i, slots in enumerate(per_row):
        mixed[i][:, list(slots)] = cols[:, list(slots)]
    images = render(net, np.concatenate([mixed.reshape((-1,) + rows.shape[1:]), rows, cols]), noise_mode)
    n = mixed.shape[0] * mixed.shape[1]
    cells = images[:n].reshape(mixed.shape[:2] + images.shape[1:])
    return Figure(framed(cells, images[n:n + len(rows)], images[n + len(rows):]), cells)


def truncation_sweep(net, seeds, psis=OFFICIAL_PSIS, cutoff=None, noise_mode="const"):
    """Returns a Figure with one row per seed and one column per psi (toward w_avg, slots < cutoff)."""
    ws = mapped(net, seeds)
    if not len(psis):
        raise ValueError("no psi values given")
    swept = np.stack([truncated(ws, net.w_avg, psi, cutoff) for psi in psis], axis=1)  # (N, P, S, D)
    images = render(net, swept.reshape((-1,) + ws.shape[1:]), noise_mode)
    cells = images.reshape(swept.shape[:2] + images.shape[1:])
    return Figure(framed(cells), cells)


# ---------------------------------------------------------------------------------------------
# Interpolation through keyframes.

def _path(z_keys, codes_of, steps, loop, space):
    """Returns the codes of the frames: slerp the latents then map (z), or map then lerp (w)."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}: use 'z' (slerp latents) or 'w' (lerp mapped codes)")
    if space == "z":
        return codes_of(keyframe_path(z_keys, steps, loop, "slerp"))
    return keyframe_path(codes_of(z_keys), steps, loop, "lerp")


def _keys(latents, cells):
    """Returns latents (cells * K, dim), cell-major as gen_video.py, as (K, cells, dim)."""
    if len(latents) % cells:
        raise ValueError(f"{len(latents)} seeds do not fill {cells} cells: give keyframes x cells seeds")
    return latents.reshape(cells, -1, latents.shape[-1]).transpose(1, 0, 2)


def interpolation_ws(net, seeds, steps, space="w", loop=True, psi=1.0, cutoff=None, cells=1):
    """Returns W+ codes (F, cells, num_ws, w_dim) through the keyframes seeds (cell-major:
    cell c's keyframes are seeds[c*K:(c+1)*K])."""
    keys = _keys(seed_latents(seeds, require_stylegan2(net).G.z_dim), cells)
    return _path(keys, lambda z: map_latents(net, z, psi, cutoff), steps, loop, space)


def content_style_interpolation(net, seeds, steps, domain="both", space="w", loop=True,
                                psi_style=content_style.PSI_STYLE, psi_content=content_style.PSI_CONTENT_EDIT,
                                means=None, cells=1):
    """Returns Codes (each (F, cells, num_slots, dim)) of a DiagonalGAN interpolation: the codes of
    `domain` ("style", "content" or "both") move through the keyframes, the others stay keyframe 0's."""
    content_style.require_content(net)
    if domain not in DIAGONAL_DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: use both, style or content")
    means = content_style.means_for(net, psi_style, psi_content, means)
    out = []
    for field, mapping, psi, mean in (("style", net.style_mapping, psi_style, means[0]),
                                      ("content", net.content_mapping, psi_content, means[1])):
        def codes_of(z, mapping=mapping, psi=psi, mean=mean):
            flat = chunked(lambda x, _: mapping(x), [z.reshape(-1, z.shape[-1])])
            flat = content_style.per_slot(content_style.truncate(flat, mean, psi), net.num_slots)
            return flat.reshape(z.shape[:-1] + flat.shape[1:])
        keys = _keys(content_style.latents(seeds, net.G.z_dim, field), cells)
        if domain in ("both", field):
            out.append(_path(keys, codes_of, steps, loop, space))
        else:
            frames = len(transitions(len(keys), steps, loop)[0])
            out.append(np.repeat(codes_of(keys[:1]), frames, axis=0))
    return Codes(*out)


def tile(images, grid):
    """Returns uint8 frames (F, gh*r, gw*r, 3) of images (F, cells, r, r, 3), cells row by row."""
    gw, gh = grid
    f, cells, r = images.shape[:3]
    if cells != gw * gh:
        raise ValueError(f"{cells} cells do not make a {gw}x{gh} grid")
    frames = to_uint8(images).reshape(f, gh, gw, r, r, -1).transpose(0, 1, 3, 2, 4, 5)
    return frames.reshape(f, gh * r, gw * r, -1)


def interpolation_video(net, seeds, steps=24, space="w", loop=True, grid=(1, 1), psi=None,
                        cutoff=None, noise_mode="const", domain="both", psi_content=None):
    """Returns uint8 frames (F, H, W, 3) of the interpolation through `seeds`, a grid of cells
    (grid = (width, height)) each with len(seeds) / cells keyframes.

    psi defaults to 1 (StyleGAN2, as gen_video.py) or 0.7 styles / 0.8 contents (DiagonalGAN,
    as its generate.py); domain and psi_content are for DiagonalGAN models only.
    """
    cells = grid[0] * grid[1]
    if hasattr(net, "content_mapping"):
        if cutoff is not None:
            raise ValueError("--cutoff is for StyleGAN2 W+ codes; DiagonalGAN truncates every slot")
        psi_style = content_style.PSI_STYLE if psi is None else psi
        psi_content = content_style.PSI_CONTENT_EDIT if psi_content is None else psi_content
        codes = content_style_interpolation(net, seeds, steps, domain, space, loop, psi_style, psi_content,
                                            cells=cells)
        shape = codes.styles.shape
        flat = Codes(*(c.reshape((-1,) + shape[2:]) for c in codes))
        images = content_style.render(net, flat)
    else:
        if domain != "both" or psi_content is not None:
            raise ValueError("--domain and --trunc-content are for DiagonalGAN models; "
                             "this one has W+ codes only")
        ws = interpolation_ws(net, seeds, steps, space, loop, 1.0 if psi is None else psi, cutoff, cells)
        shape = ws.shape
        images = render(net, ws.reshape((-1,) + shape[2:]), noise_mode)
    return tile(images.reshape(shape[:2] + images.shape[1:]), grid)


# ---------------------------------------------------------------------------------------------
# Command line.

def parse_floats(text, what):
    """Returns the floats of "a,b,c"; raises ValueError naming a bad one."""
    try:
        return [float(p) for p in str(text).split(",")]
    except ValueError:
        raise ValueError(f"bad {what} {text!r}: write numbers separated by commas, e.g. 1,0.7,0.5") from None


def parse_grid(text):
    """Returns (width, height) of "WxH" or "W,H" (gen_video.py --grid)."""
    m = re.fullmatch(r"\s*(\d+)\s*[x,]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"bad grid {text!r}: write width x height, e.g. 2x2")
    return int(m.group(1)), int(m.group(2))


def build_parser():
    """Returns the argparse parser: one subcommand per figure, shared options on each."""
    common = argparse.ArgumentParser(add_help=False)
    source = common.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="train.py work directory (its newest checkpoint's G_ema)")
    source.add_argument("--model", help="checkpoint file: StyleGAN2 (what jaxstyle.interop."
                                        "load_stylegan2_ada reads, e.g. a fixture .npz) or DiagonalGAN "
                                        "(.npz, official .model)")
    common.add_argument("--size", type=int,
                        help="official DiagonalGAN .model: the resolution it was trained to")
    common.add_argument("--out", required=True, help="file to write (.png; interpolation: .gif or .mp4)")
    common.add_argument("--trunc", type=float, help="truncation psi toward w_avg (default 1; DiagonalGAN "
                                                    "styles 0.7)")
    common.add_argument("--noise-mode", choices=NOISE_MODES, default="const",
                        help="random: one seeded noise draw shared by every image")
    common.add_argument("--zoom", type=int, default=1, help="enlarge by pixel repetition")
    p = argparse.ArgumentParser(prog="python -m jaxstyle.editing.figures", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="figure", required=True)
    s = sub.add_parser("mixing", parents=[common], help="style-mixing grid (style_mixing.py)")
    s.add_argument("--rows", required=True, help="row seeds, e.g. 85,100,75 or 0-4")
    s.add_argument("--cols", required=True, help="column seeds")
    s.add_argument("--styles", nargs="+", default=[OFFICIAL_STYLES],
                   help="W+ slots taken from the column seed: one range for all rows, or one per row; "
                        "numbers, ranges, all, coarse (4-8 px), middle (16-32 px), fine (64 px up and the output)")
    s = sub.add_parser("truncation", parents=[common], help="truncation sweep: seeds x psi")
    s.add_argument("--seeds", default="0-3", help="row seeds")
    s.add_argument("--psis", default=",".join(f"{x:g}" for x in OFFICIAL_PSIS),
                   help="column psi values, e.g. -1,0,1")
    s.add_argument("--cutoff", type=int, help="truncate only slots below this (official truncation_cutoff)")
    s = sub.add_parser("interpolation", parents=[common], help="looping interpolation video through seeds")
    s.add_argument("--seeds", required=True, help="keyframe seeds (cell-major with --grid)")
    s.add_argument("--space", choices=SPACES, default="w", help="z: slerp latents; w: lerp mapped codes")
    s.add_argument("--steps", type=int, default=24, help="frames from one keyframe to the next")
    s.add_argument("--fps", type=float, default=24.0)
    s.add_argument("--no-loop", action="store_true", help="stop on the last keyframe instead of returning")
    s.add_argument("--grid", default="1x1", help="cells, width x height (len(seeds) = keyframes x cells)")
    s.add_argument("--cutoff", type=int, help="truncate only slots below this")
    s.add_argument("--domain", choices=DIAGONAL_DOMAINS, default="both",
                   help="DiagonalGAN: which codes move (the others stay the first keyframe's)")
    s.add_argument("--trunc-content", type=float, help="DiagonalGAN: content psi (default 0.8)")
    return p


def check_args(args):
    """Returns args with seeds, psis and the grid parsed; raises ValueError before any model loads."""
    suffix = os.path.splitext(args.out)[1].lower()
    if args.figure == "interpolation":
        video.check_video_path(args.out)
        args.seeds, args.grid = parse_seeds(args.seeds), parse_grid(args.grid)
        if args.fps <= 0 or (suffix == ".gif" and args.fps > video.MAX_GIF_FPS):
            raise ValueError(f"--fps must be in (0, {video.MAX_GIF_FPS}] for a GIF, got {args.fps:g}")
        cells = args.grid[0] * args.grid[1]
        if len(args.seeds) % cells:
            raise ValueError(f"{len(args.seeds)} seeds do not fill a {args.grid[0]}x{args.grid[1]} grid: "
                             f"give keyframes x {cells} seeds")
        transitions(len(args.seeds) // cells, args.steps)
    elif suffix != ".png":
        raise ValueError(f"{args.out}: the {args.figure} figure is written as .png; change the file name")
    elif args.figure == "mixing":
        args.rows, args.cols = parse_seeds(args.rows), parse_seeds(args.cols)
    else:
        args.seeds, args.psis = parse_seeds(args.seeds), parse_floats(args.psis, "psi list")
    if args.zoom < 1:
        raise ValueError(f"--zoom must be a positive integer, got {args.zoom}")
    return args


def make(net, args):
    """Returns the uint8 grid (H, W, 3) or frames (F, H, W, 3) that args ask for from net."""
    psi = 1.0 if args.trunc is None else args.trunc
    if args.figure == "mixing":
        num_ws = require_stylegan2(net).num_ws
        styles = [parse_slots(s, num_ws, slot_resolutions(net)) for s in args.styles]
        styles = styles[0] if len(styles) == 1 else styles
        return mixing_grid(net, args.rows, args.cols, styles, psi, args.noise_mode).grid
    if args.figure == "truncation":
        return truncation_sweep(net, args.seeds, args.psis, args.cutoff, args.noise_mode).grid
    return interpolation_video(net, args.seeds, args.steps, args.space, not args.no_loop, args.grid,
                               args.trunc, args.cutoff, args.noise_mode, args.domain, args.trunc_content)


def main(argv=None):
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(join_list_values(sys.argv[1:] if argv is None else argv, ("--psis",)))
    except SystemExit as e:  # argparse has printed the usage problem (or --help)
        return e.code
    start = time.time()
    try:
        net = open_generator(check_args(args).workdir, args.model, args.size)
        out = make(net, args)
        if out.ndim == 4:
            out = np.stack([zoom(f, args.zoom) for f in out])
            video.write_video(out, args.out, args.fps)
        else:
            save_png(out := zoom(out, args.zoom), args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    frames = f"{len(out)} frames of " if out.ndim == 4 else ""
    print(f"wrote {args.out}: {args.figure}, {frames}{out.shape[-2]}x{out.shape[-3]} px "
          f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
