"""What every search strategy shares: the budget, the two clocks, and the evaluation record.

A strategy is one registered function ``fn(space, evaluator, tracker, rng, **options) -> int``
(the chosen cell). It declares its options once, as ``options={"name": Option(default, kind,
low=..., high=...)}`` in :func:`register`; :func:`check_options` checks every value against that
declaration (type, range, choices) before a run starts. It may use only the space's capabilities (``sample``, ``mutate``,
``ops``/``index`` for encoding) and ``evaluator.evaluate``; every evaluation goes through the
:class:`Tracker`, which charges both clocks and refuses one that the budget cannot afford.

Clocks:
- *simulated* seconds: what the evaluation would have cost to train, from the benchmark (NB201
  charges each queried cell its training time; a training-free score charges nothing);
- *wall* seconds: compute this machine spent (a training-free score's measured seconds, also
  when it is read back from the run store; the lookup for a tabular query), plus, in a run's
  total, the strategy's own compute between evaluations (e.g. BOHB's TPE proposals).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import HarnessError
from ..registry import Registry

STRATEGIES = Registry("strategy")
register = STRATEGIES.register


@dataclass(frozen=True)
class Option:
    """One declared strategy option: its default, type (``int``, ``float`` or ``str``; default:
    the default's type) and valid values: ``low``/``high`` bounds (``low_open``/``high_open``:
    the bound itself is excluded) for numbers, ``choices`` for strings."""

    default: Any
    kind: type | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()

    @property
    def value_type(self) -> type:
        return self.kind or type(self.default)

    def __str__(self) -> str:  # ``nas-harness strategies`` prints ``name=default``
        return str(self.default)

    def describe(self) -> str:
        """What a valid value is, in words: ``an integer >= 1``, ``a number in [0, 1)``, ``best or argmax``."""
        if self.choices:
            return " or ".join(str(c) for c in self.choices)
        what = {int: "an integer", float: "a finite number", str: "a string"}.get(self.value_type,
                                                                                 self.value_type.__name__)
        if self.low is not None and self.high is not None:
            return (f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {self.high:g}"
        return what

    def accepts(self, value) -> bool:
        if self.value_type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.value_type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, self.value_type)
        if not ok:
            return False
        if self.choices:
            return value in self.choices
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def declared_options(name: str) -> dict[str, Option]:
    """Strategy ``name``'s options as :class:`Option` (a bare default declares only its type)."""
    declared = STRATEGIES.get(name).meta.get("options", {})
    return {k: v if isinstance(v, Option) else Option(v) for k, v in declared.items()}


def check_options(name: str, options: dict) -> dict:
    """``options`` when strategy ``name`` declares each of them and each value is valid; else a
    one-line :class:`HarnessError` naming the option, the value and what it must be."""
    declared = declared_options(name)
    for key, value in options.items():
        if key not in declared:
            raise HarnessError(f"strategy {name} has no option {key!r}",
                               f"its options: {', '.join(declared) or 'none'}")
        spec = declared[key]
        if not spec.accepts(value):
            raise HarnessError(f"strategy {name} option {key}={value!r} is not {spec.describe()}",
                               f"write e.g. --option {key}={spec.default} (its default)")
    return options


@dataclass(frozen=True)
class Budget:
    """Stop when any given limit is reached: seconds on ``clock`` and/or a number of cells."""

    seconds: float | None = None
    clock: str = "simulated"  # or "wall"
    cells: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """``12000s`` (simulated seconds), ``300s-wall`` (wall seconds), ``1000`` or ``1000cells``."""
        text = text.strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)s(?:-(simulated|wall))?", text)
        if m:
            return cls(seconds=float(m.group(1)), clock=m.group(2) or "simulated")
        m = re.fullmatch(r"(\d+)(?:cells)?", text)
        if m and int(m.group(1)) > 0:
            return cls(cells=int(m.group(1)))
        raise HarnessError(f"budget {text!r} is not understood",
                           "write 12000s (simulated seconds), 300s-wall (wall seconds) or 1000 (cells)")

    def __str__(self) -> str:
        if self.cells is not None:
            return f"{self.cells} cells"
        return f"{self.seconds:g} s {self.clock}"


