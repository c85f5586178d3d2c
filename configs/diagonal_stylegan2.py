"""Preset `diagonal-stylegan2`: DiagonalGAN's content/style split on the StyleGAN2 backbone.

    python train.py --config configs/diagonal_stylegan2.py --workdir runs/diagonal_sg2

The default preset (StyleGAN2 on toyfaces 32x32, same widths, objective and budget) with one
part swapped: the noise inputs become DAT layers driven by a second (content) mapping network,
and G adds DiagonalGAN's diversity-sensitive loss (margin 0.3, weight 1: two content codes
under one style must differ by a mean |difference| of 0.3). StyleGAN2's regularisers stay:
lazy R1, path length (on the style codes, content held fixed), style mixing of the styles.
On a 2-core CPU the 12 kimg take about 10 minutes, as the default; README, "DiagonalGAN",
reports how much of the content varies with the content code after that budget.
"""

from configs import default


def get_config():
    """Returns the ConfigDict of diagonal-stylegan2 on toyfaces 32x32."""
    c = default.get_config()
    c.model.content_op = "dat"
    c.objective.ds_weight = 1.0
    c.objective.ds_margin = 0.3
    return c
