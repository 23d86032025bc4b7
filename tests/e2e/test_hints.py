"""Every error ends in the fix of its class (issue 22), end to end through
the binary where only a real component reaches the error: a repository host
that refuses or never answers, an API URL where nothing listens, a real
server without the pool, a temporary directory that cannot hold a run's
working directory. The other classes are driven by
tests/unit/common/hint_test.cpp, which also fails for a class that neither
file drives (it looks for each class name, quoted, in this file)."""

from __future__ import annotations

import socket
import time

from harness import free_port
from hints import HINTS

# An idle tick runs no preflight (issue 30); a drain cycle is never idle.
WORK = {"PREFECT_CYCLE_DRAIN": "true"}


def fix(name: str) -> str:
    return "; fix: " + HINTS[name]


def failed_line(result) -> str:
    """The line on stderr that reports the failed phase (the last line is the
    cycle's outcome)."""
    [line] = [ln for ln in result.stderr.splitlines() if "phase failed in" in ln]
    return line


def assert_ends_in(result, name: str) -> None:
    assert result.summary["message"].endswith(fix(name)), result
    assert failed_line(result).endswith(fix(name)), result


def test_unreachable_repository_names_the_variable_and_how_to_skip(prefect, pool, cycle):
    port = free_port()  # closed: the connection is refused
    url = f"http://127.0.0.1:{port}/acme/flows.git"

    result = cycle.run(pool, {"PREFECT_WORKER_REPOSITORY": url, **WORK}, timeout=120)

    assert result.returncode == 4, result
    assert result.summary["message"].startswith(
        f"cannot reach repository {url} (host 127.0.0.1): "), result
    assert_ends_in(result, "repository.unreachable")
    assert HINTS["repository.unreachable"].startswith(
        "check PREFECT_WORKER_REPOSITORY (--repository)")
    assert "PREFECT_WORKER_VERIFY_REPOSITORY=false" in HINTS["repository.unreachable"]
    assert prefect.pool(pool).is_paused
    assert result.summary["pool_resumed"] is False, result.summary


def test_repository_that_never_answers_names_the_git_timeout(prefect, pool, cycle):
    with socket.socket() as silent:  # accepts (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/acme/flows.git"
        result = cycle.run(pool, {"PREFECT_WORKER_REPOSITORY": url,
                                  "PREFECT_WORKER_GIT_TIMEOUT_SECONDS": "2", **WORK}, timeout=60)

    assert result.returncode == 4, result
    assert (f"listing branches of {url} (host 127.0.0.1) did not finish within 2 s "
            "(PREFECT_WORKER_GIT_TIMEOUT_SECONDS)") in result.summary["message"]
    assert_ends_in(result, "repository.timeout")
    assert "PREFECT_WORKER_GIT_TIMEOUT_SECONDS (--git-timeout)" in HINTS["repository.timeout"]
    assert prefect.pool(pool).is_paused


def test_doctor_says_the_same_fix(pool, cycle):
    url = f"http://127.0.0.1:{free_port()}/acme/flows.git"

    result = cycle.run(pool, {"PREFECT_WORKER_REPOSITORY": url}, args=("doctor",))

    assert result.returncode == 4, result
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("✗ repository:")]
    assert line.endswith("— fix: " + HINTS["repository.unreachable"]), line


def test_api_url_where_nothing_listens(run_cycle):
    url = f"http://127.0.0.1:{free_port()}/api"

    # No retries (PREFECT_CLIENT_MAX_RETRIES=0): the hint is the same, sooner;
    # test_cycle.py waits out the default retries.
    result = run_cycle({"PREFECT_API_URL": url, "PREFECT_API_REQUEST_TIMEOUT": "2",
                        "PREFECT_CLIENT_MAX_RETRIES": "0"}, timeout=120, pool="any-pool")

    assert result.returncode == 3, result
    assert result.duration < 10, result
    assert result.summary["message"].startswith(f"cannot reach Prefect API at {url}: "), result
    assert_ends_in(result, "api.unreachable")


def test_pool_missing_on_a_real_server(prefect, cycle):
    name = f"no-such-pool-{time.monotonic_ns()}"

    result = cycle.run(name)

    assert result.returncode == 2, result
    assert result.summary["message"] == (
        f'PREFECT_WORK_POOL: work pool "{name}" not found at {prefect.server.api_url}'
        + fix("pool.not_found")), result
    assert failed_line(result).endswith(fix("pool.not_found")), result


def test_run_without_a_temporary_working_directory_crashes_with_the_fix(
        prefect, pool, cycle, tmp_path):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run_id] = prefect.schedule_runs(deployment_id, 1)
    # A TMPDIR that exists but leaves no room in PATH_MAX for the run's
    # directory below it: mkdtemp fails (ENAMETOOLONG), as on a full or
    # read-only /tmp, without needing either.
    tmpdir = tmp_path
    while len(str(tmpdir)) < 4096 - 16 - 201:
        tmpdir = tmpdir / ("d" * 200)
    tmpdir = tmpdir / ("d" * (4096 - 16 - len(str(tmpdir)) - 1))
    tmpdir.mkdir(parents=True)

    result = cycle.run(pool, {"TMPDIR": str(tmpdir)}, timeout=120)

    assert result.returncode == 1, result
    state = prefect.state(run_id)
    assert state.type.value == "CRASHED", state
    assert state.message.startswith(
        "Failed to submit flow run to infrastructure: cannot create the temporary working "
        "directory "), state.message
    assert state.message.endswith(fix("worker.temp_dir")), state.message
    assert prefect.pool(pool).is_paused
