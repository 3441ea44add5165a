"""The NAS-Bench-101 search space: cell specs, validity, pruning, the official hash, sampling, mutation.

A cell (``ModelSpec`` in google-research/nasbench) is a DAG given as a strictly upper-triangular
0/1 adjacency matrix over V vertices plus one op per vertex: vertex 0 is ``input``, vertex V-1
is ``output``, every interior vertex one of :data:`OPS`.

Rules, as the official ``api.py`` / ``lib/model_spec.py`` apply them:

* The raw spec must be a square 0/1 matrix, strictly upper-triangular, with ``len(ops) == V``,
  ``ops[0] == "input"`` and ``ops[-1] == "output"``.
* *Pruning* keeps, in order, the vertices reached both by a forward search from the input and
  a backward search from the output; the others' rows, columns and ops are dropped. The input
  must reach the output.
* The limits (at most :data:`MAX_VERTICES` vertices, :data:`MAX_EDGES` edges) and the interior
  op names are checked on the *pruned* spec, so a raw matrix may be larger, and the op of a
  vertex that pruning drops is ignored (as the official API ignores it).
* The module hash (``graph_util.hash_module``) is that of the pruned spec; two specs are the
  same benchmark cell exactly when their hashes are equal.

Matrix entries are cast to Python ``int``: a float matrix (``1.0``) or NumPy integers hash like
the int matrix, unlike the official code, where ``str`` of a float or NumPy 2 degree changes the hash.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import HarnessError

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT = "input"
OUTPUT = "output"
MAX_VERTICES = 7
MAX_EDGES = 9
FULL_CELLS = 423_624  # distinct cells (official hashes) of the space

Matrix = tuple[tuple[int, ...], ...]

_FORM = 'write a spec as {"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}'


def _as_bit(value: Any, row: int, col: int) -> int:
    """A matrix entry as the Python int 0 or 1 (bools, NumPy scalars and 0.0/1.0 included)."""
    if isinstance(value, (bool, np.bool_, numbers.Real)) and value in (0, 1):
        return int(value)
    raise HarnessError(f"NB101 matrix entry ({row}, {col}) is {value!r}, not 0 or 1",
                       "use 1 for an edge from the row's vertex to the column's vertex, 0 for none")


def _as_matrix(matrix: Any) -> Matrix:
    """A square 0/1 matrix (nested sequences or a NumPy array) as a tuple of int tuples."""
    if isinstance(matrix, (str, bytes)):
        raise HarnessError(f"the NB101 matrix is a {type(matrix).__name__}, not a list of rows", _FORM)
    try:
        rows = [list(row) for row in matrix]
    except TypeError:
        raise HarnessError(f"the NB101 matrix ({type(matrix).__name__}) is not a list of rows", _FORM) from None
    size = len(rows)
    if size == 0:
        raise HarnessError("the NB101 matrix is empty", "give at least the input and the output vertex")
    for i, row in enumerate(rows):
        if len(row) != size:
            raise HarnessError(f"the NB101 matrix is not square: row {i} has {len(row)} entries, there are "
                               f"{size} rows", "give a V x V matrix, one row and one column per vertex")
    return tuple(tuple(_as_bit(value, i, j) for j, value in enumerate(row)) for i, row in enumerate(rows))


def _as_ops(ops: Any) -> tuple[str, ...]:
    """Op names as a tuple of str (a list, a tuple or a NumPy array of strings)."""
    if isinstance(ops, (str, bytes)):
        raise HarnessError(f"the NB101 ops are one {type(ops).__name__} ({ops!r:.60}), not a list of op names",
                           _FORM)
    try:
        names = list(ops)
    except TypeError:
        raise HarnessError(f"the NB101 ops ({type(ops).__name__}) are not a list of op names", _FORM) from None
    for v, name in enumerate(names):
        if not isinstance(name, str):
            raise HarnessError(f"NB101 op {v} is {name!r:.60}, not an op name",
                               f"name each vertex: {INPUT}, {', '.join(OPS)} or {OUTPUT}")
    return tuple(str(name) for name in names)


def _reached(matrix: Matrix, start: int, forward: bool) -> set[int]:
    """The vertices reached from ``start`` along edges (``forward``) or against them."""
    size = len(matrix)
    seen, stack = {start}, [start]
    while stack:
        v = stack.pop()
        for w in range(size):
            if w not in seen and (matrix[v][w] if forward else matrix[w][v]):
                seen.add(w)
                stack.append(w)
    return seen


def _hash_module(matrix: Matrix, labels: Sequence[int]) -> str:
    """``graph_util.hash_module``: V rounds of neighbourhood md5 hashing, then md5 of the sorted list."""
    size = len(matrix)
    out_degree = [sum(row) for row in matrix]
    in_degree = [sum(matrix[v][w] for v in range(size)) for w in range(size)]
    hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(size)]
    for _ in range(size):
        hashes = [_md5("".join(sorted(hashes[w] for w in range(size) if matrix[w][v])) + "|"
                       + "".join(sorted(hashes[w] for w in range(size) if matrix[v][w])) + "|" + hashes[v])
                  for v in range(size)]
    return _md5(str(sorted(hashes)))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NB101Spec:
    """A valid NB101 cell spec, as given (not pruned): see the module docstring for the rules.

    Construction validates and normalises (lists and NumPy arrays become int/str tuples); every
    failure raises a one-line :class:`~harness.errors.HarnessError`. ``==`` compares the specs as
    given; compare cells with :meth:`hash` or :func:`is_isomorphic`.
    """

    matrix: Matrix
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        matrix, ops = _as_matrix(self.matrix), _as_ops(self.ops)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "ops", ops)
        size = len(matrix)
        if len(ops) != size:
            raise HarnessError(f"the NB101 spec has {len(ops)} ops for a {size} x {size} matrix",
                               "give one op per vertex, input first and output last")
        for i in range(size):
            for j in range(i + 1):
                if matrix[i][j]:
                    raise HarnessError(f"NB101 matrix entry ({i}, {j}) is 1: the matrix is not strictly "
                                       "upper-triangular", "edges go from a vertex to a later one (row < column)")
        if ops[0] != INPUT:
            raise HarnessError(f"the first NB101 op is {ops[0]!r:.60}, not {INPUT!r}", "vertex 0 is the input")
        if ops[-1] != OUTPUT:
            raise HarnessError(f"the last NB101 op is {ops[-1]!r:.60}, not {OUTPUT!r}",
                               "the last vertex is the output")
        kept = self._kept
        if size - 1 not in kept:
            raise HarnessError("the NB101 input does not reach the output", "add a path of edges from input to output")
        edges = sum(matrix[i][j] for i in kept for j in kept)
        if len(kept) > MAX_VERTICES:
            raise HarnessError(f"the NB101 spec has {len(kept)} vertices after pruning, at most {MAX_VERTICES} "
                               "are allowed", "remove interior vertices")
        if edges > MAX_EDGES:
            raise HarnessError(f"the NB101 spec has {edges} edges after pruning, at most {MAX_EDGES} are allowed",
                               "remove edges")
        for v in kept[1:-1]:
            if ops[v] not in OPS:
                raise HarnessError(f"unknown NB101 op {ops[v]!r:.60} at vertex {v}", f"use one of {', '.join(OPS)}")

    @cached_property
    def _kept(self) -> tuple[int, ...]:
        """The vertices pruning keeps, in order (without the output when the input cannot reach it)."""
        last = len(self.matrix) - 1
        return tuple(sorted(_reached(self.matrix, 0, True) & _reached(self.matrix, last, False)))

    @classmethod
    def from_arrays(cls, matrix: Any, ops: Sequence[str]) -> NB101Spec:
        """A spec from a matrix (nested lists or a NumPy array, int, bool or float 0/1) and op names."""
        return cls(_as_matrix(matrix), _as_ops(ops))

    @classmethod
    def from_json(cls, obj: str | dict[str, Any]) -> NB101Spec:
        """A spec from ``{"matrix": [[...]], "ops": [...]}``, as a dict or as JSON text."""
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except ValueError as err:
                raise HarnessError(f"the NB101 spec is not valid JSON ({err})", _FORM) from None
        if not isinstance(obj, dict):
            raise HarnessError(f"the NB101 spec is a JSON {type(obj).__name__}, not an object", _FORM)
        missing = [key for key in ("matrix", "ops") if key not in obj]
        if missing:
            raise HarnessError(f"the NB101 spec has no {' or '.join(repr(k) for k in missing)}", _FORM)
        return cls.from_arrays(obj["matrix"], obj["ops"])

    def to_json(self) -> str:
        """The spec as JSON text, ``{"matrix": [[...]], "ops": [...]}`` (:meth:`from_json` reads it)."""
        return json.dumps({"matrix": [list(row) for row in self.matrix], "ops": list(self.ops)})

    @property
    def num_vertices(self) -> int:
        """Vertices of the spec as given (``pruned().num_vertices`` for the count the limits use)."""
        return len(self.matrix)

    @property
    def num_edges(self) -> int:
        """Edges of the spec as given (``pruned().num_edges`` for the count the limits use)."""
        return sum(map(sum, self.matrix))

    def pruned(self) -> NB101Spec:
        """The spec without the vertices that are not on an input-to-output path (idempotent)."""
        kept = self._kept
        return NB101Spec(tuple(tuple(self.matrix[i][j] for j in kept) for i in kept),
                         tuple(self.ops[v] for v in kept))

    def hash(self) -> str:
        """The official 32-hex module hash of the pruned spec (the benchmark's key for the cell)."""
        return self._module_hash

    @cached_property
    def _module_hash(self) -> str:
        spec = self.pruned()
        labels = [-1] + [OPS.index(op) for op in spec.ops[1:-1]] + [-2]
        return _hash_module(spec.matrix, labels)


def is_isomorphic(a: NB101Spec, b: NB101Spec) -> bool:
    """True when the two specs are the same cell (equal module hashes)."""
    return a.hash() == b.hash()


def sample_spec(rng: np.random.Generator | int | None) -> NB101Spec:
    """A valid spec drawn as the NB101 paper's random search does (seeded by ``rng``).

    Draws a 7-vertex strictly upper-triangular matrix with each entry 1 with probability 1/2 and
    each interior op uniformly from :data:`OPS`, until the spec is valid (the official colab's
    ``random_spec``); returns it as drawn (not pruned). The rejection favours small cells: about
    1 draw in 10 prunes to input -> output alone and few keep all 7 vertices.
    """
    rng = np.random.default_rng(rng)
    while True:
        matrix = np.triu(rng.integers(0, 2, size=(MAX_VERTICES, MAX_VERTICES)), k=1)
        interior = [OPS[i] for i in rng.integers(0, len(OPS), size=MAX_VERTICES - 2)]
        try:
            return NB101Spec.from_arrays(matrix, [INPUT, *interior, OUTPUT])
        except HarnessError:
            continue


def mutate_spec(spec: NB101Spec, rng: np.random.Generator | int | None) -> NB101Spec:
    """One edge flip or one interior op change of ``spec``: a valid spec of another cell.

    Every single change (each upper-triangular entry flipped, each interior op set to each other
    op) is equally likely; changes that give an invalid spec or the same hash are redrawn. Raises
    a :class:`~harness.errors.HarnessError` when no change gives another valid cell.
    """
    rng = np.random.default_rng(rng)
    size = spec.num_vertices
    moves: list[tuple[int, int, str | None]] = [(i, j, None) for i in range(size) for j in range(i + 1, size)]
    moves += [(v, v, op) for v in range(1, size - 1) for op in OPS if op != spec.ops[v]]
    own = spec.hash()
    for k in rng.permutation(len(moves)):
        i, j, op = moves[k]
        matrix = [list(row) for row in spec.matrix]
        ops = list(spec.ops)
        if op is None:
            matrix[i][j] = 1 - matrix[i][j]
        else:
            ops[i] = op
        try:
            candidate = NB101Spec.from_arrays(matrix, ops)
        except HarnessError:
            continue
        if candidate.hash() != own:
            return candidate
    raise HarnessError(f"no single edge flip or op change of the NB101 cell {own} gives another valid cell",
                       "mutate a larger cell, or sample a new one")


def encode(matrix: np.ndarray, ops: Sequence[str]) -> np.ndarray:
    """36 bits of a spec: the 21 upper-triangular adjacency bits of the spec padded to 7 vertices
    (empty vertices inserted before the output) and a one-hot of each of the 5 interior ops."""
    v = len(ops)
    padded = np.zeros((MAX_VERTICES, MAX_VERTICES), np.uint8)
    where = list(range(v - 1)) + [MAX_VERTICES - 1]
    padded[np.ix_(where, where)] = np.asarray(matrix, np.uint8)
    onehot = np.zeros((MAX_VERTICES - 2, len(OPS)), np.uint8)
    for k, op in enumerate(ops[1:-1]):
        onehot[k, OPS.index(op)] = 1
    return np.concatenate([padded[np.triu_indices(MAX_VERTICES, 1)], onehot.ravel()])


class NB101StoreSpace:
    """The NB101 cells a store holds, as a search space (the capabilities REA and RS use).

    A cell is its store row. :meth:`sample` draws stored cells uniformly (the NB101 paper's
    random search draws raw specs with ``random_spec`` instead: :func:`sample_spec`; over the
    full store the two differ in how often small cells come up). :meth:`mutate` mutates the raw
    7-vertex spec the cell came from, as the official REA carries it from generation to
    generation (so a dangling edge kept from one mutation can connect a vertex in the next); a
    sampled cell's raw spec is the stored one padded to 7 vertices with edgeless vertices of
    uniformly drawn ops. A cell with no valid single mutation (input -> output alone) gives a
    uniformly drawn cell instead (counted in :attr:`resampled`). With the full benchmark every
    valid cell is stored; with only samples (``restricted``) a mutated cell outside the space is
    replaced by the nearest cell in it (fewest differing bits of :func:`encode`; ties drawn
    uniformly; never the parent), counted in :attr:`replaced`.
    """

    def __init__(self, bench, rows: np.ndarray | None = None):
        self.bench = bench
        self.rows = np.arange(len(bench)) if rows is None else np.asarray(rows, dtype=np.int64)
        if not len(self.rows):
            raise HarnessError("the NB101 search space has no cell", "import a source with accuracies and times")
        self.size = len(self.rows)
        self.restricted = self.size < FULL_CELLS
        self._member = np.zeros(len(bench), bool)
        self._member[self.rows] = True
        self._codes = None
        self._raw: dict[int, NB101Spec] = {}  # row -> the raw spec a mutation last reached it by
        self.mutations = 0
        self.replaced = 0  # mutations that left the space, mapped to the nearest cell in it
        self.resampled = 0  # cells with no valid mutation, replaced by a drawn cell

    def reset(self) -> None:
        """Forget the raw specs (each search run starts afresh: runs are independent)."""
        self._raw.clear()

    def describe(self) -> str:
        if not self.restricted:
            return f"all {self.size:,} NB101 cells"
        return (f"restricted to {self.size:,} of the {FULL_CELLS:,} cells (those of the NB101 store with a reward and "
                "a cost): a mutation that leaves them is mapped to the nearest of them (Hamming distance of the "
                "adjacency + op encoding)")

    @property
    def codes(self) -> np.ndarray:
        if self._codes is None:
            self._codes = np.stack([encode(*self.bench.spec(int(i))) for i in self.rows])
        return self._codes

    def sample(self, n: int, rng) -> np.ndarray:
        return self.rows[np.random.default_rng(rng).integers(self.size, size=n)]

    def _raw_spec(self, index: int, rng: np.random.Generator) -> NB101Spec:
        raw = self._raw.get(int(index))
        if raw is not None:
            return raw
        matrix, ops = self.bench.spec(int(index))
        v = len(ops)
        padded = np.zeros((MAX_VERTICES, MAX_VERTICES), int)
        where = list(range(v - 1)) + [MAX_VERTICES - 1]
        padded[np.ix_(where, where)] = matrix
        filler = [OPS[k] for k in rng.integers(len(OPS), size=MAX_VERTICES - v)]
        return NB101Spec.from_arrays(padded, [*ops[:-1], *filler, OUTPUT])

    def mutate(self, index: int, rng) -> int:
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        self.mutations += 1
        try:
            raw = mutate_spec(self._raw_spec(index, rng), rng)
        except HarnessError:  # no single change of this cell gives another valid cell
            self.resampled += 1
            return int(self.sample(1, rng)[0])
        child = raw.pruned()
        try:
            row = self.bench.index(child.hash())
        except HarnessError:
            if not self.restricted:
                raise
            row = -1
        if row >= 0 and self._member[row]:
            self._raw[row] = raw
            return row
        self.replaced += 1
        distance = np.count_nonzero(self.codes != encode(np.asarray(child.matrix), child.ops), axis=1)
        distance[self.rows == int(index)] = np.iinfo(distance.dtype).max  # never the parent
        nearest = np.flatnonzero(distance == distance.min())
        return int(self.rows[nearest[rng.integers(nearest.size)]])
