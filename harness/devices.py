"""The one check of a ``--device`` value, shared by every command that takes one.

``cpu``; ``cuda`` or ``cuda:N`` when torch on this machine has CUDA (and device N); ``mps`` when
torch has Apple's Metal backend. Anything else is refused with one line before any work starts.
"""

from __future__ import annotations

import re

import torch

from .errors import HarnessError

KNOWN = "cpu, cuda or cuda:N"


def default_device() -> torch.device:
    """cuda when torch on this machine has it, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(value: str | torch.device | None, flag: str = "--device") -> torch.device:
    """The torch device ``value`` names (``None`` or "": :func:`default_device`), checked to exist
    on this machine; else a one-line :class:`HarnessError` saying which devices there are."""
    if value is None or value == "":
        return default_device()
    text = str(value).strip().lower()
    m = re.fullmatch(r"(cpu|cuda|mps)(?::([0-9]+))?", text)
    if not m:
        raise HarnessError(f"{flag} {value!r} is not a device the harness runs on",
                           f"use {KNOWN}, or leave {flag} out (cuda when present, else cpu)")
    kind, number = m.group(1), m.group(2)
    if kind == "cpu":
        if number not in (None, "0"):
            raise HarnessError(f"{flag} {value!r}: there is one cpu device", f"write {flag} cpu")
        return torch.device("cpu")
    if kind == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise HarnessError(f"{flag} {value!r}: torch {torch.__version__} on this machine has no MPS backend",
                               f"use {flag} cpu, or leave {flag} out")
        return torch.device(text)
    if not torch.cuda.is_available():
        raise HarnessError(f"{flag} {value!r}: torch {torch.__version__} on this machine has no CUDA device",
                           f"use {flag} cpu, or leave {flag} out (cpu here)")
    count = torch.cuda.device_count()
    if number is not None and int(number) >= count:
        raise HarnessError(f"{flag} {value!r}: this machine has {count} CUDA device{'s' if count != 1 else ''}",
                           f"use cuda:0..cuda:{count - 1}, or {flag} cuda")
    return torch.device(text)


#: Tensor methods that copy a value to the host, so that on a GPU they wait for every queued kernel
_HOST_READS = frozenset({"__float__", "__int__", "__bool__", "__index__", "item", "tolist", "cpu", "numpy", "nonzero",
                         "unique", "masked_select", "argwhere"})


class HostSyncCounter(torch.overrides.TorchFunctionMode):
    """Counts, while active, the tensor operations that read a value back to the host (``float``,
    ``.item()``, ``.tolist()``, ``.cpu()``, boolean-mask indexing, ``unique``...): each one waits
    for the GPU. It counts them on any device, so a CPU test can pin a scorer's number of waits.

    >>> with HostSyncCounter() as syncs:
    ...     float(torch.ones(3).sum())
    3.0
    >>> syncs.count, syncs.names
    (1, ['__float__'])
    """

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    @property
    def count(self) -> int:
        return len(self.names)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _HOST_READS or (name == "__getitem__" and _has_mask(args[1] if len(args) > 1 else None)):
            self.names.append(name)
        return func(*args, **(kwargs or {}))


def _has_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)
