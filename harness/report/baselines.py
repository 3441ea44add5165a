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


#: Each file of ``baselines/``: the columns every row must fill, and the columns that hold
#: published numbers (each checked against its source by ``tests/test_baselines.py``).
SCHEMA: dict[str, dict[str, tuple[str, ...]]] = {
    "nb201_optimum": {"required": ("dataset", "split", "epochs", "seed", "metric", "value", "label", "source"),
                      "numbers": ("value",)},
    "nb201_search": {"required": ("strategy", "estimator", "budget", "runs", "search_dataset", "dataset", "split",
                                  "label", "mean", "std", "source"),
                     "numbers": ("mean", "std", "time_s", "runs")},
    "zero_cost_nb201": {"required": ("dataset", "estimator", "truth", "statistic", "value", "cells", "batch_size",
                                     "batch_seed", "source", "paper_truth"),
                        "numbers": ("value", "cells", "batch_size", "batch_seed")},
    "zero_cost_nb101": {"required": ("dataset", "estimator", "truth", "statistic", "value", "cells", "batch_size",
                                     "batch_seed", "source", "paper_truth"),
                        "numbers": ("value", "cells", "batch_size", "batch_seed")},
    "bpe_configs": {"required": ("task", "epochs", "batch_size", "lr", "layers", "precision", "channels", "cutout",
                                 "image_size", "metric", "value", "cells", "runs", "protocol", "cell", "source"),
                    "numbers": ("value",)},
    "bpe_search": {"required": ("method", "setting", "metric", "value", "runs", "protocol", "cell", "source"),
                   "numbers": ("value",)},
}


def names() -> list[str]:
    """The baseline files present, by name (``nb201_search``, ...)."""
    return sorted(p.stem for p in baselines_dir().glob("*.csv"))
