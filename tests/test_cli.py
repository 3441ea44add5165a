"""The command line: outputs, and one-line errors with exit code 2 for every kind of bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_query_by_index_prints_json(capsys, nb201):
    code, out, _ = run(capsys, "data", "query", "nb201", "--index", "6111", "--dataset", "cifar10",
                       "--split", "ori-test", "--epochs", "200")
    assert code == 0
    record = json.loads(out)
    assert record["index"] == 6111 and record["seed"] == "mean" and round(record["value"], 2) == 94.37


def test_query_by_arch_all_seeds_and_out(capsys, nb201, tmp_path):
    code, out, _ = run(capsys, "data", "query", "nb201", "--arch", BEST_C10, "--dataset", "cifar10-valid",
                       "--split", "x-valid", "--epochs", "200", "--seed", "all", "--out", str(tmp_path))
    assert code == 0
    record = json.loads(out)
    assert record["index"] == 6111
    assert record["values"]["111"] is None and record["values"]["777"] > 90
    table = pd.read_csv(tmp_path / "query.csv")
    assert table["index"].tolist() == [6111]
    assert (tmp_path / "query.md").read_text().startswith("## NB201 query")


def test_query_static_metric(capsys, nb201):
    code, out, _ = run(capsys, "data", "query", "nb201", "--index", "0", "1", "--dataset", "cifar100",
                       "--metric", "params")
    assert code == 0
    records = json.loads(out)
    assert [r["value"] for r in records] == [0.135156, 0.808276]


@pytest.mark.parametrize("argv, message", [
    (["data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split", "x-valid", "--epochs", "200"],
     "dataset cifar10 has no split 'x-valid'"),
    (["data", "query", "nb201", "--index", "99999", "--dataset", "cifar10", "--split", "ori-test", "--epochs", "200"],
     "index 99999 is out of range"),
    (["data", "query", "nb201", "--arch", "|nor_conv_3x3~0|", "--dataset", "cifar10", "--split", "ori-test",
      "--epochs", "200"], "nor_conv_3x3"),
    (["data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split", "ori-test", "--epochs", "50"],
     "no 50-epoch run"),
    (["data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split", "ori-test", "--epochs", "200",
      "--seed", "42"], "no seed 42"),
    (["data", "query", "nb201", "--dataset", "cifar10"], "one of the arguments --arch --index --spec --hash is required"),
    (["data", "import", "nb201", "--from", "/nonexistent/file.pth"], "does not exist"),
    (["data", "frobnicate"], "invalid choice"),
    (["model", "summary", "--arch", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "bogus"),
    (["model", "summary", "--arch", BEST_C10, "--dataset", "mnist"], "mnist"),
])
def test_bad_input_gives_one_line_and_exit_2(capsys, nb201, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith(("INFO", "WARNING", "DEBUG"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("nas-harness: error:") and message in lines[0]
    assert "Traceback" not in err


def test_console_script_error_has_no_traceback(tmp_path):
    env = dict(os.environ, HARNESS_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "data", "query", "nb201", "--index", "0",
                           "--dataset", "nope", "--split", "x", "--epochs", "200"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown NB201 dataset 'nope'" in proc.stderr.strip().splitlines()[-1]


def test_data_info_lists_present_and_missing(capsys, nb201, tmp_path, harness_data):
    code, out, _ = run(capsys, "data", "info", "--out", str(tmp_path))
    assert code == 0
    assert "15625 cells" in out and "Missing" in out
    status = pd.read_csv(tmp_path / "nb201_columns.csv")
    row = status[(status.dataset == "cifar10") & (status.split == "ori-test") & (status.metric == "acc")
                 & (status.epochs == 200)].iloc[0]
    rows = len(pd.read_csv(harness_data / "nb201" / "nats_tss_test_acc_200ep.csv"))  # 15,625, or the miniature's
    assert bool(row["mean"]) and row.coverage == rows
    # per-epoch curves are only in the official files: listed as missing, not invented
    assert not status.curve.any()


def test_data_import_and_model_summary(capsys, nats_fixture_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", os.environ["HARNESS_HOME"])  # restored after --home changes it
    code, out, _ = run(capsys, "--home", str(tmp_path), "data", "import", "nb201", "--from", str(nats_fixture_dir))
    assert code == 0 and "3 cells" in out
    code, out, _ = run(capsys, "model", "summary", "--arch", BEST_C10, "--dataset", "cifar10", "--out", str(tmp_path))
    assert code == 0
    summary = pd.read_csv(tmp_path / "model_summary.csv")
    assert len(summary) == 1
    assert (tmp_path / "model_layers.txt").stat().st_size > 0


def test_report_writes_the_first_tables(capsys, nb201, tmp_path, harness_data):
    code, out, _ = run(capsys, "report", "nb201", "--out", str(tmp_path), "--n-boot", "50")
    assert code == 0
    optimum = pd.read_csv(tmp_path / "nb201_optimum.csv")
    assert optimum["match"].all() and len(optimum) == 6
    fidelity = pd.read_csv(tmp_path / "nb201_fidelity.csv")
    rows = len(pd.read_csv(harness_data / "nb201" / "nb201_v1_1_12ep_val_test.csv"))  # 15,625, or the miniature's
    assert len(fidelity) == 6 and (fidelity.n == rows).all()
    assert ((fidelity.kendall > 0.5) & (fidelity.kendall < 1)).all()
    assert (tmp_path / "nb201_fidelity.png").stat().st_size > 10_000
    from .conftest import FULL_DATA

    # the miniature covers some of the cells, and the report says so
    assert (tmp_path / "data_needed.md").exists() == (not FULL_DATA)


def test_report_without_data_says_what_is_needed(tmp_path, monkeypatch):
    """A fresh machine: no HARNESS_DATA, only the embedded package."""
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main(["report", "nb201", "--out", str(tmp_path / "out"), "--n-boot", "10"]) == 0
    optimum = pd.read_csv(tmp_path / "out" / "nb201_optimum.csv")
    assert optimum.selected_by.tolist() == ["valid"] * 3 and optimum["match"].all()
    needed = (tmp_path / "out" / "data_needed.md").read_text()
    assert "nats_tss_test_acc_200ep.csv" in needed and "nb201_v1_1_12ep_val_test.csv" in needed
    assert not (tmp_path / "out" / "nb201_fidelity.csv").exists()


def test_report_with_less_data_keeps_the_fuller_table(tmp_path, monkeypatch, nb201, capsys):
    """A run without the public tables never replaces tables that were made with them."""
    out = tmp_path / "out"
    assert main(["report", "nb201", "--out", str(out), "--n-boot", "10"]) == 0
    before = {name: (out / name).read_bytes() for name in ("nb201_optimum.csv", "nb201_fidelity.csv",
                                                           "nb201_fidelity.png")}
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "bare-home"))
    assert main(["report", "nb201", "--out", str(out), "--n-boot", "10"]) == 0
    assert {name: (out / name).read_bytes() for name in before} == before
    assert "nats_tss_test_acc_200ep.csv" in (out / "data_needed.md").read_text()


def test_data_check_says_what_is_missing_and_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    code, out, _ = run(capsys, "data", "check")
    assert code == 1
    assert "MISSING  nb201-tables" in out and "nas-harness data fetch nb201-compact" in out
    assert "MISSING  bpe-sheet" in out and "nas-harness data fetch bpe" in out
    code, out, _ = run(capsys, "data", "check", "bpe-sheet", "-q")
    assert code == 1 and out == ""
    code, _, err = run(capsys, "data", "check", "nothing")
    assert code == 2 and "unknown input 'nothing'" in err


def test_data_check_on_the_data_in_use(capsys, harness_data):
    from .conftest import FULL_DATA

    code, out, _ = run(capsys, "data", "check", "nb201-tables", "bpe-sheet")
    # the full data has every input; the miniature has only some of NB201's cells and the sheet's first cells
    assert (code == 0) == bool(FULL_DATA)
    assert out.count("present" if FULL_DATA else "MISSING") == 2


def test_readme_tables_are_the_results(tmp_path):
    """The documents' generated blocks equal what results/ gives (`nas-harness report readme`)."""
    from harness.report.readme import DOCUMENTS, document_blocks, stale, update

    root = Path(__file__).resolve().parents[1]
    for rel in DOCUMENTS:
        assert stale(root / rel, root / "results", blocks=document_blocks(rel)) == [], rel
    blocks = document_blocks("docs/reproduction.md")
    copy = tmp_path / "reproduction.md"
    copy.write_text((root / "docs" / "reproduction.md").read_text().replace("| rea |", "| REA typed by hand |", 1))
    assert stale(copy, root / "results", blocks=blocks) == ["SEARCH_TABLE"]
    assert update(copy, root / "results", blocks) == ["SEARCH_TABLE"] and stale(copy, root / "results", blocks=blocks) == []
    assert copy.read_text() == (root / "docs" / "reproduction.md").read_text()


