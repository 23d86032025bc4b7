"""The repository preflight, code sync, requirements install and database
check (issue 4), end to end through the binary: real git repositories (file://
and over HTTP with Basic auth through nginx + fcgiwrap + git http-backend), a
real PostgreSQL, a real Prefect server and a real flow run."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from fault_proxy import FaultProxy
from git_server import GitHttpServer, Repo
from harness import VENV_BIN, VENV_PYTHON, _retry, _run
from pg_server import PostgresServer

# An idle tick runs no preflight (issue 30); a drain cycle is never idle, so
# these cycles on an empty pool run it and then resume and pause the pool.
WORK = {"PREFECT_CYCLE_DRAIN": "true"}

TOKEN = "ghp_e2eRightToken0123456789"
WRONG_TOKEN = "ghp_e2eWrongToken9876543210"
ALICE_PASSWORD = "alice-pw-4567"


@pytest.fixture(scope="module")
def git_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("git-root")
    Repo(root, "app", ("main", "develop", "release-2024"))
    return root


@pytest.fixture(scope="module")
def git_http(git_root):
    server = GitHttpServer(git_root, {"x-access-token": TOKEN, "alice": ALICE_PASSWORD}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


def assert_secret_absent(result, *secrets: str) -> None:
    summary = json.dumps(result.summary) if result.summary else ""
    for secret in secrets:
        assert secret not in result.stdout, result
        assert secret not in result.output, result
        assert secret not in summary, result


def assert_preflight_failed(result, prefect, pool) -> None:
    assert result.returncode == 4, result
    assert result.summary["exit_code"] == 4
    assert [p["name"] for p in result.summary["phases"]][:1] == ["preflight"]
    assert result.summary["phases"][0]["status"] == "failed"
    # A broken setup never resumes the pool.
    assert "resume" not in [p["name"] for p in result.summary["phases"]
                            if p["status"] != "skipped"]
    assert prefect.pool(pool).is_paused


# --- idle means idle ---------------------------------------------------------


def logging_python(tmp_path: Path) -> tuple[Path, Path]:
    """An interpreter that records each time it is started (a pip or uv
    install, the Prefect probe), then runs the venv's."""
    log = tmp_path / "python-calls.log"
    wrapper = tmp_path / "logging-python"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {VENV_PYTHON} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def test_idle_tick_syncs_installs_and_probes_nothing(
        prefect, prefect_server, pool, cycle, git_root, git_http, tmp_path):
    repo = Repo(git_root, f"idle-{uuid.uuid4().hex[:8]}")
    repo.commit({"requirements.txt": "--no-index\nno-such-package-pc-e2e==1.0\n"})
    python, calls = logging_python(tmp_path)
    code_dir = tmp_path / "code"
    access_log = git_http.dir / "logs" / "access.log"
    served_before = access_log.read_text() if access_log.exists() else ""
    recorder = FaultProxy(prefect_server.api_url.removesuffix("/api")).start()
    try:
        result = cycle.run(pool, {"PREFECT_API_URL": recorder.api_url,
                                  "PREFECT_WORKER_REPOSITORY": git_http.url(repo.bare.stem),
                                  "GITHUB_ACCESS_TOKEN": TOKEN,
                                  "PREFECT_WORKER_CODE_DIR": str(code_dir),
                                  "PREFECT_WORKER_PYTHON": str(python),
                                  "PREFECT_WORKER_CHECK_DATABASE": "true",
                                  "DATABASE_URL": "postgresql://a:b@127.0.0.1:1/x"})
    finally:
        recorder.stop()

    assert result.returncode == 0, result
    assert len(recorder.log) == 3, recorder.log
    assert [(p["name"], p["status"]) for p in result.summary["phases"]][0] == (
        "preflight", "skipped"), result.summary
    assert "no code sync, install, database check or interpreter probe" in result.output
    served = access_log.read_text() if access_log.exists() else ""
    assert repo.bare.name not in served[len(served_before):], served  # no git at all
    assert not code_dir.exists()       # nothing cloned
    assert not calls.exists(), calls.read_text()  # no installer, no probe
    assert prefect.pool(pool).is_paused


# --- repository over HTTP with Basic auth ------------------------------------


def test_http_right_token_passes(prefect, pool, cycle, git_http):
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": git_http.url("app"),
                              "GITHUB_ACCESS_TOKEN": TOKEN})
    assert result.returncode == 0, result
    assert 'branch "main" present' in result.output
    assert result.summary["phases"][0]["name"] == "preflight"
    assert result.summary["phases"][0]["status"] == "ok"
    assert_secret_absent(result, TOKEN)
    assert prefect.pool(pool).is_paused


def test_http_wrong_token_is_rejected_by_the_server(prefect, pool, cycle, git_http):
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": git_http.url("app"),
                              "GITHUB_ACCESS_TOKEN": WRONG_TOKEN})
    assert_preflight_failed(result, prefect, pool)
    assert f"authentication to {git_http.url('app')} (host 127.0.0.1) failed" in result.output
    assert "tried GITHUB_ACCESS_TOKEN as user x-access-token" in result.output
    assert_secret_absent(result, WRONG_TOKEN, TOKEN)


