"""`prefect-cycle run --dry-run` (issue 5): prints the plan and changes nothing."""

from __future__ import annotations


def test_dry_run_prints_the_plan_and_changes_nothing(prefect, pool, deploy, schedule_runs, cycle):
    deployment_id, name = deploy(pool, "flows.py", "hello")
    runs = schedule_runs(deployment_id, 3)

    result = cycle.run(pool, {"PREFECT_TRIGGER_DEPLOYMENTS": name, "PREFECT_WORKER_FLOW_LIMIT": "2"},
                       args=("run", "--dry-run"))

    assert result.returncode == 0, result
    out = result.stdout
    assert out.startswith("plan (dry run: nothing is changed on the server)\n"), out
    assert f'  work pool: "{pool}" (type process, paused, status PAUSED): would resume it\n' in out
    assert "  queues: all\n" in out
    assert f'  trigger: "{name}" (deployment {deployment_id}, pool "{pool}"' in out
    assert "  due flow runs (scheduled before now + 120 s): 3\n" in out
    for run_id in runs:
        assert run_id in out, out
    assert "at most 2 at once, run once" in out
    assert "  pause at the end: yes\n" in out
    # Only reads reached the server.
    requests = [line.split()[2] for line in result.stderr.splitlines() if " -> " in line]
    assert requests and set(requests) <= {"GET", "POST"}, requests
    assert all("/filter" in line or " GET " in line
               for line in result.stderr.splitlines() if " POST " in line and " -> " in line)
    assert prefect.pool(pool).is_paused
    assert [prefect.state_type(r) for r in runs] == ["SCHEDULED"] * 3
    assert prefect.call("read_workers_for_work_pool", pool) == []
