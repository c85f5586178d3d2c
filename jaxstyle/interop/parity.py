"""Report jaxstyle's error against every output stored in a fixture-format StyleGAN2-ADA .npz.

    python -m jaxstyle.interop.parity tests/fixtures/stylegan2_ada_visible.npz [--modconv weights]

Prints max|jaxstyle - official| / max|official| per `out/` entry (fixtures/README.md says how
each was produced) and exits 1 if any exceeds --tol.
"""

import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.interop.stylegan2_ada import load_stylegan2_ada
from jaxstyle.models.mapping import mix_styles


def _nhwc(x):
    return jnp.asarray(np.asarray(x).transpose(0, 2, 3, 1))


def _nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def reproduce(net, arrays):
    """Returns {output name: jaxstyle's value} for the fixture's `out/` entries, in NCHW."""
    meta = json.loads(bytes(arrays["meta_json"]))
    z, out = arrays["in/z"], {}
    ws = net.mapping(z)
    out["ws"] = ws
    out["ws_trunc_psi0.5"] = net.mapping(z, psi=0.5)
    out["ws_trunc_psi0.7_cutoff2"] = net.mapping(z, psi=0.7, cutoff=2)
    for mode in ("const", "none"):
        out[f"img_{mode}"] = _nchw(net.synthesis(ws, noise_mode=mode))
    out["img_trunc_psi0.5_const"] = _nchw(net.generate(z, psi=0.5, noise_mode="const"))
    k = meta.get("mixing_cutoff", 3)
    mixed = mix_styles(ws, net.mapping(arrays["in/z2"]), k)
    out[f"ws_mixed_cutoff{k}"] = mixed
    out[f"img_mixed_cutoff{k}_const"] = _nchw(net.synthesis(mixed, noise_mode="const"))
    reals = _nhwc(arrays["out/reals"])
    out["d_logits_reals"] = net.discriminate(reals)
    out["d_logits_fakes"] = net.discriminate(_nhwc(arrays["out/img_const"]))
    grad = jax.grad(lambda x: jnp.sum(net.discriminate(x)))(reals)
    out["r1_sqnorm_per_sample"] = jnp.sum(jnp.square(grad), axis=(1, 2, 3))
    _, vjp = jax.vjp(lambda w: net.synthesis(w, noise_mode="const"), ws)
    (g,) = vjp(_nhwc(arrays["out/pl_noise"]))
    out["pl_lengths"] = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(g), axis=2), axis=1))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("fixture")
    p.add_argument("--modconv", default="activation", choices=("activation", "weights"))
    p.add_argument("--tol", type=float, default=1e-5)
    args = p.parse_args(argv)
    net = load_stylegan2_ada(args.fixture, modconv=args.modconv)
    with np.load(args.fixture, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    worst = 0.0
    for name, value in reproduce(net, arrays).items():
        key = f"out/{name}"
        if key not in arrays:
            continue
        want = arrays[key].astype(np.float64)
        err = float(np.max(np.abs(np.asarray(value, np.float64).reshape(want.shape) - want))
                    / np.max(np.abs(want)))
        worst = max(worst, err)
        print(f"{name:28s} {err:.2e}")
    print(f"{'worst':28s} {worst:.2e}")
    return 0 if worst < args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
