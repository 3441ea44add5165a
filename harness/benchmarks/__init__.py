"""Tabular ground truth: one canonical store per benchmark (see :mod:`.store`)."""

from .nb201 import NB201
from .store import TabularStore

__all__ = ["NB201", "TabularStore"]
