#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/) from a real
Prefect server: the JSON it answers for the calls prefect-cycle decodes, and
job configurations built from a real pool's base job template and deployment.

    .venv/bin/python tests/fuzz/capture_corpus.py

Starts a throwaway local server (tests/e2e/harness.py). The small hand-written
seeds (configuration lines, commands) are written too, so that the corpus is
reproducible from this one script."""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "e2e"))

from harness import Prefect, PrefectServer  # noqa: E402

CORPUS = HERE / "corpus"


def call(api: str, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def save(target: str, name: str, content) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, indent=1, sort_keys=True)
    (directory / name).write_text(text)


def capture(server: PrefectServer, prefect: Prefect) -> None:
    api = server.api_url
    pool = prefect.create_pool("corpus-pool")
    deployment_id, name = prefect.deploy(pool, "flows.py:hello", job_variables={
        "env": {"GREETING": "{{ prefect.variables.greeting }}", "N": "3"},
        "command": "python -m prefect.engine",
        "working_dir": "/tmp",
    })
    [run_id] = prefect.schedule_runs(deployment_id, 1, {"name": "corpus"})

    work_pool = call(api, "GET", f"/work_pools/{pool}")
    save("fuzz_decode", "work_pool.json", work_pool)
    deployment = call(api, "GET", f"/deployments/name/{name}")
    save("fuzz_decode", "deployment.json", deployment)
    runs = call(api, "POST", "/flow_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    save("fuzz_decode", "flow_run.json", runs[0])
    save("fuzz_decode", "state.json", runs[0]["state"])
    call(api, "PATCH", f"/work_pools/{pool}", {"is_paused": False})
    scheduled = call(api, "POST", f"/work_pools/{pool}/get_scheduled_flow_runs", {})
    save("fuzz_decode", "worker_flow_run.json", scheduled[0])
    accepted = call(api, "POST", f"/flow_runs/{run_id}/set_state", {
        "state": {"type": "PENDING", "name": "Pending"}, "force": False,
        "transition_id": str(uuid.uuid4())})
    save("fuzz_decode", "set_state_accept.json", accepted)
    rejected = call(api, "POST", f"/flow_runs/{run_id}/set_state", {
        "state": {"type": "PENDING", "name": "Pending"}, "force": False,
        "transition_id": str(uuid.uuid4())})
    save("fuzz_decode", "set_state_reject.json", rejected)
    call(api, "POST", f"/work_pools/{pool}/workers/heartbeat",
         {"name": "corpus-worker", "heartbeat_interval_seconds": 30})
    workers = call(api, "POST", f"/work_pools/{pool}/workers/filter", {})
    save("fuzz_decode", "worker.json", workers[0])

    template = work_pool["base_job_template"]
    save("fuzz_job_config", "default_pool.json", {
        "base_job_template": template,
        "deployment": deployment["job_variables"],
        "flow_run": {"env": {"EXTRA": "1"}},
        "resolver": {"variables": {"greeting": "hi"}, "env": {"HOME": "/root"}},
    })
    save("fuzz_job_config", "placeholders.json", {
        "base_job_template": {
            "job_configuration": {
                "command": "{{ command }}",
                "env": {"A": "{{ $HOME }}", "B": "{{ prefect.variables.greeting }}",
                        "C": "pre-{{ prefect.blocks.secret.token }}-post"},
                "working_dir": "{{ working_dir }}",
                "stream_output": "{{ stream_output }}",
                "nested": {"a.b": "{{ x }}", "list": ["{{ y }}", 1, None]},
                "ref": {"$ref": {"block_document_id": "abc"}},
            },
            "variables": template["variables"],
        },
        "deployment": {"command": "echo 'a b' \"c\"", "x": {"k": [1, 2]}, "env.D": "d"},
        "flow_run": {"y": True, "stream_output": "no"},
        "resolver": {"variables": {"greeting": "hi"}, "env": {"HOME": "/root"},
                     "blocks": {"secret/token": {"value": "t"}, "abc": {"a": 1}}},
    })


def hand_written() -> None:
    save("fuzz_config", "minimal.txt",
         "PREFECT_API_URL=http://127.0.0.1:4200/api\nPREFECT_WORK_POOL=pool\n")
    save("fuzz_config", "full.txt", "\n".join([
        "PREFECT_API_URL=https://api.prefect.cloud/api/accounts/a/workspaces/w",
        "PREFECT_API_KEY=pnu_secret",
        "PREFECT_WORK_POOL=pool",
        "PREFECT_WORK_QUEUES=default,high",
        "PREFECT_WORKER_FLOW_LIMIT=5",
        "PREFECT_WORKER_PREFETCH_SECONDS=120",
        "PREFECT_TRIGGER_DEPLOYMENTS=flow a/dep b,other/x",
        "PREFECT_WAIT_TIMEOUT_SECONDS=600",
        "PREFECT_ACTIVE_STATE_TYPES=PENDING,RUNNING,CANCELLING",
        "PREFECT_API_AUTH_STRING=admin:pass",
        "PREFECT_API_REQUEST_TIMEOUT=30",
        "PREFECT_API_TLS_INSECURE_SKIP_VERIFY=false",
        "PREFECT_WORKER_NAME=w1",
        "PREFECT_WORKER_TYPE=process",
        "PREFECT_WORKER_HEARTBEAT_SECONDS=30",
        "PREFECT_WORKER_RUN_FOREVER=0",
        "PREFECT_CYCLE_GRACE_SECONDS=20",
        "PREFECT_WORKER_CYCLE_LOG_FORMAT=json",
        "PREFECT_WORKER_CYCLE_LOG_LEVEL=debug",
        "PREFECT_WORKER_CODE_DIR=/tmp/code",
        "GITHUB_ACCESS_TOKEN=ghp_x",
        "PREFECT_AUTO_PAUSE=force",
        "PREFECT_WORKER_REPOSITORY=https://user:pw@example.com/org/repo.git",
        "PREFECT_WORKER_BRANCH=main",
        "DATABASE_URL=postgresql://u:p@db:5432/x",
        "PREFECT_WORKER_CHECK_DATABASE=yes",
        "--limit=7",
        "--pool=other",
    ]) + "\n")
    save("fuzz_command_split", "simple.txt", "python -m prefect.engine")
    save("fuzz_command_split", "quotes.txt", "sh -c 'echo \"$HOME\" a\\ b' \"x'y\" ''")


def main() -> int:
    hand_written()
    server = PrefectServer().start()
    try:
        capture(server, Prefect(server))
    finally:
        server.stop()
    for directory in sorted(CORPUS.iterdir()):
        print(f"{directory.name}: {len(list(directory.iterdir()))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
