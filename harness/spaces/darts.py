"""The DARTS search space (Liu et al., ICLR 2019): genotypes, their text form, sampling, mutation.

A DARTS cell has two inputs (node 0: the output of the cell two back, node 1: the previous cell)
and 4 intermediate nodes 2..5. Intermediate node ``i`` (0-based, node ``2 + i``) sums two ops,
each reading one of the ``2 + i`` nodes before it; the cell's output concatenates the nodes of
``concat`` (normally ``(2, 3, 4, 5)``). A :class:`Genotype` names a normal and a reduction cell
as 8 ``(op, input)`` pairs each, two per intermediate node, in node order.

Text form: DARTS prints ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6),
reduce=[...], reduce_concat=range(2, 6))`` (a flat list of 8 pairs); pt.darts, which the BPE
authors used, nests the pairs per node (``normal=[[('dil_conv_5x5', 0), ('sep_conv_3x3', 1)],
...]``). :func:`parse_genotype` reads both (and a concat written as a list) without ``eval``;
:func:`genotype_to_str` writes either (``nested=True`` reproduces the BPE files' lines exactly).

The BPE paper's data (``HARNESS_DATA/bpe``, from the authors' repository):

* ``random_darts_architecture.txt``: 100 lines, one pt.darts-style (nested) genotype each,
  ``normal_concat=range(2, 6)``; the output of the authors' ``random_darts_generator.py``
  (unseeded). :func:`load_random_architectures` reads it.
* ``Search_Hyperparameters_Results.xlsx``, sheet ``Ground_truth``: a header row then 100 rows,
  columns ``Arch`` (``Arch_1``..``Arch_100``), ``Genotype`` (the same nested text form) and
  ``Acc`` (fully trained CIFAR-10 test accuracy, %: mean 96.9892, min 96.18, max 97.45).
  The ``arch_N`` rows of sheet ``Hyperparameters Search`` are these same cells.
  :func:`load_ground_truth` reads it.

**The two files do not hold the same cells.** No genotype of the text file equals one of the
sheet, in any order, even up to the order of the two pairs inside a node (:meth:`Genotype.canonical`)
and with normal/reduction cells compared independently: the text file is a different draw of
the generator. Only the sheet's cells have ground-truth accuracy; :func:`overlap` computes the
shared cells (tested to be none).

Strategies use :class:`DartsSpace`: :meth:`~DartsSpace.sample`, :meth:`~DartsSpace.mutate`,
:meth:`~DartsSpace.neighbours` and :meth:`~DartsSpace.encode`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DATA_ENV, data_root
from ..errors import DataMissingError, HarnessError

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")
SEARCH_OPS = PRIMITIVES[1:]  # the ops a derived (and a random) DARTS cell uses: never ``none``
STEPS = 4  # intermediate nodes per cell
DEFAULT_CONCAT = tuple(range(2, 2 + STEPS))
N_EDGES = sum(2 + i for i in range(STEPS))  # 14 possible (input -> node) edges per cell
ENCODING_LENGTH = 2 * N_EDGES * len(SEARCH_OPS)  # 196

RANDOM_FILE = "bpe/random_darts_architecture.txt"
SHEET_FILE = "bpe/Search_Hyperparameters_Results.xlsx"
SHEET = "Ground_truth"

FORMAT = ("Genotype(normal=[('sep_conv_3x3', 0), ...8 pairs], normal_concat=range(2, 6), "
          "reduce=[...8 pairs], reduce_concat=range(2, 6))")
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

Pair = tuple[str, int]
Rng = np.random.Generator | int | None


def _short(text: object, limit: int = 80) -> str:
    s = " ".join(str(text).split())
    return repr(s if len(s) <= limit else s[:limit - 3] + "...")


def _check_cell(kind: str, pairs: object) -> tuple[Pair, ...]:
    try:
        pairs = tuple((str(op), index) for op, index in pairs)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise HarnessError(f"genotype {kind} must be (op, input) pairs, got {_short(pairs)}",
                           f"write it as {FORMAT}") from None
    if len(pairs) == 0 or len(pairs) % 2:
        raise HarnessError(f"genotype {kind} has {len(pairs)} (op, input) pairs, it needs two per node "
                           f"({2 * STEPS} for a DARTS cell)", f"write it as {FORMAT}")
    for k, (op, index) in enumerate(pairs):
        if op not in PRIMITIVES:
            raise HarnessError(f"unknown DARTS op {op!r} in genotype {kind}", f"use one of {', '.join(PRIMITIVES)}")
        node = k // 2
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < 2 + node:
            raise HarnessError(f"pair {k} ({op!r}, {index!r}) of genotype {kind} feeds node {node + 2}, so its "
                               f"input must be an int in 0..{node + 1}", "inputs index earlier nodes only")
    return tuple((op, int(index)) for op, index in pairs)


def _check_concat(kind: str, concat: object, steps: int) -> tuple[int, ...]:
    try:
        values = tuple(concat)  # type: ignore[arg-type]
    except TypeError:
        raise HarnessError(f"genotype {kind} must be a list of node numbers, got {_short(concat)}",
                           "write it as range(2, 6) or [2, 3, 4, 5]") from None
    ok = (values and len(set(values)) == len(values)
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 2 <= v < 2 + steps
                  for v in values))
    if not ok:
        raise HarnessError(f"genotype {kind} {list(values)} must list distinct intermediate nodes in "
                           f"2..{steps + 1}", "write it as range(2, 6) or [2, 3, 4, 5]")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class Genotype:
    """A DARTS architecture: normal and reduction cells as ``(op, input)`` pairs, two per node.

    Lists are accepted and stored as tuples (so genotypes are hashable and comparable); the
    constructor checks op names, input ranges and the concat lists (HarnessError otherwise).
    Pairs may repeat an input or use ``none`` (hand-written genotypes); cells of the search
    space never do (:meth:`DartsSpace.contains`).
    """

    normal: tuple[Pair, ...]
    reduce: tuple[Pair, ...]
    normal_concat: tuple[int, ...] = DEFAULT_CONCAT
    reduce_concat: tuple[int, ...] = DEFAULT_CONCAT

    def __post_init__(self):
        normal, reduce = _check_cell("normal", self.normal), _check_cell("reduce", self.reduce)
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)
        object.__setattr__(self, "normal_concat", _check_concat("normal_concat", self.normal_concat, len(normal) // 2))
        object.__setattr__(self, "reduce_concat", _check_concat("reduce_concat", self.reduce_concat, len(reduce) // 2))

    @property
    def steps(self) -> int:
        """Intermediate nodes per cell (4 in DARTS); normal and reduction cells may differ only here."""
        return len(self.normal) // 2

    def nodes(self, cell: str = "normal") -> list[tuple[Pair, Pair]]:
        """The cell's pairs grouped per intermediate node."""
        pairs = self._cell(cell)
        return [(pairs[2 * i], pairs[2 * i + 1]) for i in range(len(pairs) // 2)]

    def _cell(self, cell: str) -> tuple[Pair, ...]:
        if cell not in ("normal", "reduce"):
            raise HarnessError(f"a genotype has cells 'normal' and 'reduce', not {cell!r}", "use one of them")
        return self.normal if cell == "normal" else self.reduce

    def canonical(self) -> Genotype:
        """The same network with each node's two pairs sorted (input, then op): equal cells compare equal."""
        def sort(pairs):
            return tuple(p for i in range(0, len(pairs), 2)
                         for p in sorted(pairs[i:i + 2], key=lambda p: (p[1], p[0])))
        return Genotype(sort(self.normal), sort(self.reduce), tuple(sorted(self.normal_concat)),
                        tuple(sorted(self.reduce_concat)))

    def __str__(self) -> str:
        return genotype_to_str(self)


# -- text form --------------------------------------------------------------------------------
def _literal(node: ast.expr, field: str, text: str):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        raise HarnessError(f"genotype field {field} of {_short(text)} is not a literal list",
                           f"write it as {FORMAT}") from None


def _flatten(value, field: str, text: str) -> list:
    """8 pairs from a flat list of pairs or from a list of per-node pair lists (pt.darts)."""
    if not isinstance(value, (list, tuple)):
        raise HarnessError(f"genotype field {field} of {_short(text)} is not a list", f"write it as {FORMAT}")
    nested = [v for v in value if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple))]
    if nested and len(nested) == len(value):
        if any(len(node) != 2 for node in value):
            raise HarnessError(f"genotype field {field} of {_short(text)} has a node without exactly 2 pairs",
                               f"write it as {FORMAT}")
        return [pair for node in value for pair in node]
    if nested:
        raise HarnessError(f"genotype field {field} of {_short(text)} mixes pairs and lists of pairs",
                           f"write it as {FORMAT}")
    return list(value)


