"""Training-free estimators, one file each, registered by name (see :mod:`.base`).

    from harness.estimators import ESTIMATORS, score
    ESTIMATORS.list("syn*")
"""

import importlib
import pkgutil

from .base import ESTIMATORS, Batch, ScoreResult, register, score, score_module

_HELPERS = {"base", "jacobian", "gradients"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _HELPERS:
        importlib.import_module(f"{__name__}.{_module.name}")

# estimators of other packages: entry points in group nas_harness.estimators (examples/my-estimator)
ESTIMATORS.load_entry_points("nas_harness.estimators")

__all__ = ["ESTIMATORS", "Batch", "ScoreResult", "register", "score", "score_module"]
