"""The DARTS search space (genotypes, the BPE paper's files, sampling) and its evaluation network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.errors import DataMissingError, HarnessError
from harness.models.darts import (
    AuxiliaryHead,
    DartsNetwork,
    FactorizedReduce,
    count_parameters_mb,
)
from harness.spaces.darts import (
    ENCODING_LENGTH,
    PRIMITIVES,
    DartsSpace,
    Genotype,
    genotype_to_str,
    load_ground_truth,
    load_random_architectures,
    overlap,
    parse_genotype,
)

from .conftest import FULL_DATA, require_data

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
NESTED = ("Genotype(normal=[[('dil_conv_5x5', 0), ('sep_conv_3x3', 1)], [('skip_connect', 0), ('avg_pool_3x3', 1)], "
          "[('sep_conv_3x3', 2), ('max_pool_3x3', 0)], [('skip_connect', 3), ('dil_conv_5x5', 2)]], "
          "normal_concat=range(2, 6), reduce=[[('sep_conv_5x5', 0), ('max_pool_3x3', 1)], [('skip_connect', 0), "
          "('sep_conv_5x5', 2)], [('avg_pool_3x3', 0), ('sep_conv_5x5', 1)], [('sep_conv_3x3', 2), "
          "('max_pool_3x3', 4)]], reduce_concat=range(2, 6))")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small nets run fastest on one thread, and far faster than on several when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def random_archs(harness_data):
    require_data("bpe/random_darts_architecture.txt")
    return load_random_architectures()


@pytest.fixture(scope="module")
def truth(harness_data):
    require_data("bpe/Search_Hyperparameters_Results.xlsx")
    return load_ground_truth()


# -- text form ------------------------------------------------------------------------------------
def test_parse_darts_v2_and_round_trip():
    g = parse_genotype(DARTS_V2)
    assert g.normal[0] == ("sep_conv_3x3", 0) and g.normal[-1] == ("dil_conv_3x3", 2) and len(g.reduce) == 8
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5) and g.steps == 4
    assert parse_genotype(genotype_to_str(g)) == g == parse_genotype(genotype_to_str(g, nested=True))
    assert str(g) == genotype_to_str(g) and "normal_concat=range(2, 6)" in str(g)
    assert hash(g) == hash(parse_genotype(str(g)))


def test_nested_form_round_trips_character_for_character():
    g = parse_genotype(NESTED)
    assert genotype_to_str(g, nested=True) == NESTED
    assert g.nodes("reduce")[3] == (("sep_conv_3x3", 2), ("max_pool_3x3", 4))
    # whitespace, keyword order and a non-contiguous concat
    odd = Genotype(g.normal, g.reduce, (2, 4, 5), (5, 3))
    assert parse_genotype(genotype_to_str(odd)) == odd and "[2, 4, 5]" in genotype_to_str(odd)
    shuffled = (f"Genotype(reduce_concat=range(2, 6),\n  reduce={list(g.reduce)!r}, normal_concat=range(2,6), "
                f"normal={list(g.normal)!r})")
    assert parse_genotype(shuffled) == g


@pytest.mark.parametrize("text", [
    "",
    "not a genotype",
    "Genotype(normal=[('sep_conv_3x3', 0)]",                                   # syntax
    "Foo(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])",         # wrong call
    DARTS_V2.replace("sep_conv_3x3", "conv_7x7", 1),                           # unknown op
    DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),             # input out of range
    DARTS_V2.replace("('sep_conv_3x3', 0), ", "", 1),                          # 7 pairs
    DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[0, 9]"),    # bad concat
    DARTS_V2.replace("normal_concat=[2, 3, 4, 5], ", ""),                      # missing field
    DARTS_V2.replace("[2, 3, 4, 5]", "__import__('os').getcwd()", 1),          # never evaluated
    DARTS_V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0.5)", 1),        # non-int input
    DARTS_V2 + "extra",
])
def test_bad_text_raises_one_line_harness_error(text):
    with pytest.raises(HarnessError) as err:
        parse_genotype(text)
    assert "\n" not in str(err.value) and err.value.fix


def test_genotype_validates_when_built_directly():
    with pytest.raises(HarnessError, match="unknown DARTS op"):
        Genotype((("conv", 0),) * 8, (("skip_connect", 0),) * 8)
    g = Genotype([["skip_connect", 0]] * 8, [("none", 1)] * 8)  # lists become tuples; none allowed
    assert g.normal == (("skip_connect", 0),) * 8 and not DartsSpace().contains(g)


# -- the BPE paper's files ------------------------------------------------------------------------
def test_random_architectures_file(random_archs, harness_data):
    lines = (harness_data / "bpe/random_darts_architecture.txt").read_text().splitlines()  # 100, or the miniature's
    assert len(random_archs) == len(lines) and all(isinstance(g, Genotype) for g in random_archs)
    assert [genotype_to_str(g, nested=True) for g in random_archs] == lines
    space = DartsSpace()
    assert all(space.contains(g) for g in random_archs)
    assert len({g.canonical() for g in random_archs}) == len(lines)
    if FULL_DATA:
        assert len(lines) == 100


def test_ground_truth_sheet(truth):
    assert list(truth.columns[:4]) == ["arch_id", "arch_index", "genotype", "accuracy"]
    n = len(truth)  # 100, or the miniature's first cells
    assert truth.arch_id.iloc[0] == "Arch_1" and truth.arch_index.tolist() == list(range(1, n + 1))
    assert truth.accuracy.iloc[0] == 96.82 and truth.accuracy.between(96, 98).all()
    space = DartsSpace()
    assert all(space.contains(g) for g in truth.genotype) and len({g.canonical() for g in truth.genotype}) == n
    if FULL_DATA:
        assert n == 100 and abs(truth.accuracy.mean() - 96.989) < 0.001
        assert truth.accuracy.min() == pytest.approx(96.18) and truth.accuracy.max() == pytest.approx(97.45)


def test_the_two_files_hold_different_cells(random_archs, truth):
    """Documented in harness.spaces.darts: no cell of the text file is one of the sheet's, even per cell type."""
    sheet = list(truth.genotype)
    assert overlap(random_archs, sheet) == []
    assert overlap(random_archs, random_archs) == [(i, i) for i in range(len(random_archs))]
    normals = {g.canonical().normal for g in sheet}
    reduces = {g.canonical().reduce for g in sheet}
    assert not any(g.canonical().normal in normals or g.canonical().reduce in reduces for g in random_archs)


