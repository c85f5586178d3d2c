"""Importers for official checkpoints."""

from jaxstyle.interop.stylegan2_ada import (ConversionError, OfficialWeights, StyleGAN2, export_state_dict,
                                            from_official, from_state_dicts, import_state_dict,
                                            load_stylegan2_ada)
from jaxstyle.interop.diagonalgan import load_diagonalgan
from jaxstyle.interop.official import read_official
from jaxstyle.models.diagonalgan import DiagonalGAN
