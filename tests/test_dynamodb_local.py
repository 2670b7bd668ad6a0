"""DynamoDB Local: found, installed, started and stopped by the package, with clear errors."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import stat
import sys
import tarfile
import urllib.parse
from pathlib import Path

import pytest

from jobcontroller.embedded import dynamodb_local as ddbl
from jobcontroller.embedded.server import is_loopback
from jobcontroller.errors import ConfigError


def fake_engine(folder: Path) -> Path:
    """A folder shaped like the engine (a jar and its library folder), nothing runnable."""
    (folder / "DynamoDBLocal_lib").mkdir(parents=True)
    (folder / "DynamoDBLocal.jar").write_bytes(b"not really a jar")
    return folder


@pytest.fixture
def no_engine_settings(monkeypatch, tmp_path):
    """No JOBCONTROLLER_DYNAMODB_LOCAL_DIR, and an empty cache under tmp_path."""
    monkeypatch.delenv(ddbl.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize(
    "layout",
    [".", "emulator", "package/emulator", "node_modules/amplify-dynamodb-simulator/emulator"],
)
def test_the_engine_is_found_in_every_layout_npm_leaves(no_engine_settings, monkeypatch, layout):
    """The setting may name the emulator folder itself or any folder npm unpacked it into."""
    base = no_engine_settings / "engine"
    engine = fake_engine(base / layout)
    monkeypatch.setenv(ddbl.ENV_DIR, str(base))
    assert ddbl.find_engine() == engine.resolve()
    assert ddbl.find_engine(base) == engine.resolve()


def test_the_cache_folder_is_the_default(no_engine_settings):
    """Without a setting, the engine is looked for in the cache that `install` fills."""
    engine = fake_engine(no_engine_settings / "cache" / "jobcontroller" / "dynamodb-local")
    assert ddbl.find_engine() == engine.resolve()


def test_a_wrong_setting_is_reported_not_replaced_by_the_cache(no_engine_settings, monkeypatch):
    """A setting that names no engine says so, even when the cache holds one."""
    fake_engine(no_engine_settings / "cache" / "jobcontroller" / "dynamodb-local")
    monkeypatch.setenv(ddbl.ENV_DIR, str(no_engine_settings / "elsewhere"))
    with pytest.raises(ddbl.DynamoDBLocalMissing) as missing:
        ddbl.find_engine()
    message = str(missing.value)
    assert str(no_engine_settings / "elsewhere") in message
    assert ddbl.install_command() in message and ddbl.ENV_DIR in message


def test_missing_java_names_what_to_install(monkeypatch, tmp_path):
    """Without java on PATH or in JAVA_HOME, the error names the package that provides it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(ddbl.DynamoDBLocalMissing, match=r"Java 17.*apt-get install openjdk-17"):
        ddbl.find_java()


def test_a_missing_engine_stops_start_before_anything_changes(no_engine_settings):
    """start() without an engine raises the install advice and leaves the environment as it was."""
    before = dict(os.environ)
    engine = ddbl.DynamoDBLocal()
    with pytest.raises(ddbl.DynamoDBLocalMissing, match="install"):
        engine.start()
    assert dict(os.environ) == before
    assert not engine.running
    with pytest.raises(ConfigError, match="not running"):
        _ = engine.endpoint_url


def fake_npm(bin_dir: Path, tarball: bytes) -> Path:
    """An `npm` whose `pack` drops `tarball` into --pack-destination and counts its calls."""
    (bin_dir / "package.tgz.bytes").write_bytes(tarball)
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "here = pathlib.Path(__file__).parent\n"
        "calls = here / 'calls'\n"
        "calls.write_text(calls.read_text() + ' '.join(sys.argv[1:]) + '\\n'"
        " if calls.exists() else ' '.join(sys.argv[1:]) + '\\n')\n"
        "dest = pathlib.Path(sys.argv[sys.argv.index('--pack-destination') + 1])\n"
        "(dest / 'pkg-1.0.0.tgz').write_bytes((here / 'package.tgz.bytes').read_bytes())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir / "calls"


