"""Editing tools on trained generators. DiagonalGAN: content/style sampling, grids, per-slot
mixing and interpolation (`content_style`), attention maps and their direct manipulation
(`attention`); command line `python -m jaxstyle.editing.diagonal_cli`."""

from jaxstyle.editing.attention import (AttentionFigure, Manipulation, attention_figure,
                                        attention_maps, check_layer, colorize, edit_map,
                                        manipulate, region_pixels, shift_pixels, upsample_nearest)
from jaxstyle.editing.content_style import (DOMAINS, Codes, Figure, check_slots, content_style_grid,
                                            draw, interpolation, latents, lerp_slots, mixing,
                                            per_slot, render, replace_slots, sample, truncate)
