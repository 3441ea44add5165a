"""Random search (NB201's RS baseline): evaluate uniformly drawn cells until the budget ends."""

from __future__ import annotations

from .base import BudgetExhausted, register


@register("random", reference="Bergstra & Bengio, JMLR 2012; NB201's RS baseline (Dong & Yang, ICLR 2020)",
          options={})
def random_search(space, evaluator, tracker, rng) -> int:
    """Draw cells uniformly (with replacement), keep the best reward."""
    try:
        while True:
            tracker.evaluate(int(space.sample(1, rng)[0]), rng)
    except BudgetExhausted:
        pass
    return tracker.best()
