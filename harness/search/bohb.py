"""BOHB over NB201's two training budgets (12 and 200 epochs), through Optuna.

Falkner et al., ICML 2018: model-based sampling (a multivariate TPE, Optuna's
``TPESampler(multivariate=True)``) with Hyperband's successive halving deciding which cells are
promoted to the larger budget (Optuna's ``HyperbandPruner``). Each trial samples the six edges'
ops, trains the cell at ``min_epochs`` (the reward reported at that step), and, unless the
pruner stops it, at ``max_epochs``. NB201 has no checkpoints between its two runs, so the larger
budget is charged in full. The answer is the best cell at ``max_epochs`` (at ``min_epochs`` when
no trial was promoted before the budget ran out).

NB201's own BOHB ran over epochs of the 12-epoch schedule; this one runs over the 12/200-epoch
budgets, so its table is not the same experiment.

A run is a deterministic function of its rng (``[seed, run]``): the TPE sampler is seeded from
it and the study is named from it (the pruner's bracket of each trial hashes the study name).
"""

from __future__ import annotations

import math

import optuna

from ..errors import HarnessError
from ..spaces.nb201 import N_EDGES, OPS
from .base import BudgetExhausted, Option, register


@register("bohb", reference="Falkner et al., ICML 2018 (BOHB); Optuna TPESampler(multivariate) + HyperbandPruner",
          options={"min_epochs": Option(12, int, low=1), "max_epochs": Option(200, int, low=1),
                   "reduction_factor": Option(3, int, low=2), "startup_trials": Option(10, int, low=0)})
def bohb(space, evaluator, tracker, rng, min_epochs: int = 12, max_epochs: int = 200, reduction_factor: int = 3,
         startup_trials: int = 10) -> int:
    """TPE proposals, Hyperband promotions from ``min_epochs`` to ``max_epochs``; best at max."""
    if not hasattr(evaluator, "at_epochs"):
        raise HarnessError(f"bohb needs an estimator with training budgets, not {evaluator.name}",
                           "use --estimator tabular:valid@12 (or another tabular:ROLE@EPOCHS)")
    if not int(min_epochs) < int(max_epochs):
        raise HarnessError(f"bohb needs min_epochs < max_epochs, got {min_epochs} and {max_epochs}",
                           "use --option min_epochs=12 --option max_epochs=200")
    low, high = evaluator.at_epochs(int(min_epochs)), evaluator.at_epochs(int(max_epochs))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Everything Optuna draws comes from the run's rng: the sampler's seed, and the study's name,
    # from which HyperbandPruner hashes each trial's bracket (crc32 of "<study name>_<trial
    # number>"); left unnamed, a study gets a fresh uuid4 name and the brackets change per call.
    seed = int(rng.integers(2**31))
    study = optuna.create_study(
        study_name=f"bohb-{seed}", direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=int(startup_trials)),
        pruner=optuna.pruners.HyperbandPruner(min_resource=int(min_epochs), max_resource=int(max_epochs),
                                              reduction_factor=int(reduction_factor)))
    best: dict[int, tuple[float, int]] = {}  # epochs -> (reward, index)
    try:
        while True:
            trial = study.ask()
            index = space.index(tuple(OPS.index(trial.suggest_categorical(f"edge{e}", OPS)) for e in range(N_EDGES)))
            for epochs, oracle in ((int(min_epochs), low), (int(max_epochs), high)):
                reward = tracker.evaluate(index, rng, evaluator=oracle)
                if not math.isfinite(reward):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    break
                if reward > best.get(epochs, (-math.inf, -1))[0]:
                    best[epochs] = (reward, index)
                trial.report(reward, epochs)
                if epochs == int(max_epochs):
                    study.tell(trial, reward)
                elif trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    break
    except BudgetExhausted:
        pass
    if not best:
        raise HarnessError("the budget did not afford one evaluation", "give bohb a larger budget")
    return best.get(int(max_epochs), best.get(int(min_epochs)))[1]
