"""Entry point behind train.py: multi-host set-up, one clear message for user errors."""

import os
import sys

import jax


def default_preset(argv):
    """Returns the preset train.py uses without --config: DIR/config.py when `--workdir DIR` has
    one (a converted or exported run carries its own), else configs/default.py."""
    for i, arg in enumerate(argv):
        workdir = arg.split("=", 1)[1] if arg.startswith("--workdir=") else (
            argv[i + 1] if arg == "--workdir" and i + 1 < len(argv) else None)
        if workdir and os.path.isfile(os.path.join(workdir, "config.py")):
            return os.path.join(workdir, "config.py")
    return "configs/default.py"


def maybe_initialize_distributed():
    """Calls jax.distributed.initialize() when the environment describes a multi-process run."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("JAXSTYLE_NUM_PROCESSES"):
        kwargs = {}
        if os.environ.get("JAXSTYLE_NUM_PROCESSES"):
            kwargs = dict(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                          num_processes=int(os.environ["JAXSTYLE_NUM_PROCESSES"]),
                          process_id=int(os.environ["JAXSTYLE_PROCESS_ID"]))
        if jax.config.jax_platforms in (None, "", "cpu"):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts talk over gloo
        jax.distributed.initialize(**kwargs)


def run(config, workdir):
    """Runs training; returns a process exit code (0 done or preempted, 2 user error, 3 NaN)."""
    from jaxstyle.checkpoint import CheckpointMismatch
    from jaxstyle.data.source import DataError
    from jaxstyle.training.loop import ConfigError, NonFiniteLoss, train

    import absl.logging
    absl.logging.set_verbosity(absl.logging.WARNING)  # orbax logs every file it writes at INFO
    maybe_initialize_distributed()
    try:
        train(config, workdir)
    except (DataError, CheckpointMismatch, ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0
