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
        return f"{where}: {self.message}"


def has_errors(problems: Iterable[ContentProblem]) -> bool:
    return any(p.severity == "error" for p in problems)
