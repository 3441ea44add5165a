"""Shared fixtures: real data when ``HARNESS_DATA`` is set, the committed miniature otherwise.

With ``HARNESS_DATA`` set (CI: ``../shared/data``) every test reads the full real data. Without
it, the session points ``HARNESS_DATA`` at a copy of ``tests/fixtures/data``: real-format
miniatures whose values are copied unchanged from the public files (see its PROVENANCE.md),
so the importers, store, space, networks, estimators, strategies, reports and CLI are all
tested on a fresh clone. A test that needs the *full* data (every cell, real training) takes
:func:`require_full_data`: it skips with one line naming the data outside CI and fails in CI
(``HARNESS_CI=1``). Every session builds its stores in a fresh temporary ``HARNESS_HOME``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

FULL_DATA = os.environ.get("HARNESS_DATA") or None  # as the user set it, before the session changes it
IN_CI = os.environ.get("HARNESS_CI") == "1"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "data"
SKIP_PREFIX = "needs the full data"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_active: dict[str, Path] = {}


def _missing(what: str):
    message = (f"{SKIP_PREFIX} ({what}): export HARNESS_DATA=../shared/data, or download it with "
               "`nas-harness data fetch all`")
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _png_arrays(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The lossless foolbox test images ``<prefix>_<NN>_<label>.png``, in file-name order."""
    from PIL import Image

    files = sorted(folder.glob(f"{prefix}_*.png"))
    arrays = []
    for f in files:
        with Image.open(f) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    x = np.stack(arrays)
    y = np.array([int(f.stem.rsplit("_", 1)[1]) for f in files], dtype=np.int64)
    return x, y


def build_miniature(target: Path) -> Path:
    """A HARNESS_DATA folder made from tests/fixtures/data: the files as they are, plus the
    foolbox PNGs as ``images/<dataset>_{train,test}.npz`` (the same 20 test images serve both
    splits: the miniature has no training images)."""
    shutil.copytree(FIXTURES, target)
    folder = target / "images" / "foolbox"
    for dataset, classes in (("cifar10", CIFAR10_CLASSES), ("cifar100", tuple(str(i) for i in range(100)))):
        x, y = _png_arrays(folder, dataset)
        for split in ("train", "test"):
            np.savez(target / "images" / f"{dataset}_{split}.npz", x=x, y=y, classes=np.array(classes))
    return target


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """A fresh HARNESS_HOME per session; HARNESS_DATA is the miniature when the user set none."""
    old = {k: os.environ.get(k) for k in ("HARNESS_HOME", "HARNESS_DATA")}
    os.environ["HARNESS_HOME"] = str(tmp_path_factory.mktemp("harness_home"))
    data = Path(FULL_DATA) if FULL_DATA else build_miniature(tmp_path_factory.mktemp("mini") / "data")
    os.environ["HARNESS_DATA"] = str(data)
    _active["data"] = data
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def data_folder() -> Path:
    return _active["data"]


def require_data(relative: str = "") -> Path:
    """The path under the data in use (full or miniature). Missing from the full data: the
    test fails (HARNESS_DATA points at the wrong folder); missing from the miniature: skip."""
    path = data_folder() / relative
    if not path.exists():
        if FULL_DATA:
            pytest.fail(f"{path} is missing: HARNESS_DATA must point at the real data folder (../shared/data)")
        _missing(relative)
    return path


def require_full_data(relative: str = "") -> Path:
    """The path under the full data; without HARNESS_DATA: skip (fail in CI)."""
    if not FULL_DATA:
        _missing(relative or "HARNESS_DATA")
    return require_data(relative)


@pytest.fixture(scope="session")
def harness_data() -> Path:
    """The data folder in use: the full real data, or the miniature."""
    return data_folder()


@pytest.fixture(scope="session")
def full_data() -> Path:
    return require_full_data()


@pytest.fixture(scope="session")
def nats_fixture_dir(harness_data) -> Path:
    return require_data("nb201/nats_fixtures/NATS-tss-v1_0-3ffb9-simple")


@pytest.fixture(scope="session")
def nb201(harness_data):
    """The default NB201 store (embedded package + the data folder's compact tables)."""
    from harness.benchmarks import NB201

    return NB201.open()


def official_network_classes():
    """xautodl's official NB201 ``TinyNetwork`` and ``Structure`` (its genotype); a module that
    needs them skips without xautodl outside CI (``./reproduce.sh`` installs it), fails in CI."""
    try:
        from xautodl.models.cell_infers.tiny_network import TinyNetwork
        from xautodl.models.cell_searchs.genotypes import Structure
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("needs xautodl: pip install --no-deps xautodl==1.0.0 (./reproduce.sh test installs it)",
                    allow_module_level=True)
    return TinyNetwork, Structure


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and SKIP_PREFIX in str(r.longrepr[2])]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped for data: they need the full data (HARNESS_DATA=../shared/data, "
            "or `nas-harness data fetch all`); the rest ran on the miniature in tests/fixtures/data")


def refused(capsys, *argv) -> str:
    """Run the CLI; assert exit 2 with exactly one error line and no traceback; return that line."""
    from harness.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith(("INFO", "WARNING", "DEBUG"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("nas-harness: error:")
    return lines[0]


def one_line(err) -> str:
    """The text of a HarnessError, asserted to be one non-empty line."""
    text = str(err)
    assert text and len(text.splitlines()) == 1 and "\n" not in text, repr(text)
    return text
