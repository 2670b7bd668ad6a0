"""Which backend is chosen: JOBCONTROLLER_BACKEND, its old real-AWS spelling, and bad values."""

from __future__ import annotations

import pytest

from jobcontroller.errors import ConfigError
from jobcontroller.ops.backend import BACKENDS, chosen_backend


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "embedded"),
        ({"JOBCONTROLLER_BACKEND": ""}, "embedded"),
        ({"JOBCONTROLLER_BACKEND": "embedded"}, "embedded"),
        ({"JOBCONTROLLER_BACKEND": "dynamodb-local"}, "dynamodb-local"),
        ({"JOBCONTROLLER_BACKEND": " DynamoDB-Local "}, "dynamodb-local"),
        ({"JOBCONTROLLER_BACKEND": "aws"}, "aws"),
        ({"JOBCONTROLLER_REAL_AWS": "1"}, "aws"),
        ({"JOBCONTROLLER_REAL_AWS": "1", "JOBCONTROLLER_BACKEND": "aws"}, "aws"),
        ({"JOBCONTROLLER_REAL_AWS": "0"}, "embedded"),
        ({"JOBCONTROLLER_REAL_AWS": "true"}, "embedded"),
    ],
    ids=str,
)
def test_the_variable_and_its_old_spelling_choose_the_backend(env, expected):
    """Unset means embedded; JOBCONTROLLER_REAL_AWS=1 (only "1", as before) still means aws."""
    assert chosen_backend(env) == expected


@pytest.mark.parametrize("value", ["moto", "dynamodb_local", "real", "local", "1"])
def test_a_bad_value_is_refused_naming_the_three_backends(value):
    """A value that is not a backend raises ConfigError quoting it and naming every backend."""
    with pytest.raises(ConfigError) as refused:
        chosen_backend({"JOBCONTROLLER_BACKEND": value})
    message = str(refused.value)
    assert repr(value) in message
    assert all(name in message for name in BACKENDS)


@pytest.mark.parametrize("value", ["embedded", "dynamodb-local"])
def test_the_old_switch_contradicting_the_new_variable_is_refused(value):
    """JOBCONTROLLER_REAL_AWS=1 with a local backend chosen is a contradiction, not a guess."""
    with pytest.raises(ConfigError, match="disagree"):
        chosen_backend({"JOBCONTROLLER_BACKEND": value, "JOBCONTROLLER_REAL_AWS": "1"})


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    """Without `env`, the process's own environment decides."""
    monkeypatch.delenv("JOBCONTROLLER_REAL_AWS", raising=False)
    monkeypatch.setenv("JOBCONTROLLER_BACKEND", "dynamodb-local")
    assert chosen_backend() == "dynamodb-local"
    monkeypatch.delenv("JOBCONTROLLER_BACKEND")
    assert chosen_backend() == "embedded"
