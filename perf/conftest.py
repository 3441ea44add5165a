"""Benchmarks report ratios against a baseline measured in the same run.

A benchmark test calls ``record(group, role, benchmark)`` after running ``benchmark(...)``, with
role ``"baseline"`` or ``"ours"``. At the end of the session each group's ratio (baseline median
over ours median: > 1 means ours is faster) is printed and written to
``results/perf/<group>.json`` with the medians and any extra figures.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

_RESULTS: dict[str, dict] = {}


def record(group: str, role: str, benchmark, scale: float = 1.0, **extra) -> None:
    """Keep ``benchmark``'s timings as ``role`` of ``group``; ``scale`` multiplies them (a sample's
    time projected to the whole of what it samples, e.g. 15,625 / 8 cells)."""
    stats = benchmark.stats.stats
    entry = _RESULTS.setdefault(group, {})
    entry[role] = {"median_s": stats.median * scale, "mean_s": stats.mean * scale, "min_s": stats.min * scale,
                   "rounds": stats.rounds, "scale": scale}
    entry.setdefault("extra", {}).update(extra)


def record_times(group: str, role: str, seconds: list[float], **extra) -> None:
    """Keep timings measured without pytest-benchmark (a baseline shared by several groups)."""
    import statistics

    entry = _RESULTS.setdefault(group, {})
    entry[role] = {"median_s": statistics.median(seconds), "mean_s": statistics.fmean(seconds),
                   "min_s": min(seconds), "rounds": len(seconds), "scale": 1.0}
    entry.setdefault("extra", {}).update(extra)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RESULTS:
        return
    out = Path(__file__).resolve().parents[1] / "results" / "perf"
    out.mkdir(parents=True, exist_ok=True)
    terminalreporter.section("ratios against baselines measured in this run")
    for group, entry in sorted(_RESULTS.items()):
        if "baseline" in entry and "ours" in entry:
            entry["ratio_baseline_over_ours"] = entry["baseline"]["median_s"] / entry["ours"]["median_s"]
            terminalreporter.write_line(
                f"{group}: baseline {entry['baseline']['median_s'] * 1e3:.2f} ms, ours "
                f"{entry['ours']['median_s'] * 1e3:.2f} ms, ratio {entry['ratio_baseline_over_ours']:.1f}x "
                + " ".join(f"{k}={v}" for k, v in entry.get("extra", {}).items()))
        entry["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
        (out / f"{group}.json").write_text(json.dumps(entry, indent=1, sort_keys=True))


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("bench_home")
    os.environ["HARNESS_HOME"] = str(home)
    return home


def cells_and_batch(n: int, seed: int, batch_size: int):
    """``n`` seeded NB201 cells (arch strings) and a batch of real CIFAR-10 training images (batch
    seed 0, no augmentation, CPU): what the scoring benchmarks share."""
    import torch

    from harness.benchmarks import NB201
    from harness.estimators.run import make_batch, sample_indices

    if not os.environ.get("HARNESS_DATA"):
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    bench = NB201.open()
    batch, _ = make_batch("cifar10", batch_size, batch_seed=0, augment=False, device=torch.device("cpu"))
    return [bench.arch(int(i)) for i in sample_indices(n, seed=seed, total=len(bench))], batch


def seeded_net(arch: str, i: int):
    """The network of ``arch`` under ``torch.manual_seed(i)`` (both sides of a benchmark build it so)."""
    import torch

    from harness.models.nb201 import build_network

    torch.manual_seed(i)
    return build_network(arch, "cifar10")

