"""Training-free estimators on real NB201 networks and real CIFAR-10 images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.estimators import ESTIMATORS, Batch, score
from harness.estimators.epe_nas import epe_score
from harness.estimators.jacob_cov import jacob_cov_score
from harness.estimators.jacobian import corrcoef_rows, input_jacobian
from harness.estimators.naswot import hamming_kernel
from harness.estimators.run import EstimatorSpec, make_batch, score_cells
from harness.models.nb201 import build_network, count_flops
from harness.runstore import RunStore

ALL = ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacob_cov", "l2_norm", "naswot", "params", "plain",
       "snip", "synflow", "zen"]
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def batch(harness_data):
    b, _ = make_batch("cifar10", 16, batch_seed=1, augment=False, device=torch.device("cpu"))
    return b


def _net(arch=BEST, seed=0, dataset="cifar10"):
    torch.manual_seed(seed)
    return build_network(arch, dataset)


def test_registry_lists_every_estimator():
    own = [n for n in ESTIMATORS.list() if ESTIMATORS.origin(n) == "nas-harness"]  # plug-ins: tests/test_plugins.py
    assert own == sorted(ALL + ["bpe"])  # bpe (budgeted training) is tested in test_bpe.py
    assert ESTIMATORS.list("syn*") == ["synflow"]
    assert ESTIMATORS.get("epe_nas").meta["variants"] == ("paper", "official", "official10")


@pytest.mark.parametrize("name", ALL)
def test_every_estimator_scores_a_real_network(name, batch):
    result = score(name, _net(), batch)
    assert result.ok, result.error
    assert math.isfinite(result.score) and result.seconds > 0
    again = score(name, _net(), batch)
    assert again.score == pytest.approx(result.score, rel=1e-6)  # same init, same batch, same score


def test_params_and_flops_equal_the_benchmark(batch, nb201):
    for index in (0, 11, 284, 6111):
        arch = nb201.arch(index)
        assert score("params", _net(arch), batch).score == nb201.query(index, dataset="cifar10-valid", split=None,
                                                                        epochs=None, seed="mean", metric="params")
    assert score("flops", _net(BEST), batch).score == pytest.approx(count_flops(_net(BEST), 32))


def test_input_jacobian_equals_the_papers_backward(batch):
    net = _net()
    net.train()
    x = batch.x.clone().requires_grad_(True)
    net(x).backward(torch.ones(len(x), 10))
    torch.testing.assert_close(input_jacobian(_net(), batch.x), x.grad.reshape(len(x), -1).double())
    assert all(p.requires_grad for p in net.parameters())


def test_corrcoef_matches_numpy():
    j = torch.randn(7, 50, dtype=torch.float64)
    np.testing.assert_allclose(corrcoef_rows(j).numpy(), np.corrcoef(j.numpy()), atol=1e-12)


def _epe_reference(jac: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """The formula of papers.md section 2, written out with numpy."""
    per = {}
    for c in np.unique(labels):
        rows = jac[labels == c]
        corr = np.corrcoef(rows) if len(rows) > 1 else np.array(1.0)
        s = np.sum(np.log(np.abs(corr) + 1e-5))
        if num_classes > 100:
            s /= corr.size
        per[c] = s
    v = np.array(list(per.values()))
    return np.abs(v).sum() if num_classes <= 100 else np.abs(v[:, None] - v[None, :]).sum() / len(v)


def test_epe_score_formula_both_branches():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(40, 30))
    labels = np.concatenate([rng.integers(0, 5, 39), [7]])  # class 7 has a single image
    for classes in (10, 120):
        ours = epe_score(torch.from_numpy(jac), torch.from_numpy(labels), classes)
        assert ours == pytest.approx(_epe_reference(jac, labels, classes), rel=1e-12)
    jac[0] = 0.0  # a zero-variance row: NaN, which score() records as a failure
    assert math.isnan(epe_score(torch.from_numpy(jac), torch.from_numpy(labels), 10))


def test_official10_variant_differs_only_above_100_classes(batch):
    b120 = Batch(batch.x, batch.y, 120, "ImageNet16-120")
    net = lambda: _net(dataset="ImageNet16-120")  # noqa: E731
    paper, official = score("epe_nas", net(), b120), score("epe_nas", net(), b120, variant="official10")
    assert paper.ok and official.ok and paper.score != official.score
    assert score("epe_nas", _net(), batch).score == score("epe_nas", _net(), batch, variant="official10").score


DEAD = ("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",  # node 2 unfed
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")  # nodes 1, 2 dead


@pytest.mark.parametrize("arch", DEAD)
def test_pruning_dead_edges_keeps_the_function_and_its_input_jacobian(arch, batch):
    full, pruned = _net(arch), _net(arch).prune_unreachable_()
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in full.parameters())
    full.train()
    pruned.train()
    assert torch.equal(full(batch.x), pruned(batch.x))
    assert torch.equal(input_jacobian(full, batch.x), input_jacobian(pruned, batch.x))
    # function-only estimators prune inside score(): the scores are those of the full network
    from harness.estimators.epe_nas import epe_nas
    assert score("epe_nas", _net(arch), batch).score == epe_nas(_net(arch), batch)
    assert ESTIMATORS.get("epe_nas").meta["function_only"] and not ESTIMATORS.get("naswot").meta.get("function_only")


@pytest.mark.parametrize("arch", (BEST, "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
                                  "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|"))
def test_pruned_cells_sum_in_place_with_identical_bits(arch, batch):
    """The pruned network sums node inputs in place: forward and input Jacobian stay bit-identical."""
    full, pruned = _net(arch), _net(arch).prune_unreachable_()
    assert all(c.sum_in_place for c in pruned.cells if hasattr(c, "sum_in_place"))
    full.train()
    pruned.train()
    assert torch.equal(full(batch.x), pruned(batch.x))
    assert torch.equal(input_jacobian(full, batch.x), input_jacobian(pruned, batch.x))
    assert torch.equal(full(batch.x), _net(arch)(batch.x))  # the full network is untouched


@pytest.mark.parametrize("arch", (BEST, *DEAD))
def test_naswot_computes_each_shared_kernel_once_and_counts_it_per_relu(arch, batch):
    net = _net(arch)
    net.train()
    naive = torch.zeros(len(batch.x), len(batch.x), dtype=torch.float64)

    def hook(module, inputs, output):
        nonlocal naive
        c = (inputs[0] > 0).flatten(1).double()
        naive = naive + c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        net(batch.x)
    for h in handles:
        h.remove()
    assert score("naswot", _net(arch), batch).score == float(torch.linalg.slogdet(naive)[1])


def test_hamming_kernel_counts_agreements():
    codes = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 0, 0]], dtype=torch.bool)
    naive = torch.tensor([[4 - int((a != b).sum()) for b in codes] for a in codes], dtype=torch.float64)
    torch.testing.assert_close(hamming_kernel(codes), naive)


def test_hamming_kernel_int8_path_equals_float32_exactly():
    """The CPU's int8 product (torch._int_mm) and the float32 product give the same kernel."""
    codes = torch.randn(256, 4096, generator=torch.Generator().manual_seed(0)) > 0
    c = codes.float()
    rows = c.sum(dim=1).double()
    as_float = 2 * (c @ c.T).double() - rows[:, None] - rows[None, :] + c.shape[1]
    assert torch.equal(hamming_kernel(codes), as_float)
    assert torch.equal(hamming_kernel(codes[:, ::3]), hamming_kernel(codes[:, ::3].float().bool().contiguous()))


