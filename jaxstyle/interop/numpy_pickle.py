"""Reads pickles of NumPy arrays in plain containers without executing anything else.

`pickle.load` calls whatever importable function a file names, so a weights file from the internet
is a program. This reader resolves only the names that pickled NumPy arrays need (the ndarray
rebuild functions, `numpy.ndarray`, `numpy.dtype`, `collections.OrderedDict`, the builtin
containers, and `_codecs.encode` that protocol-2 pickles use for raw bytes) and raises
`UnsafePickleError` for any other name before it is called. Arrays of Python objects are refused
too, since their elements would be arbitrary values rather than numbers.
"""

import _codecs
import builtins
import collections
import io
import pickle

import numpy as np

from jaxstyle.interop.torch_pickle import UnsafePickleError, _bytearray

# numpy >= 2 moved numpy.core to numpy._core; pickles name either, both mean the same function.
_multiarray = getattr(np, "_core", None) or np.core
_reconstruct = _multiarray.multiarray._reconstruct


def _dtype(spec, *args):
    """Returns np.dtype(spec, ...), refusing object dtypes (their elements would be unpickled objects)."""
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise UnsafePickleError(f"a pickled array has object dtype {spec!r}; only numeric arrays are read")
    return dtype


def _encode(text, encoding="utf-8"):
    """Returns bytes for protocol-2 pickles, which store bytes as latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r} is not how pickle stores bytes")
    return _codecs.encode(text, encoding)


def _frombuffer(buffer, dtype, shape, order):
    """Returns the array that protocol-5 pickles store as a buffer (numpy's _frombuffer)."""
    return np.frombuffer(buffer, dtype=_dtype(dtype)).reshape(shape, order=order)


_ALLOWED = {
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _encode,
    ("builtins", "bytearray"): _bytearray,   # from data only, never a size to allocate
    **{("builtins", name): getattr(builtins, name) for name in ("dict", "list", "tuple", "set", "frozenset")},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"the pickle asks for {module}.{name}, which is not needed for NumPy arrays; refused "
                "without running it") from None


def loads(data):
    """Returns the object (NumPy arrays in dicts, lists, tuples) pickled in `data` (bytes)."""
    return load_file(io.BytesIO(data))


def load_file(fileobj):
    """Returns the object pickled in an open binary file; raises UnsafePickleError for other names."""
    return _Unpickler(fileobj).load()


def load(path):
    """Returns the object (NumPy arrays in plain containers) pickled in the file at `path`."""
    with open(path, "rb") as f:
        return load_file(f)