def test_every_block_lives_in_one_document():
    from harness.report.readme import BLOCKS, DOCUMENTS

    placed = [name for names in DOCUMENTS.values() for name in names]
    assert sorted(placed) == sorted(BLOCKS), "a generated block in no document, or in two"


README_BLOCKS = ["REPORT", "NB201_OPTIMUM", "NB201_FIDELITY", "SEARCH_TABLE", "TRAINING_FREE_1000", "NASLIB_AGREEMENT",
                 "BPE_NB201_CPU", "SUPERNET_TABLE", "SEARCH_BPE_CPU", "BPE_REPLAY", "MIP", "BENCHMARKS", "NB101_SEARCH",
                 "NB101_CORRELATION"]


@pytest.mark.parametrize("name", README_BLOCKS)
def test_each_readme_table_is_generated_and_current(name):
    """Every table of the documents' results sections is a generated block, present in its
    document and equal to what results/ gives (a hand edit inside it is found)."""
    from harness.report.readme import BLOCKS, DOCUMENTS, _pattern

    root = Path(__file__).resolve().parents[1]
    assert name in BLOCKS
    rel = next(r for r, names in DOCUMENTS.items() if name in names)
    text = (root / rel).read_text()
    m = _pattern(name).search(text)
    assert m is not None, f"{rel} has no {name} block"
    body = BLOCKS[name](root / "results")
    assert body.startswith("| ") and "\n|---|" in body
    assert m.group(2) == body, f"{name} differs from results/: run nas-harness report readme"


