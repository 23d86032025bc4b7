"""What users copy (issue 16, parts 3 and 8): railway.toml, the GitHub Actions
workflow and the docker-compose file are parsed and checked, and the commands
they run are run here with the real binary against the suite's real Prefect
server, with only the API URL and the pool substituted. Plus the LICENSE."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml

from harness import ROOT

RAILWAY = ROOT / "railway.toml"
WORKFLOW = ROOT / "examples" / "github-actions.yml"
COMPOSE = ROOT / "examples" / "docker-compose.yml"
SECRET_NAMES = {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "GITHUB_ACCESS_TOKEN",
                "DATABASE_URL", "DATABASE_PUBLIC_URL"}
# The time the cycle needs after SIGTERM besides its flows' grace: report the
# stopped runs and pause the pool.
PAUSE_AND_REPORT_SECONDS = 10


def setup_pins() -> dict[str, str]:
    """PREFECT_VERSION and FASTAPI_VERSION as scripts/setup.sh pins them."""
    text = (ROOT / "scripts" / "setup.sh").read_text()
    return dict(re.findall(r"^(PREFECT_VERSION|FASTAPI_VERSION)=\$\{\w+:-([^}]+)\}", text, re.M))


def default_grace_seconds(binary) -> int:
    """PREFECT_CYCLE_GRACE_SECONDS's default, from the binary's own `config`."""
    proc = subprocess.run([str(binary), "config"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^PREFECT_CYCLE_GRACE_SECONDS\s+(\d+)\s+\[default\]", proc.stdout, re.M)
    assert match, proc.stdout
    return int(match.group(1))


# --- railway.toml

def test_railway_toml_lets_a_stopped_cycle_clean_up(binary):
    config = tomllib.loads(RAILWAY.read_text())
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert (ROOT / config["build"]["dockerfilePath"]).is_file()
    deploy = config["deploy"]
    assert deploy["restartPolicyType"] == "NEVER"
    assert isinstance(deploy["cronSchedule"], str) and len(deploy["cronSchedule"].split()) == 5
    draining = deploy["drainingSeconds"]
    # Railway's parser rejects a string ("Expected number, received string").
    assert type(draining) is int, f"drainingSeconds must be a TOML integer, not {draining!r}"
    assert draining >= default_grace_seconds(binary) + PAUSE_AND_REPORT_SECONDS, draining
    assert set(deploy) == {"cronSchedule", "restartPolicyType", "drainingSeconds"}, deploy


# --- examples/github-actions.yml

def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def docker_run_steps(data: dict) -> list[dict]:
    [job] = data["jobs"].values()
    return [s for s in job["steps"] if "docker run" in s.get("run", "")]


def parse_docker_run(command: str) -> tuple[list[str], list[str]]:
    """(names passed with -e NAME, the arguments after the image)."""
    words = shlex.split(command)
    assert words[:3] == ["docker", "run", "--rm"], words
    names, i = [], 3
    while words[i].startswith("-"):
        assert words[i] == "-e", f"only -e NAME options expected: {words}"
        assert "=" not in words[i + 1], f"a value written into the command: {words[i + 1]}"
        names.append(words[i + 1])
        i += 2
    assert words[i] == "$IMAGE", words
    return names, words[i + 1:]


def test_workflow_builds_the_image_then_checks_without_changing_anything():
    data = workflow()
    assert data["on"] and data["permissions"] == {"contents": "read"}
    [(job_name, job)] = data["jobs"].items()
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    build = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert len(build) == 1 and build[0]["with"]["context"] == "."
    assert build[0]["with"]["load"] is True
    assert build[0]["with"]["tags"] == job["env"]["IMAGE"]
    assert steps.index(build[0]) < steps.index(docker_run_steps(data)[0])
    commands = [parse_docker_run(s["run"])[1] for s in docker_run_steps(data)]
    assert commands == [["doctor", "--json"], ["run", "--dry-run"]]


def test_workflow_has_no_inline_secrets():
    text = WORKFLOW.read_text()
    assert not re.search(r"pnu_[A-Za-z0-9]{8,}", text), "a Prefect API key in the file"
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"
    for step in docker_run_steps(workflow()):
        names, _ = parse_docker_run(step["run"])
        assert {"PREFECT_API_URL", "PREFECT_WORK_POOL"} <= set(names)
        for name in names:
            value = step["env"][name]
            if name in SECRET_NAMES or name == "PREFECT_API_URL":
                assert value == f"${{{{ secrets.{name} }}}}", (name, value)
            else:
                assert re.fullmatch(r"\$\{\{ (secrets|vars)\.\w+ \}\}", value), (name, value)


def test_workflow_commands_run_against_a_real_server(prefect_server, prefect, pool, cycle):
    """Each step's command with its environment: the API URL secret and the
    pool variable point at the suite's server; the other secrets are unset
    (GitHub gives an empty string, which the binary treats as unset)."""
    stand_in = {"secrets.PREFECT_API_URL": prefect_server.api_url, "vars.PREFECT_WORK_POOL": pool}
    for step in docker_run_steps(workflow()):
        names, args = parse_docker_run(step["run"])
        env = {}
        for name in names:
            expression = re.fullmatch(r"\$\{\{ (\S+) \}\}", step["env"][name]).group(1)
            env[name] = stand_in.get(expression, "")
        result = cycle.run(None, env, args=args, timeout=120)
        failed = [line for line in result.stdout.splitlines() if '"ok": false' in line
                  or '"detail"' in line or '"fix"' in line]
        assert result.returncode == 0, (result.returncode, failed or result.stdout,
                                        result.stderr[-3000:])
        if args == ["doctor", "--json"]:
            report = json.loads(result.stdout)
            assert report["ok"] is True and report["exit_code"] == 0, result.stdout
            checks = {c["name"]: c for c in report["checks"]}
            assert checks["pool"]["ok"] is True and pool in json.dumps(checks["pool"])
            assert checks["api.auth"]["ok"] is True
        else:
            assert result.stdout.startswith("plan (dry run: nothing is changed on the server)\n")
            assert f'work pool: "{pool}"' in result.stdout
    assert prefect.pool(pool).is_paused
    assert prefect.call("read_workers_for_work_pool", pool) == []


# --- examples/docker-compose.yml

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_runs_a_pinned_prefect_server_on_postgres():
    services = compose()["services"]
    assert set(services) == {"postgres", "prefect-server", "cycle"}
    pg = services["postgres"]
    assert pg["image"] == "postgres:15"
    server = services["prefect-server"]
    pins = setup_pins()
    inline = server["build"]["dockerfile_inline"]
    assert re.search(rf"^FROM prefecthq/prefect:{re.escape(pins['PREFECT_VERSION'])}-python3\.\d+$",
                     inline, re.M), inline
    assert f"fastapi=={pins['FASTAPI_VERSION']}" in inline, "the same FastAPI pin as setup.sh"
    url = server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    pe = pg["environment"]
    assert url == (f"postgresql+asyncpg://{pe['POSTGRES_USER']}:{pe['POSTGRES_PASSWORD']}"
                   f"@postgres:5432/{pe['POSTGRES_DB']}")
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert server["command"][:3] == ["prefect", "server", "start"]
    port = server["command"][server["command"].index("--port") + 1]
    assert all(p.startswith("127.0.0.1:") for p in server["ports"]), "not on every interface"
    cycle = services["cycle"]
    assert cycle["environment"]["PREFECT_API_URL"] == f"http://prefect-server:{port}/api"
    assert (COMPOSE.parent / cycle["build"]["context"] / cycle["build"]["dockerfile"]).resolve() \
        == ROOT / "Dockerfile"
    assert cycle["restart"] == "no"
    assert cycle["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    # Every value a string: docker compose rejects a YAML boolean in environment.
    for service in services.values():
        for name, value in service.get("environment", {}).items():
            assert isinstance(value, str), (name, value)


def test_compose_cycle_service_drains_a_pool_on_a_real_server(
        prefect_server, prefect, deploy, schedule_runs, cycle):
    """The cycle service's command and environment, pointed at the suite's
    server: the first run creates its pool (PREFECT_WORK_POOL_CREATE), the
    second drains a due run."""
    service = compose()["services"]["cycle"]
    env = dict(service["environment"])
    pool = f"compose-{uuid.uuid4().hex[:8]}"
    env.update(PREFECT_API_URL=prefect_server.api_url, PREFECT_WORK_POOL=pool)
    args = service["command"]

    first = cycle.run(None, env, args=args, timeout=120)
    assert first.returncode == 0, first
    assert prefect.pool(pool).is_paused

    deployment_id, _ = deploy(pool, "flows.py", "hello")
    [run] = schedule_runs(deployment_id, 1)
    second = cycle.run(None, env, args=args, timeout=180)
    assert second.returncode == 0, second
    assert prefect.state_type(run) == "COMPLETED"
    assert second.summary["worker_name"] == env["PREFECT_WORKER_NAME"]
    assert prefect.pool(pool).is_paused


def test_compose_stop_grace_covers_the_cycle_cleanup(binary):
    period = compose()["services"]["cycle"]["stop_grace_period"]
    seconds = int(re.fullmatch(r"(\d+)s", period).group(1))
    assert seconds >= default_grace_seconds(binary) + PAUSE_AND_REPORT_SECONDS


# --- LICENSE

def test_license_is_apache_2_with_our_copyright_line():
    text = (ROOT / "LICENSE").read_text()
    first, _, body = text.partition("\n")
    assert first == "Copyright 2026 The prefect-cycle authors"
    debian = Path("/usr/share/common-licenses/Apache-2.0")
    if debian.exists():
        assert body == debian.read_text()
    else:
        assert "Apache License\n" in body and "Version 2.0, January 2004" in body
        assert "END OF TERMS AND CONDITIONS" in body
