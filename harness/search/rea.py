"""Regularized (aging) evolution, as NB201 runs it: population 10, tournament 3.

Real et al., AAAI 2019, Algorithm 1: a random initial population; each cycle draws
``sample_size`` members with replacement, mutates the best of them (one edge to another op),
evaluates the child, appends it and removes the oldest. The answer is the best cell of the whole
history (NB201's ``max(history, key=accuracy)``).
"""

from __future__ import annotations

from collections import deque

from .base import BudgetExhausted, Option, register


@register("rea", reference="Real et al., AAAI 2019; NB201 settings (population 10, tournament 3)",
          options={"population": Option(10, int, low=1), "sample_size": Option(3, int, low=1)})
def regularized_evolution(space, evaluator, tracker, rng, population: int = 10, sample_size: int = 3) -> int:
    """Aging evolution; returns the best cell of the history."""
    members: deque[tuple[int, float]] = deque()
    try:
        while len(members) < population:
            index = int(space.sample(1, rng)[0])
            members.append((index, tracker.evaluate(index, rng)))
        while True:
            picks = rng.integers(len(members), size=sample_size).tolist()
            parent = members[picks[0]]  # the first of the best wins ties, as max() would
            for i in picks[1:]:
                if _key(members[i][1]) > _key(parent[1]):
                    parent = members[i]
            child = space.mutate(parent[0], rng)
            members.append((child, tracker.evaluate(child, rng)))
            members.popleft()
    except BudgetExhausted:
        pass
    return tracker.best()


def _key(reward: float) -> float:
    return reward if reward == reward else float("-inf")  # a failed (NaN) member never wins