def test_readme_tables_are_all_the_generated_blocks():
    """No markdown table of the reproduction guide is typed by hand: each lies in a block."""
    from harness.report.readme import BLOCKS, _pattern

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "reproduction.md").read_text()
    results_part = text[text.index("## What the harness reproduces today"):]
    for name in BLOCKS:
        results_part = _pattern(name).sub("", results_part)
    results_part = re.sub(r"```.*?```", "", results_part, flags=re.S)
    typed = [line for line in results_part.splitlines() if line.startswith("|")]
    assert typed == []


def _old_correlation(folder: Path, ranked_last: bool) -> None:
    """A two-estimator correlation.csv in the format of ``nas-harness correlate`` (with or without
    the ranked-last columns) and its published.csv."""
    folder.mkdir(parents=True)
    rows = []
    estimators = [("jacob_cov", 26, "ValueError: zero variance"), ("naswot:hamming", 17, "non-finite score (-inf)"),
                  ("mystery", 0, "")]
    truths = [("test@200", 0.71), ("valid@200", 0.76), ("test@12", 0.5), ("valid@12", 0.4), ("params", 0.47)]
    for est, failed, reason in estimators:
        for truth, rho in truths:
            row = {"estimator": est, "truth": truth, "cells": 1000, "n": 1000 - failed, "n_nan": failed,
                   "failed": failed, "failure_example": reason, "kendall": rho - 0.2, "kendall_lo": rho - 0.25,
                   "kendall_hi": rho - 0.15, "spearman": rho, "spearman_lo": rho - 0.04, "spearman_hi": rho + 0.03}
            if ranked_last:
                row.update({"kendall_ranked_last": rho - 0.3, "spearman_ranked_last": rho - 0.1, "n_ranked_last": 1000})
            row.update({"top10_overlap": 0.2, "median_seconds": 0.141, "note": ""})
            rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "correlation.csv", index=False)
    published = {"estimator": "jacob_cov", "truth": "valid@200", "n": 974, "ours_spearman": 0.76, "ours_lo": 0.72,
                 "ours_hi": 0.79, "published_abs_spearman": 0.731, "published_cells": 15625, "delta": 0.029,
                 "within_tolerance": True, "ours_spearman_test@200": 0.71}
    pd.DataFrame([published]).to_csv(folder / "published.csv", index=False)


@pytest.mark.parametrize("ranked_last", [False, True])
def test_training_free_block_reads_correlation_with_and_without_ranked_last(tmp_path, ranked_last):
    """The 1,000-cell block reads correlation.csv from before the ranked-last columns (an en dash) and after."""
    from harness.report.readme import _training_free

    _old_correlation(tmp_path / "correlate-cifar10", ranked_last)
    lines = _training_free(tmp_path).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    rows = {r[0]: dict(zip(header, r)) for r in cells}
    assert list(rows) == ["jacob_cov", "naswot (hamming)", "mystery"]  # known order first, unknown after
    jacob = rows["jacob_cov"]
    assert jacob["Spearman valid@200 [95 % CI]"] == "0.760 [0.720, 0.790]"
    assert (jacob["published abs. Spearman"], jacob["delta"]) == ("0.731", "+0.029")
    assert jacob["failed cells (first reason)"] == "26 (ValueError: zero variance)"
    assert jacob["Spearman test@200, failed ranked last"] == ("0.610" if ranked_last else "–")
    assert rows["naswot (hamming)"]["published abs. Spearman"] == "–"
    assert rows["mystery"]["failed cells (first reason)"] == "0"
    assert jacob["median s/cell"] == "0.14" and jacob["Spearman vs params"] == "0.470"


