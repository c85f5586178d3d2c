"""Default preset: StyleGAN2 on toyfaces 32x32, small enough to learn visibly on a 2-core CPU.

    python train.py --config configs/default.py --workdir runs/default

(`make train` runs exactly this.) StyleGAN2-ADA's objective (non-saturating loss, lazy R1
every 16 steps, path length every 4, style mixing 0.9, Adam 0/0.99) on a narrow network:
32 channels at every resolution, 2 mapping layers, z/w 64, batch 32. R1 gamma follows
ADA's 'auto' rule 0.0002 * res^2 / batch; G EMA 10 * batch / 32 kimg with ramp-up 0.05.

What it reaches (2-core CPU, 12 kimg): about 10 minutes at roughly 45 s/kimg; FD_oracle of G_ema
falls from about 19,000 at initialisation to under 1% of that (see README, "Training").
Samples show head-shaped blobs on coloured backgrounds, not yet detailed faces.
"""

import ml_collections


def get_config():
    """Returns the default preset's ConfigDict."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.total_kimg = 12.0
    c.data = ml_collections.ConfigDict(dict(source="toyfaces", resolution=32, seed=0, workers=2, prefetch=2))
    c.model = ml_collections.ConfigDict(dict(
        z_dim=64, w_dim=64, mapping_layers=2, channel_base=1024, channel_max=32, architecture="skip",
        d_architecture="resnet", conv_clamp=None, modconv="activation", mbstd_num_channels=1,
        remat=False, num_bf16_res=0))
    batch = 32
    c.objective = ml_collections.ConfigDict(dict(
        batch_size=batch, g_lr=0.0025, d_lr=0.0025, r1_gamma=0.0002 * 32**2 / batch, r1_interval=16,
        pl_weight=2.0, pl_interval=4, pl_batch_shrink=2, style_mixing_prob=0.9,
        ema_kimg=10 * batch / 32, ema_rampup=0.05, mbstd_group_size=4))
    c.log_every_kimg = 0.32
    c.sample_every_kimg = 2.0
    c.checkpoint_every_kimg = 2.0
    c.keep_checkpoints = 3
    c.sample_grid = (4, 8)
    c.tensorboard = True
    return c
