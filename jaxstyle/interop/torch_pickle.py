"""Reads files written by `torch.save` into NumPy, without torch and without executing the file.

A torch checkpoint is a pickle, and unpickling can call any importable function the file names.
This reader resolves only an allowlist of names (the tensor and parameter rebuild functions, the
storage classes, dtype handles, `collections.OrderedDict` and a few builtins for containers), each
to a function of this module; any other name raises `UnsafePickleError` before anything runs.

Formats (`file_format` tells them apart by content, not by extension):
- "zip" (torch >= 1.6): a zip archive holding `<archive>/data.pkl`, the storages as raw bytes in
  `<archive>/data/<key>` and their byte order in `<archive>/byteorder`;
- "legacy" (`_use_new_zipfile_serialization=False`): pickles of the magic number, the protocol
  version and the system info, then the object pickle, then the sorted storage keys, then each
  storage as an int64 element count and its bytes (little-endian);
- "pickle": a plain pickle, read with the same allowlist. Tensors in a plain pickle carry their
  storage as `torch.storage._load_from_bytes(bytes)`, the bytes a legacy torch.save of the storage.
Tensors come back as NumPy arrays (bfloat16 as float32), parameters as their tensors, everything
else as the plain Python values it was.

Official StyleGAN2-ADA / StyleGAN3 network pickles store every network object through
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, which would `exec` the source code
the pickle carries (meta["module_src"]). Here that name resolves to a function returning a
`PersistentObject`: the class name, the object's state (parameters, buffers, submodules,
constructor arguments) and the source kept as text, never run. `dnnlib.util.EasyDict` reads as a
dict, `argparse.Namespace` (rosinality's `args`) as a dict of its attributes, NumPy scalars
(official layers keep gains as np.float64) as Python numbers.
"""

import collections
import dataclasses
import io
import operator
import os
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_LEGACY_HEAD = b"\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")  # LONG1, 10 bytes, the magic


class TorchPickleError(ValueError):
    """A file is not a readable torch.save checkpoint (wrong kind, damaged or truncated)."""


class UnsafePickleError(TorchPickleError):
    """A pickle asks for a function or class outside the allowlist; nothing was executed."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype          # element type as stored (bfloat16 as uint16)
    bfloat16: bool = False


_STORAGE_TYPES = {name: _StorageType(name, np.dtype(dt), name == "BFloat16Storage") for name, dt in {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "ComplexFloatStorage": "c8",
    "ComplexDoubleStorage": "c16", "UntypedStorage": "u1"}.items()}

# torch dtype handles (`torch.float32`, ...) come back as the name of the dtype.
_DTYPE_NAMES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
                "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
                "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "short": "int16",
                "int8": "int8", "uint8": "uint8", "bool": "bool", "complex64": "complex64",
                "cfloat": "complex64", "complex128": "complex128", "cdouble": "complex128"}


class _Unread:
    """Stands for a legacy storage on the first pass, before the storages have been read."""


_UNREAD = _Unread()


def _rebuild_tensor(storage, offset, size, stride, *_requires_grad_hooks_metadata):
    """Returns a C-contiguous copy of the tensor (size, stride in elements) over a 1-D storage."""
    if storage is _UNREAD:
        return _UNREAD
    if not isinstance(storage, np.ndarray) or storage.ndim != 1 or not storage.flags.c_contiguous:
        raise TorchPickleError(f"a tensor's storage is {type(storage).__name__}, not a storage record")
    try:
        offset = operator.index(offset)
        size, stride = tuple(map(operator.index, size)), tuple(map(operator.index, stride))
    except TypeError:
        raise TorchPickleError("a tensor's offset, size or stride is not made of integers") from None
    if len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise TorchPickleError(f"a tensor has an invalid layout: offset {offset}, size {size}, stride {stride}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # as_strided reads whatever memory the strides point at: keep every element inside the storage.
    if last >= storage.size:
        raise TorchPickleError(f"a tensor (offset {offset}, size {size}, stride {stride}) reaches element "
                               f"{last} of a storage of {storage.size}; the file is damaged")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size, [s * storage.itemsize for s in stride],
                                           writeable=False)
    return np.array(view, order="C")


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """Returns the parameter's tensor; requires_grad, hooks and Python attributes are dropped."""
    return data