def test_http_user_password_in_url(prefect, pool, cycle, git_http):
    good = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": git_http.url("app", f"alice:{ALICE_PASSWORD}")})
    assert good.returncode == 0, good
    assert_secret_absent(good, ALICE_PASSWORD)

    bad = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": git_http.url("app", "alice:not-the-pw-99")})
    assert_preflight_failed(bad, prefect, pool)
    assert "tried the user:password in PREFECT_WORKER_REPOSITORY" in bad.output
    assert "alice:***@127.0.0.1" in bad.output
    assert_secret_absent(bad, "not-the-pw-99", ALICE_PASSWORD)


def test_http_missing_branch_lists_branches_and_suggests(prefect, pool, cycle, git_http):
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": git_http.url("app"),
                              "GITHUB_ACCESS_TOKEN": TOKEN, "PREFECT_WORKER_BRANCH": "devlop"})
    assert_preflight_failed(result, prefect, pool)
    assert 'branch "devlop" not found in' in result.output
    assert "it has " in result.output
    for branch in ("main", "develop", "release-2024"):
        assert branch in result.summary["message"]
    assert 'did you mean "develop"?' in result.output


def test_unreachable_host_fails_within_the_timeout(prefect, pool, cycle):
    # Accepts connections (kernel backlog) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        url = f"http://127.0.0.1:{port}/git/app.git"
        started = time.monotonic()
        result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": url,
                                  "PREFECT_WORKER_GIT_TIMEOUT_SECONDS": "3"}, timeout=60)
        elapsed = time.monotonic() - started
    assert_preflight_failed(result, prefect, pool)
    assert "(host 127.0.0.1) did not finish within 3 s" in result.output
    assert elapsed < 3 + 6, result  # 3 s of git plus process start and the API calls


def test_refused_connection_names_host_and_libgit2_error(prefect, pool, cycle):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/git/app.git"
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": url})
    assert_preflight_failed(result, prefect, pool)
    assert f"cannot reach repository {url} (host 127.0.0.1):" in result.output


# --- code sync, requirements, PYTHONPATH, a real flow -------------------------


def make_wheel(dest: Path, name: str) -> Path:
    """A minimal pure-Python wheel, written by hand: installing it needs no
    build backend and no network."""
    version = "0.1"
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "MARK = 'installed-from-requirements'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


REPO_FLOW = '''
import json
import os

from prefect import flow


@flow(name="uses-repo")
def uses_repo(marker: str):
    import helper_mod  # from the root of the synced repository
    import {pkg}       # installed from the repository's requirements.txt

    with open(marker, "w") as f:
        json.dump({{
            "pythonpath": os.environ.get("PYTHONPATH", ""),
            "cwd": os.getcwd(),
            "helper_file": helper_mod.__file__,
            "helper_value": helper_mod.VALUE,
            "pkg_mark": {pkg}.MARK,
            "database_url": os.environ.get("DATABASE_URL", ""),
        }}, f)
'''


@pytest.fixture
def local_package():
    """A uniquely named package for the venv, uninstalled afterwards."""
    name = f"pc_e2e_pkg_{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "uninstall", "-y", "-q",
                    name.replace("_", "-")], capture_output=True)


def deploy_from_code_dir(prefect, pool: str, entrypoint: str, flow_name: str) -> str:
    """A deployment whose entrypoint is relative to the code directory: no
    pull steps, so the flow run loads it from its working directory."""
    flow_id = prefect.call("create_flow_from_name", flow_name)

    async def go():
        async with prefect._client() as c:
            return await c.create_deployment(flow_id=flow_id, name="from-repo",
                                             work_pool_name=pool, entrypoint=entrypoint)

    return str(_retry(lambda: _run(go())))


