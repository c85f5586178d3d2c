"""Content/style disentanglement on toyfaces, measured against ground truth through the oracle.

For S style latents, each rendered with K content draws (DiagonalGAN: content codes; StyleGAN2:
its noise inputs, the only other source of variation), the oracle predicts the 13 factors of
every image. By the law of total variance, a factor's variance splits into the part within
a style (what the content draw moves) and the part between styles:

    share_within(f) = mean_s Var_k f(s, k) / Var_{s,k} f(s, k)

For content factors this is the share of their variance the content code controls (high is
good); for style factors it is leakage, style that moves with the content code (low is good).
Variances are population variances, the within part averaged over styles.

    python -m jaxstyle.metrics.disentanglement --workdir runs/diagonal_sg2 [--styles 256 --contents 16]
"""

import argparse
import json
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.data.toyfaces import CONTENT_FACTORS, FACTOR_NAMES, STYLE_FACTORS
from jaxstyle.metrics.oracle import load_oracle


def within_share(values):
    """Returns, per column, mean over groups of the within-group variance / total variance.

    values: (S, K, F), S groups of K draws. A column constant over everything gives nan.
    """
    values = np.asarray(values, np.float64)
    within = values.var(axis=1).mean(axis=0)
    total = values.reshape(-1, values.shape[-1]).var(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return within / total


def content_renderer(G, variables):
    """Returns render(z_style (B, z_dim), keys (B,)) -> images: the content latent drawn from each key
    (content_op "dat"), or each sample's noise inputs drawn from its key (StyleGAN2's noise)."""
    def one(z, key):
        def run(module):
            contents = None
            if G.has_content:
                contents = module.map_content(jax.random.normal(key, (1, G.z_dim)))
            return module.synthesize(module.map(z[None]), "random", contents)
        return nn.apply(run, G)(variables, rngs={"noise": key})[0]
    return jax.jit(jax.vmap(one))


def content_style_shares(render, z_dim, oracle, num_styles=256, num_contents=16, seed=0, batch=256):
    """Returns the disentanglement report of a generator `render(z_style, content_keys) -> images`.

    {"content_share": mean share_within over content factors (higher: more content control),
     "style_leakage": mean share_within over style factors (lower: less leakage),
     "per_factor": {name: share_within}, "num_styles", "num_contents"}.
    """
    key_s, key_c = jax.random.split(jax.random.key(seed))
    z = np.asarray(jax.random.normal(key_s, (num_styles, z_dim)))
    z = np.repeat(z, num_contents, axis=0)              # style s at rows s*K .. s*K + K - 1
    keys = jax.random.split(key_c, num_styles * num_contents)
    preds = []
    for i in range(0, len(z), batch):
        images = render(jnp.asarray(z[i:i + batch]), keys[i:i + batch])
        preds.append(np.asarray(oracle.predict(images)))
    shares = within_share(np.concatenate(preds).reshape(num_styles, num_contents, -1))
    per_factor = {name: float(v) for name, v in zip(FACTOR_NAMES, shares)}
    return {"content_share": float(np.mean([per_factor[f] for f in CONTENT_FACTORS])),
            "style_leakage": float(np.mean([per_factor[f] for f in STYLE_FACTORS])),
            "per_factor": per_factor, "num_styles": num_styles, "num_contents": num_contents}


def evaluate_run(workdir, num_styles=256, num_contents=16, seed=0):
    """Returns the report for the G_ema of the newest checkpoint in a toyfaces training run."""
    from jaxstyle.training.restore import load_run
    run = load_run(workdir)
    if not str(run.config.data.source).startswith("toyfaces"):
        raise ValueError(f"{workdir} did not train on toyfaces; the oracle knows only toyfaces factors")
    render = content_renderer(run.G, run.state.g_ema)
    report = content_style_shares(render, run.G.z_dim, load_oracle(run.source.resolution),
                                  num_styles, num_contents, seed)
    if not run.grown:
        raise ValueError(f"{workdir} is still growing (resolution {run.phase.resolution}); train past the last fade-in")
    return {"workdir": workdir, "content": "content code" if run.G.has_content else "noise inputs",
            "iteration": int(run.state.step), "kimg": run.kimg, **report}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, action="append", help="a toyfaces run (repeat to compare)")
    p.add_argument("--styles", type=int, default=256)
    p.add_argument("--contents", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        reports = [evaluate_run(w, args.styles, args.contents, args.seed) for w in args.workdir]
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = list(FACTOR_NAMES)
    print(f"{'factor':16s}" + "".join(f"{r['workdir'][-24:]:>26s}" for r in reports))
    for label, key in (("content share", "content_share"), ("style leakage", "style_leakage")):
        print(f"{label:16s}" + "".join(f"{r[key]:26.3f}" for r in reports))
    for n in names:
        print(f"  {n:14s}" + "".join(f"{r['per_factor'][n]:26.3f}" for r in reports))
    for r in reports:
        with open(f"{r['workdir']}/disentanglement.json", "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
