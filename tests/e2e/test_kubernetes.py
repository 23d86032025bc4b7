"""The Kubernetes CronJob in deploy/kubernetes (issue 20, docs/kubernetes.md):

- every manifest matches the real Kubernetes API types (strict walk over the
  official client's models, k8s_check.py), and a broken copy does not;
- checkov finds nothing that is not skipped with a reason in the manifest,
  and does find a broken copy;
- the kustomization renders (kubectl kustomize) to manifests that pass too;
- the numbers in the manifest hold together (deadline > wait timeout +
  preflight + grace + pause; termination grace > cycle grace + pause);
- the kubelet's stop sequence run for real against the binary in a pod-like
  sandbox: PID 1 of its own PID namespace, its own hostname, uid/gid 10001,
  no capabilities, no_new_privs, a READ-ONLY root filesystem with only HOME
  (PREFECT_HOME) and /tmp writable, as the manifest's emptyDirs: SIGTERM to
  PID 1, SIGKILL after terminationGracePeriodSeconds.

The lint venv (checkov + the kubernetes client, ~100 s once) is created by
the `lint_venv` fixture; see k8s_check.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import k8s_check
from harness import ROOT, VENV_PYTHON, CycleProcess, binary_path, wait_for

MANIFESTS = [k8s_check.MANIFEST_DIR / n
             for n in ("cronjob.yaml", "configmap.yaml", "secret.example.yaml")]
KUSTOMIZATION = k8s_check.MANIFEST_DIR / "kustomization.yaml"
# Budgets behind the manifest's deadlines (cronjob.yaml's header comment):
# preflight (git sync, pip) and the end of a stopped cycle (reporting the
# runs, deleting the worker row, the pause request).
PREFLIGHT_BUDGET = 120
PAUSE_BUDGET = 30
IMAGE_UID = 10001


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _cronjob() -> dict:
    return _load(k8s_check.MANIFEST_DIR / "cronjob.yaml")


def _pod_spec(cj: dict) -> dict:
    return cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _container(cj: dict) -> dict:
    [c] = _pod_spec(cj)["containers"]
    return c


def _literal_env(cj: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(cj).get("env", []) if "value" in e}


@pytest.fixture(scope="session")
def lint_venv():
    """The lint venv (k8s_check.ensure_lint_venv); fails if it cannot be made."""
    try:
        seconds = k8s_check.ensure_lint_venv()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    if seconds:
        print(f"lint venv installed in {seconds:.0f} s")
    return k8s_check.LINT_VENV


# ---------------------------------------------------------------- schema

def test_manifests_match_the_kubernetes_api_types(lint_venv):
    assert k8s_check.run_schema_check(MANIFESTS) == []


def test_schema_check_fails_a_broken_copy(lint_venv, tmp_path):
    text = (k8s_check.MANIFEST_DIR / "cronjob.yaml").read_text()
    cases = {
        "string-backoff.yaml": (text.replace("backoffLimit: 0", 'backoffLimit: "0"'),
                                "spec.jobTemplate.spec.backoffLimit: expected int, got str '0'"),
        "misspelt.yaml": (text.replace("backoffLimit: 0", "backofLimit: 0"),
                          "spec.jobTemplate.spec.backofLimit: unknown field of V1JobSpec"),
        "int-env.yaml": (text.replace('value: "600"', "value: 600"),
                         ".env[0].value: expected str, got int 600"),
        "map-for-list.yaml": (text.replace('drop: ["ALL"]', "drop: {ALL: true}"),
                              "capabilities.drop: expected a list"),
    }
    for name, (broken, expected) in cases.items():
        assert broken != text, name  # the replacement happened
        path = tmp_path / name
        path.write_text(broken)
        errors = k8s_check.run_schema_check([path])
        assert len(errors) == 1 and expected in errors[0], (name, errors)


# ---------------------------------------------------------------- checkov

def _skip_reasons(docs: list[dict]) -> dict[str, str]:
    reasons = {}
    for doc in docs:
        for key, value in (doc["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                reasons[f"{doc['kind']}:{check}"] = reason.strip()
    return reasons


def test_checkov_finds_nothing_unjustified(lint_venv):
    report = k8s_check.run_checkov(MANIFESTS)

    assert report["failed"] == [], [(f["check_id"], f["check_name"], f["resource"])
                                    for f in report["failed"]]
    # A parse error makes checkov silently skip a file: every resource must
    # have been checked.
    resources = {r["resource"].split(".")[0] for r in report["passed"] + report["skipped"]}
    assert resources == {"CronJob", "ConfigMap", "Secret"}, report
    assert len(report["passed"]) > 50, len(report["passed"])
    # Each skip carries a reason in the manifest, and there are no others.
    reasons = _skip_reasons([_load(p) for p in MANIFESTS])
    skipped = {f"{s['resource'].split('.')[0]}:{s['check_id']}" for s in report["skipped"]}
    assert skipped == set(reasons), (skipped, reasons)
    assert all(len(r) > 20 for r in reasons.values()), reasons


def test_checkov_fails_a_broken_copy(lint_venv, tmp_path):
    text = (k8s_check.MANIFEST_DIR / "cronjob.yaml").read_text()
    broken = (text.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
                  .replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    path = tmp_path / "cronjob.yaml"
    path.write_text(broken)

    failed = {f["check_id"] for f in k8s_check.run_checkov([path])["failed"]}

    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed, failed


# ---------------------------------------------------------------- kustomize

def test_kustomization_renders_to_valid_manifests(lint_venv, tmp_path):
    kustomization = _load(KUSTOMIZATION)
    for resource in kustomization["resources"]:
        assert (k8s_check.MANIFEST_DIR / resource).is_file(), resource
    # The Secret example is deliberately not a resource (no secrets in git).
    assert "secret.example.yaml" not in kustomization["resources"]
    [image] = kustomization["images"]
    assert image["name"] == _container(_cronjob())["image"]

    kubectl = shutil.which("kubectl")
    assert kubectl, ("kubectl not found: install it (Debian 12: apt-get install "
                     "kubernetes-client) to render deploy/kubernetes with `kubectl kustomize`")
    done = subprocess.run([kubectl, "kustomize", str(k8s_check.MANIFEST_DIR)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(done.stdout)
    docs = list(yaml.safe_load_all(done.stdout))
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "CronJob"]
    [cj] = [d for d in docs if d["kind"] == "CronJob"]
    assert _container(cj)["image"] == f"{image['newName']}:{image['newTag']}"
    assert k8s_check.run_schema_check([rendered]) == []


# ---------------------------------------------------------------- the numbers

def test_manifest_fields_and_timing_relations():
    cj = _cronjob()
    spec, job = cj["spec"], cj["spec"]["jobTemplate"]["spec"]
    pod, container, env = _pod_spec(cj), _container(cj), _literal_env(cj)
    wait_timeout = int(env["PREFECT_WAIT_TIMEOUT_SECONDS"])
    grace = int(env["PREFECT_CYCLE_GRACE_SECONDS"])

    assert spec["concurrencyPolicy"] == "Forbid"
    assert job["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"
    assert wait_timeout > 0, "without a wait timeout only the deadline ends a stuck cycle"
    assert job["activeDeadlineSeconds"] > wait_timeout + PREFLIGHT_BUDGET + grace + PAUSE_BUDGET
    assert pod["terminationGracePeriodSeconds"] > grace + PAUSE_BUDGET
    minutes = re.fullmatch(r"\*/(\d+) \* \* \* \*", spec["schedule"])
    assert minutes, spec["schedule"]
    assert job["activeDeadlineSeconds"] + spec["startingDeadlineSeconds"] <= int(minutes[1]) * 60

    # The image's user, PREFECT_HOME and Python (Dockerfile).
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"--uid {IMAGE_UID}" in dockerfile
    for ctx in (pod["securityContext"], container["securityContext"]):
        assert ctx["runAsUser"] == IMAGE_UID and ctx["runAsGroup"] == IMAGE_UID
        assert ctx["runAsNonRoot"] is True
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert f"PREFECT_HOME={env['PREFECT_HOME']}" in dockerfile
    # Everything written goes to an emptyDir: PREFECT_HOME, HOME, TMPDIR.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for path in (env["PREFECT_HOME"], env["HOME"], env["TMPDIR"],
                 os.path.dirname(env["PREFECT_CYCLE_SUMMARY_FILE"])):
        covering = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
        assert covering and mounts[covering[0]] in empty_dirs, path

    # Secrets only by reference; the worker name is stable (configmap).
    secret_keys = {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "GITHUB_ACCESS_TOKEN"}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
            if "valueFrom" in e}
    assert set(refs) == secret_keys and not secret_keys & set(env)
    assert secret_keys == set(_load(MANIFESTS[2])["stringData"])
    config = _load(MANIFESTS[1])["data"]
    assert config["PREFECT_WORKER_NAME"] and not secret_keys & set(config)


# ---------------------------------------------------------------- the stop sequence

POD_HOSTNAME = "prefect-cycle-29412345-x7k2p"

# Runs as root inside `unshare --pid --fork --mount-proc --uts --mount`: the
# shell is PID 1 of the new PID namespace and execs the binary, which stays
# PID 1, as the container's entrypoint. The emptyDirs are host directories
# bind-mounted at the pod's paths; then the root is made read-only. The
# binary goes to /srv (/usr/local/bin holds this machine's python3).
SANDBOX = r"""
set -e
hostname "$POD_HOSTNAME"
mount --bind "$SANDBOX_BIN" /srv
mount -o remount,bind,ro /srv
mount --bind "$SANDBOX_HOME" /home
if [ -n "$HIDDEN_DIR" ]; then
  # The interpreter lives below a directory uid 10001 cannot enter (pyenv in
  # /root): show only its subtree, as the image shows /opt/prefect.
  mount --bind "$HIDDEN_DIR/$HIDDEN_CHILD" "$SANDBOX_STASH"
  mount -t tmpfs -o size=1m,mode=0755 tmpfs "$HIDDEN_DIR"
  mkdir "$HIDDEN_DIR/$HIDDEN_CHILD"
  mount --bind "$SANDBOX_STASH" "$HIDDEN_DIR/$HIDDEN_CHILD"
  mount -o remount,bind,ro "$HIDDEN_DIR/$HIDDEN_CHILD"
