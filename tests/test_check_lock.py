"""The lock exercise's checker: the right answer passes, each wrong one is named and explained."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from jobcontroller.course.check_lock import RACERS, check_lock, solution_acquire

_UPDATE = "SET #s = :running, version = :next, run_id = :run_id, last_run_ts = :now"


def _lock(
    condition: str | None = "#s = :idle AND version = :v",
    *,
    update: str = _UPDATE,
    names: dict[str, str] | None = None,
    on_refused: str = "false",
):
    """A learner's lock, built from parts, so each test changes exactly one of them."""

    def acquire(dynamodb, table, key, version, run_id, now):
        values = {
            ":running": {"S": "RUNNING"},
            ":idle": {"S": "IDLE"},
            ":v": {"N": str(version)},
            ":next": {"N": str(version + 1)},
            ":run_id": {"S": run_id},
            ":now": {"S": now},
        }
        request = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#s": "status"} if names is None else names,
        }
        if condition:
            request["ConditionExpression"] = condition
        text = update + " " + (condition or "")
        request["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in text}
        if not request["ExpressionAttributeNames"]:
            del request["ExpressionAttributeNames"]
        try:
            dynamodb.update_item(**request)
        except ClientError as err:
            refused = err.response["Error"]["Code"] == "ConditionalCheckFailedException"
            if on_refused == "raise" or (on_refused != "hide" and not refused):
                raise
            return on_refused == "true"
        return True

    return acquire


@pytest.fixture
def check(fresh_aws):
    """check_lock on a freshly wiped embedded backend."""
    return check_lock


def test_the_solution_passes_every_check_and_is_told_about_the_lease(check):
    """The revealed solution passes all five checks; the report then points at the lease (04)."""
    report = check(solution_acquire)
    assert report.ok and bool(report)
    assert len(report.passed) == report.total == 5
    text = report.text()
    assert text.startswith("lock: all 5 checks passed.")
    assert "crashed holder wedges the job" in text
    assert "Without a lease nobody can take over" in text


def test_a_write_with_no_condition_gives_two_winners(check):
    """The starter's unconditional write: every racing thread wins, and the report says why."""
    report = check(_lock(None))
    assert not report.ok
    assert report.headline == "two winners: your write has no condition"
    assert f"{RACERS} of them returned True" in report.text()
    assert report.text().startswith("not yet: ")
    assert len(report.passed) == 1  # the single call on an idle item did take the lock


def test_a_lock_without_the_version_clause_lets_a_stale_reader_win(check):
    """status = IDLE alone: a reader from before a whole run gets in once the item is IDLE."""
    report = check(_lock("#s = :idle"))
    assert report.headline == "a stale reader won: add the version clause"
    assert "AND version = :v" in report.text()
    assert "your condition:  #s = :idle" in report.text()


def test_a_lock_without_the_status_clause_takes_a_live_holders_lock(check):
    """version = :v alone: a caller that skipped the gate takes the lock from a live holder."""
    report = check(_lock("version = :v"))
    assert report.headline.startswith("a live holder lost the lock")
    assert "#s = :idle" in report.text()


def test_letting_the_refusal_escape_is_explained(check):
    """Raising ConditionalCheckFailedException instead of returning False is named, with the fix."""
    report = check(_lock(on_refused="raise"))
    assert report.headline == "your function let ConditionalCheckFailedException out"
    assert f"of {RACERS} racing threads raised it" in report.text()


def test_hiding_every_error_as_lost_is_caught(check):
    """Returning False for any ClientError hides a missing table; the checker says so."""
    report = check(_lock(on_refused="hide"))
    assert report.headline == "your function hid an error"
    assert len(report.passed) == 4


def test_saying_true_for_a_refused_write_is_caught(check):
    """True on a refused condition: more winners than writes DynamoDB applied."""
    report = check(_lock(on_refused="true"))
    assert report.headline == "your function said True for a write DynamoDB refused"
    assert "DynamoDB applied 1 write(s)" in report.text()


def test_the_reserved_word_status_is_explained(check):
    """`status` without a #alias is refused by DynamoDB; the report gives the alias to use."""
    bare = _lock(
        "status = :idle AND version = :v",
        update=_UPDATE.replace("#s", "status"),
        names={},
    )
    report = check(bare)
    assert report.headline == "DynamoDB refused the request: status is a reserved word"
    assert "ExpressionAttributeNames={'#s': 'status'}" in report.text()
    assert report.passed == ()
    assert "(none yet)" in report.text()


def test_a_write_that_leaves_the_version_is_explained(check):
    """A lock that does not move the version on is told why every write must change it."""
    report = check(_lock(update=_UPDATE.replace("version = :next", "version = :v")))
    assert report.headline.startswith("the version did not move on")
    assert "Every write must change the version" in report.text()


def test_a_write_that_does_not_name_the_holder_is_explained(check):
    """A lock without run_id is told that the fenced commit needs it."""
    report = check(_lock(update="SET #s = :running, version = :next, last_run_ts = :now"))
    assert report.headline == "the item does not say who holds the lock"


def test_a_condition_that_never_holds_is_explained(check):
    """A condition on the wrong version loses on an idle item, and the report shows it."""
    report = check(_lock("#s = :idle AND version = :next"))
    assert report.headline.startswith("your function said it lost")
    assert "your condition:  #s = :idle AND version = :next" in report.text()


@pytest.mark.parametrize(
    ("fn", "headline"),
    [
        (lambda dynamodb, table, key, version, run_id, now: None, "sent no UpdateItem"),
        (
            lambda dynamodb, table, key, version, run_id, now: (
                _lock()(dynamodb, table, key, version, run_id, now) and "yes"
            ),
            "your function returned 'yes'",
        ),
        (lambda dynamodb, table, key, version, run_id, now: 1 / 0, "raised ZeroDivisionError"),
    ],
    ids=["sends-nothing", "returns-text", "raises"],
)
def test_unusable_answers_are_reported_not_crashed_on(check, fn, headline):
    """A function that sends nothing, returns no bool, or raises gets a report, not a crash."""
    report = check(fn)
    assert not report.ok
    assert headline in report.headline


def test_the_revealed_solution_pasted_into_notebook_02_passes(check, capsys):
    """show_solution('lock') prints code that runs with 02's imports and passes the checker."""
    from jobcontroller.course.exercises import show_solution

    show_solution("lock")
    scope = {"ClientError": ClientError}
    exec(capsys.readouterr().out, scope)  # what a learner pasting it into the cell would run
    assert check(scope["my_acquire"]).ok


@pytest.mark.parametrize(
    ("variable", "value"), [("JOBCONTROLLER_BACKEND", "aws"), ("JOBCONTROLLER_REAL_AWS", "1")]
)
def test_the_checker_never_runs_in_an_aws_account(check, monkeypatch, variable, value):
    """With either spelling of the real-AWS opt-in, the checker refuses before sending anything."""
    from jobcontroller.errors import ConfigError

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match="on this machine only"):
        check(solution_acquire)
