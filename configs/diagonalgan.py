"""Preset `diagonalgan`: the official DiagonalGAN (AdaIN + DAT, progressive growing).

    python train.py --config configs/diagonalgan.py --workdir runs/diagonalgan            # toyfaces 32
    python train.py --config configs/diagonalgan.py:paper --config.data.source=/data/celebahq.zip \\
        --config.data.resolution=1024 --workdir runs/dgan1024                               # official sizes

Official values (cyclomon/DiagonalGAN train.py and model.py; METHODS.md section 1): two
mapping networks of 8 EqualLinear + lrelu 0.2 layers (He scaling, no gain) trained at
lr x 0.01 through the optimizer; AdaIN synthesis with DAT before each AdaIN up to 256x256
and no noise; progressive StyleGAN1 discriminator (from_rgb with lrelu, minibatch stddev
over the batch); non-saturating loss with R1 gamma 10 on every D step; diversity-sensitive
loss margin 0.3, weight 1; no path length, no style mixing; Adam betas (0, 0.99); G EMA
decay 0.999 per step; progressive growing from 8x8, 600 kimg per fade-in and 600 per
stable phase, the `--sched` batch and learning-rate tables. The official loop runs
5,000,000 iterations; `paper` stops at 20,000 kimg. Official runs: CelebA-HQ 1024, AFHQ 512.

The default ("toy") keeps everything but the sizes: toyfaces 32x32, 32 channels, z 64, phases
of 2 kimg and batches 64/64/32 at 8/16/32 so the three stages fit 12 kimg on a CPU, and G EMA
by the default preset's ramped rule (10 kimg, ramp-up 0.05): the official 0.999 per step has a
half-life of 693 iterations, longer than the whole toy run (after 12 kimg G_ema still held 78%
of the initial weights: FD_oracle 39,423 against 758 for the raw G).
"""

import ml_collections

from configs import default

# Official --sched tables (train.py L360-369); other resolutions use batch 8 and lr 0.001.
PAPER_BATCH = {"4": 1024, "8": 512, "16": 512, "32": 128, "64": 32, "128": 16, "256": 8, "512": 4, "1024": 4}
PAPER_LR = {"128": 0.0015, "256": 0.002, "512": 0.001, "1024": 0.001}


def get_config(variant="toy"):
    """Returns the ConfigDict of DiagonalGAN: variant "toy" (toyfaces 32x32) or "paper"."""
    if variant not in ("toy", "paper"):
        raise ValueError(f"unknown diagonalgan variant {variant!r}; use configs/diagonalgan.py:toy or :paper")
    c = default.get_config()
    c.model = ml_collections.ConfigDict(dict(
        z_dim=64, w_dim=64, mapping_layers=8, mapping_lr_multiplier=1.0, mapping_weight_gain=2**0.5,
        mapping_act_gain=1.0, channel_base=1024, channel_max=32, architecture="skip",
        d_architecture="progressive", conv_clamp=None, modconv="activation", mbstd_num_channels=1,
        style_op="adain", content_op="dat", dat_max_resolution=256))
    c.objective = ml_collections.ConfigDict(dict(
        batch_size=32, g_lr=0.001, d_lr=0.001, r1_gamma=10.0, r1_interval=0, pl_weight=0.0, pl_interval=0,
        style_mixing_prob=0.0, ema_kimg=10.0, ema_rampup=0.05, mbstd_group_size=0, mapping_lr_scale=0.01,
        ds_weight=1.0, ds_margin=0.3))
    c.progressive = ml_collections.ConfigDict(dict(
        init_resolution=8, phase_kimg=2.0, batch={"8": 64, "16": 64, "32": 32}, batch_default=8,
        lr={}, lr_default=0.001))
    if variant == "paper":
        c.total_kimg = 20000.0
        c.data = ml_collections.ConfigDict(dict(source="", resolution=1024, seed=0, workers=8, prefetch=2))
        c.model.update(z_dim=512, w_dim=512, channel_base=16384, channel_max=512)
        c.progressive.update(phase_kimg=600.0, batch=PAPER_BATCH, lr=PAPER_LR)
        c.objective.update(ema_decay=0.999, ema_rampup=None)
        c.log_every_kimg, c.sample_every_kimg, c.checkpoint_every_kimg = 10.0, 200.0, 200.0
    return c
