"""Loading the NB201 store against reading the same data from its source CSVs with pandas.

Both sides end with every value in memory-accessible arrays: ours opens the manifest, maps
every column and reads every value; the baseline parses the three compact CSV tables.
Peak RSS of each, in a fresh process, is recorded beside the times.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness.benchmarks import NB201

from .conftest import record

CSVS = ("nb201_200ep_xvalid_cost.csv", "nats_tss_test_acc_200ep.csv", "nb201_v1_1_12ep_val_test.csv")


def _data():
    root = os.environ.get("HARNESS_DATA")
    if not root:
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    return root


@pytest.fixture(scope="module")
def built(bench_home):
    _data()
    return NB201.open()


STORE_SNIPPET = """
import numpy as np
from harness.benchmarks import NB201
bench = NB201.open()
total = sum(float(np.nansum(np.asarray(bench.store.column(k)))) for k in bench.store.keys())
"""
CSV_SNIPPET = """
import os, pandas as pd
tables = [pd.read_csv(os.path.join(os.environ["HARNESS_DATA"], "nb201", n)) for n in %r]
""" % (CSVS,)


def _load_store():
    bench = NB201.open()
    total = 0.0
    for key in bench.store.keys():
        total += float(np.nansum(np.asarray(bench.store.column(key))))
    return total


def _load_csvs():
    import pandas as pd

    return [pd.read_csv(os.path.join(_data(), "nb201", name)) for name in CSVS]


def _peak_rss_mb(code: str) -> float:
    # VmHWM of the new image: ru_maxrss would include the forking pytest process.
    script = code + ("\nprint([int(l.split()[1]) / 1024 for l in open('/proc/self/status')"
                     " if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    return float(out.stdout.strip().splitlines()[-1])


def test_store_load(benchmark, built):
    benchmark(_load_store)
    rss = _peak_rss_mb(STORE_SNIPPET)
    record("nb201_load", "ours", benchmark, ours_peak_rss_mb=round(rss, 1), columns=len(built.store.keys()))


def test_csv_load_baseline(benchmark, built):
    benchmark(_load_csvs)
    rss = _peak_rss_mb(CSV_SNIPPET)
    record("nb201_load", "baseline", benchmark, baseline_peak_rss_mb=round(rss, 1))
