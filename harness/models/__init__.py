"""Networks that match the benchmarks' exactly (parameter and FLOP counts tested)."""

from .nb201 import NB201Network, build_network, count_flops, count_parameters, params_mb, summary

__all__ = ["NB201Network", "build_network", "count_flops", "count_parameters", "params_mb", "summary"]
