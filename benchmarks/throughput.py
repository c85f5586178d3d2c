"""Sampling and training throughput, compile time, peak memory and achieved GFLOP/s, in one run.

    python benchmarks/throughput.py                       # every setup, both modconv formulations
    python benchmarks/throughput.py --setups official_32_small official_64 --modconv activation
    python benchmarks/throughput.py --setups paper256 --train-batch 8 --reps 3
    python benchmarks/throughput.py --setups paper256 --num-bf16-res 4     # mixed precision (accelerators)
    python benchmarks/throughput.py --setups paper256 --train-by-phase     # phases timed apart (slow CPUs)

Each (setup, formulation) runs in a fresh subprocess, so peak memory and compile caches are its
own. Per run it measures:
  - sampling: G_ema mapping + synthesis, jit-compiled, noise "const", images/s (median of --reps);
  - training: one lazy-regularisation cycle of the real Trainer (16 iterations: G main and D main
    each, path length every 4, R1 every 16, style mixing 0.9, G EMA), images/s (median of --reps
    cycles), so the regularisers are amortised exactly as in training;
  - compile time of each (lower + compile; for training, of all five phases);
  - peak memory: device peak bytes where the backend reports it, else the process's max RSS;
  - achieved GFLOP/s (XLA's cost analysis of the compiled programs / measured time), against a
    plain 3x3 convolution of the setup's largest G layer measured in the same process: forward
    for sampling, forward + both gradients for training.
Writes benchmarks/results/throughput-<backend>.json and prints a table with the official
StyleGAN2-ADA figures measured on this project's CPU (issue 9) where the setup matches them.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

from timing import median_time

# Setups. The official_* ones are the configurations stylegan2-ada-pytorch was measured at on this
# project's 2-core CPU (torch 2.13, reference ops, 2 threads, z/w 512, no fp16, const noise):
# (sampling images/s, training images/s); None where it was not measured.
SETUPS = {
    "default": dict(res=32, cbase=2048, cmax=64, map=2, batch=32, zdim=64),
    "official_32_small": dict(res=32, cbase=2048, cmax=64, map=2, batch=32, official=(169.0, 19.0)),
    "official_32_wide": dict(res=32, cbase=4096, cmax=256, map=2, batch=16, official=(28.2, 3.68)),
    "official_64": dict(res=64, cbase=16384, cmax=512, map=8, batch=8, official=(2.57, None)),
    "paper256": dict(res=256, cbase=16384, cmax=512, map=8, batch=4, official=(1.19, None)),
}


def _flops(lowered):
    """Returns the FLOPs XLA's cost analysis counts in the lowered (unoptimised, backend-independent)
    program: compiled programs on GPU hide convolutions in library calls it does not count."""
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


def _peak_bytes():
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process max RSS"


def networks(s, modconv, num_bf16_res=0):
    from jaxstyle.models import Generator
    from jaxstyle.models.discriminator import Discriminator
    z = s.get("zdim", 512)
    G = Generator(z_dim=z, w_dim=z, img_resolution=s["res"], mapping_layers=s["map"], channel_base=s["cbase"],
                  channel_max=s["cmax"], modconv=modconv, num_bf16_res=num_bf16_res)
    D = Discriminator(img_resolution=s["res"], channel_base=s["cbase"], channel_max=s["cmax"],
                      num_bf16_res=num_bf16_res)
    return G, D


def largest_layer(s):
    """Returns (resolution, channels, channels) of the block conv1 (C -> C, 3x3) with the most multiply-adds."""
    sizes = [2 ** i for i in range(2, s["res"].bit_length())]
    res = max(sizes, key=lambda r: (r * r * min(s["cbase"] // r, s["cmax"]) ** 2, r))
    ch = min(s["cbase"] // res, s["cmax"])
    return res, ch, ch


def plain_conv(batch, res, cin, cout, reps):
    """Returns GFLOP/s of one 3x3 SAME convolution: forward, and forward + input and weight gradients."""
    import jax
    import jax.numpy as jnp
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (batch, res, res, cin))
    w = jax.random.normal(kw, (3, 3, cin, cout)) / (9 * cin) ** 0.5

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = {}
    fwd = jax.jit(conv).lower(x, w)
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), argnums=(0, 1))).lower(x, w)
    for name, lowered in (("forward", fwd), ("train", grad)):
        fn = lowered.compile()
        t, _ = median_time(lambda: jax.block_until_ready(fn(x, w)), reps)
        out[name] = dict(gflops=_flops(lowered) / 1e9, seconds=t, gflop_per_s=_flops(lowered) / 1e9 / t)
    return dict(shape=[batch, res, res, cin, cout], **out)


def sampling(G, batch, reps):
    import jax
    z = jax.random.normal(jax.random.key(0), (batch, G.z_dim))
    variables = jax.jit(lambda z: G.init({"params": jax.random.key(1)}, z, noise_mode="const"))(z)
    forward = jax.jit(lambda v, z: G.apply(v, z, noise_mode="const"))
    t0 = time.perf_counter()
    lowered = forward.lower(variables, z)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    t, times = median_time(lambda: compiled(variables, z).block_until_ready(), reps)
    flops = _flops(lowered)
    return dict(batch=batch, compile_s=compile_s, seconds=t, images_per_s=batch / t, gflops=flops / 1e9,
                gflop_per_s=flops / 1e9 / t, times=times)


def training(G, D, batch, reps, cycle=16, by_phase=False):
    import jax
    import jax.numpy as jnp

    from jaxstyle.parallel import make_mesh
    from jaxstyle.training.steps import Objective, Trainer
    obj = Objective(batch_size=batch)      # StyleGAN2-ADA defaults: PL every 4, R1 every 16, mixing 0.9
    trainer = Trainer(G, D, obj, make_mesh(jax.devices()[:1]))
    state = trainer.init_state(jax.random.key(0))
    batch_data = {"image": jax.random.uniform(jax.random.key(1), (batch, G.img_resolution, G.img_resolution,
                                                                   G.img_channels), minval=-1, maxval=1)}
    alpha = jnp.float32(1)
    t0 = time.perf_counter()
    flops = {}
    for name in ("g_main", "g_reg", "d_main", "d_reg"):
        lowered = getattr(trainer, name).lower(state, batch_data, alpha)
        lowered.compile()
        flops[name] = _flops(lowered)
    lowered = trainer.ema.lower(state, jnp.float32(0))
    lowered.compile()
    flops["ema"] = _flops(lowered)
    compile_s = time.perf_counter() - t0
    holder = [state]
    if by_phase:
        return training_by_phase(trainer, holder, batch_data, reps, flops, compile_s, cycle)

    def run_cycle():
        s = holder[0]
        for step in range(cycle):
            s, metrics = trainer.iteration(s, batch_data, step)
        jax.block_until_ready(s)
        holder[0] = s
    # The first cycle also compiles (the explicit lowering above does not fill jit's cache), so it
    # is the warm-up; the cycles after it are timed.
    t0 = time.perf_counter()
    run_cycle()
    first = time.perf_counter() - t0
    t, times = median_time(run_cycle, reps, warmup=False)
    per_cycle = cycle * (flops["g_main"] + flops["d_main"] + flops["ema"]) + cycle // obj.pl_interval * \
        flops["g_reg"] + cycle // obj.r1_interval * flops["d_reg"]
    return dict(batch=batch, compile_s=compile_s, first_cycle_s=first, seconds_per_cycle=t,
                images_per_s=cycle * batch / t, gflops_per_cycle=per_cycle / 1e9,
                gflop_per_s=per_cycle / 1e9 / t, phase_gflops={k: v / 1e9 for k, v in flops.items()}, times=times)


def training_by_phase(trainer, holder, batch_data, reps, flops, compile_s, cycle):
    """Returns the training record from each phase's median time, combined as one cycle runs them
    (16 x (G main + D main + EMA), path length every 4, R1 every 16): the same figure as timing
    whole cycles, in a fraction of the time where one iteration takes tens of seconds."""
    import jax
    import jax.numpy as jnp
    obj, alpha = trainer.obj, jnp.float32(1)
    seconds = {}
    for name in ("g_main", "g_reg", "d_main", "d_reg", "ema"):
        fn = getattr(trainer, name)
        second = jnp.float32(0) if name == "ema" else batch_data

        def once():
            out = fn(holder[0], second, alpha) if name != "ema" else fn(holder[0], second)
            holder[0] = out[0] if name != "ema" else out
            jax.block_until_ready(holder[0])
        seconds[name], _ = median_time(once, reps)    # the warm-up call compiles
    counts = {"g_main": cycle, "d_main": cycle, "ema": cycle, "g_reg": cycle // obj.pl_interval,
              "d_reg": cycle // obj.r1_interval}
    t = sum(counts[k] * seconds[k] for k in counts)
    per_cycle = sum(counts[k] * flops[k] for k in counts)
    return dict(batch=obj.batch_size, compile_s=compile_s, mode="by phase", phase_seconds=seconds,
                seconds_per_cycle=t, images_per_s=cycle * obj.batch_size / t, gflops_per_cycle=per_cycle / 1e9,
                gflop_per_s=per_cycle / 1e9 / t, phase_gflops={k: v / 1e9 for k, v in flops.items()})


def run_one(args):
    """Measures one (setup, formulation) in this process; prints one JSON line."""
    import jax
    s = SETUPS[args.setups[0]]
    G, D = networks(s, args.modconv[0], args.num_bf16_res)
    record = dict(setup=args.setups[0], modconv=args.modconv[0], num_bf16_res=args.num_bf16_res, **{
        k: v for k, v in s.items() if k != "official"})
    res, cin, cout = largest_layer(s)
    if "sample" in args.measure:
        record["sampling"] = sampling(G, args.sample_batch or s["batch"], args.reps)
        record["conv_forward"] = plain_conv(args.sample_batch or s["batch"], res, cin, cout, args.reps)
    if "train" in args.measure:
        record["training"] = training(G, D, args.train_batch or s["batch"], args.train_reps,
                                      by_phase=args.train_by_phase)
        record["conv_train"] = plain_conv(args.train_batch or s["batch"], res, cin, cout, args.reps)
    record["peak_bytes"], record["peak_bytes_source"] = _peak_bytes()
    record.update(device=str(jax.devices()[0]), backend=jax.default_backend(), jax=jax.__version__)
    print("RESULT " + json.dumps(record), flush=True)


def _ratio(a, b):
    return a / b if a and b else None


def summarize(r):
    """Returns the printed row of one record."""
    official = SETUPS[r["setup"]].get("official") or (None, None)
    cells = [r["setup"], r["modconv"] + (f" bf16x{r['num_bf16_res']}" if r.get("num_bf16_res") else ""),
             r.get("weight_grad", "auto")]
    for kind, conv, off in (("sampling", "conv_forward", official[0]), ("training", "conv_train", official[1])):
        m = r.get(kind)
        if m is None:
            cells += ["-"] * 5
            continue
        share = _ratio(m["gflop_per_s"], r[conv]["train" if conv == "conv_train" else "forward"]["gflop_per_s"])
        vs = _ratio(m["images_per_s"], off)
        cells += [f"{m['images_per_s']:.2f}", f"{m['compile_s']:.1f}", f"{m['gflop_per_s']:.1f}",
                  f"{100 * share:.0f}%" if share else "-", f"{vs:.2f}x" if vs else "-"]
    cells.append(f"{r['peak_bytes'] / 2**20:.0f}")
    return cells


HEADER = ["setup", "modconv", "wgrad", "sample img/s", "compile s", "GFLOP/s", "of conv", "vs official",
          "train img/s", "compile s", "GFLOP/s", "of conv", "vs official", "peak MiB"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--modconv", nargs="+", default=["activation", "weights"])
    p.add_argument("--weight-grad", nargs="+", default=["auto"], choices=["auto", "xla", "matmul"],
                   help="conv weight gradient: XLA's, matmuls per tap (jaxstyle.nn.conv), or auto (matmul on CPU)")
    p.add_argument("--measure", nargs="+", default=["sample", "train"], choices=["sample", "train"])
    p.add_argument("--sample-batch", type=int, default=None, help="default: the setup's batch")
    p.add_argument("--train-batch", type=int, default=None, help="default: the setup's batch")
    p.add_argument("--num-bf16-res", type=int, default=0,
                   help="mixed precision: G and D blocks of the N highest resolutions in bfloat16 (model.num_bf16_res)")
    p.add_argument("--reps", type=int, default=5, help="timed sampling runs (median)")
    p.add_argument("--train-reps", type=int, default=2, help="timed 16-iteration training cycles (median)")
    p.add_argument("--train-by-phase", action="store_true",
                   help="time each training phase (median of --train-reps) and combine them as a cycle runs "
                        "them, instead of timing whole 16-iteration cycles (for slow setups)")
    p.add_argument("--out", default=None, help="default benchmarks/results/throughput-<backend>.json")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # child process mode
    args = p.parse_args(argv)
    if args.one:
        return run_one(args)

    # This process never imports JAX: on a GPU it would hold most of the memory the runs need.
    out, records = args.out, []
    print(" | ".join(HEADER), flush=True)
    runs = [(s, m, g) for s in args.setups for m in args.modconv for g in args.weight_grad]
    for setup, modconv, wgrad in runs:
        env = {**os.environ, "JAXSTYLE_MATMUL_WEIGHT_GRAD": {"auto": "auto", "xla": "0", "matmul": "1"}[wgrad]}
        cmd = [sys.executable, os.path.abspath(__file__), "--one", "--setups", setup, "--modconv", modconv,
               "--reps", str(args.reps), "--train-reps", str(args.train_reps), "--measure", *args.measure,
               "--num-bf16-res", str(args.num_bf16_res)] + (["--train-by-phase"] if args.train_by_phase else [])
        cmd += ["--sample-batch", str(args.sample_batch)] if args.sample_batch else []
        cmd += ["--train-batch", str(args.train_batch)] if args.train_batch else []
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{setup} {modconv}: failed ({proc.returncode}): {proc.stderr.strip()[-800:]}", flush=True)
            records.append(dict(setup=setup, modconv=modconv, weight_grad=wgrad, error=proc.stderr.strip()[-2000:]))
            continue
        records.append({**json.loads(lines[-1][len("RESULT "):]), "weight_grad": wgrad})
        print(" | ".join(summarize(records[-1])), flush=True)
        out = out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                  f"throughput-{records[-1]['backend']}.json")
        write(out, records, argv)   # after every run: a long benchmark cut short keeps what it measured
    print(f"wrote {out}" if out else "nothing measured")
    return 0 if out else 1


def write(path, records, argv):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(dict(platform=platform.platform(), cpu_count=os.cpu_count(), argv=argv or sys.argv[1:],
                       setups=SETUPS, records=records), f, indent=1)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    sys.exit(main())
