"""The one interface every dataset implements: a random-access sequence of examples.

An example is a dict of NumPy arrays:
    "image":   uint8 (H, W, C), H = W = source.resolution, C = source.num_channels (3 for RGB)
    "label":   float32 (label_dim,)   only when label_dim > 0 (one-hot class or dataset.json labels)
    "factors": float32 (F,)           only for sources with ground truth (toyfaces)
Sources are deterministic: source[i] is the same example every time, in every process, so the
loader can shard, shuffle and resume by index alone.
"""

import operator
from typing import Protocol, runtime_checkable


class DataError(ValueError):
    """A dataset cannot be used: the message names the file or setting and what to do."""


@runtime_checkable
class Source(Protocol):
    """Random-access dataset of examples at one square resolution."""

    resolution: int
    num_channels: int
    label_dim: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...


def xflip_index(index, num_items, xflip):
    """Returns (item, mirrored) for an example index; xflip doubles a dataset as the official one does.

    Index i >= num_items is item i - num_items mirrored left-right; negative indices count back.
    """
    i = operator.index(index)
    n = num_items * (2 if xflip else 1)
    if not -n <= i < n:
        raise IndexError(f"index {index} out of range for {n} examples")
    i %= n
    return i % num_items, i >= num_items