def _concat(node: ast.expr, field: str, text: str) -> tuple[int, ...]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise HarnessError(f"genotype field {field} of {_short(text)} is not range(start, stop)",
                               "write it as range(2, 6) or [2, 3, 4, 5]")
        args = [_literal(a, field, text) for a in node.args]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise HarnessError(f"genotype field {field} of {_short(text)} has non-integer range bounds",
                               "write it as range(2, 6) or [2, 3, 4, 5]")
        return tuple(range(*args))
    value = _literal(node, field, text)
    if not isinstance(value, (list, tuple)):
        raise HarnessError(f"genotype field {field} of {_short(text)} is not a list or a range",
                           "write it as range(2, 6) or [2, 3, 4, 5]")
    return tuple(value)


def parse_genotype(text: str) -> Genotype:
    """A :class:`Genotype` from its text form (DARTS flat or pt.darts nested; concat as range or list).

    The text is parsed into a syntax tree and only literals (and ``range(a, b)``) are read from
    it: nothing is evaluated. Any mistake raises :class:`HarnessError` with a one-line message.
    """
    if isinstance(text, Genotype):
        return text
    if not isinstance(text, str):
        raise HarnessError(f"a genotype must be given as text, got {type(text).__name__}", f"write it as {FORMAT}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        reason = err.msg if isinstance(err, SyntaxError) else type(err).__name__
        raise HarnessError(f"genotype text {_short(text)} is not valid syntax ({reason})",
                           f"write it as {FORMAT}") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise HarnessError(f"genotype text {_short(text)} is not a Genotype(...) call", f"write it as {FORMAT}")
    if len(tree.args) > len(FIELDS):
        raise HarnessError(f"genotype text {_short(text)} has {len(tree.args)} positional fields, at most 4",
                           f"write it as {FORMAT}")
    fields: dict[str, ast.expr] = dict(zip(FIELDS, tree.args))
    for kw in tree.keywords:
        if kw.arg not in FIELDS or kw.arg in fields:
            what = "a **-argument" if kw.arg is None else ("repeated" if kw.arg in fields else "unknown") + \
                f" field {kw.arg!r}"
            raise HarnessError(f"genotype text {_short(text)} has {what}", f"use the fields {', '.join(FIELDS)}")
        fields[kw.arg] = kw.value
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise HarnessError(f"genotype text {_short(text)} lacks {', '.join(missing)}", f"write it as {FORMAT}")
    normal = _flatten(_literal(fields["normal"], "normal", text), "normal", text)
    reduce = _flatten(_literal(fields["reduce"], "reduce", text), "reduce", text)
    return Genotype(normal=normal, reduce=reduce,  # type: ignore[arg-type]
                    normal_concat=_concat(fields["normal_concat"], "normal_concat", text),
                    reduce_concat=_concat(fields["reduce_concat"], "reduce_concat", text))


def _concat_str(concat: Sequence[int]) -> str:
    c = list(concat)
    if len(c) > 1 and c == list(range(c[0], c[-1] + 1)):
        return f"range({c[0]}, {c[-1] + 1})"
    return repr(c)


def genotype_to_str(g: Genotype, nested: bool = False) -> str:
    """The text form (``parse_genotype`` reads it back to an equal genotype).

    ``nested=False``: DARTS's flat pair list; ``nested=True``: pt.darts's per-node lists, as in
    the BPE files (whose lines this reproduces character for character). A contiguous concat is
    written ``range(a, b)``, any other as a list.
    """
    def cell(pairs):
        if nested:
            return "[" + ", ".join(f"[{pairs[i]!r}, {pairs[i + 1]!r}]" for i in range(0, len(pairs), 2)) + "]"
        return repr(list(pairs))

    return (f"Genotype(normal={cell(g.normal)}, normal_concat={_concat_str(g.normal_concat)}, "
            f"reduce={cell(g.reduce)}, reduce_concat={_concat_str(g.reduce_concat)})")


# -- the BPE paper's files ----------------------------------------------------------------------
def _data_path(path: str | Path | None, relative: str, what: str) -> Path:
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataMissingError(f"{what} not found at {p}", f"pass the path of {Path(relative).name}")
        return p
    root = data_root()
    if root is None:
        raise DataMissingError(f"{what} ({relative}) is read from {DATA_ENV}, which is not set",
                               f"export {DATA_ENV}=../shared/data (the folder holding {relative})")
    p = root / relative
    if not p.is_file():
        raise DataMissingError(f"{what} not found at {p}",
                               f"set {DATA_ENV} to the folder that holds {relative} (see PROVENANCE.md)")
    return p


def load_random_architectures(path: str | Path | None = None) -> list[Genotype]:
    """The 100 genotypes of ``random_darts_architecture.txt`` (one per line), in file order."""
    p = _data_path(path, RANDOM_FILE, "the BPE random DARTS architectures")
    out = []
    for number, line in enumerate(p.read_text().splitlines(), start=1):
        if line.strip():
            try:
                out.append(parse_genotype(line))
            except HarnessError as err:
                raise HarnessError(f"{p} line {number}: {err.problem}", err.fix) from None
    if not out:
        raise HarnessError(f"{p} holds no genotypes", "use random_darts_architecture.txt from the authors' repository")
    return out


def load_ground_truth(path: str | Path | None = None) -> pd.DataFrame:
    """Sheet ``Ground_truth`` of the BPE spreadsheet: one row per cell, in sheet order.

    Columns: ``arch_id`` (the sheet's name, ``Arch_1``..), ``arch_index`` (its number),
    ``genotype`` (:class:`Genotype`), ``accuracy`` (fully trained CIFAR-10 accuracy, %).
    """
    p = _data_path(path, SHEET_FILE, "the BPE spreadsheet")
    try:
        sheet = pd.read_excel(p, sheet_name=SHEET)
    except (ValueError, KeyError, OSError) as err:
        raise HarnessError(f"{p} has no readable sheet {SHEET!r} ({err})",
                           "use Search_Hyperparameters_Results.xlsx from the authors' repository") from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    if not {"Arch", "Genotype", "Acc"} <= set(sheet.columns):
        raise HarnessError(f"{p} sheet {SHEET!r} has columns {list(sheet.columns)}, expected Arch, Genotype, Acc",
                           "use Search_Hyperparameters_Results.xlsx from the authors' repository")
    sheet = sheet.dropna(how="all")
    ids = sheet["Arch"].astype(str).str.strip()
    numbers = ids.str.extract(r"^[Aa]rch_(\d+)$")[0]
    if numbers.isna().any():
        bad = ids[numbers.isna()].tolist()[:3]
        raise HarnessError(f"{p} sheet {SHEET!r} has arch ids not of the form Arch_N: {bad}", "use the authors' file")
    genotypes = []
    for arch_id, text in zip(ids, sheet["Genotype"]):
        try:
            genotypes.append(parse_genotype(str(text)))
        except HarnessError as err:
            raise HarnessError(f"{p} sheet {SHEET!r} {arch_id}: {err.problem}", err.fix) from None
    accuracy = pd.to_numeric(sheet["Acc"], errors="coerce")
    if accuracy.isna().any():
        raise HarnessError(f"{p} sheet {SHEET!r} has non-numeric Acc values", "use the authors' file")
    return pd.DataFrame({"arch_id": ids.to_numpy(), "arch_index": numbers.astype(int).to_numpy(),
                         "genotype": genotypes, "accuracy": accuracy.astype(float).to_numpy()})


def overlap(a: Iterable[Genotype], b: Iterable[Genotype]) -> list[tuple[int, int]]:
    """``(i, j)`` for every ``a[i]`` that is the same network as ``b[j]`` (node pair order ignored)."""
    where: dict[Genotype, list[int]] = {}
    for j, g in enumerate(b):
        where.setdefault(g.canonical(), []).append(j)
    return [(i, j) for i, g in enumerate(a) for j in where.get(g.canonical(), [])]


# -- the capabilities strategies use ------------------------------------------------------------
def _rng(rng: Rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class DartsSpace:
    """The DARTS cell space: each of 4 nodes reads 2 distinct earlier nodes through non-``none`` ops.

    A cell has prod_i C(2 + i, 2) * 7^2 = 180 * 7^8 (about 1.0e9) distinct networks; a genotype
    pairs a normal and a reduction cell (about 1.1e18, the DARTS paper's 10^18).
    """

    steps = STEPS
    ops = SEARCH_OPS
    encoding_length = ENCODING_LENGTH

    def contains(self, g: Genotype) -> bool:
        """True when ``g`` is a cell of the search space (4 nodes, distinct inputs, no ``none``, concat 2..5)."""
        if g.steps != STEPS or len(g.reduce) != 2 * STEPS:
            return False
        if g.normal_concat != DEFAULT_CONCAT or g.reduce_concat != DEFAULT_CONCAT:
            return False
        return all(a[1] != b[1] and a[0] != "none" and b[0] != "none"
                   for cell in ("normal", "reduce") for a, b in g.nodes(cell))

    def _sample_cell(self, rng: np.random.Generator) -> tuple[Pair, ...]:
        pairs = []
        for i in range(STEPS):
            inputs = rng.choice(2 + i, size=2, replace=False)
            ops = rng.integers(len(SEARCH_OPS), size=2)
            pairs += [(SEARCH_OPS[int(o)], int(j)) for o, j in zip(ops, inputs)]
        return tuple(pairs)

    def sample(self, rng: Rng) -> Genotype:
        """A uniform random cell pair (seeded by ``rng``: a Generator or a seed).

        Per cell and node ``i``: 2 distinct inputs drawn from ``0..i+1`` (random order), then
        2 ops drawn uniformly from the 7 non-``none`` ops; normal cell first.
        """
        rng = _rng(rng)
        normal = self._sample_cell(rng)
        return Genotype(normal, self._sample_cell(rng))

    def sample_n(self, n: int, rng: Rng) -> list[Genotype]:
        """``n`` independent :meth:`sample` draws from one generator."""
        rng = _rng(rng)
        return [self.sample(rng) for _ in range(int(n))]

    def neighbours(self, g: Genotype) -> list[Genotype]:
        """Every genotype one change away, in a fixed order: first each pair's op changed to each
        other non-``none`` op, then each pair's input changed to each earlier node that neither
        pair of its node reads (so inputs stay distinct). 120 for a cell of the space."""
        g = self._check(g)
        out = []
        for cell in ("normal", "reduce"):
            pairs = g._cell(cell)
            for k, (op, j) in enumerate(pairs):
                for new in SEARCH_OPS:
                    if new != op:
                        out.append(self._replace(g, cell, k, (new, j)))
            for k, (op, j) in enumerate(pairs):
                node, sibling = k // 2, pairs[k ^ 1][1]
                for new in range(2 + node):
                    if new not in (j, sibling):
                        out.append(self._replace(g, cell, k, (op, new)))
        return out

    @staticmethod
    def _replace(g: Genotype, cell: str, k: int, pair: Pair) -> Genotype:
        pairs = list(g._cell(cell))
        pairs[k] = pair
        if cell == "normal":
            return Genotype(tuple(pairs), g.reduce, g.normal_concat, g.reduce_concat)
        return Genotype(g.normal, tuple(pairs), g.normal_concat, g.reduce_concat)

    def mutate(self, g: Genotype, rng: Rng) -> Genotype:
        """One uniform draw (``rng.integers``) among :meth:`neighbours`: exactly one op or one input changes."""
        options = self.neighbours(g)
        return options[int(_rng(rng).integers(len(options)))]

    @staticmethod
    def _check(g) -> Genotype:
        g = parse_genotype(g) if isinstance(g, str) else g
        if not isinstance(g, Genotype):
            raise HarnessError(f"expected a DARTS Genotype, got {type(g).__name__}", "parse it with parse_genotype")
        if g.steps != STEPS or len(g.reduce) != 2 * STEPS:
            raise HarnessError(f"a DARTS cell has {STEPS} nodes ({2 * STEPS} pairs), this genotype has "
                               f"{len(g.normal)} and {len(g.reduce)} pairs", "use a 4-node DARTS genotype")
        return g

    def encode(self, g: Genotype | Sequence[Genotype]) -> np.ndarray:
        """Fixed-length float32 features: per cell (normal, reduce), per possible edge (node i <-
        input j; 14 edges in node-then-input order), a one-hot over the 7 non-``none`` ops (zeros
        when the edge is absent or ``none``). 196 values; invariant to the order of a node's two
        pairs. A list of genotypes gives an (n, 196) array."""
        if isinstance(g, (Genotype, str)):
            return self._encode_one(self._check(g))
        return np.stack([self._encode_one(self._check(x)) for x in g]) if len(g) else \
            np.zeros((0, ENCODING_LENGTH), dtype=np.float32)

    @staticmethod
    def _encode_one(g: Genotype) -> np.ndarray:
        out = np.zeros((2, N_EDGES, len(SEARCH_OPS)), dtype=np.float32)
        for c, pairs in enumerate((g.normal, g.reduce)):
            for k, (op, j) in enumerate(pairs):
                node = k // 2
                if op != "none":
                    edge = sum(2 + i for i in range(node)) + j
                    out[c, edge, SEARCH_OPS.index(op)] += 1.0
        return out.reshape(-1)