def _encode(text, encoding="latin1"):
    """Returns bytes as pickle protocol 2 writes them: `_codecs.encode(str, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refusing _codecs.encode with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


def _device(kind, index=None):
    """Returns a torch.device as its string, "cpu" or "cuda:0"."""
    return f"{kind}:{index}" if index is not None else str(kind)


def _bytearray(data=b"", *encoding):
    """Returns bytearray(data, *encoding) for bytes or str data (never a size to allocate)."""
    if not isinstance(data, (bytes, str)):
        raise UnsafePickleError(f"refusing bytearray({type(data).__name__})")
    return bytearray(data, *encoding)


@dataclasses.dataclass(frozen=True)
class PersistentObject:
    """A network object pickled through `torch_utils.persistence`, as read: its class name, its
    state (the module's __dict__: `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...)
    and the source code of its module, which stays text: nothing in it is run."""

    class_name: str
    state: dict
    module_src: str = dataclasses.field(repr=False)
    version: object = None


def _persistent_object(meta):
    """Returns the PersistentObject for official `_reconstruct_persistent_obj(meta)`, without the
    `exec(meta["module_src"])` that the official function performs."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise TorchPickleError(f"a torch_utils.persistence record is not a class record: {repr(meta)[:80]}")
    name, src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not (isinstance(name, str) and isinstance(src, str) and isinstance(state, (dict, type(None)))):
        raise TorchPickleError("a torch_utils.persistence record lacks its class_name, module_src or state")
    return PersistentObject(name, dict(state or {}), src, meta.get("version"))


class EasyDictRecord(dict):
    """`dnnlib.util.EasyDict` as read: a plain dict of its items."""

    def __setstate__(self, state):
        if state:  # an EasyDict keeps everything in its items; refuse anything else
            raise UnsafePickleError("a dnnlib.util.EasyDict carries attributes besides its items")


class NamespaceRecord(dict):
    """`argparse.Namespace` as read (rosinality's `args`): a dict of its attributes."""

    def __setstate__(self, state):
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise UnsafePickleError("an argparse.Namespace state is not a dict of attribute names")
        self.update(state)


def _numpy_dtype(spec, *flags):
    """Returns a new np.dtype for a numeric type named by a string; anything else is refused."""
    # A copy, as numpy's own unpickling makes: the BUILD that follows must not alter the shared one.
    dtype = np.dtype(spec, False, True) if isinstance(spec, str) else None
    if dtype is None or dtype.kind not in "biufc":
        raise UnsafePickleError(f"refusing numpy.dtype({spec!r}): only numeric scalars are read")
    return dtype


def _numpy_scalar(dtype, data=b""):
    """Returns the Python number a pickled NumPy scalar holds (official layers store gains so)."""
    if not (isinstance(dtype, np.dtype) and dtype.kind in "biufc" and isinstance(data, bytes)
            and len(data) == dtype.itemsize):
        raise UnsafePickleError(f"refusing numpy scalar of {dtype!r} from {len(data)!r} bytes")
    return np.frombuffer(data, dtype, count=1)[0].item()


def _storage_from_bytes(data):
    """Returns the 1-D storage that `torch.storage._load_from_bytes(data)` would: `data` is a
    torch.save (legacy, or zip in newer torch) of one storage, read with this same allowlist."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"refusing torch.storage._load_from_bytes({type(data).__name__})")
    source = "a storage embedded in the pickle"
    buf = io.BytesIO(bytes(data))
    storage = _load_zip(buf, source) if data[:4] == b"PK\x03\x04" else _load_legacy(buf, source)
    if not (isinstance(storage, np.ndarray) and storage.ndim == 1):
        raise TorchPickleError(f"{source} holds {type(storage).__name__}, not a storage")
    return storage


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("torch", "device"): _device,
    ("torch.storage", "UntypedStorage"): _STORAGE_TYPES["UntypedStorage"],
    ("_codecs", "encode"): _encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): _bytearray,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("dnnlib.util", "EasyDict"): EasyDictRecord,
    ("argparse", "Namespace"): NamespaceRecord,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,       # pickles from numpy 1
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,      # and numpy 2
    **{("torch", name): st for name, st in _STORAGE_TYPES.items()},
    **{("torch", name): canonical for name, canonical in _DTYPE_NAMES.items()},
}


class _Unpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only `_ALLOWED` names and storage records."""

    def __init__(self, file, source, storage=None):
        super().__init__(file, encoding="utf-8")
        self._source, self._storage = source, storage

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(f"refusing to load {module}.{name} from {self._source}: jaxstyle reads "
                                    "only tensors and plain containers; nothing in the file is executed")
        return found

    def persistent_load(self, pid):
        if self._storage is None or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"refusing persistent record {repr(pid)[:80]} from {self._source}: "
                                    "only storage records are read")
        # Identity, not isinstance: a pickle could build its own _StorageType (NEWOBJ + BUILD).
        if not any(pid[1] is t for t in _STORAGE_TYPES.values()):
            raise TorchPickleError(f"{self._source}: a storage record names no storage type: {repr(pid)[:80]}")
        return self._storage(pid)


def _unpickle(file, source, storage=None):
    """Returns the next object unpickled from `file`; damage is reported as TorchPickleError."""
    try:
        return _Unpickler(file, source, storage).load()
    except (TorchPickleError, zipfile.BadZipFile):
        raise
    except Exception as e:  # noqa: BLE001 (anything else a malformed pickle raises)
        raise TorchPickleError(f"{source}: damaged pickle ({type(e).__name__}: {e}); "
                               "the file may be truncated") from None


