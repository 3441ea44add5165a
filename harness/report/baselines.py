"""Published numbers (``baselines/*.csv`` at the repository root), each row with its source."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import HarnessError


def baselines_dir() -> Path:
    """``HARNESS_BASELINES`` when set, else the repository's ``baselines/`` folder."""
    env = os.environ.get("HARNESS_BASELINES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "baselines"


def load(name: str) -> pd.DataFrame:
    path = baselines_dir() / f"{name}.csv"
    if not path.is_file():
        raise HarnessError(f"published numbers {path} not found",
                           "install the harness from its repository (pip install -e .) or set HARNESS_BASELINES")
    return pd.read_csv(path)