fi
case "$REPO_ROOT" in
  /tmp/*)
    # The checkout (its venv and flows) lives below /tmp, which the emptyDir
    # is about to cover: keep it visible at its own path.
    mount --bind "$REPO_ROOT" /mnt
    mount --bind "$SANDBOX_TMP" /tmp
    mkdir -p "$REPO_ROOT"
    mount --bind /mnt "$REPO_ROOT"
    ;;
  *)
    mount --bind "$SANDBOX_TMP" /tmp
    ;;
esac
mount -o remount,bind,ro /
exec setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all \
  --bounding-set=-all --no-new-privs /srv/prefect-cycle run
"""


def _hidden_interpreter_dir() -> tuple[str, str]:
    """(directory, child) when the real path of the venv's python passes
    through a directory others may not enter, else ("", "")."""
    real = Path(os.path.realpath(VENV_PYTHON))
    for parent in reversed(real.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return str(parent), real.relative_to(parent).parts[0]
    return "", ""


def _inner_pid(outer: int) -> int:
    """The pid (as this namespace sees it) of unshare's child, PID 1 inside."""
    def child():
        try:
            with open(f"/proc/{outer}/task/{outer}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None
    return wait_for(child, 10, "unshare's child")


class Pod:
    """prefect-cycle started like a pod of the CronJob (see SANDBOX)."""

    def __init__(self, cycle, pool: str, tmp: Path, overrides: dict[str, str]):
        for name in ("bin", "home/prefect", "tmp", "stash"):
            (tmp / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary_path(), tmp / "bin" / "prefect-cycle")
        for d in (tmp / "home", tmp / "bin"):
            d.chmod(0o755)
        for d in (tmp / "home" / "prefect", tmp / "tmp"):
            os.chown(d, IMAGE_UID, IMAGE_UID)
            d.chmod(0o770 if d.name == "prefect" else 0o1777)
        self.home, self.tmp = tmp / "home" / "prefect", tmp / "tmp"
        cj = _cronjob()
        self.grace = _pod_spec(cj)["terminationGracePeriodSeconds"]
        env = cycle.env(pool, _literal_env(cj) | overrides)
        env |= {"POD_HOSTNAME": POD_HOSTNAME, "SANDBOX_BIN": str(tmp / "bin"),
                "SANDBOX_HOME": str(tmp / "home"), "SANDBOX_TMP": str(tmp / "tmp"),
                "SANDBOX_STASH": str(tmp / "stash"), "REPO_ROOT": str(ROOT)}
        env["HIDDEN_DIR"], env["HIDDEN_CHILD"] = _hidden_interpreter_dir()
        for tool in ("unshare", "setpriv"):
            assert shutil.which(tool), f"{tool} not found: apt-get install util-linux"
        self.started = time.monotonic()
        popen = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--uts", "--mount",
             "--propagation", "private", "sh", "-c", SANDBOX],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, errors="replace")
        self.proc = CycleProcess(popen, ["run"], self.tmp / "prefect-cycle-summary.json",
                                 self.started)
        cycle.spawned.append(self.proc)  # stopped at teardown if the test fails
        self.pid1 = _inner_pid(popen.pid)

    def kubelet_stop(self) -> tuple[float, bool]:
        """SIGTERM to PID 1; SIGKILL after terminationGracePeriodSeconds if
        it is still there. Returns (seconds to exit, whether SIGKILL was needed)."""
        sent = time.monotonic()
        os.kill(self.pid1, signal.SIGTERM)
        try:
            self.proc.popen.wait(timeout=self.grace)
            return time.monotonic() - sent, False
        except subprocess.TimeoutExpired:
            os.kill(self.pid1, signal.SIGKILL)  # kills the whole PID namespace
            self.proc.popen.wait(timeout=30)
            return time.monotonic() - sent, True


def _written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_pod_sandbox_cycle_completes_on_a_read_only_root(prefect, pool, cycle, tmp_path):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello")
    [run] = prefect.schedule_runs(deployment_id, 1)

    pod = Pod(cycle, pool, tmp_path, {})
    result = pod.proc.finish(timeout=120)

    assert result.returncode == 0, result
    assert prefect.state_type(run) == "COMPLETED"
    assert prefect.run(run).infrastructure_pid.startswith(f"{POD_HOSTNAME}:")
    assert "Read-only file system" not in result.output, result
    assert result.summary["exit_code"] == 0
    assert prefect.pool(pool).is_paused
    print("written under HOME:", _written(pod.home), "under /tmp:", _written(pod.tmp))


def test_kubelet_stop_sequence_with_the_manifest_values(prefect, pool, cycle, tmp_path):
    env = _literal_env(_cronjob())
    # A RUNNING flow whose process group outlives SIGTERM (Prefect's engine
    # handles SIGTERM itself, the shell and its `sleep` ignore it), so the
    # cycle's grace period is used in full, then its SIGKILL; and a run held PENDING for 90 s before its
    # engine starts (so it is handed back to SCHEDULED).
    stubborn_id, _ = prefect.deploy(
        pool, "flows.py:sleeper", name="stubborn",
        job_variables={"command": f"sh -c 'trap \"\" TERM; {VENV_PYTHON} -m prefect.engine; "
                                  f"sleep 600'"})
    slow_start_id, _ = prefect.deploy(
        pool, "flows.py:hello", name="slow-start",
        job_variables={"command": f"sh -c 'sleep 90; exec {VENV_PYTHON} -m prefect.engine'"})
    [running] = prefect.schedule_runs(stubborn_id, 1, {"seconds": 600})
    [unstarted] = prefect.schedule_runs(slow_start_id, 1)

    pod = Pod(cycle, pool, tmp_path, {})
    try:
        wait_for(lambda: [prefect.state_type(r) for r in (running, unstarted)]
                 == ["RUNNING", "PENDING"], 60, "one run RUNNING and one PENDING")
    finally:
        seconds, killed = pod.kubelet_stop()
    result = pod.proc.finish(timeout=30)

    assert not killed, f"needed the kubelet's SIGKILL after {seconds:.1f} s:\n{result}"
    assert seconds < pod.grace, result
    # The grace period was used (the flow ignored SIGTERM) and the end fits.
    assert seconds >= int(env["PREFECT_CYCLE_GRACE_SECONDS"]) - 1, (seconds, result)
    print(f"exited {seconds:.1f} s after SIGTERM (grace {env['PREFECT_CYCLE_GRACE_SECONDS']} s, "
          f"terminationGracePeriodSeconds {pod.grace} s)")
    assert result.returncode == 143, result
    assert result.summary["exit_code"] == 143 and result.summary["pool_paused_at_end"] is True
    state = prefect.run(running).state
    assert state.type.value == "CRASHED", state
    assert state.message.startswith("prefect-cycle stopped this flow run: SIGTERM received"), state
    assert prefect.state_type(unstarted) == "SCHEDULED"
    assert prefect.pool(pool).is_paused
