"""``nas-harness report``: every published number with a verdict, written to REPORT.md."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.report import baselines
from harness.report.full import write_full_report
from harness.report.search import consistent
from harness.report.verdicts import VERDICTS, Comparison, collect, counts, judge, mean_test
from tests.conftest import one_line

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _mean(ours, std, runs, pub, pub_std, pub_runs, protocol=()):
    return judge(Comparison("s", "i", pub, "src", kind="mean", published_std=pub_std, published_runs=pub_runs,
                            ours=ours, ours_std=std, ours_runs=runs, protocol=protocol))


def test_mean_verdicts_follow_the_search_tables_rule_and_give_p():
    rng = np.random.default_rng(0)
    for _ in range(300):
        mean, pub = rng.normal(90, 1, 2)
        std, pub_std = rng.uniform(0.1, 2, 2)
        runs, pub_runs = int(rng.integers(2, 600)), int(rng.choice([3, 500]))
        c = _mean(mean, std, runs, pub, pub_std, pub_runs)
        assert (c.verdict == "reproduced") == consistent(mean, std, runs, pub, pub_std, pub_runs)
        assert 0 <= c.p_value <= 1
    far = _mean(93.0, 0.3, 500, 92.0, 0.3, 500)
    assert far.verdict == "differs" and far.p_value < 1e-10 and math.isclose(far.delta, 1.0)
    assert "Welch" in far.detail


def test_few_published_runs_are_one_draw_of_our_protocol():
    # EPE-NAS: 3 runs with a small std; our spread decides (published std at face value would say differs)
    c = _mean(88.43, 1.68, 500, 89.90, 0.21, 3)
    assert c.verdict == "reproduced" and "3-run draw" in c.detail
    delta, se, df, p = mean_test(88.43, 1.68, 500, 89.90, 0.21, 3)
    assert df == 499 and math.isclose(se, 1.68 * math.sqrt(500 / 499) * math.sqrt(1 / 500 + 1 / 3))


def test_protocol_and_missing_verdicts_name_what_differs_or_is_needed():
    c = _mean(90.0, 1.0, 500, 90.0, 1.0, 500, protocol=("batch 64 vs 256",))
    assert c.verdict == "protocol differs" and c.detail.startswith("batch 64 vs 256")
    needs = judge(Comparison("s", "i", 1.0, "src", needs="needs data: results/x.csv: `nas-harness y`"))
    assert needs.verdict == "needs data" and needs.detail == "results/x.csv: `nas-harness y`"
    gone = judge(Comparison("s", "i", 1.0, "src", needs="not implemented: no SETN"))
    assert gone.verdict == "not implemented" and gone.detail == "no SETN"


def test_correlation_and_exact_verdicts():
    inside = judge(Comparison("s", "i", 0.59, "src", kind="correlation", ours=0.587, ours_lo=0.534, ours_hi=0.633))
    outside = judge(Comparison("s", "i", 0.36, "src", kind="correlation", ours=0.507, ours_lo=0.451, ours_hi=0.558))
    assert inside.verdict == "reproduced" and inside.p_value > 0.05
    assert outside.verdict == "differs" and outside.p_value < 0.001
    assert judge(Comparison("s", "i", 91.61, "src", ours=91.6067)).verdict == "reproduced"
    assert judge(Comparison("s", "i", 91.61, "src", ours=91.62)).verdict == "differs"


def test_an_empty_results_folder_lists_every_published_number_as_needed(tmp_path):
    table = collect(tmp_path)
    assert set(table.verdict) <= {"needs data", "not implemented"}
    n_rows = sum(len(baselines.load(name)) for name in baselines.names())
    spearman_rows = int((baselines.load("bpe_configs").metric == "spearman").sum())
    assert len(table) == n_rows + spearman_rows  # a spearman is checked twice: the sheet replayed, our own training
    needed = table[table.verdict == "needs data"]
    assert needed.detail.str.contains("nas-harness ").all(), "every 'needs data' names the command that computes it"


def test_the_committed_results_give_a_verdict_to_every_published_number(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(RESULTS, root)
    path, table = write_full_report(root)
    n = counts(table)
    assert sum(n.values()) == int(table.primary.sum()) and n["reproduced"] > 50
    # each published number has exactly one primary comparison
    keys = table[table.primary].groupby(["section", "published", "source"]).size()
    assert len(table[table.primary]) >= len(keys)
    text = path.read_text()
    n_published = sum(len(baselines.load(name)) for name in baselines.names())
    assert text.splitlines()[4].startswith(f"**{int(table.primary.sum())} verdicts on {n_published} published numbers:")
    for verdict in VERDICTS:
        assert f"{n[verdict]} {verdict}" in text
    optimum = table[table.section == "NB201 optimum"]
    assert (optimum.verdict == "reproduced").all() and len(optimum) == 6
    tex = (root / "report" / "nb201-optimum.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "91.61" in tex
    saved = pd.read_csv(root / "report" / "comparisons.csv")
    assert len(saved) == len(table) and set(saved.verdict) <= set(VERDICTS)
    # the committed REPORT.md is what the committed tables give
    assert (RESULTS / "REPORT.md").read_text() == text, "results/REPORT.md is stale: run nas-harness report"


def test_search_rows_under_another_batch_protocol_are_not_called_reproduced():
    table = collect(RESULTS)
    shared = table[table["item"].str.contains("results/search/n_sample-epe_nas")]
    assert len(shared) and (shared.verdict == "protocol differs").all()
    assert shared.detail.str.contains("a fresh batch of 256").all()
    paper = table[table["item"].str.contains("search-protocol/epe_nas/N10") & table["item"].str.contains("C10 test")]
    assert paper.verdict.iloc[0] == "reproduced" and paper.primary.iloc[0]


def test_report_command_writes_and_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "nothing")]) == 2
    assert "no such results folder" in one_line(capsys.readouterr().err.strip())
    root = tmp_path / "results"
    root.mkdir()
    assert main(["report", "--out", str(root)]) == 0
    assert "verdicts on" in capsys.readouterr().out
    assert main(["report", "--out", str(root), "--check"]) == 0  # unchanged: not stale
    (root / "REPORT.md").write_text("old\n")
    assert main(["report", "--out", str(root), "--check"]) == 1
    assert "stale" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["nb201_optimum", "nb201_search", "zero_cost_nb201", "bpe_configs"])
def test_every_row_of_a_computed_baseline_is_in_the_report(name):
    table = collect(RESULTS)
    frame = baselines.load(name)
    value = "mean" if "mean" in frame else "value"
    for _, row in frame.iterrows():
        hit = table[np.isclose(table.published, float(row[value])) & (table.source == row.source)]
        assert len(hit), f"{name}: {row.to_dict()} is not in the report"


def test_every_command_with_out_leaves_a_manifest_that_a_rerun_does_not_change(tmp_path, nb201):
    import json

    out = tmp_path / "nb201"
    assert main(["report", "nb201", "--out", str(out), "--n-boot", "0"]) == 0
    first = (out / "manifest.json").read_text()
    record = json.loads(first)
    assert record["command"].startswith("nas-harness report nb201 --out")
    assert record["options"]["n_boot"] == 0 and record["options"]["out"] == "$OUT"  # no path of this machine
    assert main(["report", "nb201", "--out", str(out), "--n-boot", "0"]) == 0
    assert (out / "manifest.json").read_text() == first  # no clock, no commit: a rerun leaves it alone