def test_missing_data_names_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    with pytest.raises(DataMissingError, match="random_darts_architecture.txt.*HARNESS_DATA"):
        load_random_architectures()
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="Search_Hyperparameters_Results.xlsx.*HARNESS_DATA"):
        load_ground_truth()
    bad = tmp_path / "bad.txt"
    bad.write_text(NESTED + "\nGenotype(normal=oops)\n")
    with pytest.raises(HarnessError, match="line 2"):
        load_random_architectures(bad)


# -- the space's capabilities ---------------------------------------------------------------------
def _differences(a: Genotype, b: Genotype) -> list[tuple[str, int, str]]:
    out = []
    for cell in ("normal", "reduce"):
        for k, (pa, pb) in enumerate(zip(getattr(a, cell), getattr(b, cell))):
            if pa[0] != pb[0]:
                out.append((cell, k, "op"))
            if pa[1] != pb[1]:
                out.append((cell, k, "input"))
    return out


def test_sample_is_valid_seeded_and_covers_the_space():
    space = DartsSpace()
    draws = space.sample_n(300, np.random.default_rng(0))
    assert all(space.contains(g) for g in draws)
    assert draws == space.sample_n(300, 0) and space.sample(5) == space.sample(np.random.default_rng(5))
    assert space.sample(1) != space.sample(2)
    ops = {op for g in draws for op, _ in g.normal + g.reduce}
    assert ops == set(PRIMITIVES) - {"none"}
    inputs_of_last = {j for g in draws for _, j in g.normal[6:]}
    assert inputs_of_last == {0, 1, 2, 3, 4}


def test_mutate_changes_exactly_one_thing():
    space = DartsSpace()
    rng = np.random.default_rng(3)
    g = space.sample(rng)
    neighbours = space.neighbours(g)
    assert len(neighbours) == 2 * 8 * 6 + 2 * 2 * (0 + 1 + 2 + 3) == 120
    assert len({n.canonical() for n in neighbours}) == 120 and g.canonical() not in {n.canonical() for n in neighbours}
    kinds = set()
    for _ in range(200):
        child = space.mutate(g, rng)
        diff = _differences(g, child)
        assert len(diff) == 1 and space.contains(child)
        kinds.add(diff[0][2])
        g = child
    assert kinds == {"op", "input"}
    assert space.mutate(g, 7) == space.mutate(g, np.random.default_rng(7))


