"""Evaluate a training run's G_ema with named metrics; the library behind the top-level evaluate.py.

    python evaluate.py --checkpoint runs/default --metrics fd_oracle,disentanglement,ls_z,ls_w --num 5000

Metric names (COUNT like 5000, 50k or 1m overrides --num for that metric):
  fd_oracle[COUNT]       Fréchet distance of toyfaces-oracle features (not FID), lower is better
  disentanglement        content share / style leakage of the oracle's factors
  ls_z[COUNT], ls_w[COUNT]   linear separability of z / w with the oracle's 13 factors as attributes
  fid[COUNT][_full], kid[COUNT][_full]   Inception FID / KID (weights: --inception); _full: all reals
  ppl[2]_{z|w}{full|end}[COUNT]          perceptual path length (ppl2: no face crop)
  ppl_{style|content|joint}_{full|end}[COUNT]   DiagonalGAN's per-code path lengths

Every result is appended as one JSON line to <workdir>/metrics-eval.jsonl and printed as a table.
"""

import dataclasses
import json
import os
import re
import time

import jax
import numpy as np

RESULTS_FILE = "metrics-eval.jsonl"


class UsageError(ValueError):
    """A mistake the user can fix (a metric name, a path, a missing option): exit 2, no traceback."""


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One parsed metric name: its family, its sample count (None: --num or the family default)
    and family parameters (space, sampling, crop, full)."""

    name: str
    family: str
    num: int | None = None
    params: tuple = ()

    def param(self, key, default=None):
        """Returns the parameter `key` of this metric."""
        return dict(self.params).get(key, default)


_COUNT = r"(?P<count>\d+[km]?)?"
_PATTERNS = [
    ("fd_oracle", rf"fd_oracle{_COUNT}"),
    ("disentanglement", r"disentanglement"),
    ("ls", rf"ls_(?P<space>[zw]){_COUNT}"),
    ("fid", rf"fid{_COUNT}(?P<full>_full)?"),
    ("kid", rf"kid{_COUNT}(?P<full>_full)?"),
    ("ppl", rf"ppl(?P<nocrop>2)?_(?P<space>[zw])(?P<sampling>full|end){_COUNT}"),
    ("ppl", rf"ppl_(?P<space>style|content|joint)_(?P<sampling>full|end){_COUNT}"),
]
VALID_NAMES = ("fd_oracle[COUNT]", "disentanglement", "ls_z[COUNT]", "ls_w[COUNT]", "fid[COUNT][_full]",
               "kid[COUNT][_full]", "ppl[2]_{z|w}{full|end}[COUNT]", "ppl_{style|content|joint}_{full|end}[COUNT]")


def parse_count(text):
    """Returns the sample count written as '5000', '50k' or '1m' (None for None)."""
    if text is None:
        return None
    scale = {"k": 1000, "m": 1_000_000}.get(text[-1], 1)
    return int(text.rstrip("km")) * scale


def parse_metric(name):
    """Returns the MetricSpec of a metric name; raises UsageError listing the valid names."""
    for family, pattern in _PATTERNS:
        m = re.fullmatch(pattern, name.strip())
        if m:
            groups = m.groupdict()
            params = {k: v for k, v in groups.items() if k != "count" and v is not None}
            if family in ("fid", "kid"):
                params["full"] = bool(groups.get("full"))
            if family == "ppl":
                params["crop"] = not groups.get("nocrop")
                params.pop("nocrop", None)
            return MetricSpec(name.strip(), family, parse_count(groups.get("count")), tuple(sorted(params.items())))
    raise UsageError(f"unknown metric {name!r}; valid names: {', '.join(VALID_NAMES)} "
                     f"(COUNT: e.g. 5000, 50k, 1m)")


def parse_metrics(text):
    """Returns the MetricSpecs of a comma-separated list of names (UsageError on an unknown or empty one)."""
    names = [n for n in (s.strip() for s in text.split(",")) if n]
    if not names:
        raise UsageError(f"no metric given; valid names: {', '.join(VALID_NAMES)}")
    return [parse_metric(n) for n in names]


@dataclasses.dataclass
class Options:
    """What every metric may read: --num, --batch-size, the seed, paths, progress and a shared cache."""

    num: int | None = None
    batch_size: int = 64
    seed: int = 0
    inception: str | None = None
    cache_dir: str | None = None
    progress: bool = True
    ppl_distance: str = "lpips"                              # or "oracle_features" (toyfaces)
    cache: dict = dataclasses.field(default_factory=dict)   # ls_z and ls_w share one set of samples

    def count(self, spec, default):
        """Returns the sample count of `spec`: its own COUNT, else --num, else `default`."""
        return spec.num or self.num or default


def kimg_of(run):
    """Returns the thousands of real images the run's newest checkpoint has seen."""
    return run.kimg


