"""Where the harness reads data and keeps its built stores.

``HARNESS_DATA``: the folder of real input data (the project's ``../shared/data`` in CI); when
unset, ``HARNESS_HOME/data`` if it exists (``nas-harness data fetch`` fills it).
``HARNESS_HOME``: where built stores live (default ``~/.cache/nas-harness``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataMissingError, HarnessError, reason

#: the protocol of every training-free baseline in results/correlate-cifar10: what ``nas-harness
#: compare`` reruns and what the report ranks estimators on
BASELINE_SAMPLE = {"dataset": "cifar10", "archs": 1000, "seed": 0, "batch_size": 64, "batch_seed": 42}

DATA_ENV = "HARNESS_DATA"
HOME_ENV = "HARNESS_HOME"


def harness_home() -> Path:
    """The folder of built stores; created on first use. One that cannot be a folder (a file, a
    path under a file, a parent the harness may not write) is a one-line error. A read-only
    folder is accepted here (a built NB201 store can be read from it); what needs to write
    there (the run store, a store build) says so in one line."""
    value = os.environ.get(HOME_ENV)
    home = Path(value or Path.home() / ".cache" / "nas-harness").expanduser()
    where = f"{HOME_ENV}={value}" if value else f"the store folder {home} (HARNESS_HOME is not set)"
    fix = f"set {HOME_ENV} (or --home) to a folder you can write, e.g. export {HOME_ENV}=~/.cache/nas-harness"
    return make_folder(home, where, fix)


def make_folder(path: Path, where: str, fix: str) -> Path:
    """``path`` created as a folder (with its parents); a file in the way, or a parent that cannot
    be created, is a one-line error naming ``where``."""
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{where} is a file, not a folder", fix)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file" if blocker is not None else err.strerror or reason(err)
        raise HarnessError(f"{where} cannot be created ({why})", fix) from err
    return path


def data_root(required: bool = False) -> Path | None:
    """The folder of real data: ``HARNESS_DATA`` when set; else ``HARNESS_HOME/data`` when that
    folder exists (where ``nas-harness data fetch`` puts the public files by default); else None
    (an error when ``required``)."""
    value = os.environ.get(DATA_ENV)
    if not value:
        fetched = harness_home() / "data"
        if fetched.is_dir():
            return fetched
        if required:
            raise DataMissingError(
                f"{DATA_ENV} is not set and {fetched} does not exist",
                f"point it at the folder of real data, e.g. export {DATA_ENV}=../shared/data, "
                "or run `nas-harness data fetch all`",
            )
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataMissingError(
            f"{DATA_ENV}={value} is not a directory", f"set {DATA_ENV} to the folder that holds nb201/, images/, ..."
        )
    return root


def data_file(relative: str, what: str) -> Path:
    """A file under ``HARNESS_DATA``; a one-line error naming it and how to get it when absent."""
    root = data_root(required=True)
    path = root / relative
    if not path.exists():
        raise DataMissingError(
            f"{what} not found at {path}", f"put {relative} under {DATA_ENV} (see PROVENANCE.md for its source)"
        )
    return path