def test_encode_is_fixed_length_one_hot_and_order_invariant():
    space = DartsSpace()
    g = parse_genotype(NESTED)
    x = space.encode(g)
    assert x.shape == (ENCODING_LENGTH,) == (196,) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0} and x.sum() == 16
    swapped = Genotype(tuple(p for i in range(0, 8, 2) for p in (g.normal[i + 1], g.normal[i])), g.reduce)
    np.testing.assert_array_equal(space.encode(swapped), x)
    batch = space.encode([g, space.sample(0)])
    assert batch.shape == (2, 196) and not np.array_equal(batch[0], batch[1])
    np.testing.assert_array_equal(batch[0], x)


# -- the evaluation network ---------------------------------------------------------------------
def test_darts_v2_parameter_count_equals_the_published():
    torch.manual_seed(0)
    net = DartsNetwork(parse_genotype(DARTS_V2), C=36, layers=20, num_classes=10, auxiliary=True)
    assert count_parameters_mb(net) == 3.349342  # DARTS train.py: "param size = 3.349342MB"
    assert count_parameters_mb(net, exclude_auxiliary=False) == pytest.approx(3.349342 + 0.476426, abs=1e-9)
    assert net.reduction_layers == (6, 13) and net.aux_position == 13
    assert all(m.affine for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("layers,C,size", [(6, 8, 16), (8, 16, 32), (6, 16, 16), (8, 8, 32)])
def test_forward_shapes(layers, C, size):
    torch.manual_seed(0)
    net = DartsNetwork(NESTED, C=C, layers=layers, auxiliary=True, drop_path_prob=0.2)
    x = torch.randn(2, 3, size, size)
    net.train()
    logits, aux = net(x)
    assert logits.shape == (2, 10) and aux.shape == (2, 10)
    if C == 8:  # gradients reach the stem (kept to the small nets: the CPU is shared)
        (logits.sum() + 0.4 * aux.sum()).backward()
        assert net.stem[0].weight.grad is not None
    net.eval()
    with torch.no_grad():
        logits, aux = net(x)
    assert logits.shape == (2, 10) and aux is None and torch.isfinite(logits).all()


def test_small_and_odd_images_and_no_auxiliary():
    torch.manual_seed(0)
    net = DartsNetwork(DARTS_V2, C=8, layers=6, num_classes=100).eval()
    for size in (8, 9, 15):
        logits, aux = net(torch.randn(2, 3, size, size))
        assert logits.shape == (2, 100) and aux is None
    with pytest.raises(HarnessError):
        net(torch.randn(2, 3, 4, 4))


def test_factorized_reduce_and_aux_head_match_darts_on_even_sizes():
    torch.manual_seed(0)
    fr = FactorizedReduce(6, 8).eval()
    x = torch.randn(2, 6, 8, 8)
    r = F.relu(x)  # DARTS: cat(conv_1(relu x), conv_2(relu x[..., 1:, 1:])) without padding
    expected = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(fr(x), expected)
    head = AuxiliaryHead(12, 10).eval()
    y = torch.randn(2, 12, 8, 8)
    z = head.features(F.avg_pool2d(F.relu(y), 5, stride=3, padding=0, count_include_pad=False))
    assert z.shape[-2:] == (1, 1)
    torch.testing.assert_close(head(y), head.classifier(z.flatten(1)))


def test_drop_path_only_in_training_and_seeded_init():
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(1)
    a = DartsNetwork(NESTED, C=8, layers=6, drop_path_prob=0.5)
    torch.manual_seed(1)
    b = DartsNetwork(NESTED, C=8, layers=6, drop_path_prob=0.0)
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x)[0], b(x)[0])  # eval: drop-path off, same init
        a.train(), b.train()
        torch.manual_seed(2)
        out_a = a(x)[0]
        torch.manual_seed(2)
        out_b = b(x)[0]
    assert not torch.allclose(out_a, out_b)
