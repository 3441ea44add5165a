"""Minimum Importance Pruning (MIP): search the BPE configuration itself (Zheng et al., CVPR 2020).

Each iteration (1) evaluates ``samples`` configurations of the current space, the cheapest one
first; (2) fits a random forest (scikit-learn) from configuration to objective on every
evaluation so far; (3) estimates the importance of each hyper-parameter still free
(``permutation``: scikit-learn's permutation importance; ``marginal``: the variance of the
forest's main-effect curve, the first-order term of fANOVA); (4) fixes the least important one
to its cheapest value (by the cost model; among equally cheap values, the best one seen; with
a measured-only evaluator, the cheapest value that still has measured configurations). It
stops when one hyper-parameter is left free, and answers with the best configuration evaluated
in the final space (highest objective among those within the cost limit).

Objectives (explicit): ``correlation`` (Spearman with the ground truth; the cost limit, when
given, is a constraint) or ``tradeoff`` (Spearman - ``weight`` * log10(cost)). The paper
publishes neither its samples per iteration nor its importance estimator: both are options.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from .. import exactmath
from ..errors import HarnessError

log = logging.getLogger(__name__)


class BPEEvaluator(Protocol):
    """What MIP needs: a space of values per hyper-parameter and an evaluation of one point."""

    name: str
    space: dict[str, list]  # hyper-parameter -> its values, cheapest first

    def evaluate(self, config: dict) -> tuple[float, float]:
        """(Spearman with the ground truth, cost per cell in ``cost_unit``) for one configuration."""

    def cost_key(self, name: str, value) -> float:
        """A value's rank in cost (lower is cheaper) for pruning; equal for cost-neutral values."""

    def estimated_cost(self, config: dict) -> float:
        """The cost expected before evaluating (to evaluate the cheapest configuration first)."""

    def candidates(self, space: dict[str, list]) -> list[dict]:
        """Every configuration of ``space`` this evaluator can evaluate."""


@dataclass
class MIPResult:
    chosen: dict
    spearman: float
    cost: float
    objective: float
    evaluations: pd.DataFrame  # every evaluated configuration with its iteration
    importances: pd.DataFrame  # iteration, parameter, importance, pruned_to
    fixed: dict = field(default_factory=dict)


def objective_value(spearman: float, cost: float, objective: str, weight: float) -> float:
    if objective == "correlation":
        return spearman
    if objective == "tradeoff":
        return spearman - weight * exactmath.log10(max(cost, 1e-12))  # the same bits on every CPU
    raise HarnessError(f"MIP objective {objective!r} is not known", "use correlation or tradeoff")


def _encode(space: dict[str, list], rows: list[dict]) -> np.ndarray:
    """Each hyper-parameter as its value's position in the space (ordinal, cheapest first)."""
    return np.array([[space[k].index(r[k]) for k in space] for r in rows], dtype=np.float64)


def _importances(space, rows, y, free, method: str, seed: int) -> dict[str, float]:
    from sklearn.ensemble import RandomForestRegressor

    X = _encode(space, rows)
    # seeded and on one thread: with threads the forest sums its trees' predictions in the order
    # they finish, which moves the last digits of the importances
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=1, random_state=seed, n_jobs=1).fit(X, y)
    keys = list(space)
    if method == "permutation":
        from sklearn.inspection import permutation_importance

        imp = permutation_importance(forest, X, y, n_repeats=20, random_state=seed, n_jobs=1)
        return {k: float(imp.importances_mean[keys.index(k)]) for k in free}
    if method == "marginal":
        out = {}
        for k in free:
            j = keys.index(k)
            curve = []
            for v in range(len(space[k])):
                Xv = X.copy()
                Xv[:, j] = v
                curve.append(forest.predict(Xv).mean())
            out[k] = float(np.var(curve))
        return out
    raise HarnessError(f"importance method {method!r} is not known", "use permutation or marginal")


