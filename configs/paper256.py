"""StyleGAN2-ADA's `--cfg=paper256`: the 256x256 setting of the ADA paper (FFHQ, LSUN, AFHQ).

    python train.py --config configs/paper256.py --config.data.source=/data/ffhq256.zip --workdir runs/p256

Official values (stylegan2-ada-pytorch train.py, cfg_specs['paper256']): batch 64 (mbstd
group 8), fmaps 0.5 -> channel_base 16384, channel_max 512, 8 mapping layers, z/w 512, lr
0.0025 for G and D, R1 gamma 1 (lazy, every 16), path length 2 (lazy, every 4), style
mixing 0.9, G EMA 20 kimg without ramp-up, conv_clamp 256, 25000 kimg.
"""

import ml_collections

from configs import default


def get_config():
    """Returns the ConfigDict for paper256."""
    c = default.get_config()
    c.total_kimg = 25000.0
    c.data = ml_collections.ConfigDict(dict(source="", resolution=256, seed=0, workers=8, prefetch=2))
    c.model = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384, channel_max=512, architecture="skip",
        d_architecture="resnet", conv_clamp=256.0, modconv="activation", mbstd_num_channels=1))
    c.objective = ml_collections.ConfigDict(dict(
        batch_size=64, g_lr=0.0025, d_lr=0.0025, r1_gamma=1.0, r1_interval=16, pl_weight=2.0,
        pl_interval=4, pl_batch_shrink=2, style_mixing_prob=0.9, ema_kimg=20.0, ema_rampup=None,
        mbstd_group_size=8))
    c.log_every_kimg = 4.0
    c.sample_every_kimg = 200.0
    c.checkpoint_every_kimg = 200.0
    return c
