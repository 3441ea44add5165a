"""NAS-Bench-101 without TensorFlow: reading the official tfrecord format, and loading a full-size store.

``nb101_tfrecord_read``: records per second turning a real-format tfrecord (the shared data's
30-cell sample 40 times over, each copy's cells renamed: 3,600 records, 1.2 MB) into arrays, both
CRCs checked.
TensorFlow is not installed here, so the baseline is a plain Python loop written as the
official API reads the file: TFRecord framing with a pure-Python CRC32C, ``json.loads``, base64
and the maintained ``protobuf`` package's ModelMetrics, into the API's per-hash dicts.

``nb101_load``: opening a store of the full benchmark's size (423,624 cells x 3 repeats of the
108-epoch columns, synthesised from the real sample's values; the hashes are md5s of the row
numbers) and answering a first query by hash: against unpickling the official API's in-memory
state for the same cells (``{hash: (fixed_statistics, computed_statistics)}``, NASLib's
format), which is what the API itself spends "a few minutes" building from the tfrecord. Peak
RSS of each, in a fresh process, is recorded beside the times.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from harness.benchmarks.nb101 import CONFIG_DTYPE, FULL_CELLS, NB101, REPEATS, column_key, records_to_columns
from harness.benchmarks.nb101_tfrecord import crc32c_python, metrics_class, read_records
from harness.benchmarks.store import SourceInfo, TabularStore

from .conftest import record

COPIES = 40


def _sample() -> bytes:
    root = os.environ.get("HARNESS_DATA")
    if not root:
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    with open(os.path.join(root, "nb101", "nasbench_only108_sample30.tfrecord"), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def tfrecord(tmp_path_factory):
    """The 30 real cells' 90 records 40 times over, each copy's cells renamed (a new md5 as the
    hash, so the store sees 1,200 cells of 3 repeats) and framed again with both CRCs."""
    import io

    from harness.benchmarks.nb101_tfrecord import iter_frames

    frames = [data for _, data in iter_frames(io.BytesIO(_sample()))]
    out = bytearray()
    for copy in range(COPIES):
        for data in frames:
            row = json.loads(data)
            row[0] = hashlib.md5(f"{copy}:{row[0]}".encode()).hexdigest()
            payload = json.dumps(row).encode()
            length = struct.pack("<Q", len(payload))
            out += length + struct.pack("<I", _masked(length)) + payload + struct.pack("<I", _masked(payload))
    path = tmp_path_factory.mktemp("nb101") / "sample_x40.tfrecord"
    path.write_bytes(bytes(out))
    return path


def _masked(data: bytes) -> int:
    crc = crc32c_python(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _plain_loop(path) -> dict:
    """The official API's reading loop (nasbench/api.py), with TF's iterator replaced by plain Python."""
    message = metrics_class()
    fixed, computed = {}, {}
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                break
            (length,) = struct.unpack("<Q", header[:8])
            assert struct.unpack("<I", header[8:])[0] == _masked(header[:8])
            data = f.read(length)
            assert struct.unpack("<I", f.read(4))[0] == _masked(data)
            module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(data.decode("utf-8"))
            dim = int(np.sqrt(len(raw_adjacency)))
            adjacency = np.array([int(e) for e in list(raw_adjacency)], dtype=np.int8).reshape(dim, dim)
            metrics = message.FromString(base64.b64decode(raw_metrics))
            if module_hash not in fixed:
                fixed[module_hash] = {"module_adjacency": adjacency, "module_operations": raw_operations.split(","),
                                      "trainable_parameters": metrics.trainable_parameters}
                computed[module_hash] = {}
            halfway, final = metrics.evaluation_data[1], metrics.evaluation_data[2]
            computed[module_hash].setdefault(epochs, []).append({
                "halfway_training_time": halfway.training_time, "halfway_train_accuracy": halfway.train_accuracy,
                "halfway_validation_accuracy": halfway.validation_accuracy,
                "halfway_test_accuracy": halfway.test_accuracy, "final_training_time": final.training_time,
                "final_train_accuracy": final.train_accuracy, "final_validation_accuracy": final.validation_accuracy,
                "final_test_accuracy": final.test_accuracy})
    return computed


def _ours(path):
    return records_to_columns(read_records(path))


def test_tfrecord_read_ours(benchmark, tfrecord):
    table, columns, counts = benchmark(_ours, tfrecord)
    assert counts["runs"] == 90 * COPIES and counts["cells"] == 30 * COPIES
    from harness.benchmarks import nb101_tfrecord

    record("nb101_tfrecord_read", "ours", benchmark, records=90 * COPIES, bytes=tfrecord.stat().st_size,
           native_crc=nb101_tfrecord._native_crc is not None,
           ours_records_per_s=round(90 * COPIES / benchmark.stats.stats.median))


def test_tfrecord_read_plain_loop_baseline(benchmark, tfrecord):
    computed = benchmark.pedantic(_plain_loop, (tfrecord,), rounds=3, iterations=1)
    assert sum(len(runs) for c in computed.values() for runs in c.values()) == 90 * COPIES
    record("nb101_tfrecord_read", "baseline", benchmark,
           baseline_records_per_s=round(90 * COPIES / benchmark.stats.stats.median))


# -- a full-size store --------------------------------------------------------------------------
def _synthetic(n: int = FULL_CELLS):
    """(configs, columns, API state): ``n`` cells whose specs and values are drawn from the 30 real cells."""
    import io

    from harness.benchmarks.nb101_tfrecord import iter_frames, parse_record

    records = [parse_record(data) for _, data in iter_frames(io.BytesIO(_sample()))]
    table, columns, _ = records_to_columns(records)
    rng = np.random.default_rng(101)
    pick = rng.integers(len(table), size=n)
    configs = np.zeros(n, CONFIG_DTYPE)
    configs["hash"] = [hashlib.md5(str(i).encode()).hexdigest().encode() for i in range(n)]
    configs["matrix"], configs["ops"] = table["matrix"][pick], table["ops"][pick]
    big = {}
    for key, values in columns.items():
        if values.ndim == 2:  # each repeat of each cell from a random real run (of any cell)
            flat = values.reshape(-1)
            big[key] = flat[rng.integers(flat.size, size=(n, REPEATS))]
        else:
            big[key] = values[pick]
    return configs, big


@pytest.fixture(scope="module")
def full_store(bench_home):
    configs, columns = _synthetic()
    root = bench_home / "nb101"

    def fill(folder):
        store = TabularStore.create(folder, "nb101", configs, list(range(REPEATS)))
        store.write(SourceInfo("synthetic", "", 0, 0.0, ""), columns, source_id="synthetic")

    TabularStore.build(root, fill)
    state = {}
    hashes = configs["hash"].astype(str)
    fields = {column_key(s, m, 108, h): f"{'halfway' if h else 'final'}_{f}"
              for s, m, f in (("train", "acc", "train_accuracy"), ("valid", "acc", "validation_accuracy"),
                              ("test", "acc", "test_accuracy"), ("train", "time", "training_time"))
              for h in (False, True)}
    for i, h in enumerate(hashes):
        v = int((configs["ops"][i] != -3).sum())
        fixed = {"module_adjacency": configs["matrix"][i][:v, :v].copy(),
                 "module_operations": [str(o) for o in configs["ops"][i][:v]],
                 "trainable_parameters": int(columns["-/params"][i])}
        runs = [{name: float(columns[key][i, r] / (100.0 if "acc" in key else 1.0)) for key, name in fields.items()}
                for r in range(REPEATS)]
        state[h] = (fixed, {108: runs})
    pickled = bench_home / "nb101_api_state.pkl"
    with open(pickled, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    del state
    return root, pickled, hashes[FULL_CELLS // 2]


OURS_SNIPPET = """
from harness.benchmarks.nb101 import NB101
bench = NB101.open({root!r})
value = bench.query(bench.index({h!r}), split="valid", epochs=108)
"""
API_SNIPPET = """
import pickle
with open({pickled!r}, "rb") as f:
    state = pickle.load(f)
