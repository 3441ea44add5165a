"""A registry by name, as timm's model registry: one decorator registers a function.

Estimators and search strategies each keep one :class:`Registry`, so a new method is one file::

    ESTIMATORS = Registry("estimator")

    @ESTIMATORS.register("synflow", needs=("gradients",), reference="Tanaka et al. 2020")
    def synflow(net, batch): ...

    ESTIMATORS.list("syn*")   # ['synflow']
    ESTIMATORS.get("synflow").fn
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import HarnessError


@dataclass(frozen=True)
class Entry:
    """A registered callable with its name and free-form metadata (needs, variants, reference...)."""

    name: str
    fn: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, **meta) -> Callable[[Callable], Callable]:
        """Decorator: register ``fn`` under ``name`` (default: the function's name)."""

        def decorate(fn: Callable) -> Callable:
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            doc = (fn.__doc__ or "").strip().splitlines()
            self._entries[key] = Entry(key, fn, dict(meta), doc[0] if doc else "")
            return fn

        return decorate

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(self.list()) or 'none'}"
            raise HarnessError(f"unknown {self.kind} {name!r}", hint) from None

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style pattern (``'syn*'``)."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
