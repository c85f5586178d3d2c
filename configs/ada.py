"""StyleGAN2-ADA's preset table (train.py cfg_specs) as one function the full-size presets share."""

import ml_collections

from configs import default


def ada_preset(resolution, batch, mbstd, fmaps, lrate, gamma, ema, ramp=None, mapping_layers=8):
    """Returns a ConfigDict with one row of cfg_specs: channel_base = fmaps * 32768, conv_clamp 256,
    z/w 512, lazy R1 every 16, path length 2 every 4, style mixing 0.9, 25000 kimg.

    The official run computes its 4 highest resolutions in float16 (num_fp16_res 4); these presets
    compute in float32, and model.num_bf16_res=4 gives the same split in bfloat16."""
    c = default.get_config()
    c.total_kimg = 25000.0
    c.data = ml_collections.ConfigDict(dict(source="", resolution=resolution, seed=0, workers=8, prefetch=2))
    c.model = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=mapping_layers, channel_base=int(fmaps * 32768),
        channel_max=512, architecture="skip", d_architecture="resnet", conv_clamp=256.0,
        modconv="activation", mbstd_num_channels=1, remat=False, num_bf16_res=0))
    c.objective = ml_collections.ConfigDict(dict(
        batch_size=batch, g_lr=lrate, d_lr=lrate, r1_gamma=gamma, r1_interval=16, pl_weight=2.0,
        pl_interval=4, pl_batch_shrink=2, style_mixing_prob=0.9, ema_kimg=ema, ema_rampup=ramp,
        mbstd_group_size=mbstd))
    c.log_every_kimg = 4.0
    c.sample_every_kimg = 200.0
    c.checkpoint_every_kimg = 200.0
    return c
