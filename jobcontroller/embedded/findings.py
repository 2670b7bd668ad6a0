"""What a fault simulation found: the invariants it checks, each violation, the closing table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["INVARIANTS", "Report", "Violation"]


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with what is needed to replay it."""

    invariant: str
    slot: int
    detail: str


@dataclass
class Report:
    """What a simulation did, found and cost."""

    design: str
    seed: int
    slots: int
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    stories: dict[int, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, int, int]]:
        """(invariant, times checked, violations), in the checker's order."""
        found = Counter(v.invariant for v in self.violations)
        return [(name, self.checks[name], found[name]) for name in INVARIANTS]

    @property
    def slots_per_second(self) -> float:
        return self.slots / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        """The closing table, as plain text."""
        lines = [f"design {self.design}, seed {self.seed}, {self.slots} slots"]
        lines.append("faults injected: " + _counts(self.faults))
        lines.append("outcomes: " + _counts(self.outcomes))
        by_invariant = Counter(v.invariant for v in self.violations)
        lines.append(f"{'invariant':<34} {'checks':>8} {'violations':>10}")
        for name in INVARIANTS:
            lines.append(f"{name:<34} {self.checks[name]:>8} {by_invariant[name]:>10}")
        for v in self.violations[:5]:
            lines.append(
                f"VIOLATION {v.invariant} at slot {v.slot}: {v.detail} "
                f"(replay: --design {self.design} --seed {self.seed} --slots {v.slot + 1})"
            )
            lines.extend("    " + line for line in self.stories.get(v.slot, []))
        if len(self.violations) > 5:
            lines.append(f"... and {len(self.violations) - 5} more violations")
        if self.seconds:
            lines.append(f"{self.seconds:.1f} s, {self.slots_per_second:.0f} slots/s")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


INVARIANTS = (
    "one workload at a time",
    "at most one success per slot",
    "never RUNNING past lease + interval",
    "counters equal the run history",
    "every skip has a reason",
    "only the package's own exceptions",
    "cooldown never loses a slot",
)
