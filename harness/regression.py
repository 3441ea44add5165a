"""Regression references: an estimator's expected rank correlation, recomputed and compared.

A reference is a small YAML (a list of mappings, or ``{"rows": [...]}``) or CSV file, one row per
check::

    - estimator: synflow          # name, or name:variant
      dataset: cifar10            # images the estimator scores, and the benchmark's accuracies
      truth: test@200             # valid@200, test@200, valid@12, test@12
      cells: 100                  # a seeded sample of this many NB201 cells (cell_seed), or
      cell_seed: 0
      # indices: [4, 42, 53]      # explicit cell indices, or indices_file: cells.txt (one per line)
      batch_size: 64
      batch_seed: 42
      kendall: 0.61               # expected values (either or both)
      spearman: 0.80
      tolerance: 0.02             # largest |measured - expected| that passes

:func:`load_reference` checks every field before anything is computed; :func:`check` scores the
cells (through the run store: a cell scored before is read back) and returns the drift per row.
The command line (``nas-harness check``) and the pytest plugin (:mod:`harness.testing`) use it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import HarnessError

SPACES = ("nb201",)
TRUTHS = ("valid@200", "test@200", "valid@12", "test@12")


@dataclass(frozen=True)
class ReferenceRow:
    """One check: the estimator, its cells and batch, and the expected correlations."""

    estimator: str
    space: str = "nb201"
    dataset: str = "cifar10"
    truth: str = "test@200"
    cells: int | None = None
    cell_seed: int = 0
    indices: tuple[int, ...] | None = None
    batch_size: int = 64
    batch_seed: int = 42
    init_seed: int = 0
    kendall: float | None = None
    spearman: float | None = None
    tolerance: float = 0.02

    @property
    def label(self) -> str:
        where = f"{self.cells} cells (seed {self.cell_seed})" if self.indices is None else f"{len(self.indices)} cells"
        return f"{self.estimator} on {self.dataset} {where}, batch {self.batch_size} (seed {self.batch_seed}), {self.truth}"


FIELDS = {f.name for f in fields(ReferenceRow)}


def _number(value, kind, name: str, where: str):
    if value is None or (isinstance(value, str) and value.strip() == "") or (
            isinstance(value, float) and math.isnan(value)):
        return None
    try:
        number = kind(float(value)) if kind is int and not isinstance(value, bool) else kind(value)
    except (TypeError, ValueError):
        raise HarnessError(f"{where}: {name} {value!r} is not a number", f"write {name} as a number") from None
    if kind is int and float(value) != number:
        raise HarnessError(f"{where}: {name} {value!r} is not a whole number", f"write {name} as an integer")
    return number


def parse_row(raw: dict, where: str, base: Path | None = None, require_expected: bool = True) -> ReferenceRow:
    """One row of a reference, checked field by field (one-line errors naming ``where``)."""
    from .estimators.run import EstimatorSpec

    if not isinstance(raw, dict):
        raise HarnessError(f"{where} is not a mapping of fields", "write each row as estimator: ..., cells: ...")
    unknown = sorted(set(raw) - FIELDS - {"indices_file"})
    if unknown:
        raise HarnessError(f"{where}: unknown field {unknown[0]!r}", f"use {', '.join(sorted(FIELDS | {'indices_file'}))}")
    estimator = str(raw.get("estimator") or "").strip()
    if not estimator:
        raise HarnessError(f"{where} names no estimator", "add estimator: NAME (nas-harness estimators lists them)")
    estimator = EstimatorSpec.parse(estimator).label  # an unknown name or variant is one line here
    values = {"estimator": estimator}
    for name in ("space", "dataset", "truth"):
        if raw.get(name) not in (None, ""):
            values[name] = str(raw[name]).strip()
    for name in ("cells", "cell_seed", "batch_size", "batch_seed", "init_seed"):
        number = _number(raw.get(name), int, name, where)
        if number is not None:
            values[name] = number
    for name in ("kendall", "spearman", "tolerance"):
        number = _number(raw.get(name), float, name, where)
        if number is not None:
            values[name] = number
    indices = raw.get("indices")
    if raw.get("indices_file") not in (None, ""):
        path = Path(str(raw["indices_file"]))
        path = path if path.is_absolute() or base is None else base / path
        try:
            indices = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as err:
            raise HarnessError(f"{where}: indices_file {path} cannot be read ({err.__class__.__name__})",
                               "give a text file of cell indices, one per line") from None
    if isinstance(indices, str):
        indices = [t for t in indices.replace(";", " ").replace(",", " ").split() if t]
    if indices is not None and not (isinstance(indices, float) and math.isnan(indices)):
        values["indices"] = tuple(_number(i, int, "index", where) for i in indices)
    row = ReferenceRow(**values)
    _validate(row, where, require_expected)
    return row


def _validate(row: ReferenceRow, where: str, require_expected: bool = True) -> None:
    if row.space not in SPACES:
        raise HarnessError(f"{where}: no search space {row.space!r}", f"use {', '.join(SPACES)}")
    if row.truth not in TRUTHS:
        raise HarnessError(f"{where}: truth {row.truth!r} is not known", f"use one of {', '.join(TRUTHS)}")
    if (row.cells is None) == (row.indices is None):
        raise HarnessError(f"{where}: give either cells (a seeded sample, with cell_seed) or indices",
                           "e.g. cells: 100 and cell_seed: 0")
    n = row.cells if row.indices is None else len(row.indices)
    if n < 3:
        raise HarnessError(f"{where}: {n} cells cannot give a rank correlation", "use at least 3 cells")
    if row.indices is not None and len(set(row.indices)) != len(row.indices):
        raise HarnessError(f"{where}: an index appears twice", "list each cell once")
    if require_expected and row.kendall is None and row.spearman is None:
        raise HarnessError(f"{where}: no expected kendall or spearman", "add kendall: X and/or spearman: Y "
                           "(nas-harness check --write-reference computes them)")
    for name in ("kendall", "spearman"):
        value = getattr(row, name)
        if value is not None and not -1 <= value <= 1:
            raise HarnessError(f"{where}: {name} {value} is not a correlation", "give a value in [-1, 1]")
    if not (row.tolerance >= 0 and math.isfinite(row.tolerance)):
        raise HarnessError(f"{where}: tolerance {row.tolerance} is not a non-negative number", "e.g. tolerance: 0.02")
    if row.batch_size < 1:
        raise HarnessError(f"{where}: batch_size {row.batch_size} is not positive", "e.g. batch_size: 64")


def load_reference(path: str | Path) -> list[ReferenceRow]:
    """The rows of a YAML (``.yaml``/``.yml``) or CSV reference file, each checked."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"reference {path} cannot be read ({err.__class__.__name__})",
                           "give a YAML or CSV reference (nas-harness check --write-reference writes one)") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise HarnessError(f"reference {path} is not valid YAML{at}", "fix the file's syntax") from None
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise HarnessError(f"reference {path} holds no list of rows", "write a YAML list, one mapping per check")
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        raise HarnessError(f"reference {path}: unknown format {path.suffix or '(no suffix)'}", "use .yaml, .yml or .csv")
    if not rows:
        raise HarnessError(f"reference {path} has no rows", "add at least one check")
    return [parse_row(raw, f"{path} row {i + 1}", base=path.parent) for i, raw in enumerate(rows)]


