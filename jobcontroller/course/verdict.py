"""What a lab exercise's checker found (notebooks 06-08): the parts right, and the first
wrong one explained. Its own module, so the checkers (`lab_exercises`, `proofcheck`) share it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Verdict"]


@dataclass(frozen=True)
class Verdict:
    """What a checker found: the parts right, and the first wrong one explained."""

    exercise: str
    right: int
    total: int
    explanation: tuple[str, ...] = ()
    success: str = ""

    @property
    def passed(self) -> bool:
        return self.right == self.total

    def text(self) -> str:
        head = f"{self.exercise}: {self.right} of {self.total} right"
        if self.passed:
            return f"{head}. {self.success}".rstrip()
        return "\n".join([f"not yet: {head}.", *self.explanation])

    def __repr__(self) -> str:
        return self.text()

    def __bool__(self) -> bool:
        return self.passed