value = sum(r["final_validation_accuracy"] for r in state[{h!r}][1][108]) / 3
"""


def _peak(code: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of ``code`` in a fresh process (the interpreter's start excluded)."""
    script = ("import time\nt0 = time.perf_counter()\n" + code + "\nprint(time.perf_counter() - t0)\n"
              "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    seconds, rss = out.stdout.strip().splitlines()[-2:]
    return float(seconds), float(rss)


def test_full_store_load_ours(benchmark, full_store):
    root, _, h = full_store

    def load():
        bench = NB101.open(root)
        return bench.query(bench.index(h), split="valid", epochs=108)

    value = benchmark.pedantic(load, rounds=5, iterations=1)
    assert np.isfinite(value)
    seconds, rss = _peak(OURS_SNIPPET.format(root=str(root), h=str(h)))
    record("nb101_load", "ours", benchmark, cells=FULL_CELLS, ours_fresh_process_s=round(seconds, 3),
           ours_peak_rss_mb=round(rss, 1))


def test_full_store_load_api_state_baseline(benchmark, full_store):
    root, pickled, h = full_store

    def load():
        with open(pickled, "rb") as f:
            state = pickle.load(f)
        return len(state)

    assert benchmark.pedantic(load, rounds=2, iterations=1) == FULL_CELLS
    seconds, rss = _peak(API_SNIPPET.format(pickled=str(pickled), h=str(h)))
    record("nb101_load", "baseline", benchmark, baseline_fresh_process_s=round(seconds, 3),
           baseline_peak_rss_mb=round(rss, 1), pickle_mb=round(pickled.stat().st_size / 2**20, 1))
