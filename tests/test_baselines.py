"""The published numbers in ``baselines/``: every row fills its columns and every value is in its source.

A value whose row names a spreadsheet cell (``cell``: ``sheet!B114``) is checked against that cell
of the authors' file; every other value must appear, as a number, in the references' ``papers.md``
(next to the data: ``$HARNESS_DATA/../references``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.report import baselines
from tests.conftest import FULL_DATA, require_full_data

SHEETS = {"Search_Hyperparameters_Results.xlsx", "experimantal_stastics.xlsx"}


def _frames() -> dict[str, pd.DataFrame]:
    return {name: baselines.load(name) for name in baselines.names()}


def _numbers(text: str) -> set[float]:
    """Every number written in ``text`` (``15,625`` and ``89.90+-0.21`` included)."""
    return {float(tok.replace(",", "")) for tok in re.findall(r"\d[\d,]*\.?\d*|\.\d+", text)
            if tok.replace(",", "").replace(".", "").isdigit()}


def test_every_baseline_file_has_a_schema_and_every_row_fills_it():
    frames = _frames()
    assert set(frames) == set(baselines.SCHEMA), "a baselines/*.csv without a SCHEMA entry (or the reverse)"
    for name, frame in frames.items():
        schema = baselines.SCHEMA[name]
        missing = [c for c in schema["required"] if c not in frame]
        assert not missing, f"{name}.csv lacks columns {missing}"
        for col in schema["required"]:
            empty = frame[frame[col].isna() | (frame[col].astype(str).str.strip() == "")]
            assert empty.empty, f"{name}.csv: rows {list(empty.index)} leave {col!r} empty"
        for col in schema["numbers"]:
            values = pd.to_numeric(frame[col], errors="coerce")
            assert values[frame[col].notna()].notna().all(), f"{name}.csv: non-numeric {col!r}"
        assert frame.source.str.len().min() > 20, f"{name}.csv: a source too short to name its paper and table"


def test_baselines_hold_what_the_issue_lists():
    frames = _frames()
    search = frames["nb201_search"]
    for strategy in ("darts-v1", "darts-v2", "gdas", "setn", "enas", "rsps", "rea", "random", "reinforce", "bohb"):
        assert (search.strategy == strategy).sum() == 6, strategy  # the six accuracy columns
    assert {"naswot:v1"} <= set(search.estimator)
    assert {10, 100, 500, 1000} <= set(search[search.estimator == "epe_nas"].n.astype(int))
    zc = frames["zero_cost_nb201"]
    assert set(zc.dataset) == {"cifar10", "cifar100", "ImageNet16-120"} and len(zc) == 18
    assert len(frames["zero_cost_nb101"]) == 6
    configs = frames["bpe_configs"]
    assert configs.task.nunique() == 32 and set(configs.metric) == {"spearman", "gpu_hours_per_cell"}
    assert set(configs[configs.paper_name.notna()].task) == {"Task5", "Task32"}
    bpe = frames["bpe_search"]
    assert set(bpe.method) == {"darts", "ea", "rl", "random"}


def test_every_value_of_papers_md_rows_appears_in_papers_md():
    if not FULL_DATA:
        require_full_data("../references/papers.md")
    path = Path(FULL_DATA).resolve().parent / "references" / "papers.md"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the references must sit next to the data")
    published = _numbers(path.read_text())
    checked = 0
    for name, frame in _frames().items():
        if "cell" in frame:
            continue  # spreadsheet rows: the next test
        for col in baselines.SCHEMA[name]["numbers"]:
            for i, value in pd.to_numeric(frame[col], errors="coerce").items():
                if math.isnan(value):
                    continue
                assert any(math.isclose(value, p, abs_tol=1e-9) for p in published), (
                    f"{name}.csv row {i}: {col}={value} is not a number of papers.md")
                checked += 1
    assert checked > 300


def test_every_spreadsheet_value_equals_its_cell():
    import openpyxl

    folder = require_full_data("bpe")
    books = {name: openpyxl.load_workbook(folder / name, data_only=True) for name in SHEETS}
    checked = 0
    for name, frame in _frames().items():
        if "cell" not in frame:
            continue
        for _, row in frame.iterrows():
            book = next(b for f, b in books.items() if f in row.source)
            sheet, cell = row.cell.rsplit("!", 1)
            raw = book[sheet][cell].value
            raw = float(raw.split()[0]) if isinstance(raw, str) else raw  # '97.32  1.9M': accuracy, parameters
            assert math.isclose(float(row.value), float(raw), abs_tol=1e-12), f"{name}: {row.cell} holds {raw}"
            checked += 1
    assert checked == 64 + 70