def npm_tarball() -> bytes:
    """The npm package's shape: package/emulator/ plus a link and a path that escapes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in [
            ("package/package.json", b"{}"),
            ("package/emulator/DynamoDBLocal.jar", b"jar"),
            ("package/emulator/DynamoDBLocal_lib/sqlite4java.jar", b"lib"),
            ("package/emulator/../../escaped.txt", b"must not land outside"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/emulator/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def test_install_unpacks_only_the_emulator_once(no_engine_settings, monkeypatch):
    """install() packs the pinned npm package and unpacks its emulator folder, and only that;
    a second call finds it and asks npm nothing."""
    bin_dir = no_engine_settings / "bin"
    bin_dir.mkdir()
    calls = fake_npm(bin_dir, npm_tarball())
    monkeypatch.setenv("PATH", str(bin_dir))
    target = no_engine_settings / "engine"
    engine = ddbl.install(target=target)
    assert engine == (target / "emulator").resolve()
    assert ddbl.find_engine(target) == engine
    assert sorted(p.name for p in engine.iterdir()) == ["DynamoDBLocal.jar", "DynamoDBLocal_lib"]
    assert not any(no_engine_settings.rglob("escaped.txt"))
    assert ddbl.install(target=target) == engine
    [call] = calls.read_text().splitlines()
    assert call.startswith(f"pack {ddbl.ENGINE_PACKAGE} ")


def test_install_without_npm_names_what_to_install(no_engine_settings, monkeypatch):
    """Without npm, install() says how to get it and creates nothing."""
    monkeypatch.setenv("PATH", str(no_engine_settings))
    with pytest.raises(ddbl.DynamoDBLocalMissing, match=r"needs npm.*apt-get install npm"):
        ddbl.install(target=no_engine_settings / "engine")
    assert not (no_engine_settings / "engine").exists()


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_an_engine_that_will_not_start_is_reported_with_its_log(no_engine_settings):
    """A broken engine ends start() with its exit code and log, exporting nothing."""
    engine_dir = fake_engine(no_engine_settings / "broken")
    before = dict(os.environ)
    engine = ddbl.DynamoDBLocal(engine_dir=engine_dir, start_timeout=60)
    # The log's tail is in the message: here, java's complaint about the jar.
    with pytest.raises(ddbl.DynamoDBLocalFailed, match=r"(?s)exited with code [1-9].*\.jar"):
        engine.start()
    assert dict(os.environ) == before
    assert not engine.running


@pytest.mark.dynamodb_local
def test_the_engine_serves_on_loopback_and_stops_cleanly(capfd):
    """Started as a context manager, the engine answers boto3 through the exported
    environment, keeps its log out of stdout and stderr, and is gone after the block."""
    import boto3

    before = dict(os.environ)
    with ddbl.DynamoDBLocal() as engine:
        url = engine.endpoint_url
        assert is_loopback(url) and os.environ["AWS_ENDPOINT_URL"] == url
        client = boto3.client("dynamodb")
        assert client.list_tables()["TableNames"] == []
        assert engine.start_seconds is not None and engine.start_seconds > 0
        log = engine.log_path
        assert log is not None and "DynamoDB Local" in log.read_text()
    assert dict(os.environ) == before
    assert not engine.running and engine.log_path is None
    out, err = capfd.readouterr()
    assert "DynamoDB Local" not in out + err
    port = urllib.parse.urlsplit(url).port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


@pytest.mark.dynamodb_local
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "kill"])
def test_serve_prints_exports_and_stops_the_engine_on_ctrl_c_or_kill(serving, stop):
    """`python -m jobcontroller.embedded.dynamodb_local serve`, started with SIGINT ignored
    (as a shell script's `&` job is), serves through its exports until Ctrl-C or `kill`,
    then stops the engine with it."""
    command = [sys.executable, "-m", "jobcontroller.embedded.dynamodb_local", "serve"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server, _, exports = serving(command, sigint="SIG_IGN", env=env)
    url = exports["AWS_ENDPOINT_URL"]
    assert is_loopback(url)
    server.send_signal(stop)
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    port = urllib.parse.urlsplit(url).port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


@pytest.mark.dynamodb_local
def test_start_dynamodb_local_is_one_engine_per_process():
    """The course's entry point starts one shared engine, returns it again on later calls,
    refuses another region, and reset() empties it; stop() restores the environment."""
    import boto3

    before = dict(os.environ)
    engine = ddbl.start_dynamodb_local()
    try:
        assert ddbl.start_dynamodb_local() is engine
        with pytest.raises(ConfigError, match="restart the kernel"):
            ddbl.start_dynamodb_local(region="eu-west-1")
        engine.client().create_table(
            TableName="scratch",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # One shared database: another region and access key see the same tables.
        other = boto3.client(
            "dynamodb",
            endpoint_url=engine.endpoint_url,
            region_name="eu-west-1",
            aws_access_key_id="someoneElse",
            aws_secret_access_key="x",
        )
        assert other.list_tables()["TableNames"] == ["scratch"]
        engine.reset()
        assert other.list_tables()["TableNames"] == []
    finally:
        engine.stop()
    assert dict(os.environ) == before and not engine.running
