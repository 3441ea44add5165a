"""Writing tables and plots: tidy CSV (one row per observation), the same table as Markdown, PNG.

Every command checks its ``--out`` folder with :func:`out_folder` before any work (created when
absent, and a file written there and removed); a write that fails later anyway (a full disk)
is one line naming the file (:func:`writing`), and the scores already computed stay in the run
store, so running again with room to write recomputes none of them.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..config import make_folder
from ..errors import HarnessError, reason

log = logging.getLogger(__name__)
KEPT = "the scores already computed are kept in the run store, so a rerun does not recompute them"


def _why(err: OSError) -> str:
    return err.strerror or reason(err)


def out_folder(value: str | os.PathLike, flag: str = "--out") -> Path:
    """``value`` as a folder this process can write: created when absent, and a probe file
    written in it and removed again; anything else is one line, before any work starts."""
    path = Path(value).expanduser()
    fix = "pass a folder you can write (it is created when absent)"
    make_folder(path, f"{flag} {value}", fix)
    probe = None
    try:
        handle, probe = tempfile.mkstemp(prefix=".nas-harness-probe-", dir=path)
        with os.fdopen(handle, "wb") as stream:
            stream.write(b"probe\n")
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as err:
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        raise HarnessError(f"{flag} {value} is not writable ({_why(err)})",
                           "free disk space, or pass another folder" if full else fix) from err
    finally:
        if probe is not None:
            Path(probe).unlink(missing_ok=True)
    return path


@contextmanager
def writing(path: Path):
    """Write ``path`` inside this block: an OSError (a full disk, a folder made read-only since
    the check) is one line naming the file."""
    try:
        yield path
    except OSError as err:
        raise HarnessError(f"cannot write {path} ({_why(err)})",
                           f"free disk space (or pass another --out) and run again: {KEPT}") from err


@contextmanager
def replacing(path: Path):
    """Yield a temporary name beside ``path``; what is written there replaces ``path`` at the end
    of the block. A write that fails (one line, see :func:`writing`) leaves ``path`` as it was
    (an earlier run's table) and no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path):
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _fmt(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")  # arch strings hold pipes


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table; floats with ``digits`` decimals, NaN as an en dash."""
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def write_table(table: pd.DataFrame, out: Path, name: str, title: str = "", notes: str = "",
                digits: int = 4) -> tuple[Path, Path]:
    """Write ``out/name.csv`` (full precision) and ``out/name.md``; returns both paths."""
    out = Path(out)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    with replacing(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    text = (f"## {title}\n\n" if title else "") + to_markdown(table, digits) + "\n"
    if notes:
        text += "\n" + notes.strip() + "\n"
    with replacing(md_path) as tmp:
        tmp.write_text(text)
    log.info("wrote %s and %s", csv_path, md_path)
    return csv_path, md_path


def new_figure(*args, **kwargs):
    """A matplotlib figure on the non-interactive backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, out: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    path = out / f"{name}.png"
    try:
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    log.info("wrote %s", path)
    return path


MANIFEST = "manifest.json"


def write_manifest(out: Path, command: str, options: dict) -> Path:
    """``out/manifest.json``: what made the folder's tables (the command, every option as parsed,
    the harness version), so that ``nas-harness report`` can name the protocol of each result
    (batch, seeds, dataset, cells) without parsing its Markdown. Nothing in it changes between two
    runs of the same command (no clock, no commit), so rerunning a job leaves committed files alone."""
    import json

    from .. import __version__

    def plain(value):
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return str(value)

    def portable(value):
        """An absolute path of this machine as something two machines share: relative to the
        working folder when under it, the out folder as ``$OUT``, any other as its file name."""
        if not (isinstance(value, str) and os.path.isabs(value)):
            return value
        here = Path.cwd().resolve()
        path = Path(value).resolve()
        if here == path or here in path.parents:
            return str(path.relative_to(here)) or "."
        root = Path(out).resolve()
        if path == root:
            return "$OUT"
        for base, name in ((root, "$OUT"), (root.parent, "$OUT/..")):
            if base in path.parents:
                return f"{name}/{path.relative_to(base).as_posix()}"
        return path.name

    words = command.split(" ")
    record = {"command": " ".join(portable(w) for w in words),
              "options": {k: [portable(x) for x in v] if isinstance(v, list) else portable(v)
                          for k, v in ((k, plain(v)) for k, v in sorted(options.items()))},
              "harness_version": __version__}
    path = Path(out) / MANIFEST
    text = json.dumps(record, indent=1) + "\n"
    if path.is_file() and path.read_text() == text:
        return path
    with writing(path):
        path.write_text(text)
    return path


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest (see :func:`write_manifest`), or None when it has none."""
    import json

    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(f"{path} is not a manifest ({reason(err)})", "delete it and rerun the command that made the folder") from err
