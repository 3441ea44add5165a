"""NAS-Bench-101's tfrecord read without TensorFlow: the 30 real cells value for value, corrupt files refused."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.benchmarks.nb101_tfrecord import (CorruptRecord, crc32c, crc32c_python, decode_model_metrics,
                                              decode_model_metrics_python, iter_frames,
                                              masked_crc32c, metrics_class, read_records)
from tests.conftest import require_data

SAMPLE = "nb101/nasbench_only108_sample30.tfrecord"
DUMMY = "nb101/naslib_nb101_dummy_30.pkl"
KEYS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_the_pure_python_crc_equals_the_native_one(data):
    from harness.benchmarks import nb101_tfrecord

    assert crc32c_python(b"123456789") == 0xE3069283
    if nb101_tfrecord._native_crc is None:
        pytest.skip("google-crc32c is not installed (pip install -e '.[dev]')")
    assert crc32c_python(data) == int(nb101_tfrecord._native_crc.value(data))


def test_crc32c_check_value_and_the_tfrecord_mask():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_the_30_cells_read_back_exactly_as_the_official_api_holds_them():
    records = list(read_records(require_data(SAMPLE)))
    with open(require_data(DUMMY), "rb") as f:
        dummy = pickle.load(f)
    assert len(records) == 90 and {r.module_hash for r in records} == set(dummy)
    repeats: dict[str, list] = {}
    for r in records:
        fixed, computed = dummy[r.module_hash]
        assert r.epochs == 108
        assert np.array_equal(r.matrix, fixed["module_adjacency"]) and r.ops == list(fixed["module_operations"])
        assert r.trainable_parameters == fixed["trainable_parameters"]
        repeats.setdefault(r.module_hash, []).append(r)
    for module_hash, runs in repeats.items():
        expected = dummy[module_hash][1][108]
        assert len(runs) == len(expected) == 3
        for run, stats in zip(runs, expected):  # file order is the API's repeat index
            for key in KEYS:
                assert run.halfway[key] == stats[f"halfway_{key}"], (module_hash, key)
                assert run.final[key] == stats[f"final_{key}"], (module_hash, key)
            assert run.halfway["current_epoch"] == 54 and run.final["current_epoch"] == 108


def _frame_offsets(raw: bytes) -> list[int]:
    offsets, i = [], 0
    while i < len(raw):
        offsets.append(i)
        (length,) = struct.unpack("<Q", raw[i:i + 8])
        i += 16 + length
    return offsets


@pytest.mark.parametrize("where", ["header", "length crc", "data", "data crc"])
def test_a_truncated_file_is_refused_at_the_record_and_keeps_the_records_before(tmp_path, where):
    raw = require_data(SAMPLE).read_bytes()
    offsets = _frame_offsets(raw)
    start = offsets[40]
    (length,) = struct.unpack("<Q", raw[start:start + 8])
    cut = {"header": start + 5, "length crc": start + 10, "data": start + 12 + length // 2,
           "data crc": start + 12 + length + 2}[where]
    path = tmp_path / "cut.tfrecord"
    path.write_bytes(raw[:cut])
    kept = []
    with pytest.raises(CorruptRecord) as err:
        for record in read_records(path):
            kept.append(record)
    message = str(err.value)
    assert "\n" not in message and f"at byte {start} is truncated" in message and str(path) in message
    assert len(kept) == 40  # every record before the damage was read


@pytest.mark.parametrize("part, expected", [("length", "a length field that fails its CRC32C"),
                                            ("data", "data that fail their CRC32C"),
                                            ("footer", "data that fail their CRC32C")])
def test_a_flipped_bit_is_refused_with_the_offset(tmp_path, part, expected):
    raw = bytearray(require_data(SAMPLE).read_bytes())
    start = _frame_offsets(bytes(raw))[7]
    (length,) = struct.unpack("<Q", raw[start:start + 8])
    byte = {"length": start + 1, "data": start + 12 + 100, "footer": start + 12 + length + 1}[part]
    raw[byte] ^= 0x10
    path = tmp_path / "flipped.tfrecord"
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecord, match=f"at byte {start} has {expected}"):
        list(read_records(path))


def test_a_valid_frame_that_is_not_a_record_is_one_line(tmp_path):
    payload = b'["abc", 108, "0110", "input,output", "!!"]'
    frame = (struct.pack("<Q", len(payload)) + struct.pack("<I", masked_crc32c(struct.pack("<Q", len(payload))))
             + payload + struct.pack("<I", masked_crc32c(payload)))
    path = tmp_path / "odd.tfrecord"
    path.write_bytes(frame)
    with pytest.raises(CorruptRecord, match="at byte 0 is not a NAS-Bench-101 record"):
        list(read_records(path))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_read_or_refused_never_a_crash(data):
    import io

    try:
        list(iter_frames(io.BytesIO(data)))
    except CorruptRecord as err:
        assert "\n" not in str(err) and "at byte" in str(err)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(*[st.floats(allow_nan=False, width=32)] * 5, st.text(max_size=8)), max_size=4),
       st.integers(-2**31, 2**31 - 1), st.floats(allow_nan=False))
def test_the_decoder_agrees_with_the_protobuf_package(evaluations, params, total):
    cls = metrics_class()
    msg = cls(trainable_parameters=params, total_time=total)
    for epoch, t, tr, va, te, ckpt in evaluations:
        msg.evaluation_data.add(current_epoch=epoch, training_time=t, train_accuracy=tr, validation_accuracy=va,
                                test_accuracy=te, checkpoint_path=ckpt)
    decoded = decode_model_metrics_python(msg.SerializeToString())
    assert decode_model_metrics(msg.SerializeToString()) == decoded  # the package's decoder, where installed
    assert decoded["trainable_parameters"] == params and decoded["total_time"] == total
    assert [(e["current_epoch"], e["training_time"], e["train_accuracy"], e["validation_accuracy"], e["test_accuracy"],
             e["checkpoint_path"]) for e in decoded["evaluation_data"]] == evaluations
