"""Networks: mapping, one synthesis network, discriminator, and the generator joining them."""

from jaxstyle.models.discriminator import Discriminator
from jaxstyle.models.generator import Generator
from jaxstyle.models.mapping import MappingNetwork, mix_styles, normalize_2nd_moment, truncate, update_w_avg
from jaxstyle.models.progressive_discriminator import ProgressiveDiscriminator
from jaxstyle.models.synthesis import SynthesisNetwork, channels_for, synthesis_num_ws