def _storage_array(raw, stype, numel, little_endian, what):
    """Returns the storage's elements as a 1-D array (bfloat16 widened to float32)."""
    numel = operator.index(numel)
    dtype = stype.dtype.newbyteorder("<" if little_endian else ">")
    if numel < 0 or len(raw) < numel * dtype.itemsize:
        raise TorchPickleError(f"{what} holds {len(raw)} bytes, expected {numel * dtype.itemsize}; "
                               "the file may be truncated")
    array = np.frombuffer(raw, dtype, count=numel)
    if stype.bfloat16:  # bfloat16 is the upper half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _load_zip(file, path):
    """Returns the object in a torch.save zip archive (a path or binary file); `path` names it."""
    with zipfile.ZipFile(file) as zf:
        names = set(zf.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchPickleError(f"{path}: a zip archive, but not a torch.save checkpoint "
                                   "(no single <archive>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        little = True
        if prefix + "byteorder" in names:
            little = zf.read(prefix + "byteorder").decode("ascii", "replace").strip() != "big"
        storages = {}

        def storage(pid):
            _, stype, key, _location, numel = pid[:5]
            entry = f"{prefix}data/{key}"
            if entry not in storages:
                if entry not in names:
                    raise TorchPickleError(f"{path}: storage {key!r} is missing from the archive")
                storages[entry] = _storage_array(zf.read(entry), stype, numel, little, f"{path}: {entry}")
            return storages[entry]

        with zf.open(pickles[0]) as f:
            return _unpickle(f, path, storage)


def _read_exact(f, n, path):
    # Check against the file's size first, so a damaged count never asks for a huge buffer.
    here = f.tell()
    size = f.seek(0, os.SEEK_END)
    f.seek(here)
    data = f.read(min(n, size - here))
    if len(data) != n:
        raise TorchPickleError(f"{path}: ends {n - len(data)} bytes early; the file is truncated")
    return data


def _load_legacy(f, path):
    if _unpickle(f, path) != LEGACY_MAGIC:
        raise TorchPickleError(f"{path}: not a legacy torch file (wrong magic number)")
    if (version := _unpickle(f, path)) != LEGACY_PROTOCOL:
        raise TorchPickleError(f"{path}: legacy torch protocol {version!r}, expected {LEGACY_PROTOCOL}")
    _unpickle(f, path)  # sys info; storages are little-endian whatever it says
    start = f.tell()
    # The storages follow the object pickle, and their element sizes are only named inside it:
    # one pass collects the storage types, a second builds the tensors once the bytes are read.
    types = {}

    def collect(pid):
        types[pid[2]] = pid[1]
        return _UNREAD

    _unpickle(f, path, collect)
    keys = _unpickle(f, path)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or set(types) - set(keys):
        raise TorchPickleError(f"{path}: the storage key list does not match the storages the object uses")
    storages = {}
    for key in keys:
        if key not in types:
            raise TorchPickleError(f"{path}: storage {key!r} has no record, so its element size is unknown")
        (count,) = struct.unpack("<q", _read_exact(f, 8, path))
        raw = _read_exact(f, max(count, 0) * types[key].dtype.itemsize, path)
        storages[key] = _storage_array(raw, types[key], count, True, f"{path}: storage {key!r}")

    def lookup(pid):
        root = storages[pid[2]]
        if len(pid) > 5 and pid[5] is not None:  # (view key, offset, size) in elements (torch < 1.0)
            _, offset, size = pid[5]
            return root[operator.index(offset):operator.index(offset) + operator.index(size)]
        return root

    f.seek(start)
    return _unpickle(f, path, lookup)


def file_format(path):
    """Returns "zip", "legacy" or "pickle" for a torch.save file or plain pickle, "other-zip" for a
    zip archive without data.pkl (an .npz, say), None for anything else. Raises TorchPickleError
    for a damaged zip archive and FileNotFoundError for a missing file."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip archive (or an empty one)
        try:
            with zipfile.ZipFile(path) as zf:
                found = any(n.endswith("/data.pkl") and n.count("/") == 1 for n in zf.namelist())
        except zipfile.BadZipFile as e:
            raise TorchPickleError(f"{path}: damaged zip archive ({e}); the file may be truncated") from None
        return "zip" if found else "other-zip"
    if head[:1] == b"\x80" and len(head) >= 2:
        body = head[11:] if head[2:3] == b"\x95" else head[2:]  # protocol >= 4 opens with a FRAME
        return "legacy" if body.startswith(_LEGACY_HEAD) else "pickle"
    return None


def load(path):
    """Returns the object a torch.save file (zip or legacy) or plain pickle holds: nested dicts,
    lists and tuples of NumPy arrays and plain values. Raises UnsafePickleError for anything
    outside the allowlist and TorchPickleError for a file that is not such a file or is damaged."""
    path = os.fspath(path)
    kind = file_format(path)
    try:
        if kind == "zip":
            return _load_zip(path, path)
        if kind in ("legacy", "pickle"):
            with open(path, "rb") as f:
                return _load_legacy(f, path) if kind == "legacy" else _unpickle(f, path)
    except zipfile.BadZipFile as e:
        raise TorchPickleError(f"{path}: damaged zip archive ({e}); the file may be truncated") from None
    raise TorchPickleError(f"{path} is not a torch.save checkpoint: neither a zip archive with "
                           "<archive>/data.pkl nor a legacy torch file nor a pickle")
