"""Train state, jit-compiled sharded training phases, and the training loop."""

from jaxstyle.training.state import TrainState, ema_beta, ema_update, lazy_adam
from jaxstyle.training.steps import Objective, Trainer
