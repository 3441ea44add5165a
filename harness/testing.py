"""The harness's pytest plugin: pin an estimator's rank correlation in a lab's own test suite.

Installed with the package and registered through the ``pytest11`` entry point (``nas_harness``),
so any project that has nas-harness installed gets, with no import::

    def test_my_estimator_still_ranks(nb201):
        from harness.testing import assert_rank_correlation
        assert_rank_correlation("my_estimator", space="nb201", dataset="cifar10",
                                indices=range(100), min_tau=0.5)

Fixtures: ``nb201`` (the NB201 store, session-wide) and ``cifar10_batch`` (a seeded batch of 64
CIFAR-10 training images, seed 42, on the CPU; ini option ``nas_harness_batch_size``). Scores go through the run store
(``HARNESS_HOME``), so a rerun reads them back instead of scoring again.
"""

from __future__ import annotations

from typing import Iterable

import pytest


def assert_rank_correlation(estimator: str, *, space: str = "nb201", dataset: str = "cifar10",
                            indices: Iterable[int] | None = None, cells: int | None = None, cell_seed: int = 0,
                            truth: str = "test@200", batch_size: int = 64, batch_seed: int = 42, init_seed: int = 0,
                            min_tau: float | None = None, min_spearman: float | None = None, bench=None,
                            device=None) -> dict:
    """Score ``estimator`` (name or ``name:variant``) on the given NB201 cells and fail the test when
    its Kendall tau (``min_tau``) or Spearman (``min_spearman``) with ``truth`` is below the bound.

    Cells: ``indices`` or a seeded sample of ``cells`` (``cell_seed``). Returns the measured
    ``kendall``, ``spearman``, ``n`` (cells with a finite score) and ``failed``."""
    from .benchmarks import NB201
    from .regression import measure, parse_row

    if min_tau is None and min_spearman is None:
        raise ValueError("give min_tau and/or min_spearman: an assertion needs a bound")
    raw = {"estimator": estimator, "space": space, "dataset": dataset, "truth": truth, "batch_size": batch_size,
           "batch_seed": batch_seed, "init_seed": init_seed, "cells": cells, "cell_seed": cell_seed,
           "indices": None if indices is None else [int(i) for i in indices]}
    row = parse_row(raw, f"assert_rank_correlation({estimator!r})", require_expected=False)
    got = measure(row, bench if bench is not None else NB201.open(), device=device)
    failures = []
    if min_tau is not None and not got["kendall"] >= min_tau:
        failures.append(f"Kendall tau {got['kendall']:.4f} < {min_tau}")
    if min_spearman is not None and not got["spearman"] >= min_spearman:
        failures.append(f"Spearman {got['spearman']:.4f} < {min_spearman}")
    if failures:
        raise AssertionError(f"{row.label}: " + "; ".join(failures) + f" ({got['n']} cells scored, {got['failed']} failed)")
    return got


@pytest.fixture(scope="session")
def nb201():
    """The NB201 store (built on first use from the embedded default and ``HARNESS_DATA``)."""
    from .benchmarks import NB201

    return NB201.open()


def pytest_addoption(parser):
    parser.addini("nas_harness_batch_size", "images in the cifar10_batch fixture (default 64)", default="64")


@pytest.fixture(scope="session")
def cifar10_batch(pytestconfig):
    """A seeded batch of CIFAR-10 training images (ini ``nas_harness_batch_size``, default 64; seed 42,
    no augmentation) on the CPU: a :class:`harness.estimators.base.Batch`."""
    import torch

    from .estimators.run import make_batch

    size = int(pytestconfig.getini("nas_harness_batch_size"))
    return make_batch("cifar10", size, 42, False, torch.device("cpu"))[0]
