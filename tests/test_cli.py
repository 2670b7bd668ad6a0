"""The command line: per-participant deploy and teardown, state, trigger, pause, usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobcontroller.ops import cli
from jobcontroller.ops import deploy as d


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["deploy"],
        ["deploy", "--prefix", "Ann-B"],
        ["deploy", "--prefix", ""],
        ["deploy", "--prefix", "ann", "--participants", "room.txt"],
        ["deploy", "--prefix", "ann", "--prefix", "ann"],
        ["deploy", "--participants", "/no/such/file"],
        ["state"],
        ["state", "--prefix", "ann", "--runs", "many"],
        ["trigger", "--prefix", "ann", "--prefix", "bob"],
        ["embedded", "--port", "high"],
    ],
)
def test_bad_arguments_print_usage_and_exit_2(capsys, argv):
    """Bad arguments give a usage message on stderr and exit status 2, never a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "usage: jobcontroller" in err
    assert "Traceback" not in err


def test_a_participants_file_without_prefixes_is_a_usage_error(capsys, tmp_path):
    """A participants file with only comments is refused as a usage error."""
    room = tmp_path / "room.txt"
    room.write_text("# nobody yet\n\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["deploy", "--participants", str(room)])
    assert exit_info.value.code == 2
    assert "lists no prefix" in capsys.readouterr().err


def test_real_aws_without_opt_in_exits_1_with_the_fix(capsys, aws, monkeypatch):
    """Outside the embedded backend and without the opt-in, the CLI says how to opt in."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("JOBCONTROLLER_REAL_AWS", raising=False)
    code, _, err = _run(capsys, "state", "--prefix", "ann")
    assert code == 1
    assert "JOBCONTROLLER_BACKEND=aws" in err
    assert "Traceback" not in err


def test_state_of_a_missing_stack_exits_1_with_the_fix(capsys, target):
    """`state` for a prefix with no table says the table is missing, in one line, exit 1."""
    code, _, err = _run(capsys, "state", "--prefix", "zed")
    assert code == 1
    assert "zed-job_control" in err and "does not exist" in err
    assert len(err.strip().splitlines()) == 1


def test_a_room_from_deploy_to_teardown(capsys, target, tmp_path):
    """Deploy two participants from a file, use one, tear both down: nothing tagged is left."""
    room = tmp_path / "room.txt"
    room.write_text("# morning session\nann\nbob  # late\n")
    code, out, _ = _run(capsys, "deploy", "--participants", str(room))
    assert code == 0
    assert (
        "ann: deployed arn:aws:lambda:us-east-1:123456789012:function:ann-hourly_processor" in out
    )
    assert "bob: deployed" in out
    assert len(d.leftovers(target, "ann")) == 9 and len(d.leftovers(target, "bob")) == 9

    code, out, _ = _run(capsys, "state", "--prefix", "ann")
    assert code == 0
    assert "status" in out and "IDLE" in out

    assert _run(capsys, "pause", "--prefix", "ann")[1].strip().endswith("paused")
    code, out, _ = _run(capsys, "trigger", "--prefix", "ann")
    assert code == 0 and "ann: SKIPPED (PAUSED)" in out

    assert _run(capsys, "resume", "--prefix", "ann")[1].strip().endswith("resumed")
    code, out, _ = _run(capsys, "trigger", "--prefix", "ann")
    assert code == 0 and "ann: SUCCEEDED" in out
    assert "recent runs:" in _run(capsys, "state", "--prefix", "ann")[1]

    code, out, _ = _run(capsys, "teardown", "--prefix", "ann", "--prefix", "bob")
    assert code == 0
    assert "ann: deleted 9 resources; nothing tagged is left" in out
    assert d.leftovers(target, "ann") == [] and d.leftovers(target, "bob") == []
    code, out, _ = _run(capsys, "teardown", "--prefix", "ann")
    assert code == 0 and "ann: deleted 0 resources" in out


def test_init_writes_the_control_item_once(capsys, target):
    """`init` initialises a job on an existing table, and says so when it already was."""
    from jobcontroller.store import ControlStore

    ControlStore("ann-job_control", client=target.client("dynamodb")).create_table()
    out = _run(capsys, "init", "--prefix", "ann")[1]
    assert out.splitlines()[-1] == "ann: job hourly_processor initialised"
    assert "was already initialised" in _run(capsys, "init", "--prefix", "ann")[1]


def test_one_failing_participant_does_not_stop_the_others(capsys, target, monkeypatch):
    """If one participant's teardown fails, the others still run and the exit status is 1."""
    real_teardown = d.teardown

    def flaky(target_, names, **kwargs):
        if names.prefix == "ann":
            raise d.TeardownIncomplete("ann-stray is still there")
        return real_teardown(target_, names, **kwargs)

    monkeypatch.setattr(d, "teardown", flaky)
    code, out, _ = _run(capsys, "teardown", "--prefix", "ann", "--prefix", "bob")
    assert code == 1
    assert "ann: FAILED: ann-stray is still there" in out
    assert "bob: deleted 0 resources" in out
    assert "failed for: ann" in out


def test_package_builds_the_zip(capsys, tmp_path):
    """`package --out-dir D` writes the deployment zip there."""
    code, out, _ = _run(capsys, "package", "--out-dir", str(tmp_path))
    assert code == 0
    assert (tmp_path / "jobcontroller-lambda.zip").is_file()
    assert "sha256" in out


def test_embedded_delegates_to_the_embedded_backend(capsys, monkeypatch):
    """`embedded` hands its options to jobcontroller.embedded.server.main and returns its status."""
    from jobcontroller.embedded import server as local

    seen = []
    monkeypatch.setattr(local, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["embedded", "--region", "eu-west-1", "--port", "0"]) == 0
    assert seen == [["--region", "eu-west-1", "--port", "0"]]


def test_python_m_jobcontroller_is_the_command_line():
    """`python -m jobcontroller` runs the same command line (help exits 0, bad input exits 2)."""
    ok = subprocess.run(
        [sys.executable, "-m", "jobcontroller", "--help"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "deploy" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "jobcontroller", "deploy", "--prefix", "-"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "usage:" in bad.stderr and "Traceback" not in bad.stderr
