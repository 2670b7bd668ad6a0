"""The exercises of notebooks 05-07: each checker passes the right answer and explains each
usual wrong one, on the embedded backend."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course import lab_exercises as ex
from jobcontroller.course import proofcheck as pc
from jobcontroller.ops import deploy as d


@pytest.fixture(scope="module")
def lab(aws):
    """A deployed lab whose job has a history of 7 SUCCEEDED runs and 1 FAILED run."""
    aws.reset()
    lab = cloud.start(prefix="learner")
    case = pc._Case(
        "fixture", "hourly_processor", 7, ("SUCCEEDED",) * 4 + ("FAILED",) + ("SUCCEEDED",) * 3
    )
    pc._write_case(
        lab.target.client("dynamodb"), lab.names.table, case, datetime(2026, 1, 5, 9, tzinfo=UTC)
    )
    yield lab
    lab.close()


# --- 05: the schedule --------------------------------------------------------------------


def test_the_solution_schedule_passes(lab):
    """The settings the course deploys pass every part."""
    verdict = ex.check_schedule(ex.solution_schedule(lab), lab)
    assert verdict.passed and verdict.right == verdict.total == 4, verdict
    assert not verdict.text().startswith("not yet")


def _with(lab, path, value):
    answer = copy.deepcopy(ex.solution_schedule(lab))
    *parents, last = path
    node = answer
    for key in parents:
        node = node[key]
    node[last] = value
    return answer


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("FlexibleTimeWindow",),
            {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            "a time nobody chose",
        ),
        (("Input", "scheduled_time"), ..., "replace the ..."),
        (("Input", "scheduled_time"), "<aws.scheduler.execution-id>", "the handler refuses it"),
        (("Input", "scheduled_time"), "2026-01-05T10:00:00Z", "another slot"),
        (("RetryPolicy", "MaximumRetryAttempts"), 185, "set it to 0"),
        (("RetryPolicy", "MaximumEventAgeInSeconds"), 86400, "older than one interval"),
        (("DeadLetterConfig",), None, "dead-letter queue"),
    ],
)
def test_each_wrong_schedule_setting_is_explained(lab, path, value, expected):
    """One wrong setting costs one part, and the explanation names what it breaks."""
    verdict = ex.check_schedule(_with(lab, path, value), lab)
    assert verdict.right == 3 and not verdict
    assert verdict.text().startswith("not yet: the schedule's settings: 3 of 4 right.")
    assert expected in verdict.text()


def test_the_failure_queue_is_not_the_schedules_queue(lab):
    """Pointing the schedule at Lambda's on-failure queue is named as that mistake."""
    arn = lab.target.arn("sqs", lab.names.failure_queue)
    verdict = ex.check_schedule(_with(lab, ("DeadLetterConfig",), {"Arn": arn}), lab)
    assert "that is Lambda's on-failure queue" in verdict.text()


def test_a_template_given_as_json_text_is_accepted(lab):
    """The Input may be the JSON text create_schedule takes, not only a dict."""
    answer = ex.solution_schedule(lab)
    answer["Input"] = json.dumps(answer["Input"])
    assert ex.check_schedule(answer, lab).passed


# --- 06: the proof check ---------------------------------------------------------------------


def _query_pages(client, table, job, *, paginate=True, prefix="RUN#"):
    request = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :run)",
        "ExpressionAttributeValues": {":pk": {"S": f"JOB#{job}"}, ":run": {"S": prefix}},
    }
    if not paginate:
        return [client.query(**request)]
    return list(client.get_paginator("query").paginate(**request))


def _run_count(client, table, job):
    key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
    return int(
        client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["run_count"]["N"]
    )


def _succeeded(pages):
    return sum(i.get("outcome", {}).get("S") == "SUCCEEDED" for p in pages for i in p["Items"])


def test_the_solution_proof_check_passes_and_reports_the_day(lab):
    """The reference answer is right on every state, and the verdict states the proof."""
    verdict = pc.check_counts(pc.solution_counts, lab)
    assert verdict.passed and verdict.total == 3, verdict
    assert "run_count 7, SUCCEEDED items 7: the proof holds" in verdict.text()


