"""Shared fixtures.

Tests that need real data take the ``harness_data`` fixture: when ``HARNESS_DATA`` is unset or
lacks the file, they FAIL with a message saying how to set it (CI points it at ../shared/data).
Every test session builds its stores in a fresh temporary ``HARNESS_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """A fresh HARNESS_HOME per session, so tests never touch ~/.cache/nas-harness."""
    old = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(tmp_path_factory.mktemp("harness_home"))
    yield
    if old is None:
        os.environ.pop("HARNESS_HOME", None)
    else:
        os.environ["HARNESS_HOME"] = old


def require_data(relative: str = "") -> Path:
    """The path under HARNESS_DATA; fails the test (never skips) when it is missing."""
    root = os.environ.get("HARNESS_DATA")
    if not root:
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data (the real data) and rerun")
    path = Path(root) / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: HARNESS_DATA must point at the real data folder (../shared/data)")
    return path


@pytest.fixture(scope="session")
def harness_data() -> Path:
    return require_data()


@pytest.fixture(scope="session")
def nats_fixture_dir(harness_data) -> Path:
    return require_data("nb201/nats_fixtures/NATS-tss-v1_0-3ffb9-simple")


@pytest.fixture(scope="session")
def nb201(harness_data):
    """The default NB201 store (embedded package + HARNESS_DATA's compact tables)."""
    from harness.benchmarks import NB201

    return NB201.open()
