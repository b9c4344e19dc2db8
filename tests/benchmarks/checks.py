"""The benchmark's own correctness checks: a fast wrong answer must fail the run."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPORTED = 20


@dataclass
class Checks:
    """Counts every check made and keeps the first failures (all of them are counted)."""

    made: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def expect(self, condition: bool, message: str) -> bool:
        self.made += 1
        if not condition:
            self.failed += 1
            if len(self.failures) < MAX_REPORTED:
                self.failures.append(message)
        return condition

    @property
    def ok(self) -> bool:
        return self.failed == 0
