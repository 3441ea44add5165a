"""The run store: every computed score, keyed by everything that determines it.

One SQLite file (``HARNESS_HOME/runs.sqlite``); each score is committed as soon as it is
computed, so a run killed at any point (``kill -9`` included) loses nothing already computed
and a re-run with the same arguments computes only what is missing. Failures are stored with
their reason, like scores.
"""

from __future__ import annotations

import math
import platform
import sqlite3
import time
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import pandas as pd

from .config import harness_home

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ScoreKey:
    """Everything that determines a training-free score."""

    space: str  # e.g. "nb201"
    dataset: str  # the image dataset and class count: cifar10, cifar100, ImageNet16-120
    index: int  # cell index in the space
    estimator: str
    variant: str
    batch_size: int
    batch_seed: int  # seed of the batch sampler
    init_seed: int  # seed of the network's initialisation
    augment: bool  # crop + flip on the batch
    images: str  # where the images came from (path of the image set)


_KEY_COLUMNS = [f.name for f in fields(ScoreKey)]


class RunStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else harness_home() / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS scores (space TEXT, dataset TEXT, idx INTEGER, estimator TEXT, variant TEXT,"
            " batch_size INTEGER, batch_seed INTEGER, init_seed INTEGER, augment INTEGER, images TEXT,"
            " score REAL, seconds REAL, error TEXT, device TEXT, torch TEXT, host TEXT, created REAL,"
            " PRIMARY KEY (space, dataset, idx, estimator, variant, batch_size, batch_seed, init_seed, augment, images))")
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def get(self, key: ScoreKey) -> tuple[float, float, str] | None:
        row = self.db.execute(
            "SELECT score, seconds, error FROM scores WHERE space=? AND dataset=? AND idx=? AND estimator=? AND"
            " variant=? AND batch_size=? AND batch_seed=? AND init_seed=? AND augment=? AND images=?",
            astuple(key)).fetchone()
        if row is None:
            return None
        score, seconds, error = row
        return (math.nan if score is None else score), seconds, error

    def put(self, key: ScoreKey, score: float, seconds: float, error: str, device: str) -> None:
        import torch

        self.db.execute("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (*astuple(key), None if math.isnan(score) else score, seconds, error, device,
                         torch.__version__, platform.node(), time.time()))
        self.db.commit()

    def frame(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM scores", self.db)
