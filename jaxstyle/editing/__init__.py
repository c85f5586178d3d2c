"""Editing tools on trained generators, each also a command line (`python -m jaxstyle.editing.X`):

- `figures`: style-mixing grids, truncation sweeps, interpolation videos (`video` writes GIFs);
- `sefa`: closed-form directions (SeFa) and edits along them (`sefa_cli`: figure, oracle effects);
- `traversal`: SEGAN subspace traversals;
- `projection`: image -> latent, as StyleGAN2's projector (`projection_cli`);
- DiagonalGAN: content/style sampling, grids, per-slot mixing and interpolation
  (`content_style`), attention maps and their manipulation (`attention`), CLI `diagonal_cli`.

`checkpoints.open_generator` opens what every tool takes: a train.py run or a checkpoint file.
Only the DiagonalGAN names are imported here; import the others from their modules (importing a
module that is also run with -m from the package would make Python warn).
"""

from jaxstyle.editing.attention import (AttentionFigure, Manipulation, attention_figure,
                                        attention_maps, check_layer, colorize, edit_map,
                                        manipulate, region_pixels, shift_pixels, upsample_nearest)
from jaxstyle.editing.content_style import (DOMAINS, Codes, Figure, check_slots, content_style_grid,
                                            draw, interpolation, latents, lerp_slots, mixing,
                                            per_slot, render, replace_slots, sample, truncate)
