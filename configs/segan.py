"""Preset `segan`: StyleGAN2 with a linear subspace in every synthesis layer (SEGAN).

    python train.py --config configs/segan.py --workdir runs/segan                        # toyfaces 32
    python train.py --config configs/segan.py --config.model.subspace_mode=1 --workdir runs/segan1
    python train.py --config configs/segan.py:paper --config.data.source=/data/faces64.zip \\
        --workdir runs/segan64                                                             # official sizes

SEGAN (curefate/SEGan_Pytorch; METHODS.md section 2) puts an EigenGAN-style subspace (U, L, mu;
`jaxstyle/nn/subspace.py`) on each conv and ToRGB layer, with the layer's own w as coordinates:
model.subspace_mode 1 adds U diag(L) w + mu to the layer output, 2 (SEGAN's own, the default)
rescales w per coordinate by L_k sum U[..., k] before the modulation, 3 multiplies w by L.
0 is the plain StyleGAN2. EigenGAN's orthogonality regulariser 0.5 ||U^T U - I||^2 is
objective.orth_weight (0 as SEGAN, which has none; EigenGAN uses 1).

":paper" has SEGAN's values (README "Hyperparameters" and train.py): 64x64, latent 64, 8 mapping
layers at lr x 0.01, G channels min(32768 / res, 128), D channels min(32768 / res, 512), batch 16,
lr 0.002 for G and D, Adam (0, 0.99) with the lazy correction, R1 10 every 16 D steps, path length
2 every 4 G steps (on the whole batch, as its train.py does), no style mixing, G EMA
0.5 ** (32 / 10000) per step (5 kimg half-life at batch 16), 100k iterations (1600 kimg).

The default ("toy") is the default preset (toyfaces 32x32, 32 channels, z/w 64, batch 32, its
R1, path length and EMA rules) with mode-2 subspaces and, as SEGAN, no style mixing. Traversals
of a trained run: python -m jaxstyle.editing.traversal --workdir runs/segan --out traversal.png
"""

import ml_collections

from configs import default


def get_config(variant="toy"):
    """Returns the ConfigDict of SEGAN: variant "toy" (toyfaces 32x32) or "paper" (SEGAN's 64x64)."""
    if variant not in ("toy", "paper"):
        raise ValueError(f"unknown segan variant {variant!r}; use configs/segan.py:toy or :paper")
    c = default.get_config()
    c.model.subspace_mode = 2
    c.objective.style_mixing_prob = 0.0
    c.objective.orth_weight = 0.0
    if variant == "paper":
        batch = 16
        c.total_kimg = 100_000 * batch / 1000
        c.data = ml_collections.ConfigDict(dict(source="toyfaces", resolution=64, seed=0, workers=8, prefetch=2))
        c.model = ml_collections.ConfigDict(dict(
            z_dim=64, w_dim=64, mapping_layers=8, channel_base=32768, channel_max=128,
            d_channel_base=32768, d_channel_max=512, architecture="skip", d_architecture="resnet",
            conv_clamp=None, modconv="activation", mbstd_num_channels=1, subspace_mode=2,
            remat=False, num_bf16_res=0))
        c.objective = ml_collections.ConfigDict(dict(
            batch_size=batch, g_lr=0.002, d_lr=0.002, r1_gamma=10.0, r1_interval=16, pl_weight=2.0,
            pl_interval=4, pl_batch_shrink=1, style_mixing_prob=0.0, ema_kimg=10 * batch / 32,
            ema_rampup=None, mbstd_group_size=4, orth_weight=0.0))
        c.log_every_kimg, c.sample_every_kimg, c.checkpoint_every_kimg = 4.0, 50.0, 50.0
    return c
