"""The whole NB201 space scored with ``--dedupe isomorphic`` against the official loop over every cell.

The official searches score all 15,625 cells; with ``--dedupe isomorphic`` the harness scores one
cell per isomorphism class (6,466) and gives every member its score. Each side's whole-space time
is projected from a seeded sample of 8 cells of what it scores: the official loop from 8 of the
15,625 cells, the harness from 8 of the 6,466 representatives (which need not cost the same per
cell), so the ratio includes both the deduplication and the per-cell speed-up. Batch of 256 real
CIFAR-10 images, as in ``test_estimator_speed``.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.estimators.run import sample_indices

from .conftest import record
from .test_estimator_speed import official_epe, official_naswot, ours, setup  # noqa: F401 - the batch fixture

N = 8


@pytest.fixture(scope="module")
def samples(setup):  # noqa: F811
    from harness.benchmarks import NB201
    from harness.spaces.nb201 import NB201Space

    bench = NB201.open()
    reps = np.unique(NB201Space.from_benchmark(bench).representatives())
    every = [bench.arch(int(i)) for i in sample_indices(N, seed=1, total=len(bench))]
    classes = [bench.arch(int(reps[i])) for i in sample_indices(N, seed=1, total=len(reps))]
    return every, classes, len(bench), len(reps), setup[1]


@pytest.mark.parametrize("name, baseline", [("epe_nas", official_epe), ("naswot", official_naswot)])
def test_official_every_cell(benchmark, samples, name, baseline):
    every, _, total, _, batch = samples
    benchmark.pedantic(baseline, args=(every, batch), rounds=3, iterations=1, warmup_rounds=1)
    record(f"{name}_whole_space", "baseline", benchmark, scale=total / N, baseline_networks=total)


@pytest.mark.parametrize("name", ["epe_nas", "naswot"])
def test_harness_one_per_class(benchmark, samples, name):
    _, classes, _, n_classes, batch = samples
    benchmark.pedantic(ours(name), args=(classes, batch), rounds=3, iterations=1, warmup_rounds=1)
    record(f"{name}_whole_space", "ours", benchmark, scale=n_classes / N, ours_networks=n_classes)
