"""The NAS-Bench-201 search space: arch string <-> index <-> op tuple, sampling, mutation, isomorphism.

A cell is a DAG of 4 nodes; each of its 6 edges (0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3, in arch
string order) carries one of 5 ops. An arch as an *op tuple* is the 6 op codes in that order
(``OPS`` index; equal to the ``config_id`` digits of the compact NB201 tables).

The official index order is data (the benchmark file's ``meta_archs``), so :class:`NB201Space`
is built from the 15,625 arch strings that the benchmark store supplies.

Strategies use only :meth:`NB201Space.sample`, :meth:`NB201Space.mutate`,
:meth:`NB201Space.neighbours` and :meth:`NB201Space.encode`.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence, Union

import numpy as np

from ..errors import HarnessError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (from, to) in arch-string order
N_EDGES, N_OPS = len(EDGES), len(OPS)
N_CELLS = N_OPS ** N_EDGES
FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"

Arch = Union[str, Sequence[int]]


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a one-line message (repr escapes newlines), shortened when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def parse_arch(arch: str) -> tuple[int, ...]:
    """Op codes of an arch string, with an error naming exactly what is wrong.

    The form is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: three node groups joined by ``+``;
    group k (k = 1, 2, 3) holds k edges between ``|``, its j-th edge ``op~j`` reads node j.
    Whitespace around the whole string is ignored; nothing else is. A string that parses is
    exactly :func:`arch_to_str` of its op codes.
    """
    if not isinstance(arch, str):
        raise HarnessError(f"an NB201 arch string must be a str, got {type(arch).__name__}", f"write it as {FORMAT}")
    text = arch.strip()
    shown = _shown(text)
    if not text:
        raise HarnessError("the NB201 arch string is empty", f"write it as {FORMAT}")
    groups = text.split("+")
    if len(groups) != 3:
        raise HarnessError(f"{shown} has {len(groups)} node group{'s' if len(groups) != 1 else ''} "
                           f"({len(groups) - 1} '+'), an NB201 cell has 3 joined by 2 '+'", f"write it as {FORMAT}")
    ops = []
    for node, group in enumerate(groups, start=1):
        expected = "|" + "|".join(f"op~{j}" for j in range(node)) + "|"
        where = f"node group {node} of {shown}"
        form = f"write node {node} as {expected}, the whole cell as {FORMAT}"
        if not group.replace("|", "").strip():
            raise HarnessError(f"{where} is empty ({_shown(group)})",
                               f"node {node} needs {node} edge{'s' if node > 1 else ''}: {form}")
        if re.search(r"\s", group):
            raise HarnessError(f"{where} holds whitespace ({_shown(group)})", f"remove the whitespace; {form}")
        if not (group.startswith("|") and group.endswith("|")):
            raise HarnessError(f"{where} is {_shown(group)}: it must start and end with '|'", form)
        edges = group[1:-1].split("|")
        if "" in edges:
            raise HarnessError(f"{where} has an empty edge (two '|' in a row)", form)
        if len(edges) != node:
            raise HarnessError(f"{where} has {len(edges)} edge{'s' if len(edges) != 1 else ''}, node {node} needs "
                               f"{node}", form)
        for position, edge in enumerate(edges):
            if edge.count("~") != 1:
                raise HarnessError(f"edge {_shown(edge)} in {where} is not op~input (e.g. nor_conv_3x3~{position})",
                                   form)
            name, source = edge.split("~")
            if name not in OPS:
                raise HarnessError(f"unknown NB201 op {_shown(name)} in {where}", f"use one of {', '.join(OPS)}")
            if source != str(position):
                raise HarnessError(f"edge {_shown(edge)} of node {node} must read node {position}, not {_shown(source)}",
                                   f"edge {position + 1} of node {node} is op~{position}: {form}")
            ops.append(OPS.index(name))
    return tuple(ops)


def _check_ops(ops: Sequence[int]) -> tuple[int, ...]:
    ops = tuple(int(o) for o in ops)
    if len(ops) != N_EDGES or not all(0 <= o < N_OPS for o in ops):
        raise HarnessError(f"{ops} is not 6 op codes in 0..4", f"op codes index {OPS}")
    return ops


def as_ops(arch: Arch) -> tuple[int, ...]:
    """Op tuple of an arch string or an op-code sequence."""
    return parse_arch(arch) if isinstance(arch, str) else _check_ops(arch)


def arch_to_str(ops: Sequence[int]) -> str:
    o = [OPS[i] for i in _check_ops(ops)]
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def canonical_form(arch: Arch) -> str:
    """The isomorphism class of a cell as a string: NB201's ``UniqueString`` rule.

    Each node is the sorted '+'-join of its incoming terms: ``none``, or any op reading a node
    whose string is exactly ``#``, contributes ``#``; ``skip_connect`` passes its input's string
    through; any other op writes ``(input)@op``. Zeros are not simplified further (a node
    ``#+#`` stays one), which is exactly how NB201 defines its 6,466 classes: two cells share
    this string iff they share NB201's ``UniqueString``. For cells whose output is zero
    whatever the input, see :func:`is_degenerate`.
    """
    ops = as_ops(arch)
    terms = {0: "0"}
    for node in (1, 2, 3):
        parts = []
        for e, (src, dst) in enumerate(EDGES):
            if dst == node:
                op = OPS[ops[e]]
                if op == "none" or terms[src] == "#":
                    parts.append("#")
                else:
                    parts.append(terms[src] if op == "skip_connect" else f"({terms[src]})@{op}")
        terms[node] = "+".join(sorted(parts))
    return terms[3]


def is_degenerate(arch: Arch) -> bool:
    """True when no path of non-``none`` edges joins the input to the output (zero output)."""
    return not any(live_edges(arch))


def live_edges(arch: Arch) -> tuple[bool, ...]:
    """Per edge: does it carry a non-zero signal that reaches the cell output?"""
    ops = as_ops(arch)
    reaches = {3}
    for node in (2, 1, 0):  # a node reaches the output through a non-none edge to a reaching node
        if any(src == node and dst in reaches and ops[e] != 0 for e, (src, dst) in enumerate(EDGES)):
            reaches.add(node)
    fed = {0}
    for node in (1, 2, 3):
        if any(dst == node and src in fed and ops[e] != 0 for e, (src, dst) in enumerate(EDGES)):
            fed.add(node)
    return tuple(ops[e] != 0 and src in fed and dst in reaches for e, (src, dst) in enumerate(EDGES))


class NB201Space:
    """The 15,625 cells in the benchmark's official index order."""

    def __init__(self, arch_strs: Sequence[str]):
        if len(arch_strs) != N_CELLS:
            raise HarnessError(f"NB201 has {N_CELLS} cells, got {len(arch_strs)} arch strings",
                               "build the space from the benchmark store: NB201Space(NB201.open().arch_strs())")
        self._strs = list(arch_strs)
        self._ops = np.array([parse_arch(s) for s in self._strs], dtype=np.uint8)
        self._by_str = {s: i for i, s in enumerate(self._strs)}
        if len(self._by_str) != N_CELLS:
            raise HarnessError("the arch strings given to NB201Space repeat", "pass the benchmark's meta_archs list")
        # op tuple -> index through a base-5 code, vectorised
        self._code_to_index = np.empty(N_CELLS, dtype=np.int64)
        self._code_to_index[self._codes(self._ops)] = np.arange(N_CELLS)
        self._canon: list[str] | None = None
        self._mutations: list | None = None  # per cell: 6 edges x 4 other ops -> index, built on first use

    @classmethod
    def from_benchmark(cls, bench) -> "NB201Space":
        return cls(bench.arch_strs())

    @staticmethod
    def _codes(ops: np.ndarray) -> np.ndarray:
        return (np.asarray(ops, dtype=np.int64) * (N_OPS ** np.arange(N_EDGES - 1, -1, -1))).sum(axis=-1)

    def __len__(self) -> int:
        return N_CELLS

    def __iter__(self) -> Iterator[int]:
        return iter(range(N_CELLS))

    def _check_index(self, index) -> int:
        index = int(index)
        if not 0 <= index < N_CELLS:
            raise HarnessError(f"NB201 index {index} is out of range", f"use 0..{N_CELLS - 1}")
        return index

    def index(self, arch: Arch) -> int:
        """Index of an arch string or op tuple."""
        if isinstance(arch, str) and arch in self._by_str:
            return self._by_str[arch]
        return int(self._code_to_index[self._codes(np.array(as_ops(arch)))])

    def indices_of(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.index(a) for a in archs], dtype=np.int64)

    def arch(self, index: int) -> str:
        return self._strs[self._check_index(index)]

    def ops(self, index: int) -> tuple[int, ...]:
        return tuple(int(o) for o in self._ops[self._check_index(index)])

    def ops_array(self) -> np.ndarray:
        """(15625, 6) uint8 op codes in index order (read-only view)."""
        view = self._ops.view()
        view.flags.writeable = False
        return view

    # -- the capabilities strategies use --------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator | int | None, replace: bool = True) -> np.ndarray:
        """``n`` indices drawn uniformly (seeded by ``rng``: a Generator or a seed)."""
        rng = np.random.default_rng(rng)
        if not replace and n > N_CELLS:
            raise HarnessError(f"cannot draw {n} distinct cells from {N_CELLS}", "ask for fewer or use replace=True")
        return rng.choice(N_CELLS, size=n, replace=replace).astype(np.int64)

    def mutate(self, index: int, rng: np.random.Generator | int | None) -> int:
        """Change exactly one edge (uniform) to a different op (uniform); returns the new index.

        Draws ``edge = rng.integers(6)``, then ``k = rng.integers(4)`` and sets the edge's op to
        ``(op + 1 + k) % 5``; the result is read from a table of all 15,625 x 24 mutations.
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        if self._mutations is None:
            self._mutations = self._mutation_table().tolist()
        edge = int(rng.integers(N_EDGES))
        return self._mutations[self._check_index(index)][edge][int(rng.integers(N_OPS - 1))]

    def _mutation_table(self) -> np.ndarray:
        """(15625, 6, 4): the index of cell i with edge e set to op (ops[i, e] + 1 + k) % 5."""
        table = np.empty((N_CELLS, N_EDGES, N_OPS - 1), dtype=np.int64)
        for edge in range(N_EDGES):
            for k in range(N_OPS - 1):
                ops = self._ops.astype(np.int64)
                ops[:, edge] = (ops[:, edge] + 1 + k) % N_OPS
                table[:, edge, k] = self._code_to_index[self._codes(ops)]
        return table

    def neighbours(self, index: int) -> np.ndarray:
        """The 24 cells one edge away."""
        base = np.array(self.ops(index))
        rows = []
        for edge in range(N_EDGES):
            for op in range(N_OPS):
                if op != base[edge]:
                    row = base.copy()
                    row[edge] = op
                    rows.append(row)
        return self._code_to_index[self._codes(np.array(rows))]

    def encode(self, index: int | np.ndarray) -> np.ndarray:
        """One-hot 6 edges x 5 ops, flattened (float32); a batch of indices gives a batch."""
        idx = np.atleast_1d(np.asarray(index))
        out = np.zeros((len(idx), N_EDGES, N_OPS), dtype=np.float32)
        ops = self._ops[idx]
        out[np.arange(len(idx))[:, None], np.arange(N_EDGES)[None, :], ops] = 1.0
        out = out.reshape(len(idx), -1)
        return out[0] if np.ndim(index) == 0 else out

    # -- isomorphism -----------------------------------------------------------------------
    def canonical(self, index: int) -> str:
        return self._canonical_all()[self._check_index(index)]

    def _canonical_all(self) -> list[str]:
        if self._canon is None:
            self._canon = [canonical_form(row) for row in self._ops]
        return self._canon

    def representatives(self) -> np.ndarray:
        """Per index, the lowest index of its isomorphism class: the one cell of the class that
        ``--dedupe isomorphic`` scores (6,466 of the 15,625), with that cell's own seeds."""
        ids = self.iso_class_ids()
        _, first = np.unique(ids, return_index=True)  # class k's first (lowest) index
        return first[ids].astype(np.int64)

    def iso_class_ids(self) -> np.ndarray:
        """An int class id per index; ids are numbered by first appearance in index order."""
        _, first, inverse = np.unique(np.array(self._canonical_all()), return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inverse].astype(np.int64)