def test_jacob_cov_formula():
    j = torch.randn(6, 40, dtype=torch.float64)
    v = np.linalg.eigvalsh(np.corrcoef(j.numpy()))
    assert jacob_cov_score(j) == pytest.approx(-np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5)), rel=1e-10)


def test_failures_are_recorded_with_their_reason(batch):
    zero = Batch(torch.zeros_like(batch.x), batch.y, 10, "cifar10")  # constant images: zero-variance Jacobians
    result = score("jacob_cov", _net(), zero)
    assert not result.ok and math.isnan(result.score) and "zero variance" in result.error
    result = score("epe_nas", _net("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), batch)
    assert not result.ok and math.isnan(result.score) and result.error


def test_estimator_spec():
    assert EstimatorSpec.parse("epe_nas").label == "epe_nas:paper"
    assert EstimatorSpec.parse("naswot:v1").variant == "v1"
    assert EstimatorSpec.parse("synflow").label == "synflow"
    with pytest.raises(HarnessError, match="no variant 'x'"):
        EstimatorSpec.parse("epe_nas:x")
    with pytest.raises(HarnessError, match="unknown estimator 'synflw'"):
        EstimatorSpec.parse("synflw")


def test_score_cells_reuses_the_run_store(tmp_path, nb201, harness_data):
    store = RunStore(tmp_path / "runs.sqlite")
    specs = [EstimatorSpec.parse("naswot"), EstimatorSpec.parse("params")]
    first = score_cells(nb201.arch, [3, 5], "cifar10", specs, batch_size=16, batch_seed=0, store=store,
                        device=torch.device("cpu"))
    assert not first.cached.any() and len(first) == 4
    second = score_cells(nb201.arch, [5, 3, 7], "cifar10", specs, batch_size=16, batch_seed=0, store=store,
                         device=torch.device("cpu"))
    assert second.cached.sum() == 4 and len(second) == 6
    merged = first.merge(second, on=["index", "estimator"])
    np.testing.assert_array_equal(merged.score_x, merged.score_y)
    # a different batch seed is a different key
    third = score_cells(nb201.arch, [3], "cifar10", specs[:1], batch_size=16, batch_seed=1, store=store,
                        device=torch.device("cpu"))
    assert not third.cached.any()


def test_correlate_command_small_case(tmp_path, nb201, capsys, harness_data):
    """CI's small case: 20 cells (every accuracy known, also in the miniature), 16 images, every estimator."""
    cells = pd.read_csv(harness_data / "nb201" / "nb201_v1_1_12ep_val_test.csv")["index"].to_numpy()
    cells = cells[~np.isin(cells, [327, 768, 3113, 8447])][:20]  # not the cells whose NB201 seeds differ in size
    (tmp_path / "cells.txt").write_text("".join(f"{c}\n" for c in cells))
    code = main(["correlate", "--dataset", "cifar10", "--estimators", ",".join(ALL), "--indices",
                 str(tmp_path / "cells.txt"), "--batch-size", "16", "--n-boot", "50", "--out", str(tmp_path)])
    assert code == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 20 * len(ALL)
    assert set(scores.columns) >= {"index", "arch", "estimator", "score", "seconds", "error"}
    table = pd.read_csv(tmp_path / "correlation.csv")
    assert set(table.truth) == {"test@200", "valid@200", "test@12", "valid@12", "params"}
    # the failure count equals the number of failed scores, which are NaN, never numbers
    failed = scores[scores.error.notna()]
    assert failed.score.isna().all()
    for estimator, group in scores.groupby("estimator"):
        row = table[(table.estimator == estimator) & (table.truth == "test@200")].iloc[0]
        assert row.failed == group.error.notna().sum() == row.n_nan
    params = table[(table.estimator == "params") & (table.truth == "test@200")].iloc[0]
    assert params.kendall > 0.3
    size = table[(table.estimator == "params") & (table.truth == "params")].iloc[0]
    assert size.kendall == pytest.approx(1.0) and size.spearman == pytest.approx(1.0)  # the params score is the benchmark's parameter count
    assert (tmp_path / "scatter_epe_nas-paper.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["correlate", "--dataset", "cifar10", "--estimators", "nope", "--archs", "3", "--out", "X"], "unknown estimator"),
    (["correlate", "--dataset", "cifar10", "--estimators", "params", "--out", "X"], "either --archs"),
    (["correlate", "--dataset", "cifar10", "--estimators", "params", "--archs", "0", "--out", "X"], "outside 1..15625"),
    (["correlate", "--dataset", "mnist", "--estimators", "params", "--archs", "2", "--out", "X"], "mnist"),
])
def test_correlate_bad_input(argv, message, capsys, tmp_path, nb201):
    argv = [a if a != "X" else str(tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("nas-harness: error:")


def test_indices_file_errors(tmp_path, capsys, nb201):
    bad = tmp_path / "idx.txt"
    bad.write_text("3\nabc\n")
    assert main(["correlate", "--dataset", "cifar10", "--estimators", "params", "--indices", str(bad),
                 "--out", str(tmp_path)]) == 2
    assert "'abc'" in capsys.readouterr().err
    bad.write_text("3\n99999\n")
    assert main(["correlate", "--dataset", "cifar10", "--estimators", "params", "--indices", str(bad),
                 "--out", str(tmp_path)]) == 2
    assert "99999" in capsys.readouterr().err


@pytest.fixture
def failing_estimator(monkeypatch):
    """Register ``_failing`` (raising whatever the test sets) for one test only."""
    raised = {}

    def fn(net, batch):
        raise raised["error"]

    monkeypatch.setitem(ESTIMATORS._entries, "_failing", ESTIMATORS._entries["plain"].__class__("_failing", fn, {}, ""))
    return raised


def test_numerical_failures_are_recorded_and_cached_others_are_not(failing_estimator, batch, tmp_path):
    from harness.estimators.base import TransientScoreError, UndefinedScore
    from harness.estimators.run import CellScorer

    store = RunStore(tmp_path / "runs.sqlite")
    scorer = CellScorer(lambda i: BEST, "cifar10", EstimatorSpec.parse("_failing"), batch=batch, images="test",
                        batch_size=16, batch_seed=1, store=store, device=torch.device("cpu"))
    # deterministic numerical failures: recorded with their reason, cached for good
    for index, error in enumerate([UndefinedScore("formula undefined"), ZeroDivisionError("division by zero"),
                                   torch.linalg.LinAlgError("singular")]):
        failing_estimator["error"] = error
        value, _, reason, cached = scorer.score(index)
        assert math.isnan(value) and type(error).__name__ in reason and not cached
        assert store.get(scorer.key(index))[2] == reason
    # transient (out of memory): a one-line harness error, nothing cached
    failing_estimator["error"] = torch.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(TransientScoreError, match="ran out of memory.*nothing was cached"):
        scorer.score(10)
    assert store.get(scorer.key(10)) is None
    # anything else is a bug: it raises as it is, and nothing is cached
    for bug in (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), ValueError("bad option"), KeyError("x")):
        failing_estimator["error"] = bug
        with pytest.raises(type(bug)):
            scorer.score(11)
    assert store.get(scorer.key(11)) is None


def test_out_of_memory_while_the_network_is_built_is_transient_too(batch, tmp_path, monkeypatch):
    """A GPU can run out of memory before the estimator runs (moving the network): the same
    one-line transient error, nothing cached (it was an uncaught torch error)."""
    import harness.estimators.run as run
    from harness.estimators.base import TransientScoreError
    from harness.estimators.run import CellScorer

    def full(space, arch, dataset):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")

    monkeypatch.setattr(run, "network_for", full)
    store = RunStore(tmp_path / "runs.sqlite")
    scorer = CellScorer(lambda i: BEST, "cifar10", EstimatorSpec.parse("synflow"), batch=batch, images="test",
                        batch_size=16, batch_seed=1, store=store, device=torch.device("cpu"))
    with pytest.raises(TransientScoreError, match="building the network.*ran out of memory.*nothing was cached"):
        scorer.score(3)
    assert store.get(scorer.key(3)) is None


def test_zen_of_a_cell_whose_output_ignores_the_input_is_undefined(batch):
    result = score("zen", _net("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), batch)
    assert not result.ok and "UndefinedScore" in result.error and "log 0" in result.error


def test_dedupe_isomorphic_scores_each_class_once_with_its_representatives_seeds(tmp_path, nb201, monkeypatch):
    from harness.spaces.nb201 import NB201Space

    space = NB201Space.from_benchmark(nb201)
    reps = space.representatives()
    assert len(set(reps.tolist())) == 6466 and all(reps[reps] == reps) and all(reps <= np.arange(len(reps)))
    members = np.flatnonzero(reps == reps[np.argmax(np.bincount(reps) > 2)])[:3]  # a class of 3 or more cells
    assert len(members) == 3 and len({nb201.arch(int(i)) for i in members}) == 3
    spec = [EstimatorSpec.parse("naswot")]
    store = RunStore(tmp_path / "runs.sqlite")
    calls = []
    import harness.estimators.run as run

    real = run.compute_score
    monkeypatch.setattr(run, "compute_score", lambda task: calls.append(task.index) or real(task))
    deduped = score_cells(nb201.arch, members, "cifar10", spec, batch_size=16, batch_seed=1, store=store,
                          representative_of=reps.__getitem__, device=torch.device("cpu"))
    assert calls == [int(reps[members[0]])]  # one network scored for the three
    assert deduped.score.nunique() == 1 and list(deduped.scored_as) == [int(reps[members[0]])] * 3
    plain = score_cells(nb201.arch, [int(reps[members[0]])], "cifar10", spec, batch_size=16, batch_seed=1,
                        store=RunStore(tmp_path / "other.sqlite"), device=torch.device("cpu"))
    assert plain.score.iloc[0] == deduped.score.iloc[0]  # the representative's own score, its own seeds
