"""StyleGAN2-ADA's `--cfg=paper256`: the 256x256 setting of the ADA paper (FFHQ, LSUN, AFHQ).

    python train.py --config configs/paper256.py --config.data.source=/data/ffhq256.zip --workdir runs/p256

Official values (stylegan2-ada-pytorch train.py, cfg_specs['paper256']): batch 64 (mbstd
group 8), fmaps 0.5 -> channel_base 16384, channel_max 512, 8 mapping layers, z/w 512, lr
0.0025 for G and D, R1 gamma 1 (lazy, every 16), path length 2 (lazy, every 4), style
mixing 0.9, G EMA 20 kimg without ramp-up, conv_clamp 256, 25000 kimg.
"""

from configs.ada import ada_preset


def get_config():
    """Returns the ConfigDict for paper256."""
    return ada_preset(256, batch=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1.0, ema=20.0)