def test_readme_block_without_its_results_is_left_as_it_is(tmp_path, caplog):
    """A block whose source is missing raises ResultsMissing (a HarnessError naming the file and the
    command that writes it) from its generator; `report readme` leaves that block, logs one line,
    and rewrites the others (./reproduce.sh offline has only part of results/)."""
    import logging
    import shutil

    from harness.errors import HarnessError
    from harness.report.readme import BLOCKS, ResultsMissing, document_blocks, stale, update

    root = Path(__file__).resolve().parents[1]
    results = tmp_path / "results"
    (results / "search").mkdir(parents=True)
    shutil.copy(root / "results" / "search" / "search_table.csv", results / "search")
    for name in ("NASLIB_AGREEMENT", "BPE_NB201_CPU", "SUPERNET_TABLE", "SEARCH_BPE_CPU", "BPE_REPLAY", "MIP",
                 "TRAINING_FREE_1000", "NB201_OPTIMUM", "N_SAMPLE_PROTOCOL", "REPORT"):
        with pytest.raises(ResultsMissing) as err:
            BLOCKS[name](results)
        message = str(err.value)
        assert isinstance(err.value, HarnessError) and ("not found" in message or "holds no" in message)
        assert str(results) in message and "run " in message
    blocks = document_blocks("docs/reproduction.md")
    guide = tmp_path / "reproduction.md"
    original = (root / "docs" / "reproduction.md").read_text()
    guide.write_text(original.replace("| rea |", "| REA typed by hand |", 1))
    with caplog.at_level(logging.WARNING, logger="harness.report.readme"):
        assert update(guide, results, blocks) == ["SEARCH_TABLE"]
    assert guide.read_text() == original  # every other block as it was
    assert sum("left as it is" in r.getMessage() for r in caplog.records) == len(blocks) - 1
    assert stale(guide, results, missing_ok=True, blocks=blocks) == []
    assert "MIP" in stale(guide, results, blocks=blocks)  # not checkable: counted stale unless missing_ok
    readme = tmp_path / "README.md"
    readme.write_text((root / "README.md").read_text())
    assert main(["report", "readme", "--readme", str(readme), "--results", str(results)]) == 0
    assert readme.read_text() == (root / "README.md").read_text()


def test_report_on_part_of_the_cells_keeps_the_table_of_all_cells(tmp_path, monkeypatch):
    """Tables covering some of the cells (the miniature) never replace tables over all cells."""
    from .conftest import FIXTURES

    out = tmp_path / "out"
    out.mkdir()
    full = pd.DataFrame({"dataset": ["cifar10"] * 6, "n": [15625] * 6, "kendall": [0.7] * 6})
    full.to_csv(out / "nb201_fidelity.csv", index=False)
    optimum = pd.DataFrame({"dataset": ["cifar10"] * 6, "cells": [15625] * 6, "index": [6111] * 6})
    optimum.to_csv(out / "nb201_optimum.csv", index=False)
    monkeypatch.setenv("HARNESS_DATA", str(FIXTURES))  # the miniature's 321 rows of each table
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main(["report", "nb201", "--out", str(out), "--n-boot", "10"]) == 0
    assert pd.read_csv(out / "nb201_fidelity.csv").equals(full)
    assert pd.read_csv(out / "nb201_optimum.csv").equals(optimum)
    assert "covers only 321 of 15625 cells" in (out / "data_needed.md").read_text()
    # into an empty folder the same run writes its tables, which say how many cells they cover
    assert main(["report", "nb201", "--out", str(tmp_path / "fresh"), "--n-boot", "10"]) == 0
    assert (pd.read_csv(tmp_path / "fresh" / "nb201_fidelity.csv").n == 321).all()
    assert set(pd.read_csv(tmp_path / "fresh" / "nb201_optimum.csv").cells) == {321, 15625}  # test, valid


def test_benchmarks_readme_is_the_results():
    """perf/README.md's table equals what results/perf/*.json gives."""
    from harness.report.readme import document_blocks, stale

    root = Path(__file__).resolve().parents[1]
    assert stale(root / "perf" / "README.md", root / "results", blocks=document_blocks("perf/README.md")) == []
