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
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import HarnessError

log = logging.getLogger(__name__)
BUILTIN = "nas-harness"
PLUGIN_ERRORS = (ImportError, AttributeError, SyntaxError, TypeError, ValueError, HarnessError)


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

    def origin(self, name: str) -> str:
        """The distribution that registered ``name`` (``nas-harness`` for the harness's own)."""
        return str(self.get(name).meta.get("origin", BUILTIN))

    def load_entry_points(self, group: str) -> list[str]:
        """Register the methods of other installed packages: every entry point of ``group`` is
        loaded (importing its module runs its ``@register``; a bare function is registered under
        the entry point's name), each new name marked with its distribution as ``origin``. A plug-in
        that fails to load is named in one warning and skipped: it never breaks the harness."""
        from importlib.metadata import entry_points

        added = []
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            before = set(self._entries)
            try:
                obj = ep.load()
                if ep.name not in self._entries and set(self._entries) == before and callable(obj):
                    self.register(ep.name)(obj)
            except PLUGIN_ERRORS as err:
                log.warning("%s plug-in %s (%s) not loaded: %s: %s", self.kind, ep.name, ep.value,
                            type(err).__name__, str(err).splitlines()[0] if str(err) else "")
                continue
            origin = ep.dist.name if getattr(ep, "dist", None) is not None else ep.value
            for name in sorted(set(self._entries) - before):
                self._entries[name].meta.setdefault("origin", origin)
                added.append(name)
        return added

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
