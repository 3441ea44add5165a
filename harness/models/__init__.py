"""Networks that match the benchmarks' exactly (parameter and FLOP counts tested).

:func:`network_for` is the seam the scorers use: ``space`` names the benchmark, ``arch`` is
that space's text form of a cell (NB201: the arch string; NB101: the spec as JSON, see
:meth:`harness.spaces.nb101.NB101Spec.to_json`), so no estimator knows which space it scores.
"""

from .nb201 import NB201Network, build_network, count_flops, count_parameters, params_mb, summary

SPACES = ("nb201", "nb101")


def network_for(space: str, arch: str, dataset: str = "cifar10"):
    """The benchmark's network of one cell, freshly initialised from torch's global generator."""
    from ..errors import HarnessError

    if space == "nb201":
        return build_network(arch, dataset)
    if space == "nb101":
        import numpy as np

        from ..spaces.nb101 import NB101Spec
        from .nb101 import NB101Network

        if dataset != "cifar10":
            raise HarnessError(f"NB101 has no {dataset} runs", "use --dataset cifar10")
        spec = NB101Spec.from_json(arch).pruned()
        return NB101Network(np.asarray(spec.matrix), spec.ops)
    raise HarnessError(f"no search space {space!r}", f"use one of {', '.join(SPACES)}")


__all__ = ["NB201Network", "SPACES", "build_network", "count_flops", "count_parameters", "network_for", "params_mb",
           "summary"]
