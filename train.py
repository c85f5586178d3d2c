"""Train a style-based GAN: python train.py --config configs/X.py --config.key=value --workdir DIR

Resumes automatically when DIR holds checkpoints of the same configuration.
"""


from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", "configs/default.py", "Preset file (configs/*.py).")
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, samples.", required=True)


def main(argv):
    del argv
    from jaxstyle.training.main import run
    return run(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":  # grain/multiprocessing workers re-import this file
    app.run(main)