def mip(evaluator: BPEEvaluator, *, samples: int = 4, importance: str = "permutation", objective: str = "correlation",
        weight: float = 0.1, cost_limit: float | None = None, seed: int = 0, max_iterations: int | None = None,
        progress=None) -> MIPResult:
    """Run MIP against ``evaluator``; see the module docstring."""
    if samples < 1:
        raise HarnessError(f"samples={samples} must be >= 1", "sample at least one configuration per iteration")
    if not (math.isfinite(weight) and weight >= 0):
        raise HarnessError(f"the cost weight {weight} is not a finite number >= 0",
                           "give --weight 0 or more, e.g. --weight 0.1")
    if cost_limit is not None and not (math.isfinite(cost_limit) and cost_limit > 0):
        raise HarnessError(f"the cost limit {cost_limit} is not a finite number > 0",
                           "give --cost-limit a positive cost per cell, or leave it out")
    if max_iterations is not None and max_iterations < 1:
        raise HarnessError(f"max_iterations={max_iterations} must be >= 1", "give 1 or more, or leave it out")
    rng = np.random.default_rng(seed)
    space = {k: list(v) for k, v in evaluator.space.items()}
    fixed: dict = {}
    seen: dict[tuple, dict] = {}
    imp_rows = []

    def current_space():
        return {k: ([fixed[k]] if k in fixed else space[k]) for k in space}

    def run(config, iteration):
        key = tuple(config[k] for k in space)
        if key in seen:
            return seen[key]
        spearman, cost = evaluator.evaluate(config)
        row = {**config, "iteration": iteration, "spearman": spearman, "cost": cost,
               "objective": objective_value(spearman, cost, objective, weight)}
        if hasattr(evaluator, "source"):
            row["source"] = evaluator.source(config)
        seen[key] = row
        if progress:
            progress(row)
        return row

    iteration = 0
    while True:
        iteration += 1
        sp = current_space()
        candidates = evaluator.candidates(sp)
        if not candidates:
            raise HarnessError(f"{evaluator.name} can evaluate no configuration of the space left", "widen the space")
        batch = [min(candidates, key=evaluator.estimated_cost)]  # the cheapest first
        fresh = [c for c in candidates if tuple(c[k] for k in space) not in seen and c != batch[0]]
        for i in rng.permutation(len(fresh))[:max(0, samples - 1)]:
            batch.append(fresh[int(i)])
        for config in batch:
            run(config, iteration)
        free = [k for k in space if k not in fixed and len(space[k]) > 1]
        if len(free) <= 1 or (max_iterations and iteration >= max_iterations):
            break
        rows = list(seen.values())
        y = np.array([r["objective"] for r in rows])
        finite = np.isfinite(y)
        if finite.sum() < 2:
            raise HarnessError("MIP has fewer than two finite evaluations to fit the forest",
                               "raise samples, or check the evaluator's failures")
        imps = _importances(space, [r for r, ok in zip(rows, finite) if ok], y[finite], free, importance, seed)
        least = min(free, key=lambda k: (imps[k], k))
        # the cheapest value that leaves something to evaluate; among equally cheap, the best seen
        viable = [v for v in space[least] if evaluator.candidates({**sp, least: [v]})]
        floor = min(evaluator.cost_key(least, v) for v in viable)
        cheap = [v for v in viable if evaluator.cost_key(least, v) == floor]
        best_seen = {v: max((r["objective"] for r in rows if r[least] == v and math.isfinite(r["objective"])),
                            default=-math.inf) for v in cheap}
        value = max(cheap, key=lambda v: best_seen[v])
        fixed[least] = value
        for k in free:
            imp_rows.append({"iteration": iteration, "parameter": k, "importance": imps[k],
                             "pruned_to": value if k == least else ""})
        log.info("MIP iteration %d: pruned %s -> %s (importance %.4g)", iteration, least, value, imps[least])
    final = current_space()
    pool = [r for r in seen.values() if all(r[k] in final[k] for k in space) and math.isfinite(r["objective"])
            and (cost_limit is None or r["cost"] <= cost_limit)]
    if not pool:
        pool = [r for r in seen.values() if math.isfinite(r["objective"])
                and (cost_limit is None or r["cost"] <= cost_limit)]
    if not pool:
        raise HarnessError("no evaluated configuration meets the cost limit", "raise --cost-limit")
    best = max(pool, key=lambda r: (r["objective"], -r["cost"]))
    evaluations = pd.DataFrame(list(seen.values()))
    return MIPResult({k: best[k] for k in space}, float(best["spearman"]), float(best["cost"]),
                     float(best["objective"]), evaluations, pd.DataFrame(imp_rows), dict(fixed))
