"""What each design costs, measured in one run: `python benchmarks/run.py [--seed N] [--quick]`.

Every column is measured in this run, on the same seeded day of duplicate triggers
(`benchmarks.day`), on the in-memory DynamoDB stand-in, with capacity units computed from
the items really written (`benchmarks.capacity`). Prints one table; its rows:

- per path (skip, lost race, run, crash, crash-retry): how many invocations took it, and
  per invocation the requests, read units and write units;
- the day's totals, the guarantees (double runs, missed slots, wedged slots), and the price
  per month of one hourly job and of 10,000 jobs every minute, if every slot costs what the
  day's slots cost on average;
- 64 triggers for one slot released together: runs, cost per loser, time to resolve;
- the cold import each design's Lambda pays, and the controller's zip.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.contenders import CONTENDERS, Contender
from benchmarks.day import PATHS, DayResult, PathCost, plan_day, run_day
from benchmarks.probes import IMPORTS, Contention, cold_imports, contention, zip_size
from benchmarks.variants import HistoryAfterCommit, HistoryInItem
from jobcontroller.embedded.capacity import PRICES, Prices

__all__ = ["DESIGNS", "HOURS_PER_MONTH", "main", "monthly", "render"]

HOURS_PER_MONTH = 730  # AWS's pricing pages count a month as 730 hours
FLEET_JOBS = 10_000
DESIGNS: tuple[type[Contender], ...] = (
    *CONTENDERS.values(),
    HistoryAfterCommit,
    HistoryInItem,
)
# Which cold import each design's Lambda pays (the card and ShedLock need only boto3).
IMPORT_OF = {
    "controller": "handler",
    "history-after": "handler",
    "history-in-item": "handler",
    "powertools": "powertools",
}


def monthly(result: DayResult, *, slots_per_month: int, prices: Prices = PRICES) -> Decimal:
    """Dollars per month if each of `slots_per_month` slots costs the day's average slot."""
    per_slot = prices.dollars(reads=result.read_units, writes=result.write_units) / result.slots
    return per_slot * slots_per_month


def _units(value: float) -> str:
    return f"{value:g}"


def _path_cell(cost: PathCost) -> str:
    if not cost.count:
        return "-"
    n = cost.count
    return (
        f"{n}: {_units(cost.requests / n)} / {_units(cost.read_units / n)} / "
        f"{_units(cost.write_units / n)}"
    )


def _path_row(path: str, result: DayResult) -> str:
    return _path_cell(result.paths[path])


def _dollars(value: Decimal) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    return f"${value:.4g}" if value < 1 else f"${value:,.2f}"


def render(
    results: Sequence[DayResult],
    *,
    contended: dict[str, Contention] | None = None,
    imports: dict[str, float] | None = None,
    zip_bytes: int | None = None,
    prices: Prices = PRICES,
) -> str:
    """The one table: a column per design, a row per measurement."""
    rows: list[tuple[str, Callable[[DayResult], str]]] = []
    for path in PATHS:
        rows.append((f"{path}: n: req / RRU / WRU each", functools.partial(_path_row, path)))
    rows += [
        ("day: requests", lambda r: str(r.requests)),
        ("day: read units (RRU)", lambda r: _units(r.read_units)),
        ("day: write units (WRU)", lambda r: _units(r.write_units)),
        ("double runs (slots run twice)", lambda r: str(r.double_runs)),
        ("missed slots (never ran)", lambda r: str(r.missed)),
        ("wedged slots (lock never freed)", lambda r: str(r.wedged)),
        (
            "$/month, 1 hourly job",
            lambda r: _dollars(monthly(r, slots_per_month=HOURS_PER_MONTH, prices=prices)),
        ),
        (
            f"$/month, {FLEET_JOBS:,} jobs each minute",
            lambda r: _dollars(
                monthly(r, slots_per_month=FLEET_JOBS * 60 * HOURS_PER_MONTH, prices=prices)
            ),
        ),
        ("largest item (bytes)", lambda r: " + ".join(str(v) for v in r.item_sizes.values())),
    ]
    if contended:
        c = contended
        first = next(iter(c.values()))
        rows += [
            (f"{first.triggers} racers: runs", lambda r: _units(c[r.design].runs)),
            (
                f"{first.triggers} racers: req / RRU / WRU per loser",
                lambda r: " / ".join(
                    f"{v:.2f}".rstrip("0").rstrip(".")
                    for v in (
                        c[r.design].requests_per_loser,
                        c[r.design].read_units_per_loser,
                        c[r.design].write_units_per_loser,
                    )
                ),
            ),
            (f"{first.triggers} racers: ms to resolve", lambda r: f"{c[r.design].resolve_ms:.0f}"),
        ]
    if imports:
        boto3 = imports["boto3"]

        def cold(r: DayResult) -> str:
            seconds = imports[IMPORT_OF.get(r.design, "boto3")]
            return f"{seconds * 1000:.0f} ({seconds / boto3:.2f}x)"

        rows.append(("cold import CPU ms (x boto3)", cold))
    if zip_bytes is not None:
        in_zip = {name for name, module in IMPORT_OF.items() if module == "handler"}
        rows.append(("Lambda zip bytes", lambda r: str(zip_bytes) if r.design in in_zip else "-"))
    header = ("", *(r.design for r in results))
    body = [(label, *(cell(r) for r in results)) for label, cell in rows]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    lines = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="the day's plan (default 11)")
    parser.add_argument("--slots", type=int, default=24, help="hourly slots (default 24)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats for the timings (for a smoke run)"
    )
    args = parser.parse_args(argv)
    waves = plan_day(seed=args.seed, slots=args.slots)
    deliveries = sum(len(w) for w in waves)
    races = sum(1 for w in waves if len(w) > 1)
    results = [run_day(design(), waves) for design in DESIGNS]
    repeats = 1 if args.quick else 5
    contended = {d.name: contention(d(), repeats=repeats) for d in DESIGNS}
    imports = cold_imports(repeats=3 if args.quick else 15)
    print(
        f"One day of duplicate triggers: {args.slots} hourly slots, {deliveries} deliveries "
        f"({races} races, 1 crash), seed {args.seed}; in-memory DynamoDB; capacity units "
        f"from item sizes by DynamoDB's rules"
    )
    print()
    print(render(results, contended=contended, imports=imports, zip_bytes=zip_size()))
    print()
    print(
        f"Prices: ${PRICES.write_per_million} per million WRU, ${PRICES.read_per_million} per "
        f"million RRU ({PRICES.source}); a month = {HOURS_PER_MONTH} h; storage not counted."
    )
    print(
        "Cold imports: CPU time, median of "
        f"{3 if args.quick else 15} fresh interpreters each, started in the extracted zip "
        "(the handler's modules compiled from source, as on Lambda): "
        + ", ".join(f"{k} = `{v}`" for k, v in IMPORTS.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
