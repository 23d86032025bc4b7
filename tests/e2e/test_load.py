"""Load (issue 6): 150 due runs (PC_LOAD_RUNS; the 500-run soak is
`PC_LOAD_RUNS=500 .venv/bin/python -m pytest tests/e2e/test_load.py`) of a
deployment whose command is a cheap non-Python program, at most 20 at once. Every run ends COMPLETED, none is left
PENDING/RUNNING, prefect-cycle's memory stays flat and it closes every file
descriptor it opened."""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from harness import StatusSampler

# 150 in the test command: enough to fill the slots many times over and to
# compare memory between halves; the soak runs 500 (docs/reliability.md).
RUNS = int(os.environ.get("PC_LOAD_RUNS", "150"))
LIMIT = 20

# Sets the run COMPLETED through the API, as a flow would, without Python.
CHEAP_COMMAND = (
    "sh -c 'curl -sf --retry 8 --retry-all-errors -X POST "
    "\"$PREFECT_API_URL/flow_runs/$PREFECT__FLOW_RUN_ID/set_state\" "
    "-H content-type:application/json "
    "-d \"{\\\"state\\\":{\\\"type\\\":\\\"COMPLETED\\\"},\\\"force\\\":true}\" >/dev/null'"
)


def api(server, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.api_url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for attempt in range(30):  # a busy SQLite server answers 503, for a while
        try:
            with opener.open(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code not in (429, 503) or attempt == 29:
                raise
            time.sleep(min(0.2 * 2 ** attempt, 3.0) * random.uniform(0.5, 1.0))


def count(server, pool: str, states: list[str]) -> int:
    return api(server, "POST", "/flow_runs/count", {
        "work_pools": {"name": {"any_": [pool]}},
        "flow_runs": {"state": {"type": {"any_": states}}}})


def test_cheap_runs_limit_20(prefect_server, prefect, pool, cycle):
    deployment_id, _ = prefect.deploy(pool, "flows.py:hello",
                                      job_variables={"command": CHEAP_COMMAND})
    with ThreadPoolExecutor(2) as pool_executor:
        list(pool_executor.map(
            lambda _: api(prefect_server, "POST", f"/deployments/{deployment_id}/create_flow_run",
                          {"state": {"type": "SCHEDULED"}}), range(RUNS)))
    assert count(prefect_server, pool, ["SCHEDULED"]) == RUNS

    proc = cycle.spawn(pool, {"PREFECT_WORKER_FLOW_LIMIT": str(LIMIT),
                              "PREFECT_WORKER_CYCLE_LOG_LEVEL": "debug"})
    rss = StatusSampler(proc.pid, "VmRSS", 0.05)
    result = proc.finish(timeout=900)
    samples = rss.stop().samples

    assert result.returncode == 0, result
    assert count(prefect_server, pool, ["COMPLETED"]) == RUNS
    assert count(prefect_server, pool, ["PENDING", "RUNNING", "SCHEDULED", "CRASHED"]) == 0
    launched = re.search(r"native worker done: (\d+) flow run\(s\) launched", result.output)
    assert launched and int(launched.group(1)) == RUNS, result.output[-3000:]

    # Memory: no growth beyond what the cycle keeps per run on purpose (the
    # run's record for the summary, its id in the set of runs seen: well
    # under 1 KiB, plus allocator slack). From the first half of the run to
    # the second, at most 8 KiB per run of the second half, and small overall.
    assert len(samples) > 20, samples
    half = len(samples) // 2
    first = max(samples[:half])
    second = max(samples[half:])
    assert second - first <= 8 * RUNS // 2, (first, second)
    assert second < 40 * 1024, second

    # File descriptors: as many open at the end as at the start, but for the
    # API connections kept alive: at most PREFECT_CYCLE_MAX_CONNECTIONS = 16
    # for the batches, the multi handle's wake-up socket pair, 1 for single
    # requests.
    found = re.findall(r"open file descriptors at (start|end): (\d+) \((\d+) sockets\)",
                       result.output)
    fds = {when: (int(n), int(sockets)) for when, n, sockets in found}
    assert set(fds) == {"start", "end"}, result.output[-2000:]
    (start_all, start_sockets), (end_all, end_sockets) = fds["start"], fds["end"]
    assert start_all - start_sockets == end_all - end_sockets, fds
    assert end_sockets - start_sockets <= 16 + 2 + 1, fds

    print(f"\nload: {RUNS} runs, limit {LIMIT}: {result.duration:.1f} s wall "
          f"({result.duration / RUNS * LIMIT * 1000:.0f} ms per run per slot), "
          f"VmRSS max {first / 1024:.1f} MiB (first half) / {second / 1024:.1f} MiB "
          f"(second half), fds {fds['start']} -> {fds['end']} (all, sockets)")
