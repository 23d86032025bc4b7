"""`prefect-cycle doctor` (issue 5) against the real server: one line per check,
✓/✗ with the fix, the exit code of the first failing class, `--json`, and
nothing changed on the server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from git_server import Repo
from harness import Cycle
from hints import HINTS


def prefect_version() -> str:
    """The venv's Prefect (scripts/setup.sh's pin): the server's and the flows'."""
    import prefect

    return prefect.__version__


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(result) -> dict[str, str]:
    """The doctor's output lines by check name ("✓ pool: ..." -> {"pool": "✓ pool: ..."})."""
    out = {}
    for line in result.stdout.splitlines():
        mark, _, rest = line.partition(" ")
        name, sep, _ = rest.partition(": ")
        if mark in ("✓", "✗", "-") and sep:
            out[name] = line
    return out


def failed(result) -> list[str]:
    return [name for name, line in lines(result).items() if line.startswith("✗")]


def snapshot(prefect, pool: str) -> tuple:
    """What doctor must not change: the pool, its worker rows, its runs' states."""
    p = prefect.pool(pool)
    runs = sorted((str(r.id), r.state.type.value) for r in prefect.pool_runs(pool))
    workers = sorted(w.name for w in prefect.call("read_workers_for_work_pool", pool))
    return (p.is_paused, p.status, workers, runs)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return Repo(tmp_path_factory.mktemp("doctor-git"), "app", ("main", "develop"))


def test_all_checks_pass_and_nothing_changes(prefect, pool, deploy, schedule_runs, cycle, repo):
    deployment_id, name = deploy(pool, "flows.py", "hello")
    schedule_runs(deployment_id, 2)
    before = snapshot(prefect, pool)

    result = cycle.run(pool, {"PREFECT_TRIGGER_DEPLOYMENTS": name,
                              "PREFECT_WORKER_REPOSITORY": repo.file_url,
                              "PREFECT_WORKER_BRANCH": "develop"}, args=("doctor",))

    assert result.returncode == 0, result
    checks = lines(result)
    assert failed(result) == []
    for name_ in ("config", "api.url", "api.dns", "api.tcp", "api.health", "api.version",
                  "api.auth", "pool", f"deployment {name}", "repository", "python", "git"):
        assert checks[name_].startswith("✓"), result
    assert checks["api.version"] == f"✓ api.version: server is Prefect {prefect_version()}"
    assert checks["pool"] == (f'✓ pool: work pool "{pool}": type process, paused (the cycle '
                              "resumes it), status PAUSED")
    assert checks[f"deployment {name}"] == (f'✓ deployment {name}: exists in work pool "{pool}"')
    assert checks["python"].startswith("✓ python: ") and checks["python"].endswith(
        f"imports Prefect {prefect_version()}")
    assert checks["database"] == "- database: PREFECT_WORKER_CHECK_DATABASE is off"
    assert snapshot(prefect, pool) == before


def test_json_has_the_same_checks(prefect, pool, cycle):
    text = cycle.run(pool, args=("doctor",))
    result = cycle.run(pool, args=("doctor", "--json"))

    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["exit_code"] == 0
    assert [c["name"] for c in report["checks"]] == list(lines(text))
    assert {c["name"]: c["ok"] for c in report["checks"]}["pool"] is True


def test_not_ready_pool_is_explained(prefect, cycle):
    pool = prefect.create_pool(paused=False)
    result = cycle.run(pool, args=("doctor",))

    assert result.returncode == 0, result
    assert lines(result)["pool"] == (
        f'✓ pool: work pool "{pool}": type process, not paused, status NOT_READY (no worker has '
        "heartbeated within 3 heartbeat intervals: expected between cycles)")


def test_url_without_api(prefect_server, pool, cycle):
    base = prefect_server.api_url.removesuffix("/api")
    result = cycle.run(pool, {"PREFECT_API_URL": base}, args=("doctor",))

    assert result.returncode == 2, result
    assert lines(result)["api.url"] == (
        f'✗ api.url: PREFECT_API_URL "{base}" does not end in /api — fix: set PREFECT_API_URL '
        "(--api-url) to http(s)://host:port/api (self-hosted) or "
        "https://api.prefect.cloud/api/accounts/<account>/workspaces/<workspace> (Cloud)")
    # The host is reached, but nothing after the URL check is asked of it.
    assert lines(result)["api.tcp"].startswith("✓")
    assert lines(result)["pool"] == "- pool: not checked: fix PREFECT_API_URL first"


def test_nothing_listening(pool, cycle):
    port = free_port()
    result = cycle.run(pool, {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}, args=("doctor",))

    assert result.returncode == 3, result
    assert lines(result)["api.tcp"] == (
        f"✗ api.tcp: cannot connect to 127.0.0.1:{port}: Connection refused — fix: check the "
        "port in PREFECT_API_URL (--api-url), that the Prefect server runs and listens on it "
        "(prefect server start --host 0.0.0.0 for remote access), and the firewall")
    assert lines(result)["pool"] == "- pool: not checked: the API is not reachable"


def test_unknown_host(pool, cycle):
    result = cycle.run(pool, {"PREFECT_API_URL": "http://no-such-host.invalid/api"},
                       args=("doctor",))

    assert result.returncode == 3, result
    assert lines(result)["api.dns"].startswith(
        '✗ api.dns: cannot resolve host "no-such-host.invalid": ')
    assert lines(result)["api.dns"].endswith(
        "— fix: check the host name in PREFECT_API_URL (--api-url) and the machine's DNS")


