"""BPE evaluators for MIP: the paper's table (measured configurations, or a surrogate fitted on
them) and real training of NB201 cells on this machine."""

from __future__ import annotations

import itertools
import logging
import math
from typing import Sequence

import numpy as np
import pandas as pd

from .. import exactmath
from ..errors import HarnessError
from ..metrics import spearman
from .config import BPEConfig
from .replay import BPETable, replay

log = logging.getLogger(__name__)

PARAMS = ("epochs", "batch_size", "lr", "layers", "channels", "image_size", "precision", "cutout")
#: cost direction per hyper-parameter: +1 more is dearer, -1 more is cheaper, 0 cost-neutral
DIRECTION = {"epochs": 1, "batch_size": -1, "lr": 0, "layers": 1, "channels": 1, "image_size": 1, "precision": 0,
             "cutout": 0, "fraction": 1, "valid_images": 1}
PRECISION_RANK = {"fp16": 0, "bf16": 0, "fp32": 1}


def cost_key(name: str, value) -> float:
    if name == "precision":
        return PRECISION_RANK[value]
    return DIRECTION.get(name, 0) * float(value)


def _ordered(name: str, values) -> list:
    return sorted(set(values), key=lambda v: (cost_key(name, v), str(v)))


class TableEvaluator:
    """The BPE paper's 32 measured configurations as a BPE evaluator (cost: GPU-hours per cell).

    ``mode="measured"``: only the measured configurations can be evaluated (a configuration
    measured twice gives the mean). ``mode="surrogate"``: any combination of the measured values,
    predicted by random forests fitted on the 32 configurations (Spearman, and log GPU-hours);
    a measured configuration still returns its measured values.
    """

    def __init__(self, table: BPETable, mode: str = "measured", seed: int = 0):
        if mode not in ("measured", "surrogate"):
            raise HarnessError(f"table evaluator mode {mode!r} is not known", "use measured or surrogate")
        configs = replay(table, n_boot=0)
        self.rows = configs[list(PARAMS) + ["spearman", "gpu_hours"]].copy()
        self.mode, self.name = mode, f"tabular:bpe-paper ({mode})"
        self.space = {k: _ordered(k, self.rows[k]) for k in PARAMS}
        self.cost_unit = "GPU-hours per cell (the authors' GPU)"
        grouped = self.rows.groupby(list(PARAMS), as_index=False)[["spearman", "gpu_hours"]].mean()
        self._measured = {tuple(r[k] for k in PARAMS): (r.spearman, r.gpu_hours) for _, r in grouped.iterrows()}
        self._predicted: dict[tuple, tuple[float, float]] = {}
        if mode == "surrogate":
            from sklearn.ensemble import RandomForestRegressor

            X = self._encode(self.rows.to_dict("records"))
            # The same bits on every run and machine: the forests seeded and on one thread (with
            # threads, predict sums the trees in the order they finish), and log/exp of the costs
            # in exactmath (numpy's and libm's exp/log depend on the CPU's AVX512/FMA in the last bit).
            forests = [RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=1).fit(X, y)
                       for y in (self.rows.spearman.to_numpy(), exactmath.log(self.rows.gpu_hours.to_numpy()))]
            # every combination predicted once, in one batch (the grid is small: ~10^4-10^5 points)
            grid = np.array(list(itertools.product(*(range(len(self.space[k])) for k in PARAMS))), dtype=float)
            rho, log_cost = (f.predict(grid) for f in forests)
            cost = exactmath.exp(log_cost)
            points = grid.astype(int)
            columns = [np.array(self.space[k], dtype=object)[points[:, j]] for j, k in enumerate(PARAMS)]
            self._predicted = dict(zip(zip(*columns), zip(rho.tolist(), cost.tolist())))

    def _encode(self, rows) -> np.ndarray:
        return np.array([[self.space[k].index(r[k]) for k in PARAMS] for r in rows], dtype=float)

    def cost_key(self, name, value) -> float:
        return cost_key(name, value)

    def candidates(self, space: dict[str, list]) -> list[dict]:
        if self.mode == "measured":
            return [dict(zip(PARAMS, key)) for key in self._measured if all(key[i] in space[k]
                                                                           for i, k in enumerate(PARAMS))]
        return [dict(zip(PARAMS, values)) for values in itertools.product(*(space[k] for k in PARAMS))]

    def _predict(self, config: dict) -> tuple[float, float]:
        key = tuple(config[k] for k in PARAMS)
        if key in self._measured:
            return self._measured[key]
        if key not in self._predicted:
            raise HarnessError(f"configuration {config} was not measured", "use the surrogate mode to predict it")
        return self._predicted[key]

    def estimated_cost(self, config: dict) -> float:
        return self._predict(config)[1]

    def source(self, config: dict) -> str:
        """``measured`` (a row of the sheet) or ``surrogate`` (predicted by the forests)."""
        return "measured" if tuple(config[k] for k in PARAMS) in self._measured else "surrogate"

    def evaluate(self, config: dict) -> tuple[float, float]:
        return self._predict(config)


