"""NAS-Bench-101's network: its parameter count equals the benchmark's for all 1,030 real cells."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.models.nb101 import NB101Network, count_parameters, vertex_channels
from harness.spaces.nb101 import NB101Spec
from tests.conftest import require_data
from tests.test_space_nb101 import INCEPTION, vis_cells


def test_every_vis_cell_has_the_benchmarks_parameter_count():
    import json

    from tests.conftest import require_full_data

    data = json.loads(require_full_data("nb101/nasbench_vis_1k.json").read_text())
    wrong = []
    for (spec, key), params in zip(vis_cells(), data["trainable_parameters"], strict=True):
        pruned = spec.pruned()
        got = count_parameters(np.asarray(pruned.matrix), pruned.ops)
        if got != int(params):
            wrong.append((key, got, params))
    assert not wrong, f"{len(wrong)} of 1000 parameter counts differ, e.g. {wrong[:3]}"


def test_the_30_cells_of_the_official_api_have_its_parameter_counts():
    with open(require_data("nb101/naslib_nb101_dummy_30.pkl"), "rb") as f:
        dummy = pickle.load(f)
    for module_hash, (fixed, _) in dummy.items():
        spec = NB101Spec.from_arrays(fixed["module_adjacency"], list(fixed["module_operations"]))
        assert spec.hash() == module_hash
        assert count_parameters(fixed["module_adjacency"], fixed["module_operations"]) == fixed["trainable_parameters"]


def test_the_inception_like_cell_of_the_readme():
    # 2,694,282 parameters (nb101.md section 3, recomputed from the official builder)
    assert count_parameters(np.asarray(INCEPTION.matrix), INCEPTION.ops) == 2_694_282


def test_vertex_channels_split_the_output_and_follow_the_successors():
    # three interior vertices feed the output: 128 split as 43, 43, 42
    m = np.zeros((5, 5), int)
    m[0, 1] = m[0, 2] = m[0, 3] = m[1, 4] = m[2, 4] = m[3, 4] = 1
    assert vertex_channels(64, 128, m) == [64, 43, 43, 42, 128]
    # vertex 1 feeds only vertex 2: it takes vertex 2's channels
    chain = np.zeros((4, 4), int)
    chain[0, 1] = chain[1, 2] = chain[2, 3] = 1
    assert vertex_channels(64, 128, chain) == [64, 128, 128, 128]
    with pytest.raises(HarnessError, match="no interior vertex feeds the output"):
        vertex_channels(64, 128, np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]))


def test_the_network_runs_forward_and_backward_on_images():
    torch.manual_seed(0)
    net = NB101Network(np.asarray(INCEPTION.matrix), INCEPTION.ops)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = net(x)
    assert out.shape == (2, 10) and net.forward_pre_pool(x).shape == (2, 512, 8, 8)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    direct = np.zeros((2, 2), int)
    direct[0, 1] = 1
    assert NB101Network(direct, ["input", "output"])(x).shape == (2, 10)  # a 2-vertex cell: the projection only


def test_model_summary_prints_the_pruned_spec_its_hash_and_parameters(capsys):
    import json

    from harness.cli import main

    spec = {"matrix": [list(r) for r in INCEPTION.matrix], "ops": list(INCEPTION.ops)}
    assert main(["model", "summary", "--space", "nb101", "--spec", json.dumps(spec)]) == 0
    out = capsys.readouterr().out
    assert "hash: 28cfc7874f6d200472e1a9dcd8650aa0" in out and "trainable_parameters: 2694282" in out
    bad = json.dumps({"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]})
    assert main(["model", "summary", "--space", "nb101", "--spec", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert "not strictly upper-triangular" in err and "\n" not in err
    assert main(["model", "summary", "--space", "nb101"]) == 2


def test_every_training_free_estimator_scores_an_nb101_network_through_the_registry():
    """No estimator knows the space: the NB101 network is scored as any module (score_module)."""
    from harness.estimators import ESTIMATORS, Batch, score_module

    g = torch.Generator().manual_seed(0)
    batch = Batch.from_tensors(torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3]), num_classes=10)
    matrix = np.zeros((4, 4), int)
    matrix[0, 1] = matrix[1, 2] = matrix[0, 2] = matrix[2, 3] = matrix[1, 3] = 1
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]
    names = [n for n in ESTIMATORS.list() if n != "bpe" and ESTIMATORS.origin(n) == "nas-harness"]
    failed = {}
    for name in names:
        torch.manual_seed(0)
        result = score_module(name, NB101Network(matrix, ops, stem_channels=16), batch)
        if not result.ok:
            failed[name] = result.error
    assert not failed, failed


def test_cells_of_the_nb101_store_are_scored_through_the_run_store(tmp_path, monkeypatch):
    """The scorers' seam (harness.models.network_for): NB101 cells, as the spec JSON, scored by
    score_cells with the run store's key naming the space; a second call reads them back."""
    from harness.benchmarks.nb101 import NB101
    from harness.estimators.run import EstimatorSpec, score_cells
    from harness.models import network_for
    from harness.runstore import RunStore

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    bench = NB101.import_tfrecord(require_data("nb101/nasbench_only108_sample30.tfrecord"))

    def arch_of(index: int) -> str:
        matrix, ops = bench.spec(index)
        return NB101Spec.from_arrays(matrix, ops).to_json()

    assert count_parameters(*bench.spec(0)) == bench.query(0, split="train", epochs=108, metric="params")
    torch.manual_seed(0)
    assert sum(p.numel() for p in network_for("nb101", arch_of(0)).parameters()) == count_parameters(*bench.spec(0))
    store = RunStore(tmp_path / "runs.sqlite")
    specs = [EstimatorSpec.parse("params"), EstimatorSpec.parse("synflow")]
    first = score_cells(arch_of, [0, 1], "cifar10", specs, batch_size=4, batch_seed=0, store=store, space="nb101",
                        device=torch.device("cpu"))
    assert (first.error == "").all() and not first.cached.any()
    again = score_cells(arch_of, [0, 1], "cifar10", specs, batch_size=4, batch_seed=0, store=store, space="nb101",
                        device=torch.device("cpu"))
    assert again.cached.all() and (again.score.to_numpy() == first.score.to_numpy()).all()
    with pytest.raises(HarnessError, match="NB101 has no cifar100 runs"):
        network_for("nb101", arch_of(0), "cifar100")
