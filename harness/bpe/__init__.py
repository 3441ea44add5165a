"""Budgeted performance estimation: configurations, the paper's table replayed, training, MIP."""

from .config import PRESETS, BPEConfig

__all__ = ["PRESETS", "BPEConfig"]
