"""Train a style-based GAN: python train.py --config configs/X.py --config.key=value --workdir DIR

Resumes automatically when DIR holds checkpoints of the same configuration. Without --config,
the preset is DIR/config.py when DIR has one (python -m jaxstyle.convert writes it), else
configs/default.py.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from jaxstyle.training.main import default_preset

config_flags.DEFINE_config_file("config", default_preset(sys.argv), "Preset file (configs/*.py).")
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, samples.", required=True)


def main(argv):
    del argv
    from jaxstyle.training.main import run
    return run(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":  # grain/multiprocessing workers re-import this file
    app.run(main)