def evaluate(workdir, specs, options, print_fn=print):
    """Returns one record per metric (also appended to <workdir>/metrics-eval.jsonl and printed).

    Raises UsageError for a missing run or a metric it cannot evaluate (checked before any work
    where possible).
    """
    for spec in specs:
        METRICS[spec.family].check(spec, options)
    run = open_run(workdir)
    for spec in specs:   # what depends on the run, before any metric writes anything
        if spec.family in ("fd_oracle", "ls", "disentanglement"):
            _require_toyfaces(run, spec.name)
        if spec.family == "ppl" and spec.param("space") in ("style", "content", "joint") and not run.G.has_content:
            raise UsageError(f"{spec.name} needs a generator with content codes (a diagonalgan preset)")
    records = []
    for spec in specs:
        start = time.time()
        results = METRICS[spec.family].compute(run, spec, options)
        records.append({"metric": spec.name, **results, "seconds": round(time.time() - start, 2),
                        "kimg": kimg_of(run), "iteration": int(run.state.step), "workdir": str(workdir),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        if jax.process_index() == 0:   # one writer on multi-host runs
            with open(os.path.join(workdir, RESULTS_FILE), "a") as f:
                f.write(json.dumps(records[-1]) + "\n")
    if jax.process_index() == 0:
        print_fn(format_table(records))
    return records


def open_run(workdir):
    """Returns the restored Run in `workdir`; UsageError when there is none."""
    from jaxstyle.training.restore import load_run
    if not os.path.isdir(workdir):
        raise UsageError(f"checkpoint directory {workdir} not found: pass the --workdir of a train.py run")
    try:
        run = load_run(workdir)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    if not run.grown:
        raise UsageError(f"{workdir} is still growing (resolution {run.phase.resolution}, alpha "
                         f"{run.phase.alpha:.2f} of {run.G.img_resolution}); metrics need the full "
                         "resolution: train on past the last fade-in")
    return run


def format_table(records):
    """Returns the records as a plain-text table: metric, value, num, seconds, kimg."""
    lines = [f"{'metric':22s} {'value':>14s} {'num':>9s} {'seconds':>9s} {'kimg':>9s}"]
    for r in records:
        value = r.get("value")
        shown = f"{value:14.4f}" if isinstance(value, (int, float, np.floating)) else f"{value!s:>14s}"
        lines.append(f"{r['metric']:22s} {shown} {r.get('num', '')!s:>9s} {r['seconds']:9.1f} {r['kimg']:9.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- sampling


def sharded_sampler(G, variables, mesh=None):
    """Returns generate(key, n) -> n images of G (no truncation, constant noise, a random content
    code with DAT), each global batch split over the mesh's data axis."""
    import functools

    import flax.linen as nn

    from jaxstyle.parallel import data_sharding, make_mesh
    mesh = make_mesh() if mesh is None else mesh
    shards = mesh.devices.size

    @functools.partial(jax.jit, static_argnums=1, out_shardings=data_sharding(mesh))
    def padded(key, n):
        k_z, k_c = jax.random.split(key)
        z = jax.lax.with_sharding_constraint(jax.random.normal(k_z, (n, G.z_dim)), data_sharding(mesh))

        def run(module):
            contents = module.map_content(jax.random.normal(k_c, (n, G.z_dim))) if G.has_content else None
            return module.synthesize(module.map(z), "const", contents)
        return nn.apply(run, G)(variables)

    def generate(key, n):
        # Pad to a multiple of the device count: every device gets an equal shard.
        images = padded(key, -(-n // shards) * shards)
        if jax.process_count() > 1:   # every host computes the statistics from all images
            from jax.experimental import multihost_utils
            images = multihost_utils.process_allgather(images, tiled=True)
        return images[:n]
    return generate


def _with_progress(generate, total, desc, enabled):
    """Returns `generate` that also advances a tqdm bar by each batch's size."""
    if not enabled:
        return generate
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, unit="img")

    def wrapped(key, n):
        images = generate(key, n)
        bar.update(n)
        if bar.n >= total:
            bar.close()
        return images
    return wrapped


def _require_toyfaces(run, metric):
    if not str(run.config.data.source).startswith("toyfaces"):
        raise UsageError(f"{metric} needs the toyfaces oracle, but this run trained on "
                         f"{run.config.data.source!r}; use fid/kid/ppl instead")


# ---------------------------------------------------------------- the metrics


def _fd_oracle(run, spec, options):
    from jaxstyle.metrics.fd_oracle import generated_statistics, real_statistics
    from jaxstyle.metrics.frechet import frechet_distance
    from jaxstyle.metrics.oracle import load_oracle
    _require_toyfaces(run, spec.name)
    num = options.count(spec, 5000)
    oracle = load_oracle(run.source.resolution)
    real = real_statistics(run.source, num, oracle, batch=options.batch_size)
    generate = _with_progress(sharded_sampler(run.G, run.state.g_ema), num, spec.name, options.progress)
    fake = generated_statistics(generate, num, oracle, batch=options.batch_size, seed=options.seed)
    return {"value": float(frechet_distance(*fake, *real)), "num": num,
            "distance": "FD_oracle: Frechet distance of toyfaces-oracle features (not FID)"}


def _disentanglement(run, spec, options):
    from jaxstyle.metrics.disentanglement import content_renderer, content_style_shares
    from jaxstyle.metrics.oracle import load_oracle
    _require_toyfaces(run, spec.name)
    num_contents = 16
    num_styles = max(2, options.count(spec, 256 * num_contents) // num_contents)
    report = content_style_shares(content_renderer(run.G, run.state.g_ema), run.G.z_dim,
                                  load_oracle(run.source.resolution), num_styles, num_contents,
                                  options.seed, options.batch_size)
    return {"value": report["content_share"], "style_leakage": report["style_leakage"],
            "per_factor": report["per_factor"], "num": num_styles * num_contents,
            "num_styles": num_styles, "num_contents": num_contents,
            "content": "content code" if run.G.has_content else "noise inputs",
            "distance": "value = content share (higher better); style_leakage lower better"}


def _ls(run, spec, options):
    from jaxstyle.metrics import separability as ls
    _require_toyfaces(run, spec.name)
    num = options.count(spec, 200_000)
    key = ("ls", num, options.seed)
    if key not in options.cache:   # ls_z and ls_w of one call share the samples, as in the official
        classify, names = ls.oracle_classifier(run.source.resolution)
        mapping, synthesis = ls.generator_callables(run.G, run.state.g_ema)
        samples = ls.sample_latents_and_scores(mapping, synthesis, classify, run.G.z_dim, num,
                                               options.batch_size, options.seed, progress=options.progress)
        options.cache[key] = (samples, names)
    samples, names = options.cache[key]
    space = spec.param("space")
    report = ls.separability_from_samples(samples, names, spaces=(space,))[space]
    return {"value": report["score"], "entropy_bits": report["entropy_bits"], "num": num,
            "num_keep": num // 2, "space": space,
            "classifier": "toyfaces oracle factors, split at the median of the generated samples"}


def _fid_kid(run, spec, options):
    from jaxstyle.metrics.fid import compute_fid_kid
    from jaxstyle.metrics.inception import load_inception
    num = options.count(spec, 50_000)
    num_real = None if spec.param("full") else num
    generate = _with_progress(sharded_sampler(run.G, run.state.g_ema), num, spec.name, options.progress)
    result = compute_fid_kid(generate, run.source, num, num_real, load_inception(options.inception),
                             options.batch_size, options.cache_dir)
    return {"value": float(result[spec.family]), "num": num, "num_real": num_real if num_real else "all",
            "distance": "Inception-v3 pool3 features"}


def _ppl_model(run):
    """Returns the run's G_ema as a PPLModel: (style, content) codes with DAT, else W+ with const noise."""
    from jaxstyle.metrics.ppl import PPLModel
    from jaxstyle.models import Generator
    from jaxstyle.models.diagonalgan import DiagonalGAN
    G, variables = run.G, run.state.g_ema
    if G.has_content:
        return PPLModel.from_diagonalgan(DiagonalGAN(G, variables))
    mapping = jax.jit(lambda z: G.apply(variables, z, method=Generator.map))
    synthesis = jax.jit(lambda ws: G.apply(variables, ws, "const", method=Generator.synthesize))
    return PPLModel.single(mapping, synthesis, G.z_dim)


def _ppl(run, spec, options):
    from jaxstyle.metrics.ppl import perceptual_path_length
    space, domain = spec.param("space"), None
    if space in ("style", "content", "joint"):
        if not run.G.has_content:
            raise UsageError(f"{spec.name} needs a generator with content codes (a diagonalgan preset)")
        space, domain = "w", space   # lerp the chosen codes, as ppl_w does
    num = options.count(spec, 50_000)
    result = perceptual_path_length(_ppl_model(run), num, space=space, sampling=spec.param("sampling"),
                                    distance=options.ppl_distance, batch=options.batch_size,
                                    seed=options.seed, crop=spec.param("crop"), domain=domain)
    return {"value": float(result["ppl"]), "num": num, "num_kept": result["num_kept"],
            "distance": result["distance"], "space": space, "domain": domain or "all",
            "crop": spec.param("crop")}


def _check_module(*modules):
    """Returns check(spec, options) raising UsageError when a lazily imported module is missing."""
    def check(spec, options):
        import importlib
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise UsageError(f"{spec.name} is not available yet: {module} cannot be imported ({e})") from None
        if spec.family in ("fid", "kid"):   # fail before generating anything, with inception's own advice
            from jaxstyle.metrics.inception import missing_weights_message, weights_path
            if not os.path.isfile(weights_path(options.inception)):
                raise UsageError(f"{spec.name}: {missing_weights_message(weights_path(options.inception))}")
    return check


@dataclasses.dataclass(frozen=True)
class Metric:
    """A registry entry: compute(run, spec, options) -> results dict with 'value' and 'num';
    check(spec, options) raises UsageError before any work when it cannot run."""

    compute: object
    check: object = lambda spec, options: None


METRICS = {
    "fd_oracle": Metric(_fd_oracle),
    "disentanglement": Metric(_disentanglement),
    "ls": Metric(_ls, _check_module("sklearn")),
    "fid": Metric(_fid_kid, _check_module("jaxstyle.metrics.fid", "jaxstyle.metrics.inception")),
    "kid": Metric(_fid_kid, _check_module("jaxstyle.metrics.fid", "jaxstyle.metrics.inception")),
    "ppl": Metric(_ppl, _check_module("jaxstyle.metrics.ppl")),
}


# ---------------------------------------------------------------- command line


def main(argv=None):
    """Runs the command line (see the module docstring); returns the exit status (2: usage error)."""
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate a training run's G_ema.",
                                epilog="metrics: " + ", ".join(VALID_NAMES))
    p.add_argument("--checkpoint", "--workdir", dest="workdir", required=True, help="a train.py --workdir")
    p.add_argument("--metrics", required=True, help="comma-separated metric names")
    p.add_argument("--num", type=int, default=None, help="samples per metric (default: each metric's own)")
    p.add_argument("--batch-size", type=int, default=64, help="global batch, split over all devices")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inception", default=None,
                   help="pytorch-fid Inception weights (fid/kid; default $JAXSTYLE_INCEPTION or the cache path)")
    p.add_argument("--cache-dir", default=None, help="where fid/kid keep real-image statistics")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ppl-distance", choices=("lpips", "oracle_features"), default="lpips",
                   help="ppl distance: LPIPS (official) or squared distance of toyfaces-oracle features")
    args = p.parse_args(argv)
    from jaxstyle.training.main import maybe_initialize_distributed
    maybe_initialize_distributed()   # multi-host: the same environment variables as train.py
    options = Options(args.num, args.batch_size, args.seed, args.inception, args.cache_dir, not args.no_progress,
                      args.ppl_distance)
    try:
        evaluate(args.workdir, parse_metrics(args.metrics), options)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
