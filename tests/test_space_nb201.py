"""The NB201 search space on the real benchmark order and isomorphism classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.spaces.nb201 import (N_CELLS, NB201Space, arch_to_str, canonical_form, is_degenerate, live_edges,
                                  parse_arch)

from .conftest import require_data


@pytest.fixture(scope="module")
def table():
    """NB201's test-accuracy table: all 15,625 rows in index order, or the miniature's rows."""
    return pd.read_csv(require_data("nb201/nats_tss_test_acc_200ep.csv"))


@pytest.fixture(scope="module")
def space():
    """The space in NB201's index order, from the embedded package."""
    from harness.benchmarks.nb201_import import official_ops

    return NB201Space([arch_to_str(ops) for ops in official_ops()])


@pytest.fixture(scope="module")
def cells(space, table):
    """The NB201 index of each row of ``table``."""
    return space.indices_of(table.ArchitectureString.tolist())


def test_round_trips_for_every_cell(space, table, cells):
    if len(table) == N_CELLS:  # the whole table is in index order
        np.testing.assert_array_equal(cells, np.arange(N_CELLS))
    for index, arch in zip(cells, table.ArchitectureString):
        ops = parse_arch(arch)
        assert arch_to_str(ops) == arch
        assert space.index(arch) == index == space.index(ops)
        assert space.arch(index) == arch and space.ops(index) == ops
    for index in range(N_CELLS):
        assert space.index(space.arch(index)) == index
    np.testing.assert_array_equal(space.indices_of(table.ArchitectureString[:50]), cells[:50])
    assert space.ops_array().shape == (N_CELLS, 6) and list(space) == list(range(N_CELLS))


def test_canonical_form_equals_nb201_unique_string(space, table, cells):
    """Every string equals NB201's UniqueString; over all 15,625 cells, 6,466 classes."""
    assert [space.canonical(i) for i in cells] == table.UniqueString.tolist()
    ids = space.iso_class_ids()
    assert len(np.unique(ids)) == 6466
    np.testing.assert_array_equal(pd.factorize(ids[cells])[0], pd.factorize(table.UniqueString)[0])


def test_degenerate_cells_are_exactly_the_ten_percent_cells(space, table, cells):
    degenerate = np.array([is_degenerate(space.ops(i)) for i in cells])
    acc = table.CIFAR10TestAccuracy200Epochs.to_numpy()
    assert degenerate.sum() > 0
    assert (acc[degenerate] == 10.0).all()          # a zero-output cell guesses one class
    assert (acc[~degenerate] > 10.0).all()


def test_live_edges():
    # 0->1 conv, 1->3 conv, the rest none: only edges 0 and 4 are live
    assert live_edges((3, 0, 0, 0, 3, 0)) == (True, False, False, False, True, False)
    # node 2 is fed but never reaches the output: its edges are dead
    assert live_edges((0, 3, 0, 1, 0, 0)) == (False, False, False, True, False, False)


@pytest.mark.parametrize("bad, message", [
    ("|nor_conv_3x3~0|", "1 node group "),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op 'conv'"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "must read node 1, not .2."),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node group 2 of .* has 1 edge,"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "is not op~input"),
])
def test_validation_errors_say_what_is_wrong(bad, message):
    with pytest.raises(HarnessError, match=message) as info:
        parse_arch(bad)
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in str(info.value) or "use one of" in str(info.value)


def test_bad_indices_and_inputs(space):
    with pytest.raises(HarnessError, match="out of range"):
        space.arch(N_CELLS)
    with pytest.raises(HarnessError, match="6 op codes"):
        space.index((0, 1, 2))
    with pytest.raises(HarnessError, match="15625 cells"):
        NB201Space(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])


def test_seeded_sampling(space):
    a, b = space.sample(1000, 7), space.sample(1000, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, space.sample(1000, 8))
    assert len(set(space.sample(500, 1, replace=False))) == 500


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, N_CELLS - 1), seed=st.integers(0, 2**32 - 1))
def test_mutate_changes_exactly_one_edge(space, index, seed):
    child = space.mutate(index, seed)
    diff = np.array(space.ops(child)) != np.array(space.ops(index))
    assert diff.sum() == 1


@settings(max_examples=100, deadline=None)
@given(index=st.integers(0, N_CELLS - 1))
def test_neighbours_are_the_24_one_edge_mutations(space, index):
    nbrs = space.neighbours(index)
    assert len(set(nbrs.tolist())) == 24 and index not in nbrs
    assert all((np.array(space.ops(n)) != np.array(space.ops(index))).sum() == 1 for n in nbrs)


def test_encode(space):
    one = space.encode(11)
    assert one.shape == (30,) and one.sum() == 6
    assert one.reshape(6, 5).argmax(axis=1).tolist() == list(space.ops(11))
    assert space.encode(np.arange(4)).shape == (4, 30)


def test_canonical_form_treats_skip_as_identity():
    # x -skip-> node1 -conv3x3-> output  is the same computation as  x -conv3x3-> output
    assert canonical_form((1, 0, 0, 0, 3, 0)) == canonical_form((0, 0, 0, 3, 0, 0))
    assert canonical_form((1, 0, 0, 0, 0, 1)) != canonical_form((1, 0, 0, 0, 0, 0))