def _first_page_only(client, table, job):
    return _run_count(client, table, job), _succeeded(
        _query_pages(client, table, job, paginate=False)
    )


def _failed_too(client, table, job):
    pages = _query_pages(client, table, job)
    return _run_count(client, table, job), sum(len(p["Items"]) for p in pages)


def _whole_table(client, table, job):
    pages = list(client.get_paginator("scan").paginate(TableName=table))
    return _run_count(client, table, job), _succeeded(pages)


def _counter_from_history(client, table, job):
    succeeded = _succeeded(_query_pages(client, table, job))
    return succeeded, succeeded


def _raw_number(client, table, job):
    key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
    item = client.get_item(TableName=table, Key=key)["Item"]
    return item["run_count"]["N"], _succeeded(_query_pages(client, table, job))


def _starter(client, table, job):
    return ..., ...


def _raises(client, table, job):
    raise KeyError("Item")


def _one_number(client, table, job):
    return 7


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (_starter, "run_count is still ..."),
        (_first_page_only, "only the first page of the query was counted"),
        (_failed_too, "FAILED ones too"),
        (_whole_table, "every job in the table"),
        (_counter_from_history, "not the counter"),
        (_raw_number, "the string '7'"),
        (_raises, "your function raised KeyError"),
        (_one_number, "return a pair"),
    ],
)
def test_each_wrong_proof_check_is_explained(lab, fn, expected):
    """A usual mistake fails at least one state, and the explanation names the mistake."""
    verdict = pc.check_counts(fn, lab)
    assert not verdict.passed
    assert verdict.text().startswith("not yet: your proof check:")
    assert expected in verdict.text(), verdict.text()


def test_the_checker_leaves_the_table_as_it_was(lab):
    """The crafted states are deleted again, and the job's own items are untouched."""
    before = lab.store.read("hourly_processor")
    pc.check_counts(_failed_too, lab)
    scan = lab.target.client("dynamodb").scan(TableName=lab.names.table)["Items"]
    assert {i["PK"]["S"] for i in scan} == {"JOB#hourly_processor"}
    assert lab.store.read("hourly_processor") == before


# --- 07: the leftovers -----------------------------------------------------------------------


def test_leftovers_after_deleting_only_the_function(aws):
    """With the function deleted, the solution's prediction is right and a wrong one is
    explained resource by resource."""
    # A prefix of its own, so the module's lab (prefix 'learner') stays as it is.
    lab = cloud.start(prefix="leftover")
    try:
        assert ex.resources_now(lab) == set(ex.RESOURCES)
        lab.target.client("lambda").delete_function(FunctionName=lab.names.function)
        assert ex.resources_now(lab) == set(ex.RESOURCES) - {"function"}
        assert ex.check_leftovers(ex.solution_leftovers(lab), lab).passed
        wrong = ex.check_leftovers({"table", "function"}, lab)
        assert wrong.right == 1 and not wrong  # only "table" is right
        text = wrong.text()
        assert "function: you said left, it is gone" in text
        assert "log_group: you said gone, it is still there: Lambda never deletes" in text
        assert "schedule: you said gone, it is still there: a schedule does not check" in text
        with pytest.raises(ValueError, match="unknown resource names"):
            ex.check_leftovers({"lambda"}, lab)
    finally:
        d.teardown(lab.target, lab.names)
        lab.close()


def test_solutions_are_hidden_until_revealed(capsys):
    """show_lab_solution prints only how to reveal, unless asked to reveal."""
    ex.show_lab_solution("counts")
    assert "is hidden" in capsys.readouterr().out
    ex.show_lab_solution("counts", reveal=True)
    assert "get_paginator" in capsys.readouterr().out
    with pytest.raises(KeyError, match="choose one of"):
        ex.show_lab_solution("gate")


def test_the_typed_value_is_explained(lab):
    """Returning the low-level client's {'N': ...} value is named as that, with the fix."""

    def typed(client, table, job):
        key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
        item = client.get_item(TableName=table, Key=key)["Item"]
        return item["run_count"], 0

    text = pc.check_counts(typed, lab).text()
    assert "run_count is the typed value {'N': '7'}" in text and "int(...)" in text
