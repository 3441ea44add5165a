"""Errors that reach the user.

Every error the user can cause raises :class:`HarnessError` with one line that says what was
wrong and what to do. The CLI prints that line to stderr and exits with code 2; no traceback.
"""

from __future__ import annotations

import pickle

# what unpickling a damaged file raises (truncated, random bytes, another format): fuzzing
# pickle.load with such bytes gives these and nothing else
PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, LookupError,
                 OverflowError, MemoryError)


class HarnessError(Exception):
    """A user-facing error: ``str(err)`` is one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}" if fix else problem)


class DataMissingError(HarnessError):
    """Input data (a benchmark file, an image set) is not where the harness looked."""


def reason(err: BaseException, limit: int = 120) -> str:
    """An exception as a short phrase for a one-line message: its type and the first line of its
    text, at most ``limit`` characters."""
    text = (str(err).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
