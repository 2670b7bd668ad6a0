"""Pointing boto3 at a backend on this machine: the variables, a session, export and restore.

Both local backends (moto's server and DynamoDB Local) are reached the same way: an endpoint
on loopback, dummy credentials, empty config files so a learner's real profile is never read,
and nothing left in the environment that would send boto3 elsewhere. Standard library only:
boto3 is imported when a session is asked for.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = [
    "DEFAULT_REGION",
    "HOST",
    "empty_config",
    "environment",
    "export",
    "new_session",
    "restore",
    "session",
]

DEFAULT_REGION = "us-east-1"
HOST = "127.0.0.1"
_DUMMY_SECRET = "testing"
# Variables that would send boto3 somewhere else or pick up a learner's real identity.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
_REMOVED_PREFIX = "AWS_ENDPOINT_URL_"


def environment(endpoint_url: str, region: str, config_dir: str) -> dict[str, str]:
    """The variables that point boto3, a child process or the AWS CLI at `endpoint_url`."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": _DUMMY_SECRET,
        "AWS_SECRET_ACCESS_KEY": _DUMMY_SECRET,
        "AWS_SESSION_TOKEN": _DUMMY_SECRET,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # Empty files, so a learner's real profile and its settings are never read.
        "AWS_CONFIG_FILE": os.path.join(config_dir, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(config_dir, "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def empty_config(config_dir: str) -> None:
    """Write the empty config and credentials files `environment` points at."""
    for name in ("config", "credentials"):
        open(os.path.join(config_dir, name), "w").close()


def session(region: str) -> Any:
    """A boto3 session with the dummy credentials and `region`."""
    return new_session(
        aws_access_key_id=_DUMMY_SECRET,
        aws_secret_access_key=_DUMMY_SECRET,
        aws_session_token=_DUMMY_SECRET,
        region_name=region,
    )


# Every botocore session loads the service models it uses from botocore's JSON files again:
# about 20 ms per service per session, which a local backend that hands out a session for
# each client pays over and over (a fifth of the test suite's time went to json.loads). The
# models do not change while a process runs, so the sessions made here share one loader and
# its cache, as the clients of one session always do.
_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def new_session(**options: Any) -> Any:
    """A `boto3.session.Session(**options)` whose botocore session shares this process's
    model loader (options as boto3's: credentials, region_name, profile_name)."""
    import boto3
    import botocore.loaders
    import botocore.session

    global _LOADER
    core = botocore.session.Session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader(core.get_config_variable("data_path"))
        core.register_component("data_loader", _LOADER)
        result = boto3.session.Session(botocore_session=core, **options)
        # boto3 adds its own data folder to the loader for every session; once is enough.
        paths = _LOADER.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return result


def export(exported: dict[str, str]) -> dict[str, str | None]:
    """Set `exported`, drop what would redirect boto3, and return what to restore."""
    removed = [*_REMOVED, *(k for k in os.environ if k.startswith(_REMOVED_PREFIX))]
    # A proxy from the environment would otherwise be asked to reach our loopback port.
    no_proxy = {k: _with_loopback(os.environ.get(k)) for k in ("NO_PROXY", "no_proxy")}
    saved = {k: os.environ.get(k) for k in [*exported, *removed, *no_proxy]}
    for key in removed:
        os.environ.pop(key, None)
    os.environ.update(no_proxy)
    os.environ.update(exported)
    _forget_boto3_default_session()
    return saved


def restore(saved: dict[str, str | None]) -> None:
    """Put back what `export` changed."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _forget_boto3_default_session()


def _forget_boto3_default_session() -> None:
    # boto3's default session caches credentials and config: rebuild it from the environment.
    # A new one, sharing the loaded models, reads the environment as boto3's own would.
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        setattr(boto3, "DEFAULT_SESSION", new_session())  # noqa: B010 - found at run time


def _with_loopback(no_proxy: str | None) -> str:
    entries = [e for e in (no_proxy or "").split(",") if e]
    return ",".join([*entries, *(h for h in (HOST, "localhost") if h not in entries)])
