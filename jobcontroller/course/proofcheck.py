"""Notebook 07's exercise: a proof check the learner writes with `get_item` and `query`.

`check_counts(fn, lab)` runs `fn(client, table, job) -> (run_count, succeeded)` on the day's
state and on crafted states (another job in the same table, a FAILED run, a counter that
disagrees with the history), through a client whose queries answer in pages of five items,
and explains the first wrong answer by the usual mistake it matches. The crafted items are
written under other jobs' partitions of the lab's own table and deleted again afterwards,
so the check works the same on the embedded backend and on real AWS.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer

from jobcontroller.course.verdict import Verdict
from jobcontroller.model import JobState, Outcome, job_key
from jobcontroller.store import RunRecord

if TYPE_CHECKING:
    from jobcontroller.course.lab import Lab

__all__ = ["check_counts", "solution_counts"]

_PAGE = 5  # items per query page the checker allows (DynamoDB's real limit is 1 MB per page)
_serializer = TypeSerializer()


@dataclass(frozen=True)
class _Case:
    name: str
    job: str
    run_count: int
    outcomes: tuple[str, ...]  # this job's run history
    others: int = 0  # SUCCEEDED runs of another job in the same table
    why: str = ""


_CRAFTED = (
    _Case(
        "a job with a failed run, and another job's runs in the same table",
        "proofcheck_a",
        3,
        ("SUCCEEDED", "FAILED", "SUCCEEDED", "SUCCEEDED"),
        others=4,
        why="run_count counts successes only, and only this job's partition is yours",
    ),
    _Case(
        "a broken counter: run_count says 7, the history holds 6 successes",
        "proofcheck_b",
        7,
        ("SUCCEEDED",) * 6,
        why="a proof check reports what is stored, so that a mismatch shows",
    ),
)


def _put(client: Any, table: str, item: dict[str, Any]) -> None:
    client.put_item(TableName=table, Item={k: _serializer.serialize(v) for k, v in item.items()})


def _write_case(client: Any, table: str, case: _Case, now: datetime) -> None:
    other = f"{case.job}_other"
    _put(client, table, JobState.new(case.job, now=now, run_count=case.run_count).to_item())
    if case.others:
        _put(client, table, JobState.new(other, now=now, run_count=case.others).to_item())
    jobs = [(case.job, o) for o in case.outcomes] + [(other, "SUCCEEDED")] * case.others
    for number, (job, outcome) in enumerate(jobs):
        started = now + timedelta(hours=number)
        record = RunRecord(
            job=job,
            run_id=f"run-{number:02d}",
            started_at=started,
            finished_at=started + timedelta(seconds=1),
            outcome=Outcome(outcome),
            slot=started,
            source="scheduler",
            error=None if outcome == "SUCCEEDED" else "PlaceholderFailure: drill",
            took_over_from=None,
            expires_at=int((started + timedelta(days=7)).timestamp()),
        )
        _put(client, table, record.to_item())


def _delete_case(lab: Lab, case: _Case) -> None:
    for job in (case.job, f"{case.job}_other"):
        lab.store.delete_job(job)


def _paged_client(lab: Lab) -> Any:
    """A DynamoDB client whose queries and scans answer in pages of at most `_PAGE` items."""
    client = lab.target.session.client("dynamodb", region_name=lab.target.region)

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = min(int(params.get("Limit", _PAGE)), _PAGE)

    for operation in ("Query", "Scan"):
        client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", small_pages)
    return client


def _count_items(
    client: Any, table: str, *, pk: str | None, outcome: str | None, pages: int | None = None
) -> int:
    """Items of the partition `pk` (every partition if None) with that outcome: in all
    pages, or in the first `pages` pages of `_PAGE` items."""
    limit = {} if pages is None else {"PaginationConfig": {"MaxItems": pages * _PAGE}}
    results: Any
    if pk is None:
        results = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    else:
        results = client.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :run)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":run": {"S": "RUN#"}},
            ConsistentRead=True,
            **limit,
        )
    count = 0
    for page in results:
        for item in page["Items"]:
            if not item["SK"]["S"].startswith("RUN#"):
                continue
            if outcome is None or item.get("outcome", {}).get("S") == outcome:
                count += 1
    return count


def _diagnose(name: str, got: Any, truth: int, alternatives: dict[str, int]) -> str:
    """Why `got` is not `truth`, guessed from the usual mistakes (`alternatives`)."""
    if got is Ellipsis:
        return f"{name} is still ... : replace the ... in your function"
    if isinstance(got, str):
        return (
            f"{name} is the string {got!r}: the low-level client gives numbers as strings "
            "({'N': '22'}); convert with int(...)"
        )
    if isinstance(got, dict):
        return (
            f"{name} is the typed value {got!r} as the low-level client returns it: take the "
            "string under 'N' and convert it with int(...)"
        )
    if not isinstance(got, int) or isinstance(got, bool):
        return f"{name} is {got!r}; return a whole number"
    for why, value in alternatives.items():
        if got == value and value != truth:
            return f"{name} is {got}: {why}"
    return f"{name} is {got}, but the right answer is {truth}"


def check_counts(fn: Callable[[Any, str, str], Any], lab: Lab) -> Verdict:
    """Run `fn(client, table, job) -> (run_count, succeeded)` on the day's state and on
    crafted states; explain the first wrong answer."""
    client = _paged_client(lab)
    table = lab.names.table
    truth_client = lab.target.client("dynamodb")
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    cases = [(f"the day you drove (job {lab.names.job})", lab.names.job, "")]
    for case in _CRAFTED:
        _write_case(truth_client, table, case, now)
        cases.append((case.name, case.job, case.why))
    right, first, summary = 0, (), ""
    try:
        for number, (name, job, why) in enumerate(cases, start=1):
            pk = job_key(job)["PK"]
            stored = lab.store.read(job).run_count
            truth = _count_items(truth_client, table, pk=pk, outcome="SUCCEEDED")
            every_run = _count_items(truth_client, table, pk=pk, outcome=None)
            whole_table = _count_items(truth_client, table, pk=None, outcome="SUCCEEDED")
            first_page = _count_items(truth_client, table, pk=pk, outcome="SUCCEEDED", pages=1)
            problem: str | None
            try:
                answer = fn(client, table, job)
            except Exception as exc:
                problem = f"your function raised {type(exc).__name__}: {exc}"
            else:
                problem = _judge(
                    answer,
                    stored,
                    truth,
                    first_page=first_page,
                    every_run=every_run,
                    whole_table=whole_table,
                )
            if problem is None:
                right += 1
                if number == 1:
                    verdict = "holds" if stored == truth else "FAILS"
                    summary = (
                        f"On the day's state: run_count {stored}, SUCCEEDED items {truth}: "
                        f"the proof {verdict}."
                    )
            elif not first:
                first = (
                    f'First wrong answer: state {number} of {len(cases)}, "{name}"',
                    f"  expected: run_count {stored}, succeeded {truth}",
                    f"  but:      {problem}",
                    *((f"  why:      {why}",) if why else ()),
                )
    finally:
        for case in _CRAFTED:
            _delete_case(lab, case)
    return Verdict("your proof check", right, len(cases), first, summary)


def _judge(
    answer: Any, stored: int, truth: int, *, first_page: int, every_run: int, whole_table: int
) -> str | None:
    if not isinstance(answer, tuple) or len(answer) != 2:
        return f"your function returned {answer!r}; return a pair: (run_count, succeeded)"
    run_count, succeeded = answer
    if run_count != stored or isinstance(run_count, bool):
        alternatives = {
            "that is the number of SUCCEEDED items, not the counter: read the stored "
            "run_count attribute, so that a wrong counter shows": truth,
        }
        return _diagnose("run_count", run_count, stored, alternatives)
    if succeeded != truth or isinstance(succeeded, bool):
        alternatives = {
            "only the first page of the query was counted. A query answers at most 1 MB "
            f"(here {_PAGE} items) per call; follow LastEvaluatedKey, or use "
            "client.get_paginator('query')": first_page,
            "that counts every run item, FAILED ones too: keep outcome == SUCCEEDED": every_run,
            "that counts the SUCCEEDED runs of every job in the table: query this job's "
            "partition, PK = JOB#<job>": whole_table,
            "that counts the control item too: ask for SK values that begin with RUN#": (truth + 1),
        }
        return _diagnose("succeeded", succeeded, truth, alternatives)
    return None


def solution_counts(client: Any, table: str, job: str) -> tuple[int, int]:
    """One answer to 07's exercise: the stored counter, and the SUCCEEDED history items."""
    key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    run_count = int(item["run_count"]["N"])  # the low-level client gives numbers as strings
    succeeded = 0
    # A query returns at most 1 MB per call: the paginator follows LastEvaluatedKey.
    pages = client.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :run)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":run": {"S": "RUN#"}},
        ConsistentRead=True,
    )
    for page in pages:
        succeeded += sum(i["outcome"]["S"] == "SUCCEEDED" for i in page["Items"])
    return run_count, succeeded
