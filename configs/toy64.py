"""toyfaces at 64x64: a mid-size StyleGAN2 for a GPU or a long CPU run.

    python train.py --config configs/toy64.py --workdir runs/toy64

StyleGAN2-ADA's 'auto' rules at 64x64 with batch 32: R1 gamma 0.0002 * 64^2 / 32 = 0.0256,
G EMA 10 kimg with ramp-up 0.05, lr 0.0025, mbstd group 4; 4 mapping layers, z/w 128,
channels min(8192 / res, 128) (128 up to 64x64), 2000 kimg.
"""

import ml_collections

from configs import default


def get_config():
    """Returns the ConfigDict for toyfaces 64x64."""
    c = default.get_config()
    c.total_kimg = 2000.0
    c.data.resolution = 64
    c.model = ml_collections.ConfigDict(dict(
        z_dim=128, w_dim=128, mapping_layers=4, channel_base=8192, channel_max=128, architecture="skip",
        d_architecture="resnet", conv_clamp=None, modconv="activation", mbstd_num_channels=1,
        remat=False, num_bf16_res=0))
    c.objective.r1_gamma = 0.0002 * 64**2 / 32
    c.log_every_kimg = 1.0
    c.sample_every_kimg = 50.0
    c.checkpoint_every_kimg = 50.0
    return c