class TrainEvaluator:
    """Real budgeted training of NB201 cells on this machine (cost: wall seconds per cell).

    A configuration's Spearman is computed over ``cells`` against NB201's 200-epoch validation
    accuracy (cifar10-valid x-valid, seed mean); every trained cell goes through the run store
    (estimator ``bpe:<config>``), so a re-run or a resumed run trains only what is missing.
    ``executor``: where the cells of a configuration are trained (default: this process; see
    :mod:`harness.executors`); the run store is written here, as each cell ends.
    """

    def __init__(self, bench, cells: Sequence[int], space: dict[str, list], base: BPEConfig | None = None,
                 init_seed: int = 0, device=None, store=None, executor=None):
        unknown = set(space) - set(BPEConfig.__dataclass_fields__)
        if unknown:
            raise HarnessError(f"BPE has no hyper-parameter {sorted(unknown)[0]!r}",
                               f"use {', '.join(BPEConfig.__dataclass_fields__)}")
        if len(cells) < 3:
            raise HarnessError(f"{len(cells)} cells cannot give a rank correlation", "train at least 3 cells")
        self.bench, self.cells, self.base = bench, [int(c) for c in cells], base or BPEConfig()
        self.space = {k: _ordered(k, v) for k, v in space.items()}
        self.init_seed, self.device, self.store, self.executor = init_seed, device, store, executor
        self.truth = bench.query(np.array(self.cells), dataset="cifar10-valid", split="x-valid", epochs=200,
                                 seed="mean")
        self.name, self.cost_unit = "train:nb201", "wall seconds per cell (this machine)"
        self.trained = 0

    def cost_key(self, name, value) -> float:
        return cost_key(name, value)

    def config(self, values: dict) -> BPEConfig:
        return BPEConfig(**{**self.base.as_dict(), **values})

    def candidates(self, space: dict[str, list]) -> list[dict]:
        keys = list(space)
        return [dict(zip(keys, v)) for v in itertools.product(*(space[k] for k in keys))]

    def estimated_cost(self, values: dict) -> float:
        """Proportional to the training work: epochs x images x channels^2 x cells x pixels."""
        c = self.config(values)
        return c.epochs * c.fraction * c.channels ** 2 * c.layers * c.image_size ** 2

    def source(self, values: dict) -> str:
        return "trained"

    def evaluate(self, values: dict) -> tuple[float, float]:
        from ..estimators.run import EstimatorSpec, score_cells

        spec = EstimatorSpec.parse(f"bpe:{self.config(values).label}")
        scores = score_cells(self.bench.arch, self.cells, "cifar10", [spec], batch_size=1, batch_seed=0,
                             init_seed=self.init_seed, device=self.device, store=self.store, executor=self.executor)
        self.trained += int((~scores.cached).sum())
        acc = scores.score.to_numpy(dtype=float)
        rho = spearman(acc, self.truth) if np.isfinite(acc).sum() >= 3 else math.nan
        return float(rho), float(scores.seconds.mean())


def space_from_text(text: str) -> dict[str, list]:
    """``epochs=1|2;channels=4|8;image_size=16|32`` -> {name: [values]} (typed as BPEConfig's fields)."""
    out: dict[str, list] = {}
    fields = BPEConfig.__dataclass_fields__
    for part in filter(None, text.replace(",", ";").split(";")):
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise HarnessError(f"MIP space entry {part!r} is not understood",
                               f"write name=v1|v2;... with names from {', '.join(fields)}")
        kind = fields[key].type
        try:
            out[key] = [v.strip() if kind in ("str", str) else (int(v) if kind in ("int", int) else float(v))
                        for v in values.split("|")]
        except ValueError:
            raise HarnessError(f"MIP space values {values!r} for {key} are not numbers", "write e.g. epochs=1|2") from None
    if not out:
        raise HarnessError("the MIP space is empty", "write e.g. epochs=1|2;channels=4|8")
    return out


def evaluations_frame(result) -> pd.DataFrame:
    return result.evaluations.sort_values(["iteration", "cost"]).reset_index(drop=True)


MIP_EVALUATORS = ("tabular:bpe-paper", "tabular:bpe-paper-surrogate", "train:nb201")


def make_mip_evaluator(kind: str, *, sheet=None, seed: int = 0, bench=None, cells: int = 10, cell_seed: int = 0,
                       space: str = "epochs=1|2;channels=4|8;image_size=16|32;layers=1|2",
                       base: str = "e1-b128-lr0.05-l1-c8-i16-f0.05-v1000", device=None):
    """The evaluator MIP asks, and a sentence that describes it for the tables.

    ``tabular:bpe-paper``: the BPE paper's sheet (``sheet``: its path; default under HARNESS_DATA),
    its 32 measured configurations only; ``tabular:bpe-paper-surrogate``: random forests fitted on
    them predict the others; ``train:nb201``: real training of ``cells`` NB201 cells of ``bench``
    (a seeded sample, ``cell_seed``) under configurations of ``space`` around ``base``."""
    if kind not in MIP_EVALUATORS:
        raise HarnessError(f"MIP evaluator {kind!r} is not known", f"use {', '.join(MIP_EVALUATORS)}")
    if kind.startswith("tabular:"):
        from .replay import load_table

        mode = "surrogate" if kind.endswith("surrogate") else "measured"
        evaluator = TableEvaluator(load_table(sheet), mode=mode, seed=seed)
        return evaluator, (f"The BPE paper's sheet ({mode}: " + (
            "only its 32 measured configurations" if mode == "measured" else
            "random forests fitted on its 32 configurations predict the others; `source` says which") + ")")
    if bench is None:
        raise HarnessError("the train:nb201 evaluator needs the NB201 store", "open it with NB201.open()")
    if not 3 <= cells <= len(bench):
        raise HarnessError(f"--cells {cells} is outside 3..{len(bench)}",
                           f"train 3..{len(bench)} cells per configuration (a rank correlation needs 3)")
    chosen = np.sort(np.random.default_rng(cell_seed).choice(len(bench), size=cells, replace=False))
    base_config = BPEConfig.parse(base)
    evaluator = TrainEvaluator(bench, chosen, space_from_text(space), base_config, init_seed=seed, device=device)
    return evaluator, (f"Real training of {cells} NB201 cells (cell seed {cell_seed}) on this machine, base "
                       f"{base_config.label}, space {space}; Spearman vs cifar10-valid x-valid @200 (seed mean)")
