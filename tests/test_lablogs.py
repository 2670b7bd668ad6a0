"""The handler's JSON log line read back: the runner ships it to CloudWatch Logs as Lambda
does, and the same reader finds the same decisions in both sources."""

from __future__ import annotations

import json

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course import lablogs


@pytest.fixture
def lab(fresh_aws):
    """A deployed lab on the freshly reset embedded backend."""
    lab = cloud.start(prefix="learner")
    yield lab
    lab.close()


def test_decisions_keep_only_the_handlers_json_lines():
    """START/END/REPORT, other text and other JSON are skipped; the handler's lines are kept."""
    line = json.dumps({"jobcontroller": {"outcome": "SKIPPED", "reason": "SLOT_DONE"}})
    lines = ["START RequestId: r1 Version: $LATEST", '{"other": 1}', "[1, 2]", line, "END"]
    assert lablogs.decisions(lines) == [{"outcome": "SKIPPED", "reason": "SLOT_DONE"}]


def test_both_sources_give_the_same_decisions_and_a_crash_writes_none(lab):
    """A short day: CloudWatch Logs holds exactly the lines the runner captured, and the
    crashed run, which died before printing, has no line in either."""
    plan = cloud.DayPlan(slots=3, duplicates={"09:00": 1}, late={}, fail=(), crash=("10:00",))
    day = lab.drive(plan)
    from_runner = lab.log_lines(day)
    from_logs = lab.log_lines()
    assert from_runner.rows == from_logs.rows
    assert [(r[0], r[1], r[2]) for r in from_logs.rows] == [
        ("09:00", "SUCCEEDED", "-"),
        ("09:00", "SKIPPED", "SLOT_DONE"),
        ("11:00", "SUCCEEDED", "-"),
    ]
    assert from_logs.rows[-1][4] == "run-0105T1000-1"  # the takeover names the crashed run
    assert "from CloudWatch Logs /aws/lambda/learner-hourly_processor" in from_logs.text()
    # Each invocation is framed by Lambda's START / END / REPORT lines, in the stream of its
    # execution environment: the first served 09:00 twice and 10:00, whose crash retired it;
    # 11:00 started the second. Only a cold start's REPORT line has an Init Duration.
    logs = lab.target.client("logs")
    streams = logs.describe_log_streams(logGroupName=lab.names.log_group)["logStreams"]
    assert sorted(s["logStreamName"].rsplit("-", 1)[-1] for s in streams) == ["1", "2"]
    reports = {}
    for stream in streams:
        name = stream["logStreamName"]
        events = logs.get_log_events(logGroupName=lab.names.log_group, logStreamName=name)
        messages = [e["message"] for e in events["events"]]
        assert messages[0].startswith("START RequestId: ")
        assert messages[-1].startswith("REPORT RequestId: ")
        reports[name[-1]] = ["Init Duration: " in m for m in messages if m.startswith("REPORT")]
    assert reports == {"1": [True, False, False], "2": [True]}


def test_without_a_log_group_the_lines_are_lost_not_an_error(lab):
    """As on Lambda, whose role may not create its log group: the run still answers."""
    lab.target.client("logs").delete_log_group(logGroupName=lab.names.log_group)
    table = lab.try_once()
    assert ("outcome", "SUCCEEDED") in table.rows


def test_a_day_ends_when_its_last_run_finished_and_drill_writes_are_shown(lab):
    """The day's end is the last run's finish (not its arrival), and a drilled slot's
    "before" is the item right after the drill flag was written."""
    plan = cloud.DayPlan(slots=2, duplicates={}, late={}, fail=("10:00",), crash=())
    day = lab.drive(plan)
    last = lab.history(limit=1)[0]
    assert day.ended_at == last.finished_at > day.steps[-1].arrived
    before, after = day.moment("10:00")
    assert before.drill is not None and after.drill is None
    assert after.version == before.version + 2  # the acquire, then the commit
    snapshot = lab.dashboard_snapshot(at=day.ended_at)
    assert "press" not in snapshot.text and "a still picture" in snapshot.text
