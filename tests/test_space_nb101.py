"""The NB101 search space: the official module hash on real cells, validity and pruning rules,
one-line errors, and property tests (hash invariance, pruning, sampling, mutation)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.spaces.nb101 import (INPUT, MAX_EDGES, MAX_VERTICES, OPS, OUTPUT, NB101Spec, is_isomorphic,
                                  mutate_spec, sample_spec)
from tests.conftest import one_line, require_full_data

C3, C1, MP = OPS
CODES = {-1: INPUT, -2: OUTPUT, 0: C3, 1: C1, 2: MP}  # nasbench_vis_1k.json's op codes; -3 is padding
PADDING = -3

# google-research/nasbench README.md, "Using the dataset": the Inception-like module
INCEPTION = NB101Spec.from_arrays(
    [[0, 1, 1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    [INPUT, C1, C3, C3, C3, MP, OUTPUT])
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
FIRST_VIS_HASH = "00005c142e6f48ac74fdcf73e3439874"


def vis_cells() -> list[tuple[NB101Spec, str]]:
    """The 1,000 cells of nasbench_vis_1k.json (float adjacency, coded ops) with their keys."""
    data = json.loads(require_full_data("nb101/nasbench_vis_1k.json").read_text())
    cells = []
    for adjacency, codes, key in zip(data["adjacency"], data["operations"], data["key"], strict=True):
        keep = [v for v, code in enumerate(codes) if code != PADDING]
        matrix = np.asarray(adjacency)[np.ix_(keep, keep)]
        cells.append((NB101Spec.from_arrays(matrix, [CODES[codes[v]] for v in keep]), key))
    return cells


def chain(size: int) -> list[list[int]]:
    """The adjacency of a path 0 -> 1 -> ... -> size-1."""
    return [[int(j == i + 1) for j in range(size)] for i in range(size)]


# -- the official hash on real cells ----------------------------------------------------------------
def test_every_vis_cell_hashes_to_its_key():
    cells = vis_cells()
    assert len(cells) == 1000
    wrong = [(spec, key) for spec, key in cells if spec.hash() != key]
    assert not wrong, f"{len(wrong)} of 1000 hashes differ, e.g. {wrong[0]}"


def test_every_dummy_cell_hashes_to_its_key():
    with open(require_full_data("nb101/naslib_nb101_dummy_30.pkl"), "rb") as f:
        cells = pickle.load(f)
    assert len(cells) == 30
    for key, (fixed, _computed) in cells.items():
        spec = NB101Spec.from_arrays(fixed["module_adjacency"], fixed["module_operations"])
        assert spec.hash() == key


def test_first_vis_cell_is_the_reference_cell():
    spec, key = vis_cells()[0]
    assert key == FIRST_VIS_HASH
    assert spec.hash() == FIRST_VIS_HASH


def test_inception_like_cell_hash():
    assert INCEPTION.hash() == INCEPTION_HASH


def test_float_and_numpy_matrices_hash_like_the_int_one():
    as_int = np.array(INCEPTION.matrix)
    for matrix in (as_int.astype(float), as_int.astype(np.int64), as_int.astype(np.int8), as_int.astype(bool),
                   as_int.astype(float).tolist()):
        spec = NB101Spec.from_arrays(matrix, np.array(INCEPTION.ops))
        assert spec == INCEPTION
        assert all(type(x) is int for row in spec.matrix for x in row)
        assert all(type(op) is str for op in spec.ops)
        assert spec.hash() == INCEPTION_HASH


def test_json_round_trip():
    text = INCEPTION.to_json()
    assert NB101Spec.from_json(text) == INCEPTION
    assert NB101Spec.from_json(json.loads(text)) == INCEPTION
    assert INCEPTION.num_vertices == 7 and INCEPTION.num_edges == 9


# -- validity and pruning ---------------------------------------------------------------------------
def test_limits_apply_after_pruning():
    # 12 edges, 7 raw vertices: vertex 5 feeds nothing, so pruning drops it and its 5 in-edges
    matrix = chain(7)
    matrix[4][5], matrix[5][6], matrix[4][6] = 0, 0, 1
    for i in range(5):
        matrix[i][5] = 1
    matrix[0][2] = matrix[1][3] = 1
    spec = NB101Spec.from_arrays(matrix, [INPUT, C3, C3, C1, MP, "a typo nobody reads", OUTPUT])
    assert spec.num_edges == 12 and spec.num_vertices == 7
    pruned = spec.pruned()
    assert pruned.num_vertices == 6 and pruned.num_edges == 7
    assert pruned.ops == (INPUT, C3, C3, C1, MP, OUTPUT)
    assert spec.hash() == pruned.hash()

    # 8 raw vertices: vertex 3 is unreachable from the input, pruning leaves 7
    matrix = chain(8)
    matrix[2][3], matrix[2][4] = 0, 1
    spec = NB101Spec.from_arrays(matrix, [INPUT] + [C3] * 6 + [OUTPUT])
    assert spec.pruned().num_vertices == MAX_VERTICES


def test_pruning_drops_only_dead_vertices():
    spec = NB101Spec.from_arrays([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], [INPUT, C1, MP, OUTPUT])
    assert spec.pruned() == NB101Spec(((0, 1, 0), (0, 0, 1), (0, 0, 0)), (INPUT, C1, OUTPUT))
    direct = NB101Spec.from_arrays([[0, 1], [0, 0]], [INPUT, OUTPUT])
    assert direct.pruned() == direct and len(direct.hash()) == 32


BAD = [
    ("non-square", [[0, 1, 0], [0, 0], [0, 0, 0]], [INPUT, C3, OUTPUT], ["not square", "row 1 has 2"]),
    ("empty", [], [], ["empty"]),
    ("ops count", [[0, 1], [0, 0]], [INPUT, C3, OUTPUT], ["3 ops", "2 x 2"]),
    ("not upper-triangular", [[0, 1, 0], [0, 0, 1], [1, 0, 0]], [INPUT, C3, OUTPUT],
     ["(2, 0)", "upper-triangular"]),
    ("self loop", [[0, 1, 0], [0, 1, 1], [0, 0, 0]], [INPUT, C3, OUTPUT], ["(1, 1)", "upper-triangular"]),
    ("entry 2", [[0, 2], [0, 0]], [INPUT, OUTPUT], ["(0, 1)", "not 0 or 1"]),
    ("entry 0.5", [[0, 0.5], [0, 0]], [INPUT, OUTPUT], ["(0, 1)", "not 0 or 1"]),
    ("unknown op", [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, "conv5x5", OUTPUT], ["unknown NB101 op", "conv5x5"]),
    ("op not a str", [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, 0, OUTPUT], ["op 1", "not an op name"]),
    ("no input", [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, OUTPUT], ["first NB101 op", "'input'"]),
    ("no output", [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, C3, C3], ["last NB101 op", "'output'"]),
    ("disconnected", [[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, C3, OUTPUT], ["does not reach the output"]),
    ("too many edges", np.triu(np.ones((7, 7), dtype=int), k=1), [INPUT] + [C3] * 5 + [OUTPUT],
     ["21 edges after pruning", f"at most {MAX_EDGES}"]),
    ("too many vertices", chain(8), [INPUT] + [C3] * 6 + [OUTPUT], ["8 vertices after pruning",
                                                                   f"at most {MAX_VERTICES}"]),
    ("matrix is a str", "0100", [INPUT, OUTPUT], ["matrix is a str"]),
    ("ops is a str", [[0, 1], [0, 0]], "input,output", ["ops are one str"]),
]


@pytest.mark.parametrize("matrix, ops, words", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_specs_give_one_line_errors(matrix, ops, words):
    with pytest.raises(HarnessError) as caught:
        NB101Spec.from_arrays(matrix, ops)
    text = one_line(caught.value)
    assert "; " in text  # problem; fix
    for word in words:
        assert word in text, text


@pytest.mark.parametrize("obj, words", [
    ("{not json", ["not valid JSON"]),
    ("[1, 2]", ["JSON list", "not an object"]),
    ({"matrix": [[0, 1], [0, 0]]}, ["no 'ops'"]),
    ({}, ["no 'matrix' or 'ops'"]),
])
def test_bad_json_gives_one_line_errors(obj, words):
    with pytest.raises(HarnessError) as caught:
        NB101Spec.from_json(obj)
    text = one_line(caught.value)
    for word in words:
        assert word in text, text


def test_direct_construction_validates_too():
    with pytest.raises(HarnessError):
        NB101Spec(((0, 0), (0, 0)), (INPUT, OUTPUT))
    assert NB101Spec([[0, 1], [0, 0]], [INPUT, OUTPUT]).matrix == ((0, 1), (0, 0))


# -- properties -------------------------------------------------------------------------------------
@st.composite
def specs(draw) -> NB101Spec:
    """Valid specs of 2..8 raw vertices (some with vertices that pruning drops)."""
    size = draw(st.integers(2, MAX_VERTICES + 1))
    matrix = [[0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            matrix[i][j] = int(draw(st.booleans()))
    ops = [INPUT] + [draw(st.sampled_from(OPS)) for _ in range(size - 2)] + [OUTPUT]
    try:
        return NB101Spec.from_arrays(matrix, ops)
    except HarnessError:
        assume(False)


def relabel(spec: NB101Spec, order: list[int]) -> NB101Spec:
    """The spec with new vertex k = old vertex order[k]."""
    matrix = [[spec.matrix[a][b] for b in order] for a in order]
    return NB101Spec.from_arrays(matrix, [spec.ops[a] for a in order])


@settings(max_examples=100, deadline=None)
@given(specs(), st.data())
def test_hash_is_invariant_under_topological_relabelling(spec, data):
    size = spec.num_vertices
    preds = {v: {u for u in range(size) if spec.matrix[u][v]} for v in range(size)}
    order, placed = [0], {0}
    while len(order) < size - 1:  # a random topological order: input first, output last
        ready = [v for v in range(1, size - 1) if v not in placed and preds[v] <= placed]
        v = data.draw(st.sampled_from(ready))
        order.append(v)
        placed.add(v)
    order.append(size - 1)
    other = relabel(spec, order)
    assert other.hash() == spec.hash()
    assert is_isomorphic(other, spec)


@settings(max_examples=100, deadline=None)
@given(specs())
def test_pruning_is_idempotent_and_keeps_the_hash(spec):
    pruned = spec.pruned()
    assert pruned.pruned() == pruned
    assert pruned.hash() == spec.hash()
    assert pruned.num_vertices <= MAX_VERTICES and pruned.num_edges <= MAX_EDGES
    size = pruned.num_vertices
    for v in range(1, size - 1):  # every interior vertex is on an input-output path
        assert any(pruned.matrix[u][v] for u in range(size)) and any(pruned.matrix[v])
    assert NB101Spec.from_json(spec.to_json()) == spec


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sampling_is_valid_and_seeded(seed):
    spec = sample_spec(seed)
    assert isinstance(spec, NB101Spec)
    assert spec.num_vertices == MAX_VERTICES
    assert sample_spec(seed) == spec
    assert sample_spec(np.random.default_rng(seed)) == spec


def test_samples_vary():
    # the rejection sampler favours small cells (about 1 in 10 is input -> output alone)
    assert len({sample_spec(seed).hash() for seed in range(100)}) > 60


def other_cells_one_step_away(spec: NB101Spec) -> set[str]:
    """Hashes of the valid cells one edge flip or one op change away, other than the spec's own."""
    size, found = spec.num_vertices, set()
    changes = [(i, j, None) for i in range(size) for j in range(i + 1, size)]
    changes += [(v, v, op) for v in range(1, size - 1) for op in OPS]
    for i, j, op in changes:
        matrix, ops = np.array(spec.matrix), list(spec.ops)
        if op is None:
            matrix[i, j] ^= 1
        else:
            ops[i] = op
        try:
            found.add(NB101Spec.from_arrays(matrix, ops).hash())
        except HarnessError:
            pass
    return found - {spec.hash()}


@settings(max_examples=100, deadline=None)
@given(specs(), st.integers(0, 2**32 - 1))
def test_mutation_is_valid_and_changes_the_cell(spec, seed):
    if not other_cells_one_step_away(spec):  # e.g. input -> output alone
        with pytest.raises(HarnessError):
            mutate_spec(spec, seed)
        return
    mutant = mutate_spec(spec, seed)
    assert isinstance(mutant, NB101Spec)
    assert mutant.hash() != spec.hash() and not is_isomorphic(mutant, spec)
    assert mutant.num_vertices == spec.num_vertices
    changed_edges = sum(a != b for r, s in zip(spec.matrix, mutant.matrix) for a, b in zip(r, s))
    changed_ops = sum(a != b for a, b in zip(spec.ops, mutant.ops))
    assert changed_edges + changed_ops == 1
    assert mutate_spec(spec, seed) == mutant


def test_mutation_without_a_valid_neighbour_says_so():
    with pytest.raises(HarnessError) as caught:
        mutate_spec(NB101Spec.from_arrays([[0, 1], [0, 0]], [INPUT, OUTPUT]), 0)
    assert "no single edge flip or op change" in one_line(caught.value)
