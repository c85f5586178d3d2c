"""Checkpoints of the whole train state with orbax: asynchronous, keep the last k, resume, refuse a mismatch.

A checkpoint holds the TrainState (PRNG key stored as raw key data), the data loader's
reading state and the run's config. Orbax writes each step into a temporary directory and
renames it when complete, so a run killed at any moment leaves only whole checkpoints.
"""

import json
import os

import jax
import orbax.checkpoint as ocp


class CheckpointMismatch(ValueError):
    """A work directory holds checkpoints of a different configuration."""


def _diff(saved, current, prefix=""):
    keys = sorted(set(saved) | set(current))
    out = []
    for k in keys:
        a, b = saved.get(k, "<missing>"), current.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: checkpoint {a!r}, now {b!r}")
    return out


def _storable(state):
    return state.replace(key=jax.random.key_data(state.key))


class Checkpointer:
    """Saves and restores (TrainState, data state) in `directory`, keeping the last `keep`."""

    def __init__(self, directory, keep=3, asynchronous=True):
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=asynchronous,
                                               create=True)
        self.manager = ocp.CheckpointManager(os.path.abspath(directory),
                                             options=options, item_names=("state", "meta"))

    def latest_step(self):
        """Returns the step of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, step, state, data_state, identity):
        """Starts saving asynchronously; `identity` is the config part a resume must match."""
        meta = {"data": data_state, "identity": identity}
        # force: the loop decides when to save. Orbax's own policy may otherwise skip a save
        # (for instance while an earlier asynchronous save is still committing), which once
        # lost the checkpoint a SIGTERM had asked for.
        saved = self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_storable(state)), meta=ocp.args.JsonSave(meta)), force=True)
        if not saved:
            raise RuntimeError(f"orbax did not save step {step} in {self.manager.directory}")

    def restore(self, template, identity):
        """Returns (state, data state) from the newest checkpoint, or None when there is none.

        `template` is a TrainState with the right shapes and shardings. Raises
        CheckpointMismatch if the checkpoint was written by another configuration.
        """
        step = self.latest_step()
        if step is None:
            return None
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        saved = json.loads(json.dumps(meta["identity"]))
        current = json.loads(json.dumps(identity))
        diff = _diff(saved, current)
        if diff:
            raise CheckpointMismatch(
                f"{self.manager.directory} holds checkpoints of another configuration ("
                + "; ".join(diff[:5]) + ("; ..." if len(diff) > 5 else "")
                + "). Use a new --workdir, or the same config to resume.")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _storable(template))
        state = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract)))["state"]
        return state.replace(key=jax.random.wrap_key_data(state.key)), meta["data"]

    def wait(self):
        """Blocks until pending asynchronous saves are on disk."""
        self.manager.wait_until_finished()

    def close(self):
        """Finishes pending saves and releases the manager."""
        self.manager.wait_until_finished()
        self.manager.close()
