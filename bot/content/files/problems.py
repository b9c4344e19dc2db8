"""A problem found in a content file: what is wrong, in which file, on which line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ContentProblem:
    """One thing wrong (or worth a look) in a content file."""

    path: str  # relative to the content directory, '/' separated
    line: int | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        # Labelled like a compiler's, so a warning is never read as a reason the file failed.
        label = "warning: " if self.severity == "warning" else ""
        return f"{where}: {label}{self.message}"


def has_errors(problems: Iterable[ContentProblem]) -> bool:
    return any(p.severity == "error" for p in problems)


def count_summary(problems: Iterable[ContentProblem]) -> str:
    """``"2 errors, 1 warning"``: errors and warnings counted apart, a count of none left out."""
    errors = warnings = 0
    for problem in problems:
        if problem.severity == "error":
            errors += 1
        else:
            warnings += 1
    counts = [_plural(n, noun) for n, noun in ((errors, "error"), (warnings, "warning")) if n]
    return ", ".join(counts) or "no problems"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
