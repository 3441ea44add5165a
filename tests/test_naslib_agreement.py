"""NASLib's precomputed NB201 scores: the key mapping, the loader and the agreement command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.benchmarks.naslib_zc import load_naslib_scores, naslib_key_to_arch
from harness.cli import main
from harness.errors import HarnessError
from harness.report.correlation import published_comparison
from harness.spaces.nb201 import NB201Space


def test_key_mapping_follows_naslib_edge_order():
    # NASLib edges (1,2) (1,3) (1,4) (2,3) (2,4) (3,4); ops skip, none, conv3, conv1, avgpool
    assert naslib_key_to_arch("(0, 1, 2, 3, 4, 0)") == (
        "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|")
    with pytest.raises(HarnessError, match="six op indices"):
        naslib_key_to_arch("(0, 1, 5, 3, 4, 0)")


def test_mapping_reproduces_the_benchmarks_params(nb201, harness_data):
    """With the mapping, NASLib's params equal NB201's for nearly every cell (a wrong edge order
    would scramble them), and its validation accuracy ranks like NB201's."""
    naslib = load_naslib_scores()
    c10 = naslib[naslib.dataset == "cifar10"]
    space = NB201Space(nb201.arch_strs())
    params = c10[c10.estimator == "params"]
    idx = np.array([space.index(a) for a in params.arch])
    ours = nb201.query(idx, dataset="cifar10-valid", split=None, epochs=None, seed="mean", metric="params")
    equal = np.isclose(ours, params.score.to_numpy(), atol=1e-6)
    assert equal.mean() > 0.98, equal.mean()
    from scipy.stats import spearmanr
    valid = nb201.query(idx, dataset="cifar10-valid", split="x-valid", epochs=200, seed="mean")
    assert spearmanr(valid, params.val_accuracy.to_numpy()).statistic > 0.98