def test_missing_pool(cycle):
    result = cycle.run("no-such-pool", args=("doctor",))

    assert result.returncode == 2, result
    assert failed(result) == ["pool"]
    assert lines(result)["pool"] == (
        '✗ pool: work pool "no-such-pool" not found — fix: create it (prefect work-pool create '
        "no-such-pool --type process), set PREFECT_WORK_POOL_CREATE=true (--create-pool), or "
        "correct PREFECT_WORK_POOL (--pool)")


def test_pool_of_another_type(prefect, cycle):
    pool = prefect.create_pool(type_="docker")
    result = cycle.run(pool, args=("doctor",))

    assert result.returncode == 2, result
    assert lines(result)["pool"] == (
        f'✗ pool: work pool "{pool}": type docker, paused (the cycle resumes it), status PAUSED '
        '— fix: the pool\'s type is "docker" but PREFECT_WORKER_TYPE is "process": set '
        "PREFECT_WORKER_TYPE=docker (--worker-type)")


def test_deployments_missing_or_in_another_pool(prefect, pool, deploy, cycle):
    other = prefect.create_pool()
    _, elsewhere = deploy(other, "flows.py", "hello", name="elsewhere")
    result = cycle.run(pool, {"PREFECT_TRIGGER_DEPLOYMENTS": f"{elsewhere},nope/nope"},
                       args=("doctor",))

    assert result.returncode == 2, result
    assert lines(result)[f"deployment {elsewhere}"] == (
        f'✗ deployment {elsewhere}: deployment "{elsewhere}" belongs to work pool "{other}" — '
        f'fix: this cycle drains "{pool}": its runs would wait for another worker; move the '
        "deployment to this pool or remove it from PREFECT_TRIGGER_DEPLOYMENTS (--trigger)")
    assert lines(result)["deployment nope/nope"] == (
        '✗ deployment nope/nope: deployment "nope/nope" not found — fix: '
        + HINTS["deployment.not_found"])


def test_missing_or_wrong_auth_string(auth_prefect_server, tmp_path):
    doctor = Cycle(auth_prefect_server, tmp_path)
    missing = doctor.run("any-pool", args=("doctor",))
    wrong = doctor.run("any-pool", {"PREFECT_API_AUTH_STRING": "admin:wrong-canary-pw"},
                       args=("doctor",))

    for result in (missing, wrong):
        assert result.returncode == 3, result
        assert failed(result) == ["api.auth"], result
    url = f"{auth_prefect_server.api_url}/work_pools/any-pool"
    answer = f"✗ api.auth: GET {url}: 401 Unauthorized: Unauthorized — fix: "
    assert lines(missing)["api.auth"] == answer + (
        "the server wants credentials: set PREFECT_API_AUTH_STRING=user:pass "
        "(--api-auth-string; self-hosted with PREFECT_SERVER_API_AUTH_STRING) or "
        "PREFECT_API_KEY (--api-key; Cloud)")
    assert lines(wrong)["api.auth"] == answer + (
        "the server rejected PREFECT_API_AUTH_STRING (--api-auth-string): it must equal the "
        "server's PREFECT_SERVER_API_AUTH_STRING (user:pass)")
    assert "wrong-canary-pw" not in wrong.stdout + wrong.stderr


def test_python_missing_or_without_prefect(pool, cycle):
    missing = cycle.run(pool, {"PREFECT_WORKER_PYTHON": "/nonexistent/python"}, args=("doctor",))
    bare = cycle.run(pool, {"PREFECT_WORKER_PYTHON": "/usr/bin/python3"}, args=("doctor",))

    assert missing.returncode == 4, missing
    assert lines(missing)["python"] == (
        '✗ python: PREFECT_WORKER_PYTHON: "/nonexistent/python" not found — fix: '
        + HINTS["python"])
    assert bare.returncode == 4, bare
    assert lines(bare)["python"] == (
        "✗ python: /usr/bin/python3 cannot import Prefect (exit code 1): ModuleNotFoundError: No "
        "module named 'prefect' — fix: " + HINTS["python"])


def test_missing_branch(pool, cycle, repo):
    result = cycle.run(pool, {"PREFECT_WORKER_REPOSITORY": repo.file_url,
                              "PREFECT_WORKER_BRANCH": "mian"}, args=("doctor",))

    assert result.returncode == 4, result
    assert failed(result) == ["repository"]
    assert lines(result)["repository"] == (
        f'✗ repository: branch "mian" not found in {repo.file_url} — fix: '
        + HINTS["repository.branch"])


def test_database_unreachable(pool, cycle):
    port = free_port()
    password = "doctor-db-canary-pw"
    result = cycle.run(pool, {"PREFECT_WORKER_CHECK_DATABASE": "true",
                              "DATABASE_URL": f"postgresql://u:{password}@127.0.0.1:{port}/db"},
                       args=("doctor",))

    assert result.returncode == 4, result
    line = lines(result)["database"]
    assert line.startswith(f"✗ database: database check failed for u@127.0.0.1:{port}/db "
                           "(DATABASE_URL): cannot connect: "), line
    assert line.endswith("— fix: " + HINTS["database.unreachable"]), line
    assert password not in result.stdout + result.stderr


def test_git_not_on_path(pool, cycle, tmp_path):
    bin_dir = Path(tmp_path) / "bin"
    bin_dir.mkdir()
    result = cycle.run(pool, {"PATH": str(bin_dir)}, args=("doctor",))

    assert result.returncode == 0, result
    # Only Prefect's git_clone pull step needs git: not a failure (images built
    # with PREFECT_CYCLE_INSTALL_GIT=false).
    assert lines(result)["git"] == (
        "- git: git is not on PATH: deployments with a git_clone pull step need it (the image's "
        "PREFECT_CYCLE_INSTALL_GIT build argument); nothing else does")
