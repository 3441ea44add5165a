"""Regression checks for users: ``nas-harness check`` and the pytest plugin (``harness.testing``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import HarnessError
from harness.regression import load_reference
from harness.testing import assert_rank_correlation
from tests.conftest import one_line

REFERENCE = Path(__file__).resolve().parent / "references" / "nb201-params-synflow.yaml"
CELLS = [int(line) for line in (REFERENCE.parent / "cells40.txt").read_text().split()]


def test_the_committed_reference_holds_in_ci(capsys):
    # params and synflow read no image values, so the miniature and the full data give the same numbers
    assert main(["check", "--reference", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    assert "all 2 rows within their tolerance" in out and "DRIFT" not in out


def test_a_drift_beyond_the_tolerance_exits_1_and_names_the_row(tmp_path, capsys):
    rows = yaml.safe_load(REFERENCE.read_text())
    rows[1]["kendall"] = round(rows[1]["kendall"] + 0.05, 6)
    path = tmp_path / "drifted.yaml"
    path.write_text(yaml.safe_dump(rows))
    assert main(["check", "--reference", str(path)]) == 1
    captured = capsys.readouterr()
    assert "DRIFT" in captured.out and "1 of 2 rows drifted" in captured.err


def test_write_reference_then_check_round_trips_as_csv(tmp_path, capsys):
    cells = tmp_path / "cells.txt"
    cells.write_text("\n".join(map(str, CELLS[:12])) + "\n")
    ref = tmp_path / "ref.csv"
    assert main(["check", "--write-reference", str(ref), "--estimators", "params", "--indices", str(cells), "--batch-size", "16"]) == 0
    rows = load_reference(ref)
    assert len(rows) == 1 and rows[0].indices == tuple(CELLS[:12]) and rows[0].kendall is not None
    assert main(["check", "--reference", str(ref)]) == 0


@pytest.mark.parametrize("text, expected", [
    ("- {estimator: nope, cells: 10}\n", "unknown estimator 'nope'"),
    ("- {estimator: params}\n", "give either cells"),
    ("- {estimator: params, cells: 10}\n", "no expected kendall or spearman"),
    ("- {estimator: params, cells: 10, kendall: 2}\n", "not a correlation"),
    ("- {estimator: params, cells: abc, kendall: 0.5}\n", "cells 'abc' is not a number"),
    ("- {estimator: params, cells: 10, kendall: 0.5, colour: red}\n", "unknown field 'colour'"),
    ("- {estimator: params, indices: [1, 1, 2], kendall: 0.5}\n", "an index appears twice"),
    ("- {estimator: params, cells: 10, kendall: 0.5, truth: best}\n", "truth 'best' is not known"),
    ("[unclosed\n", "not valid YAML"),
    ("{}\n", "holds no list of rows"),
])
def test_a_bad_reference_is_one_line_before_any_scoring(tmp_path, capsys, text, expected):
    path = tmp_path / "ref.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as err:
        load_reference(path)
    assert expected in one_line(err.value)
    assert main(["check", "--reference", str(path)]) == 2
    assert expected in one_line(capsys.readouterr().err.strip())


def test_check_refuses_missing_or_unknown_files(tmp_path, capsys):
    assert main(["check", "--reference", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    (tmp_path / "ref.txt").write_text("x")
    assert main(["check", "--reference", str(tmp_path / "ref.txt")]) == 2
    assert main(["check"]) == 2


def test_the_plugin_is_registered_through_its_entry_point(pytestconfig, cifar10_batch):
    # cifar10_batch is not defined by this project's conftest: it comes from harness.testing
    assert pytestconfig.pluginmanager.hasplugin("nas_harness")
    assert cifar10_batch.x.shape[0] == int(pytestconfig.getini("nas_harness_batch_size"))


def test_assert_rank_correlation_passes_and_fails_with_the_measured_values(nb201):
    got = assert_rank_correlation("params", space="nb201", dataset="cifar10", indices=CELLS, batch_size=16, min_tau=0.4,
                                  bench=nb201)
    assert 0.4 <= got["kendall"] <= 1 and got["n"] == len(CELLS)
    with pytest.raises(AssertionError, match=r"Kendall tau 0\.\d{4} < 0\.99"):
        assert_rank_correlation("params", indices=CELLS, batch_size=16, min_tau=0.99, bench=nb201)
    with pytest.raises(ValueError, match="needs a bound"):
        assert_rank_correlation("params", indices=CELLS, bench=nb201)
