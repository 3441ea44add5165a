"""Search spaces: the capabilities strategies use (sample, mutate, encode)."""

from .nb201 import OPS, NB201Space, arch_to_str, canonical_form, parse_arch

__all__ = ["OPS", "NB201Space", "arch_to_str", "canonical_form", "parse_arch"]
