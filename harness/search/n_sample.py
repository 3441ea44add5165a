"""N-sample training-free search (the EPE-NAS and NASWOT protocol).

Draw N cells uniformly with replacement, score each, keep the highest score (NaN scores are
ignored, as the papers' ``nanargmax``). It is random search with a budget of N cells; scores
come from the shared run store, so many runs cost only the distinct cells.
"""

from __future__ import annotations

from ..errors import HarnessError
from .base import register
from .random_search import random_search


@register("n_sample", reference="Lopes et al., ICANN 2021; Mellor et al., ICML 2021", options={})
def n_sample(space, evaluator, tracker, rng) -> int:
    """Score N cells drawn uniformly; the best score wins."""
    if tracker.budget.cells is None:
        raise HarnessError("n_sample needs a budget of N cells", "pass --budget N, e.g. --budget 100")
    return random_search(space, evaluator, tracker, rng)
