"""Project images into a generator's latent space from the command line (official projector.py).

    python -m jaxstyle.editing.projection --workdir runs/default --target face.png --out out/proj
    python -m jaxstyle.editing.projection --model G.npz --target a.png --target b.png --out DIR \\
        [--steps 1000] [--space w|w+] [--noise|--no-noise] [--distance lpips|pixel|pixel+oracle] [--seed 303]

--workdir is a train.py run (StyleGAN2, or DiagonalGAN: style and content codes); --model a
fixture-format .npz (StyleGAN2-ADA or DiagonalGAN) or an official DiagonalGAN .model. Targets
are RGB PNGs of exactly the model's resolution; all of them project together in one compiled
call. DIR receives:

    proj.png          one row per target: target | reconstruction
    projected_w.npz   w (B, num_ws, w_dim) as the official file (DiagonalGAN: style and content),
                      the noise maps (noise/<layer>, (B, H, W)), and the distance at every step
    proj.gif          with --video: target | reconstruction over the steps

Bad input (no such model or target, a target of the wrong size or channels, a bad option)
prints one line naming the problem and exits with status 2, writing nothing.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np
from PIL import Image

from jaxstyle.editing import projection as P
from jaxstyle.images import save_png, to_uint8

VIDEO_FRAMES = 60


def open_model(path, size=None):
    """Returns a ProjectionModel for a train.py work directory or a checkpoint file.

    Raises FileNotFoundError or ValueError naming the problem and the fix.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from jaxstyle.training.restore import load_diagonalgan_run, load_run
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"{path} has no config.json: pass the --workdir of a train.py run")
        run = load_run(path)
        if run.G.has_content:
            return P.for_diagonalgan(load_diagonalgan_run(path))
        return P.for_stylegan2(run.G, run.state.g_ema)
    from jaxstyle.editing.checkpoints import open_generator
    from jaxstyle.models.diagonalgan import DiagonalGAN
    net = open_generator(model=path, size=size)
    return P.for_diagonalgan(net) if isinstance(net, DiagonalGAN) else P.for_stylegan2(net.G, net.g_vars)


def load_targets(paths, resolution):
    """Returns float32 targets (B, r, r, 3) in [-1, 1] from RGB PNG files of the model's size."""
    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"target {path} not found")
        try:
            with Image.open(path) as im:
                mode, image = im.mode, np.asarray(im)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read target {path} as an image ({e})") from None
        if mode != "RGB":
            raise ValueError(f"target {path} is a {mode} image; expected RGB (3 channels, 8 bits): "
                             "convert it, e.g. PIL Image.convert('RGB')")
        if image.shape[:2] != (resolution, resolution):
            raise ValueError(f"target {path} is {image.shape[1]}x{image.shape[0]}; this model projects "
                             f"{resolution}x{resolution} images: resize or crop it first")
        images.append(image)
    return np.stack(images).astype(np.float32) / 127.5 - 1.0


def side_by_side(targets, images):
    """Returns a uint8 grid: one row per image, target | reconstruction."""
    pairs = np.concatenate([to_uint8(targets), to_uint8(images)], axis=2)
    return pairs.reshape(-1, *pairs.shape[2:])


def video_frames(model, result, targets, n=VIDEO_FRAMES):
    """Returns uint8 frames (F, B*r, 2r, 3): the codes after evenly spaced steps, final noise."""
    steps = result.distances.shape[0]
    picks = np.unique(np.linspace(0, steps - 1, min(n, steps)).round().astype(int))
    frames = []
    for s in picks:
        codes = {k: v[s] for k, v in result.history.items()}
        frames.append(side_by_side(targets, np.asarray(P.render(model, codes, result.buffers))))
    return np.stack(frames)


def save_npz(path, result, model):
    """Writes the codes, noise maps and per-step distances to `path` atomically."""
    arrays = {k: np.asarray(v) for k, v in result.codes.items()}
    arrays["distances"] = np.asarray(result.distances)
    if result.buffers is not None:
        flat = jax.tree_util.tree_flatten_with_path(result.buffers)[0]
        for keypath, v in flat:
            names = [getattr(k, "key", str(k)) for k in keypath]
            if names[-1] == P.NOISE_LEAF:
                arrays["noise/" + "/".join(names[1:-2])] = np.asarray(v)
    fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates private files; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def build_parser():
    """Returns the argparse parser."""
    p = argparse.ArgumentParser(prog="python -m jaxstyle.editing.projection",
                                description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="train.py work directory")
    src.add_argument("--model", help="fixture .npz (StyleGAN2-ADA or DiagonalGAN) or DiagonalGAN .model")
    p.add_argument("--size", type=int, help="official DiagonalGAN checkpoint: the resolution it was trained to")
    p.add_argument("--target", action="append", required=True, metavar="IMG.png",
                   help="RGB image of the model's resolution; repeat for several")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for proj.png and projected_w.npz")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (official 1000)")
    p.add_argument("--space", choices=P.SPACES, default="w",
                   help="w: one code for every slot (official); w+: one per slot (Image2StyleGAN)")
    p.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True,
                   help="optimise the noise maps with the official regulariser (StyleGAN2 only)")
    p.add_argument("--distance", choices=P.DISTANCES, default="lpips")
    p.add_argument("--oracle-weight", type=float, default=1.0, help="weight of the oracle features (pixel+oracle)")
    p.add_argument("--seed", type=int, default=303, help="initial noise maps and w noise (official default 303)")
    p.add_argument("--video", action="store_true", help="also write proj.gif of the optimisation")
    return p


def check_args(args):
    """Raises ValueError for option values argparse cannot check."""
    if args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}")
    if args.oracle_weight < 0:
        raise ValueError(f"--oracle-weight must be non-negative, got {args.oracle_weight}")
    if args.seed < 0:
        raise ValueError(f"--seed must be non-negative, got {args.seed}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file; pass a folder")
    if args.video:
        try:
            from jaxstyle.editing import video  # noqa: F401
        except ImportError:
            raise ValueError("--video needs jaxstyle.editing.video, which this install lacks") from None


def main(argv=None):
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return e.code
    try:
        check_args(args)
        model = open_model(args.workdir or args.model, args.size)
        targets = load_targets(args.target, model.resolution)
        dist = P.make_distance(args.distance, args.oracle_weight, model.resolution)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = P.ProjectionConfig(num_steps=args.steps, space=args.space, optimize_noise=args.noise)
    start = time.perf_counter()
    result = P.project(model, targets, config, key=jax.random.key(args.seed), dist=dist)
    final = np.asarray(result.final_distances)
    elapsed = time.perf_counter() - start
    os.makedirs(args.out, exist_ok=True)
    save_png(side_by_side(targets, np.asarray(result.images)), os.path.join(args.out, "proj.png"))
    save_npz(os.path.join(args.out, "projected_w.npz"), result, model)
    written = ["proj.png", "projected_w.npz"]
    if args.video:
        from jaxstyle.editing import video
        video.write_gif(video_frames(model, result, targets), os.path.join(args.out, "proj.gif"), fps=10)
        written.append("proj.gif")
    mse = np.mean((np.asarray(result.images) - targets) ** 2, axis=(1, 2, 3))
    print(f"wrote {', '.join(written)} to {args.out}: {len(targets)} image(s), {args.steps} steps in "
          f"{elapsed:.1f} s ({elapsed / len(targets):.1f} s per image, compile included); final "
          f"{args.distance} {np.mean(final):.4f}, pixel MSE {np.mean(mse):.4f} (mean over images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
