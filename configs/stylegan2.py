"""StyleGAN2 config F at 1024x1024, with StyleGAN2-ADA's `--cfg=stylegan2` values.

    python train.py --config configs/stylegan2.py --config.data.source=/data/ffhq1024.zip --workdir runs/sg2

Official values (stylegan2-ada-pytorch train.py, cfg_specs['stylegan2']; StyleGAN2 paper,
config F): batch 32 (mbstd group 4), channel_base 32768 (fmaps 1), channel_max 512, 8
mapping layers at lr x 0.01, z/w 512, G and D lr 0.002, Adam betas (0, 0.99), eps 1e-8, R1
gamma 10 every 16 D steps, path length weight 2 every 4 G steps on half batches, style
mixing 0.9, G EMA half-life 10 kimg without ramp-up, conv_clamp 256 (ADA), 25000 kimg.
ADA runs the top 4 resolutions in fp16; jaxstyle computes in float32.
Reference: FFHQ 1024 FID 2.84 (StyleGAN2 paper, config F).
"""

import ml_collections

from configs import default


def get_config():
    """Returns the ConfigDict for config F at 1024."""
    c = default.get_config()
    c.total_kimg = 25000.0
    c.data = ml_collections.ConfigDict(dict(source="", resolution=1024, seed=0, workers=8, prefetch=2))
    c.model = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512, architecture="skip",
        d_architecture="resnet", conv_clamp=256.0, modconv="activation", mbstd_num_channels=1))
    c.objective = ml_collections.ConfigDict(dict(
        batch_size=32, g_lr=0.002, d_lr=0.002, r1_gamma=10.0, r1_interval=16, pl_weight=2.0,
        pl_interval=4, pl_batch_shrink=2, style_mixing_prob=0.9, ema_kimg=10.0, ema_rampup=None,
        mbstd_group_size=4))
    c.log_every_kimg = 4.0
    c.sample_every_kimg = 200.0
    c.checkpoint_every_kimg = 200.0
    c.sample_grid = (4, 8)
    return c