def test_sync_install_and_a_flow_importing_from_the_repository(
        prefect, pool, cycle, tmp_path, local_package):
    root = tmp_path / "git"
    root.mkdir()
    repo = Repo(root, "code")
    wheel = make_wheel(repo.work / "wheels", local_package)
    commit = repo.commit({
        "helper_mod.py": "VALUE = 'from-the-repo'\n",
        "flows/app_flow.py": REPO_FLOW.format(pkg=local_package),
        "requirements.txt": f"--no-index\n./wheels/{wheel.name}\n",
    })
    code_dir = tmp_path / "checkout" / "code"
    deployment_id = deploy_from_code_dir(prefect, pool, "flows/app_flow.py:uses_repo", "uses-repo")
    marker = tmp_path / "marker.json"
    [run] = prefect.schedule_runs(deployment_id, 1, {"marker": str(marker)})
    db_password = "public-db-pw-321"

    result = cycle.run(pool, WORK | {
        "PREFECT_WORKER_REPOSITORY": repo.file_url,
        "PREFECT_WORKER_CODE_DIR": str(code_dir),
        # pip's own lines are asserted here; uv's are in test_install.py.
        "PREFECT_CYCLE_INSTALLER": "pip",
        "PYTHONPATH": "/opt/existing-path",
        "DATABASE_PUBLIC_URL": f"postgresql://app:{db_password}@db.example.invalid:5432/app",
    })

    assert result.returncode == 0, result
    assert prefect.state_type(run) == "COMPLETED", result
    assert f"cloned {code_dir} to main at {commit}" in result.output
    assert "Successfully installed" in result.output
    assert "source=pip" in result.output  # pip's output streamed into the log
    assert "DATABASE_URL is not set: the flow runs get it from DATABASE_PUBLIC_URL" in result.output
    assert_secret_absent(result, db_password)

    seen = json.loads(marker.read_text())
    assert seen["pythonpath"].split(":")[:2] == [str(code_dir), "/opt/existing-path"]
    assert seen["cwd"] == str(code_dir)
    assert seen["helper_file"] == str(code_dir / "helper_mod.py")
    assert seen["helper_value"] == "from-the-repo"
    assert seen["pkg_mark"] == "installed-from-requirements"
    assert seen["database_url"].endswith(f":{db_password}@db.example.invalid:5432/app")

    # Second cycle: a new commit on the remote, an untracked file in the checkout.
    newer = repo.commit({"helper_mod.py": "VALUE = 'second'\n"})
    (code_dir / "stray.txt").write_text("left over\n")
    again = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": repo.file_url,
                             "PREFECT_WORKER_CODE_DIR": str(code_dir),
                             "PREFECT_WORKER_INSTALL_REQUIREMENTS": "false"})
    assert again.returncode == 0, again
    # stray.txt and the __pycache__ directories the flow run left
    assert f"updated {code_dir} to main at {newer} (removed 3 untracked path(s))" in again.output
    assert not (code_dir / "stray.txt").exists()
    assert not (code_dir / "__pycache__").exists()
    assert (code_dir / "helper_mod.py").read_text() == "VALUE = 'second'\n"


def test_failing_requirements_install_is_exit_4(prefect, pool, cycle, tmp_path):
    root = tmp_path / "git"
    root.mkdir()
    repo = Repo(root, "code")
    repo.commit({"requirements.txt": "--no-index\nno-such-package-pc-e2e==1.0\n"})
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": repo.file_url,
                              "PREFECT_WORKER_CODE_DIR": str(tmp_path / "code"),
                              "PREFECT_CYCLE_INSTALLER": "pip"})  # pip's message, below
    assert_preflight_failed(result, prefect, pool)
    assert "installing requirements from" in result.summary["message"]
    assert "No matching distribution found for no-such-package-pc-e2e" in result.output


def test_directory_in_the_way_is_refused_and_untouched(prefect, pool, cycle, tmp_path):
    root = tmp_path / "git"
    root.mkdir()
    repo = Repo(root, "code")
    code_dir = tmp_path / "precious"
    code_dir.mkdir()
    (code_dir / "data.txt").write_text("keep me\n")
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_REPOSITORY": repo.file_url,
                              "PREFECT_WORKER_CODE_DIR": str(code_dir)})
    assert_preflight_failed(result, prefect, pool)
    assert f"code directory {code_dir} exists but is not a git repository" in result.output
    assert sorted(p.name for p in code_dir.iterdir()) == ["data.txt"]
    assert (code_dir / "data.txt").read_text() == "keep me\n"


# --- database -------------------------------------------------------------------


def test_database_check_passes_with_the_right_url(prefect, pool, cycle, postgres):
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_CHECK_DATABASE": "true",
                              "DATABASE_URL": postgres.url()})
    assert result.returncode == 0, result
    assert "database answered SELECT 1" in result.output
    assert_secret_absent(result, postgres.password)


def test_database_check_from_public_url(prefect, pool, cycle, postgres):
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_CHECK_DATABASE": "true",
                              "DATABASE_PUBLIC_URL": postgres.url()})
    assert result.returncode == 0, result
    assert "get it from DATABASE_PUBLIC_URL" in result.output
    assert_secret_absent(result, postgres.password)


def test_database_check_wrong_password(prefect, pool, cycle, postgres):
    wrong = "pg-wrong-pw-789"
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_CHECK_DATABASE": "true",
                              "DATABASE_URL": postgres.url(password=wrong)})
    assert_preflight_failed(result, prefect, pool)
    assert f"database check failed for {postgres.user}@127.0.0.1:{postgres.port}" in result.output
    assert "password authentication failed" in result.output
    assert_secret_absent(result, wrong, postgres.password)


def test_database_check_nothing_listening(prefect, pool, cycle, postgres):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cycle.run(pool, WORK | {"PREFECT_WORKER_CHECK_DATABASE": "true",
                              "DATABASE_URL": postgres.url(port=port)})
    assert_preflight_failed(result, prefect, pool)
    assert "Connection refused" in result.output
    assert_secret_absent(result, postgres.password)
