"""StyleGAN2 config F at 1024x1024, with StyleGAN2-ADA's `--cfg=stylegan2` values.

    python train.py --config configs/stylegan2.py --config.data.source=/data/ffhq1024.zip --workdir runs/sg2

Official values (stylegan2-ada-pytorch train.py, cfg_specs['stylegan2']; StyleGAN2 paper,
config F): batch 32 (mbstd group 4), channel_base 32768 (fmaps 1), channel_max 512, 8
mapping layers at lr x 0.01, z/w 512, G and D lr 0.002, Adam betas (0, 0.99), eps 1e-8, R1
gamma 10 every 16 D steps, path length weight 2 every 4 G steps on half batches, style
mixing 0.9, G EMA half-life 10 kimg without ramp-up, conv_clamp 256 (ADA), 25000 kimg.
ADA runs the top 4 resolutions in fp16; jaxstyle computes in float32 unless
--config.model.num_bf16_res=4 (bfloat16 there, for accelerators; README "Mixed precision").
Reference: FFHQ 1024 FID 2.84 (StyleGAN2 paper, config F).
"""

from configs.ada import ada_preset


def get_config():
    """Returns the ConfigDict for config F at 1024."""
    return ada_preset(1024, batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10.0, ema=10.0)
