"""Errors that reach the user.

Every error the user can cause raises :class:`HarnessError` with one line that says what was
wrong and what to do. The CLI prints that line to stderr and exits with code 2; no traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A user-facing error: ``str(err)`` is one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}" if fix else problem)


class DataMissingError(HarnessError):
    """Input data (a benchmark file, an image set) is not where the harness looked."""