@dataclass(frozen=True)
class Evaluation:
    """``reward``: higher is better (NaN: the evaluation failed, with ``error``)."""

    reward: float
    simulated_s: float
    wall_s: float
    error: str = ""


class Evaluator(Protocol):
    name: str

    def evaluate(self, index: int, rng: np.random.Generator) -> Evaluation: ...


class BudgetExhausted(Exception):
    """Raised by :meth:`Tracker.evaluate` when the next evaluation does not fit the budget."""


@dataclass
class Tracker:
    """Charges evaluations to both clocks and keeps the history of one search run.

    As in NB201's scripts, an evaluation whose cost would exceed the budget ends the search and
    is not counted.
    """

    budget: Budget
    evaluator: Evaluator
    simulated_s: float = 0.0
    wall_s: float = 0.0
    history: list = field(default_factory=list)  # (index, reward, simulated_s, wall_s) after each
    failures: int = 0
    inside_s: float = 0.0  # real seconds spent inside evaluate (the rest of a run is the strategy's own)

    def evaluate(self, index: int, rng: np.random.Generator, evaluator: Evaluator | None = None) -> float:
        """Evaluate one cell with the run's evaluator, or with ``evaluator`` (another fidelity of
        it, for multi-fidelity strategies); both clocks are charged either way."""
        evaluator = evaluator or self.evaluator
        if self.budget.cells is not None and len(self.history) >= self.budget.cells:
            raise BudgetExhausted
        start = time.perf_counter()
        result = evaluator.evaluate(int(index), rng)
        own = time.perf_counter() - start
        self.inside_s += own
        wall = result.wall_s if result.wall_s > 0 else own
        if not math.isfinite(result.simulated_s):  # NaN + anything never reaches a budget
            raise HarnessError(f"{evaluator.name}: cell {int(index)} has no cost in the benchmark "
                               f"({result.simulated_s}), so the simulated clock cannot charge it",
                               "import a source with its training time, or give a cell budget (--budget 1000)")
        if self.budget.seconds is not None:
            spent = self.simulated_s + result.simulated_s if self.budget.clock == "simulated" else self.wall_s + wall
            if spent > self.budget.seconds:
                raise BudgetExhausted
        self.simulated_s += result.simulated_s
        self.wall_s += wall
        if not math.isfinite(result.reward):
            self.failures += 1
        self.history.append((int(index), result.reward, self.simulated_s, self.wall_s))
        return result.reward

    def best(self) -> int:
        """The cell with the highest finite reward seen (NaN rewards are skipped, as nanargmax)."""
        rewards = np.array([h[1] for h in self.history], dtype=np.float64)
        if not np.isfinite(rewards).any():
            raise HarnessError("every evaluation of this run failed", "see the failures recorded for the estimator")
        return self.history[int(np.nanargmax(np.where(np.isfinite(rewards), rewards, np.nan)))][0]


@dataclass
class SearchResult:
    strategy: str
    estimator: str
    run: int
    seed: int
    chosen: int
    cells: int
    distinct: int
    simulated_s: float
    wall_s: float
    failures: int
    history: list


def run_strategy(name: str, space, evaluator: Evaluator, budget: Budget, seed: int, run: int = 0,
                 **options) -> SearchResult:
    """One run of strategy ``name``; its rng is ``np.random.default_rng([seed, run])``."""
    entry = STRATEGIES.get(name)
    check_options(name, options)
    reset = getattr(space, "reset", None)
    if reset is not None:  # a space that remembers something within a run (NB101: raw specs) starts afresh
        reset()
    rng = np.random.default_rng([seed, run])
    tracker = Tracker(budget, evaluator)
    start = time.perf_counter()
    chosen = entry.fn(space, evaluator, tracker, rng, **options)
    overhead = max(time.perf_counter() - start - tracker.inside_s, 0.0)  # the strategy's own compute
    return SearchResult(name, evaluator.name, run, seed, int(chosen), len(tracker.history),
                        len({h[0] for h in tracker.history}), tracker.simulated_s, tracker.wall_s + overhead,
                        tracker.failures, tracker.history)
