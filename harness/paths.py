"""Paths as the tables write them: never a path of this machine.

A committed table that named ``/home/someone/data/bpe/...`` would change with the machine that
wrote it. :func:`portable_path` names a file by the folder it was found through instead:
``HARNESS_DATA/bpe/Search_Hyperparameters_Results.xlsx`` for anything in the data folder
(``HARNESS_DATA``, or ``HARNESS_HOME/data`` where ``data fetch`` puts it: the same name either
way), ``HARNESS_HOME/...``, a path relative to the working folder, or, outside all of them, the
file's name alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import DATA_ENV, HOME_ENV, data_root, harness_home
from .errors import HarnessError


def _under(path: Path, root: str | os.PathLike | None) -> str | None:
    if not root:
        return None
    try:
        return path.relative_to(Path(root).expanduser().resolve()).as_posix()
    except (ValueError, OSError):
        return None


def portable_path(path: str | os.PathLike) -> str:
    """``path`` without this machine's folders in it (see the module docstring)."""
    resolved = Path(path).expanduser().resolve()
    try:
        data = data_root()
    except HarnessError:  # HARNESS_DATA names no folder: nothing can be under it
        data = None
    for env, root in ((DATA_ENV, data), (HOME_ENV, harness_home())):
        rel = _under(resolved, root)
        if rel is not None:
            return f"{env}/{rel}"
    rel = _under(resolved, Path.cwd())
    return rel if rel is not None else resolved.name
