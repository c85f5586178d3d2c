"""DiagonalGAN content/style tools from the command line: each mode writes one PNG grid.

    python -m jaxstyle.editing.diagonal_cli MODE --model PATH --out FILE.png [options]

PATH is a DiagonalGAN checkpoint file (fixture-format .npz, or an official .model where the
importer reads it) or a train.py work directory. Modes:

    sample         random samples (rows of --cols)
    grid           rows = styles of --seeds, columns = contents of --targets
    mixing         rows = --seeds, columns = --targets: --layers slots of --domain from the target
    interpolation  row i: --layers slots of --domain from seed i to target i over --steps columns
    attention      rows = samples, columns = image and every DAT layer's attention map
    manipulate     --layer's map scaled by --scale in --region (moved by --shift): image, map,
                   edited map, edited image

Bad input (missing model, a model without content codes, unknown layer, slot out of range)
prints one line naming the problem and exits with status 2, writing nothing.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from jaxstyle.editing import attention, content_style
from jaxstyle.images import save_png

MODES = ("sample", "grid", "mixing", "interpolation", "attention", "manipulate")
# Official generate.py: styles at 0.7 always; contents at 1.0 for samples, 0.8 for edits.
PSI_CONTENT = {"sample": 1.0, "grid": 0.8, "mixing": 0.8, "interpolation": 0.8,
               "attention": 1.0, "manipulate": 1.0}


def open_model(path, size=None):
    """Returns the DiagonalGAN handle in `path` (a checkpoint file or a train.py work directory);
    `size` is the resolution an official checkpoint was trained to (official generate.py --size).

    Raises FileNotFoundError or ValueError with a message that names the problem and the fix.
    """
    from jaxstyle.interop import load_diagonalgan
    from jaxstyle.training.restore import load_diagonalgan_run
    path = os.fspath(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"{path} is a directory without config.json: --model takes a train.py "
                                    "work directory or a DiagonalGAN checkpoint file (.npz, .model)")
        return load_diagonalgan_run(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model {path} not found: --model takes a DiagonalGAN checkpoint file "
                                "(.npz, .model) or a train.py work directory")
    if path.endswith(".npz") and not _npz_has_content(path):
        raise ValueError(f"{path} has no content mapping network, so it is not a DiagonalGAN model "
                         "(a StyleGAN2 checkpoint?): pass a DiagonalGAN checkpoint, or sample "
                         "StyleGAN2 with python -m jaxstyle.sample")
    try:
        return load_diagonalgan(path, size=size)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as e:  # unpickling/zip errors of a file that is not a checkpoint at all
        raise ValueError(f"cannot read {path} as a DiagonalGAN checkpoint ({type(e).__name__}: {e}); "
                         "pass a fixture-format .npz, an official .model or a train.py work directory") from e


def _npz_has_content(path):
    # Read only the small meta_json entry; the importer reads the rest.
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta_json" not in data.files:
                return True  # not fixture format: let the importer say what is wrong
            return "code_dim" in json.loads(bytes(data["meta_json"]))
    except (OSError, ValueError):
        return True


def build_parser():
    """Returns the argparse parser: one subcommand per mode, shared options on each."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True,
                        help="DiagonalGAN .npz/.model file or train.py work directory")
    common.add_argument("--size", type=int, default=None,
                        help="resolution an official checkpoint was trained to (its file holds every block "
                             "up to 1024; default: the largest)")
    common.add_argument("--out", required=True, help="PNG file to write")
    common.add_argument("--seeds", type=int, nargs="+",
                        help="samples: rows (default 0 1 2 3); sample mode: every cell (default 0..7)")
    common.add_argument("--psi-style", type=float, default=content_style.PSI_STYLE,
                        help="style truncation toward the mean style code (1 = none)")
    common.add_argument("--psi-content", type=float, default=None,
                        help="content truncation toward the mean content code "
                             "(default 1.0 for sample/attention/manipulate, 0.8 for the others)")
    common.add_argument("--zoom", type=int, default=1, help="enlarge the grid by pixel repetition")
    targets = argparse.ArgumentParser(add_help=False)
    targets.add_argument("--targets", type=int, nargs="+", default=[4, 5, 6, 7],
                         help="second samples (columns; interpolation: one end per seed)")
    slots = argparse.ArgumentParser(add_help=False)
    slots.add_argument("--domain", choices=content_style.DOMAINS, default="content")
    slots.add_argument("--layers", type=int, nargs="+", default=[2, 3],
                       help="slots of that domain (AdaIN: block i at 4*2^i px reads 2i and 2i+1)")
    maps = argparse.ArgumentParser(add_help=False)
    maps.add_argument("--colormap", choices=attention.COLORMAPS, default="gray")

    p = argparse.ArgumentParser(prog="python -m jaxstyle.editing.diagonal_cli",
                                description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sample", parents=[common], help="random samples")
    s.add_argument("--cols", type=int, default=4)
    sub.add_parser("grid", parents=[common, targets], help="style rows x content columns")
    sub.add_parser("mixing", parents=[common, targets, slots], help="replace slots of one domain")
    s = sub.add_parser("interpolation", parents=[common, targets, slots], help="lerp slots of one domain")
    s.add_argument("--steps", type=int, default=7)
    sub.add_parser("attention", parents=[common, maps], help="every DAT layer's attention maps")
    s = sub.add_parser("manipulate", parents=[common, maps], help="edit one attention map")
    s.add_argument("--layer", required=True, help="DAT layer, e.g. b8/dat1 (see the attention mode)")
    s.add_argument("--region", type=float, nargs=4, default=[0.25, 0.25, 0.75, 0.75],
                   metavar=("Y0", "X0", "Y1", "X1"), help="rectangle in fractions of the map")
    s.add_argument("--scale", type=float, default=2.0, help="multiply d in the region by this")
    s.add_argument("--shift", type=float, nargs=2, metavar=("DY", "DX"),
                   help="write the (scaled) region's values this far away instead (fractions of the map)")
    return p


def run_mode(net, args):
    """Returns the uint8 grid of the mode in args for the model net."""
    seeds = args.seeds or (list(range(8)) if args.mode == "sample" else [0, 1, 2, 3])
    psi = {"psi_style": args.psi_style,
           "psi_content": PSI_CONTENT[args.mode] if args.psi_content is None else args.psi_content}
    if args.mode == "sample":
        return content_style.sample(net, seeds, args.cols, **psi).grid
    if args.mode == "grid":
        return content_style.content_style_grid(net, seeds, args.targets, **psi).grid
    if args.mode == "mixing":
        return content_style.mixing(net, args.domain, args.layers, seeds, args.targets, **psi).grid
    if args.mode == "interpolation":
        return content_style.interpolation(net, args.domain, args.layers, seeds, args.targets,
                                           args.steps, **psi).grid
    if args.mode == "attention":
        return attention.attention_figure(net, seeds, colormap=args.colormap, **psi).grid
    return attention.manipulate(net, args.layer, args.region, args.scale, args.shift, seeds,
                                colormap=args.colormap, **psi).grid


def main(argv=None):
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage problem (or --help)
        return e.code
    start = time.time()
    try:
        if args.zoom < 1:
            raise ValueError(f"--zoom must be a positive integer, got {args.zoom}")
        net = content_style.require_content(open_model(args.model, args.size))
        grid = content_style.zoom(run_mode(net, args), args.zoom)
        save_png(grid, args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {args.mode}, {grid.shape[1]}x{grid.shape[0]} px in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
