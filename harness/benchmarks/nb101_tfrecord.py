"""NAS-Bench-101's official ``.tfrecord`` files, read without TensorFlow.

A file is a concatenation of TFRecord frames (``uint64`` length, masked CRC32C of those 8 bytes,
the data, masked CRC32C of the data; little-endian). Each data block is UTF-8 JSON
``[module_hash, epochs, adjacency, operations, metrics]``: the adjacency a row-major '0'/'1'
string, the operations comma-separated, the metrics a base64 ``nasbench.ModelMetrics`` protobuf
(proto2: ``evaluation_data`` repeated, ``trainable_parameters``, ``total_time``), decoded here by
a small wire-format reader (field numbers from the official ``model_metrics.proto``).

Both CRCs are checked; a truncated or corrupt file stops with one line naming the byte offset of
the record and what was expected there. ``google-crc32c`` (``pip install google-crc32c``) computes
the CRC natively; without it a table-driven pure-Python CRC is used (correct, about 10 MB/s).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..errors import HarnessError

try:  # the maintained native implementation, when installed
    import google_crc32c as _native_crc
except ImportError:  # pragma: no cover - depends on the environment
    _native_crc = None

_POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected
_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes) -> int:
    """CRC32C of ``data`` (``b"123456789"`` -> 0xE3069283): native where google-crc32c is installed."""
    if _native_crc is not None:
        return int(_native_crc.value(bytes(data)))
    return crc32c_python(data)


def crc32c_python(data: bytes) -> int:
    """CRC32C of ``data``, table-driven in pure Python (about 10 MB/s)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15, then add 0xA282EAD8 (mod 2^32)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


class CorruptRecord(HarnessError):
    """A TFRecord frame that is truncated or fails its CRC: names the file and the byte offset."""


def _fail(path, offset: int, what: str) -> CorruptRecord:
    return CorruptRecord(f"{path}: the record at byte {offset} {what}",
                         "download the file again (nas-harness data check names its size and sha256); "
                         "nothing imported before it is lost")


def iter_frames(stream: BinaryIO, path="<stream>") -> Iterator[tuple[int, bytes]]:
    """(byte offset, data) of every TFRecord frame, both CRCs checked."""
    offset = 0
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise _fail(path, offset, f"is truncated: {len(header)} of the 12 header bytes (length and its CRC)")
        length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
        if masked_crc32c(length_bytes) != length_crc:
            raise _fail(path, offset, "has a length field that fails its CRC32C (the file is corrupt here)")
        (length,) = struct.unpack("<Q", length_bytes)
        data = stream.read(length)
        if len(data) < length:
            raise _fail(path, offset, f"is truncated: {len(data)} of its {length} data bytes")
        footer = stream.read(4)
        if len(footer) < 4:
            raise _fail(path, offset, f"is truncated: {len(footer)} of the 4 bytes of its data CRC")
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise _fail(path, offset, "has data that fail their CRC32C (the file is corrupt here)")
        yield offset, data
        offset += 12 + length + 4


