"""SeFa from the command line: factorize a generator, draw the direction x alpha figure, and
measure which toyfaces factors each direction moves (through the factor oracle).

    python -m jaxstyle.editing.sefa --workdir RUN --out FIG.png [--layers all|coarse|middle|fine|0,1,2]
        [--form genforce|rosinality] [--top 5] [--alphas -3,-1.5,0,1.5,3] [--seeds 0,1,2]
        [--directions-out dirs.npz] [--correlate [--correlate-out FIG_oracle.json]]

--model FILE takes a checkpoint instead of a work directory: a fixture-format .npz
(StyleGAN2-ADA or DiagonalGAN) or an official DiagonalGAN .model. For DiagonalGAN models the
style codes are factorized and edited; content codes stay as drawn. Figure rows: direction 1
(largest eigenvalue) for every seed, then direction 2, ...; columns: the alphas. Codes are
truncated toward the mean with --psi (0.7, as genforce/sefa and rosinality's apply_factor).

Oracle effects (--correlate), for each of the top --correlate-top directions n_k and each factor f,
over N = --samples samples w_i (psi 1) edited in the chosen slots by a in {-alpha, 0, +alpha}:
  pearson[k, f] = Pearson correlation of a with the oracle's f over all 3N images;
  effect[k, f]  = mean_i (f(w_i + alpha n_k) - f(w_i - alpha n_k)) / (2 alpha std_i f(w_i)),
the mean change of f per unit alpha in units of f's spread over unedited samples (signed).
For an edit that moves f linearly by c per unit alpha, pearson = e s / sqrt(1 + e^2 s^2) with
e = effect and s = alpha sqrt(2/3). Bad input prints one line and exits 2, writing nothing.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxstyle.editing import content_style
from jaxstyle.editing.cli import join_list_values
from jaxstyle.editing.sefa import RANGES, check_form, edit, factorize, parse_layers
from jaxstyle.images import save_png

BATCH = 64  # images per generator call in the oracle measurement (padded, one compile)
DEFINITIONS = {  # written into the --correlate JSON
    "pearson": "Pearson correlation of a with the oracle's factor f over the 3N images of samples w_i "
               "(psi 1) edited in the chosen slots by a in {-alpha, 0, +alpha} along n_k",
    "effect": "mean_i (f(w_i + alpha n_k) - f(w_i - alpha n_k)) / (2 alpha std_i f(w_i)): mean change of f "
              "per unit alpha in units of f's spread over the unedited samples",
}


class Subject(NamedTuple):
    """A generator to factorize and edit: variables, and its W+ codes and images by seed."""

    variables: Any
    codes: Callable      # (seeds, psi) -> (ws (N, num_ws, w_dim), contents (N, num_ws, dim) or None)
    render: Callable     # (ws, contents) -> float32 images (N, r, r, 3)
    max_resolution: Any = None


def subject_for(net, variables=None, w_avg=None):
    """Returns the Subject of a DiagonalGAN handle, a StyleGAN2 handle, or (Generator, variables, w_avg)."""
    if hasattr(net, "content_mapping"):
        return _diagonal_subject(net)
    if variables is None:
        net, variables, w_avg = net.G, net.g_vars, net.w_avg
    if net.c_dim:
        raise ValueError(f"conditional generators (c_dim {net.c_dim}) are not supported: SeFa here edits "
                         "unconditional models")
    from jaxstyle.models import Generator
    mapping = jax.jit(lambda z, psi: net.apply(variables, z, None, w_avg, psi, method=Generator.map))
    synthesis = jax.jit(lambda ws: net.apply(variables, ws, "const", method=Generator.synthesize))

    def codes(seeds, psi):
        z = content_style.latents(seeds, net.z_dim, "style")
        return content_style.chunked(lambda z, _: mapping(z, psi), [z], chunk=BATCH), None
    return Subject(variables, codes, lambda ws, _: content_style.chunked(lambda w, _: synthesis(w), [ws],
                                                                          chunk=BATCH))


def _diagonal_subject(net):
    content_style.require_content(net)
    means = {}

    def codes(seeds, psi):
        if psi != 1 and not means:
            means["style"], means["content"] = (np.asarray(m) for m in net.mean_codes())
        drawn = content_style.draw(net, seeds, psi, 1.0, (means.get("style"), means.get("content")))
        return drawn.styles, drawn.contents
    return Subject(net.variables, codes, lambda ws, c: content_style.render(net, (ws, c)), net.resolution)


def sefa_figure(subject, fac, seeds, top=5, alphas=(-3, -1.5, 0, 1.5, 3), psi=0.7, gap=4):
    """Returns a content_style.Figure: rows = (direction k, seed) for k = 1..top, direction-major,
    with a white gap between directions; columns = alphas."""
    top = check_top(fac, top)
    ws, contents = subject.codes(list(seeds), psi)
    n, a = len(seeds), len(alphas)
    # (top, seed, alpha) order, flattened into one batch
    edited = np.concatenate([np.asarray(edit(np.repeat(ws, a, 0), fac.directions[k], np.tile(alphas, n),
                                             fac.slots)) for k in range(top)])
    contents = None if contents is None else np.tile(np.repeat(contents, a, 0), (top, 1, 1))
    images = np.asarray(subject.render(edited, contents))
    cells = images.reshape((top * n, a) + images.shape[1:])
    groups = [content_style.framed_grid(cells[k * n:(k + 1) * n]) for k in range(top)]
    spacer = np.full((gap,) + groups[0].shape[1:], 255, np.uint8)
    parts = [p for g in groups for p in (g, spacer)][:-1]
    return content_style.Figure(np.concatenate(parts, axis=0), cells)


def check_top(fac, top):
    """Returns top; raises ValueError unless 1 <= top <= number of directions."""
    if not 1 <= int(top) <= len(fac.directions):
        raise ValueError(f"top must be between 1 and {len(fac.directions)} (the number of directions), got {top}")
    return int(top)


def factor_effects(base, plus, minus, alpha):
    """Returns (pearson (K, F), effect (K, F)) from oracle factors of unedited samples base (N, F)
    and of the samples edited by +alpha / -alpha along K directions, plus and minus (K, N, F);
    definitions in the module docstring. A factor with no spread gives NaN."""
    base, plus, minus = (np.asarray(x, np.float64) for x in (base, plus, minus))
    spread = base.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        effect = (plus - minus).mean(axis=1) / (2 * alpha * spread)
        a = np.concatenate([np.full(base.shape[0], -alpha), np.zeros(base.shape[0]), np.full(base.shape[0], alpha)])
        f = np.concatenate([minus, np.broadcast_to(base, plus.shape), plus], axis=1)  # (K, 3N, F)
        fc = f - f.mean(axis=1, keepdims=True)
        ac = (a - a.mean())[None, :, None]
        pearson = (ac * fc).sum(1) / np.sqrt((ac ** 2).sum(1) * (fc ** 2).sum(1))
    return np.where(spread > 1e-8, pearson, np.nan), np.where(spread > 1e-8, effect, np.nan)


def oracle_effects(subject, fac, predict, seeds, alpha=3.0, top=10, psi=1.0):
    """Returns (pearson, effect), each (top, F): how the oracle's factors move when the samples
    named by `seeds` are edited by +-alpha along each of the top directions (see factor_effects)."""
    top = check_top(fac, top)
    if alpha <= 0:
        raise ValueError(f"the correlation alpha must be positive, got {alpha}")
    ws, contents = subject.codes(list(seeds), psi)
    factors = lambda w: np.asarray(content_style.chunked(lambda x, _: predict(x), [subject.render(w, contents)],
                                                         chunk=BATCH))
    base = factors(ws)
    plus = np.stack([factors(edit(ws, fac.directions[k], alpha, fac.slots)) for k in range(top)])
    minus = np.stack([factors(edit(ws, fac.directions[k], -alpha, fac.slots)) for k in range(top)])
    return factor_effects(base, plus, minus, alpha)


def format_table(table, factor_names, title):
    """Returns a text table: one row per direction, one column per factor."""
    widths = [max(6, len(n) + 1) for n in factor_names]
    lines = [title, "dir" + "".join(f"{n:>{w}}" for n, w in zip(factor_names, widths))]
    for k, row in enumerate(table):
        lines.append(f"{k + 1:>3}" + "".join(f"{v:>{w}.2f}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def open_subject(workdir=None, model=None):
    """Returns (Subject, dataset name or None) for a train.py work directory or a checkpoint file.

    Raises FileNotFoundError or ValueError naming the problem and the fix."""
    if workdir is not None:
        if not os.path.isfile(os.path.join(workdir, "config.json")):
            raise FileNotFoundError(f"{workdir} has no config.json: --workdir takes a train.py work directory")
        from jaxstyle.training.restore import load_run
        run = load_run(workdir)
        source = run.config.data.source
        if run.G.has_content:
            from jaxstyle.models.diagonalgan import DiagonalGAN
            growing = run.phase is not None and run.phase.resolution < run.G.img_resolution
            return _diagonal_subject(DiagonalGAN(run.G, run.state.g_ema, size=run.phase.resolution if growing
                                                 else None)), source
        return subject_for(run.G, run.state.g_ema, run.state.w_avg), source
    from jaxstyle.editing.checkpoints import open_generator
    from jaxstyle.models.diagonalgan import DiagonalGAN
    net = open_generator(model=model)
    return (_diagonal_subject(net) if isinstance(net, DiagonalGAN) else subject_for(net)), None


def parse_numbers(tokens, kind, what):
    """Returns the numbers in tokens (each may hold a comma-separated list) as `kind`."""
    try:
        values = [kind(v) for t in tokens for v in t.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"bad {what} {' '.join(tokens)!r}: give numbers separated by commas or spaces") from None
    if not values:
        raise ValueError(f"no {what} given")
    return values


def build_parser():
    """Returns the argparse parser of the SeFa command line."""
    p = argparse.ArgumentParser(prog="python -m jaxstyle.editing.sefa", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="train.py work directory (newest checkpoint, G_ema)")
    src.add_argument("--model", help="fixture-format .npz (StyleGAN2-ADA or DiagonalGAN) or DiagonalGAN .model")
    p.add_argument("--out", required=True, help="PNG figure to write: directions (rows) x alphas (columns)")
    p.add_argument("--layers", default="all", help=f"{'|'.join(RANGES)} or slot indices, e.g. 0,1,2 or 0-3")
    p.add_argument("--form", default="genforce", help="genforce (column-normalised eigh) or rosinality (SVD)")
    p.add_argument("--top", type=int, default=5, help="directions in the figure")
    p.add_argument("--alphas", nargs="+", default=["-3,-1.5,0,1.5,3"],
                   help="edit strengths (columns): -3,-1.5,0,1.5,3 or -3 -1.5 0 1.5 3")
    p.add_argument("--seeds", nargs="+", default=["0,1,2"], help="samples, e.g. 0,1,2 or 0 1 2")
    p.add_argument("--psi", type=float, default=0.7, help="truncation of the figure's codes (1 = none)")
    p.add_argument("--zoom", type=int, default=1, help="enlarge the figure by pixel repetition")
    p.add_argument("--directions-out", help=".npz to write directions, eigenvalues, slots and layers to")
    p.add_argument("--correlate", action="store_true", help="measure oracle factor effects (toyfaces)")
    p.add_argument("--correlate-out", help="JSON for --correlate (default: --out with _oracle.json)")
    p.add_argument("--samples", type=int, default=256, help="--correlate: samples (seeds 0..N-1)")
    p.add_argument("--correlate-alpha", type=float, default=3.0, help="--correlate: edit +-alpha")
    p.add_argument("--correlate-top", type=int, default=10, help="--correlate: directions measured")
    return p


def check_args(args):
    """Returns args with parsed lists; raises ValueError for bad values (before any model loads)."""
    check_form(args.form)
    parse_layers(args.layers)
    args.alphas = parse_numbers(args.alphas, float, "alphas")
    args.seeds = parse_numbers(args.seeds, int, "seeds")
    for path, ext, flag in ((args.out, ".png", "--out"), (args.directions_out, ".npz", "--directions-out"),
                            (args.correlate_out, ".json", "--correlate-out")):
        if path is not None and not path.endswith(ext):
            raise ValueError(f"{flag} {path} must end in {ext}")
    if args.correlate_out is None and args.correlate:
        args.correlate_out = args.out[:-len(".png")] + "_oracle.json"
    for value, flag in ((args.top, "--top"), (args.zoom, "--zoom"), (args.samples, "--samples"),
                        (args.correlate_top, "--correlate-top")):
        if value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    if args.samples < 2 and args.correlate:
        raise ValueError("--samples must be at least 2 (a factor's spread needs two samples)")
    if not args.correlate_alpha > 0:
        raise ValueError(f"--correlate-alpha must be positive, got {args.correlate_alpha}")
    if not 0 <= args.psi <= 1:
        raise ValueError(f"--psi must be in [0, 1], got {args.psi}")
    return args


def correlate(subject, fac, source, args):
    """Returns the oracle report (a dict for JSON) and prints its two tables."""
    if source not in (None, "toyfaces"):
        raise ValueError(f"--correlate needs a toyfaces model (the oracle reads toyfaces factors); this run "
                         f"trained on {source!r}")
    from jaxstyle.metrics.oracle import load_oracle
    resolution = np.asarray(subject.render(*subject.codes([0], 1.0))).shape[1]
    oracle = load_oracle(resolution)
    pearson, effect = oracle_effects(subject, fac, oracle.predict, range(args.samples), args.correlate_alpha,
                                     min(args.correlate_top, len(fac.directions)))
    names = list(oracle.factor_names)
    print(format_table(pearson, names, "Pearson r(alpha, factor) over -a, 0, +a edits:"))
    print(format_table(effect, names, "effect: mean factor change per unit alpha / factor std:"))
    clean = lambda t: [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in t]
    return {"factor_names": names, "pearson": clean(pearson), "effect": clean(effect),
            "eigenvalues": [float(v) for v in fac.eigenvalues[:len(pearson)]], "form": fac.form,
            "slots": list(fac.slots), "layers": list(fac.layers), "alpha": args.correlate_alpha,
            "samples": args.samples, "psi": 1.0, "oracle_resolution": oracle.resolution,
            "definitions": DEFINITIONS}


def write_outputs(outputs):
    """Writes {path: writer(tmp_path)} each to a temporary file beside it, then renames them all:
    a failure leaves none of them written."""
    done = []
    try:
        for path, writer in outputs.items():
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1], dir=directory)
            os.close(fd)
            done.append((tmp, path))
            writer(tmp)
        for tmp, path in done:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    finally:
        for tmp, _ in done:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _save_directions(fac):
    return lambda path: np.savez(path, directions=fac.directions, eigenvalues=fac.eigenvalues,
                                 slots=np.asarray(fac.slots), layers=np.asarray(fac.layers), form=np.asarray(fac.form))


def _save_json(report):
    def write(path):
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    return write


def main(argv=None):
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    try:
        args = build_parser().parse_args(join_list_values(sys.argv[1:] if argv is None else argv, ("--alphas",)))
    except SystemExit as e:  # argparse has printed the usage problem (or --help)
        return e.code
    start = time.time()
    try:
        args = check_args(args)
        subject, source = open_subject(args.workdir, args.model)
        fac = factorize(subject.variables, args.layers, args.form, max_resolution=subject.max_resolution)
        figure = sefa_figure(subject, fac, args.seeds, args.top, args.alphas, args.psi)
        outputs = {args.out: lambda p: save_png(content_style.zoom(figure.grid, args.zoom), p)}
        if args.directions_out:
            outputs[args.directions_out] = _save_directions(fac)
        if args.correlate:
            outputs[args.correlate_out] = _save_json(correlate(subject, fac, source, args))
        write_outputs(outputs)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(outputs)}: {args.form} SeFa on slots {list(fac.slots)} "
          f"({len(fac.layers)} affines), top eigenvalues {np.round(fac.eigenvalues[:args.top], 3).tolist()}, "
          f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