def test_loader_errors(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        load_naslib_scores(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HarnessError, match="not JSON"):
        load_naslib_scores(bad)


def test_agree_command_small_case(tmp_path, nb201, capsys):
    code = main(["agree", "naslib", "--dataset", "cifar10", "--cells", "8", "--estimators", "params,flops,synflow",
                 "--batch-size", "16", "--n-boot", "20", "--out", str(tmp_path)])
    assert code == 0
    table = pd.read_csv(tmp_path / "naslib_agreement.csv")
    assert list(table.estimator) == ["params", "flops", "synflow"]
    assert (table.cells == 8).all()
    # params is a deterministic count: identical ranks on both sides
    assert table.set_index("estimator").loc["params", "spearman_vs_naslib"] == pytest.approx(1.0)
    # the noise floor: our own second run (another batch and init); a count does not move, synflow does a little
    noise = table.set_index("estimator").noise_spearman
    assert noise["params"] == pytest.approx(1.0) and noise["flops"] == pytest.approx(1.0)
    assert 0.5 < noise["synflow"] <= 1.0
    assert "Noise floor: the same cells scored again, batch seed 43, init seed 100000 + cell index" in \
        (tmp_path / "naslib_agreement.md").read_text()


def test_per_cell_batches_as_naslib(nb201, harness_data, tmp_path):
    """NASLib's runner draws a fresh (augmented) batch for every cell: ``per-cell`` gives each cell
    its own batch seed, the same on a rerun, and the same batch to every estimator of a cell."""
    from harness.estimators.run import EstimatorSpec, score_cells
    from harness.runstore import RunStore

    specs = [EstimatorSpec.parse("fisher"), EstimatorSpec.parse("fisher:official")]
    cells = [0, 11, 284]
    kwargs = dict(batch_size=16, batch_seed=42, augment=True, store=RunStore(tmp_path / "runs.sqlite"))
    per_cell = score_cells(nb201.arch, cells, "cifar10", specs, batch_protocol="per-cell", **kwargs)
    again = score_cells(nb201.arch, cells, "cifar10", specs, batch_protocol="per-cell", **kwargs)
    shared = score_cells(nb201.arch, cells, "cifar10", specs, **kwargs)
    assert not per_cell.cached.any() and again.cached.all()
    assert per_cell.score.tolist() == again.score.tolist()
    assert not np.allclose(per_cell.score, shared.score)  # other batches
    # fisher:official weighs every layer by its fan-in: the ratio to the plain sum differs per cell
    wide = per_cell.pivot(index="index", columns="estimator", values="score")
    ratio = wide["fisher:official"] / wide["fisher:paper"]
    assert (ratio > 9).all() and ratio.nunique() == len(cells)
    with pytest.raises(HarnessError, match="batch protocol"):
        score_cells(nb201.arch, cells, "cifar10", specs, batch_protocol="per-run", **kwargs)


def test_naslib_failure_sentinel_is_a_failure(harness_data):
    """NASLib writes -1e8 for a NaN/inf score; read back it is NaN (a failure), never a number:
    exactly the file's -1e8 entries (counted here from the JSON itself)."""
    import json

    from harness.benchmarks.naslib_zc import DEFAULT_FILE

    raw = json.loads((harness_data / DEFAULT_FILE).read_text())
    sentinels = {(ds, naslib_key_to_arch(key), name) for ds, cells in raw.items() for key, entry in cells.items()
                 for name, value in entry.items() if isinstance(value, dict) and value.get("score") == -1e8}
    naslib = load_naslib_scores()
    assert not (naslib.score == -1e8).any()
    failed = naslib[naslib.score.isna()]
    assert set(zip(failed.dataset, failed.arch, failed.naslib_estimator)) == sentinels


def test_agree_command_without_noise_floor_and_same_seeds_refused(tmp_path, nb201, capsys):
    assert main(["agree", "naslib", "--cells", "4", "--estimators", "params", "--batch-size", "16", "--n-boot", "5",
                 "--no-noise-floor", "--out", str(tmp_path)]) == 0
    assert "noise_spearman" not in pd.read_csv(tmp_path / "naslib_agreement.csv")
    capsys.readouterr()
    assert main(["agree", "naslib", "--cells", "4", "--estimators", "params", "--batch-size", "16",
                 "--noise-batch-seed", "42", "--noise-init-seed", "0", "--out", str(tmp_path)]) == 2
    assert "same batch and init seeds" in capsys.readouterr().err


def test_agree_command_bad_dataset(tmp_path, nb201, capsys):
    assert main(["agree", "naslib", "--dataset", "mnist", "--out", str(tmp_path)]) == 2
    assert "mnist" in capsys.readouterr().err


def test_published_comparison_keeps_the_sign():
    table = pd.DataFrame({"estimator": ["synflow", "snip", "synflow"], "truth": ["valid@200", "valid@200", "test@200"],
                          "n": [1000] * 3, "spearman": [0.74, -0.60, 0.80], "spearman_lo": [0.7, -0.65, 0.77],
                          "spearman_hi": [0.78, -0.55, 0.83]})
    comp = published_comparison(table, "cifar10").set_index("estimator")
    # CIFAR-10: the authors' truth is NB201's cifar10-valid run, compared on valid@200; test@200 rides along
    assert comp.loc["synflow", "truth"] == "valid@200"
    assert comp.loc["synflow", "ours_spearman_test@200"] == 0.80
    assert "cifar10-valid" in comp.loc["synflow", "paper_truth"]
    assert comp.loc["synflow", "published_abs_spearman"] == 0.737
    assert comp.loc["synflow", "within_tolerance"]
    # a sign error is a large delta, not hidden by abs()
    assert not comp.loc["snip", "within_tolerance"] and comp.loc["snip", "delta"] < -1


def test_published_comparison_takes_every_variant_of_a_published_name():
    """Abdelfattah et al. publish `fisher`: both of our fisher variants stand beside it."""
    table = pd.DataFrame({"estimator": ["fisher:paper", "fisher:official", "fisher:paper", "fisher:official"],
                          "truth": ["valid@200", "valid@200", "test@200", "test@200"], "n": [1000] * 4,
                          "spearman": [0.40, 0.51, 0.45, 0.56], "spearman_lo": [0.3] * 4, "spearman_hi": [0.6] * 4})
    comp = published_comparison(table, "cifar10").set_index("estimator")
    assert list(comp.index) == ["fisher:paper", "fisher:official"]
    assert comp.loc["fisher:official", "ours_spearman_test@200"] == 0.56
    assert (comp.published_abs_spearman == 0.36).all()