# -- ModelMetrics, proto2 wire format ------------------------------------------------------------
EVALUATION_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy",
                     5: "test_accuracy"}  # doubles; 6: checkpoint_path (string)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("varint runs past the end")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a message: varints as int, fixed64 as 8 bytes, fixed32
    as 4 bytes, length-delimited as bytes."""
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} (field {number}) is not one ModelMetrics uses")
        if i > len(buf):
            raise ValueError(f"field {number} runs past the end")
        yield number, wire, value


def _double(raw: bytes) -> float:
    return struct.unpack("<d", raw)[0]


_PROTOBUF: list = []  # [ModelMetrics class] once built, [None] when the protobuf package is missing


def metrics_class():
    """``nasbench.ModelMetrics`` built with the maintained ``protobuf`` package from the official
    ``model_metrics.proto``'s fields (None without the package)."""
    if not _PROTOBUF:
        try:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        except ImportError:  # pragma: no cover - depends on the environment
            _PROTOBUF.append(None)
            return None
        f = descriptor_pb2.FieldDescriptorProto
        fdp = descriptor_pb2.FileDescriptorProto(name="nas_harness_model_metrics.proto", package="nas_harness_nb101",
                                                 syntax="proto2")
        ev = fdp.message_type.add(name="EvaluationData")
        for number, name in EVALUATION_FIELDS.items():
            ev.field.add(name=name, number=number, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
        ev.field.add(name="checkpoint_path", number=6, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
        mm = fdp.message_type.add(name="ModelMetrics")
        mm.field.add(name="evaluation_data", number=1, type=f.TYPE_MESSAGE,
                     type_name=".nas_harness_nb101.EvaluationData", label=f.LABEL_REPEATED)
        mm.field.add(name="trainable_parameters", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
        mm.field.add(name="total_time", number=3, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        _PROTOBUF.append(message_factory.GetMessageClass(pool.FindMessageTypeByName("nas_harness_nb101.ModelMetrics")))
    return _PROTOBUF[0]


def decode_model_metrics(raw: bytes) -> dict:
    """``nasbench.ModelMetrics`` as a dict: ``evaluation_data`` (a list of dicts with the five
    doubles that are set, and ``checkpoint_path``), ``trainable_parameters``, ``total_time``.

    Decoded by the ``protobuf`` package (upb, about 6x faster) where it is installed, else by
    :func:`decode_model_metrics_python`; both give the same dict (a test checks)."""
    cls = metrics_class()
    if cls is None:
        return decode_model_metrics_python(raw)
    from google.protobuf.message import DecodeError

    try:
        msg = cls.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"the metrics protobuf does not parse ({err})") from None
    evaluations = []
    for e in msg.evaluation_data:
        entry = {name: getattr(e, name) for name in EVALUATION_FIELDS.values() if e.HasField(name)}
        if e.HasField("checkpoint_path"):
            entry["checkpoint_path"] = e.checkpoint_path
        evaluations.append(entry)
    return {"evaluation_data": evaluations,
            "trainable_parameters": msg.trainable_parameters if msg.HasField("trainable_parameters") else None,
            "total_time": msg.total_time if msg.HasField("total_time") else math.nan}


def decode_model_metrics_python(raw: bytes) -> dict:
    """:func:`decode_model_metrics` by a small wire-format reader of its own (no dependency)."""
    out: dict = {"evaluation_data": [], "trainable_parameters": None, "total_time": math.nan}
    for number, wire, value in _fields(raw):
        if number == 1 and wire == 2:
            entry: dict = {}
            for n, w, v in _fields(value):
                if n in EVALUATION_FIELDS and w == 1:
                    entry[EVALUATION_FIELDS[n]] = _double(v)
                elif n == 6 and w == 2:
                    entry["checkpoint_path"] = v.decode("utf-8", "replace")
            out["evaluation_data"].append(entry)
        elif number == 2 and wire == 0:
            out["trainable_parameters"] = value - (1 << 64) if value >= 1 << 63 else value  # int32 as varint
        elif number == 3 and wire == 1:
            out["total_time"] = _double(value)
    return out


@dataclass
class NB101Record:
    """One training run: the cell (as stored: the canonical isomorph), its budget and its metrics.
    ``halfway`` and ``final``: ``evaluation_data[1]`` and ``[2]`` (``[0]`` is step 0)."""

    module_hash: str
    epochs: int
    matrix: np.ndarray  # V x V int8
    ops: list[str]
    trainable_parameters: int
    total_time: float
    evaluations: list[dict] = field(default_factory=list)

    @property
    def halfway(self) -> dict:
        return self.evaluations[1]

    @property
    def final(self) -> dict:
        return self.evaluations[2]


def parse_record(data: bytes, path="<stream>", offset: int = 0) -> NB101Record:
    """One frame's payload as a :class:`NB101Record` (one-line error with the offset when malformed)."""
    try:
        module_hash, epochs, adjacency, operations, metrics = json.loads(data.decode("utf-8"))
        size = math.isqrt(len(adjacency))
        if size * size != len(adjacency) or not 2 <= size <= 7 or set(adjacency) - {"0", "1"}:
            raise ValueError(f"an adjacency of {len(adjacency)} characters is not a V x V 0/1 matrix")
        matrix = np.frombuffer(adjacency.encode(), dtype=np.uint8).reshape(size, size) - ord("0")
        ops = operations.split(",")
        if len(ops) != size:
            raise ValueError(f"{len(ops)} operations for {size} vertices")
        decoded = decode_model_metrics(base64.b64decode(metrics, validate=True))
        if len(decoded["evaluation_data"]) < 3:
            raise ValueError(f"{len(decoded['evaluation_data'])} evaluations, not step 0, halfway and final")
    except (UnicodeDecodeError, ValueError, TypeError, binascii.Error) as err:
        raise _fail(path, offset, f"is not a NAS-Bench-101 record ({err})") from None
    return NB101Record(str(module_hash), int(epochs), matrix.astype(np.int8), ops,
                       int(decoded["trainable_parameters"] or 0), float(decoded["total_time"]),
                       decoded["evaluation_data"])


def read_records(path: str | Path) -> Iterator[NB101Record]:
    """Every record of an official NB101 ``.tfrecord`` file, in file order (so, for one cell and
    budget, the repeats in the order the official API numbers them)."""
    path = Path(path)
    try:
        stream = open(path, "rb")
    except OSError as err:
        raise HarnessError(f"{path} cannot be read ({err.strerror or err})",
                           "give the path of nasbench_only108.tfrecord or nasbench_full.tfrecord") from None
    with stream:
        for offset, data in iter_frames(stream, path):
            yield parse_record(data, path, offset)
