"""Search strategies, one file each, registered by name (see :mod:`.base`).

    from harness.search import STRATEGIES, run_strategy
    STRATEGIES.list()      # ['n_sample', 'random', 'rea', 'reinforce', ...]
"""

import importlib
import pkgutil

from .base import (STRATEGIES, Budget, BudgetExhausted, Evaluation, Option, SearchResult, Tracker, check_options,
                   register, run_strategy)

_HELPERS = {"base", "evaluators", "runner"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _HELPERS:
        importlib.import_module(f"{__name__}.{_module.name}")

# strategies of other packages: entry points in group nas_harness.strategies
STRATEGIES.load_entry_points("nas_harness.strategies")

__all__ = ["STRATEGIES", "Budget", "BudgetExhausted", "Evaluation", "Option", "SearchResult", "Tracker",
           "check_options", "register", "run_strategy"]
