"""Importers for official checkpoints."""

from jaxstyle.interop.stylegan2_ada import (ConversionError, StyleGAN2, export_state_dict,
                                            from_state_dicts, import_state_dict, load_stylegan2_ada)
from jaxstyle.interop.diagonalgan import load_diagonalgan
from jaxstyle.models.diagonalgan import DiagonalGAN
