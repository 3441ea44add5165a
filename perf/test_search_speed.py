"""500 tabular REA runs at NB201's 12,000 s budget: runs per second.

Ours: ``run_many("rea", TabularEvaluator(...))`` (arrays precomputed once, a query is an index).
Baseline, measured in the same run: the same algorithm written like NB201's script over a
dict-based API: arch strings as keys, a per-query lookup of the cell's record, the string
mutated edge by edge. Both use the same reward (12-epoch validation, seed mean) and cost.
"""

from __future__ import annotations

import os
import random
from collections import deque

import numpy as np
import pytest

from harness.search import Budget
from harness.search.evaluators import TabularEvaluator
from harness.search.runner import run_many
from harness.spaces.nb201 import OPS, NB201Space, arch_to_str, parse_arch

from .conftest import record

RUNS = 500


@pytest.fixture(scope="module")
def setup(bench_home):
    if not os.environ.get("HARNESS_DATA"):
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    from harness.benchmarks import NB201

    bench = NB201.open()
    evaluator = TabularEvaluator(bench, "cifar10", "valid", 12)
    space = NB201Space(bench.arch_strs())
    api = {arch: {"valid-accuracy": float(evaluator.mean[i]), "train-all-time": float(evaluator.cost[i])}
           for i, arch in enumerate(bench.arch_strs())}
    return evaluator, space, api


def official_style_rea(api, runs, budget=12000.0, population=10, sample_size=3):
    """NB201's regularized_evolution loop over string keys and per-query dict lookups."""
    archs = list(api)
    chosen = []
    for run in range(runs):
        rnd = random.Random(run)

        def query(arch):
            info = api[arch]
            return info["valid-accuracy"], info["train-all-time"]

        def mutate(arch):
            ops = list(parse_arch(arch))
            edge = rnd.randrange(len(ops))
            ops[edge] = rnd.choice([o for o in range(len(OPS)) if o != ops[edge]])
            return arch_to_str(ops)

        pop, history, total = deque(), [], 0.0
        while len(pop) < population:
            arch = rnd.choice(archs)
            acc, cost = query(arch)
            if total + cost > budget:
                break
            total += cost
            pop.append((arch, acc))
            history.append((arch, acc))
        while total < budget:
            parent = max((pop[rnd.randrange(len(pop))] for _ in range(sample_size)), key=lambda m: m[1])
            child = mutate(parent[0])
            acc, cost = query(child)
            if total + cost > budget:
                break
            total += cost
            pop.append((child, acc))
            history.append((child, acc))
            pop.popleft()
        chosen.append(max(history, key=lambda h: h[1])[0])
    return chosen


def test_official_style(benchmark, setup):
    _, _, api = setup
    chosen = benchmark.pedantic(official_style_rea, args=(api, RUNS), rounds=3, iterations=1, warmup_rounds=1)
    record("rea_500_runs", "baseline", benchmark, runs=RUNS)
    assert len(chosen) == RUNS


def test_harness(benchmark, setup):
    evaluator, space, _ = setup
    results = benchmark.pedantic(run_many, args=("rea", evaluator, space, Budget(seconds=12000.0), RUNS, 0),
                                 rounds=3, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    record("rea_500_runs", "ours", benchmark, runs=RUNS, runs_per_s=round(RUNS / median, 1))
    assert len(results) == RUNS and all(r.simulated_s <= 12000.0 for r in results)
    assert np.mean([r.cells for r in results]) > 50


def _dict_queries(api, archs):
    """The official API's shape: one string-keyed lookup per cell."""
    return [api[arch]["valid-accuracy"] for arch in archs]


def _vector_query(bench, indices):
    from harness.benchmarks.nb201 import protocol

    dataset, split = protocol("cifar10").valid  # what the REA evaluator reads
    return bench.query(indices, dataset=dataset, split=split, epochs=12, seed="mean")


def test_query_every_cell_dict_baseline(benchmark, setup):
    _, space, api = setup
    archs = [space.arch(i) for i in range(len(space))]
    values = benchmark.pedantic(_dict_queries, args=(api, archs), rounds=5, iterations=1, warmup_rounds=1)
    record("nb201_query_15625", "baseline", benchmark, cells=len(archs))
    assert len(values) == 15625


def test_query_every_cell_vectorised(benchmark, setup):
    from harness.benchmarks import NB201

    evaluator, space, _ = setup
    bench = NB201.open()
    indices = np.arange(len(space))
    values = benchmark.pedantic(_vector_query, args=(bench, indices), rounds=5, iterations=1, warmup_rounds=1)
    record("nb201_query_15625", "ours", benchmark, cells=len(indices))
    np.testing.assert_array_equal(np.asarray(values), evaluator.mean)