def cells_of(row: ReferenceRow, total: int) -> np.ndarray:
    from .estimators.run import sample_indices

    if row.indices is not None:
        indices = np.asarray(row.indices, dtype=np.int64)
        bad = indices[(indices < 0) | (indices >= total)]
        if bad.size:
            raise HarnessError(f"{row.label}: cell index {int(bad[0])} is outside 0..{total - 1}", "use NB201 indices")
        return indices
    if row.cells > total:
        raise HarnessError(f"{row.label}: {row.cells} cells asked, the space has {total}", f"use at most {total}")
    return sample_indices(row.cells, row.cell_seed, total)


def measure(row: ReferenceRow, bench, device=None, executor=None) -> dict:
    """Score ``row``'s cells and return kendall, spearman, n (finite scores) and failed."""
    from .estimators.run import EstimatorSpec, score_cells
    from .metrics import rank_agreement
    from .report.correlation import ground_truths

    indices = cells_of(row, len(bench))
    truths = ground_truths(bench, row.dataset)
    if row.truth not in truths:
        raise HarnessError(f"{row.label}: the store has no {row.truth} for {row.dataset}",
                           f"use one of {', '.join(truths)}, or import the source that has it (nas-harness data info)")
    scores = score_cells(bench.arch, indices, row.dataset, [EstimatorSpec.parse(row.estimator)],
                         batch_size=row.batch_size, batch_seed=row.batch_seed, init_seed=row.init_seed,
                         device=device, executor=executor)
    r = rank_agreement(scores.score.to_numpy(), truths[row.truth][1][scores["index"].to_numpy()], n_boot=0)
    return {"kendall": r.kendall, "spearman": r.spearman, "n": r.n, "failed": int((scores.error != "").sum())}


def check(rows: list[ReferenceRow], bench, device=None, executor=None) -> pd.DataFrame:
    """One row per reference row: expected, measured, drift and ``ok`` (every drift within tolerance)."""
    out = []
    for row in rows:
        got = measure(row, bench, device=device, executor=executor)
        record = {"check": row.label, "tolerance": row.tolerance, "n": got["n"], "failed": got["failed"]}
        ok = True
        for name in ("kendall", "spearman"):
            expected = getattr(row, name)
            record[f"{name}_expected"] = expected
            record[f"{name}_measured"] = got[name]
            drift = math.nan if expected is None else got[name] - expected
            record[f"{name}_drift"] = drift
            if expected is not None:
                ok &= bool(math.isfinite(drift) and abs(drift) <= row.tolerance + 1e-12)
        record["ok"] = ok
        out.append(record)
    return pd.DataFrame(out)


def reference_from(rows: list[ReferenceRow], bench, device=None, executor=None) -> list[ReferenceRow]:
    """``rows`` with their expected kendall and spearman set to what they measure now."""
    fresh = []
    for row in rows:
        got = measure(row, bench, device=device, executor=executor)
        fresh.append(ReferenceRow(**{**asdict(row), "kendall": round(got["kendall"], 6),
                                     "spearman": round(got["spearman"], 6)}))
    return fresh


def dump_reference(rows: list[ReferenceRow], path: str | Path) -> Path:
    """Write ``rows`` as YAML (``.yaml``/``.yml``) or CSV; fields left at None are omitted (YAML)."""
    import yaml

    path = Path(path)
    records = []
    for row in rows:
        record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(row).items() if v is not None}
        if row.indices is not None:
            record.pop("cell_seed", None)
        records.append(record)
    if path.suffix.lower() == ".csv":
        frame = pd.DataFrame(records)
        if "indices" in frame:
            frame["indices"] = frame["indices"].map(lambda v: " ".join(map(str, v)) if isinstance(v, list) else v)
        text = frame.to_csv(index=False)
    elif path.suffix.lower() in (".yaml", ".yml"):
        text = ("# nas-harness regression reference: nas-harness check --reference " + path.name + "\n"
                + yaml.safe_dump(records, sort_keys=False, default_flow_style=None, width=100))
    else:
        raise HarnessError(f"reference {path}: unknown format {path.suffix or '(no suffix)'}", "use .yaml, .yml or .csv")
    path.write_text(text)
    return path
