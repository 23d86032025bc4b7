"""Creates a paused process work pool, a deployment of examples/demo_flow.py
(copied into --flows-dir) and N flow runs due now, with Prefect's own client.
Also checks a finished demo: `--check RUN_ID...` exits 1 unless every run is
COMPLETED and the pool is paused."""

import argparse
import asyncio
import sys
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.workers.process import ProcessWorker


async def setup(pool: str, flows_dir: str, runs: int) -> list[str]:
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(
            name=pool, type="process", is_paused=True,
            base_job_template=ProcessWorker.get_default_base_job_template()))
        flow_id = await client.create_flow_from_name("demo")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="demo", work_pool_name=pool,
            entrypoint="demo_flow.py:demo", path=flows_dir,
            pull_steps=[{"prefect.deployments.steps.set_working_directory":
                         {"directory": flows_dir}}])
        ids = []
        for n in range(runs):
            run = await client.create_flow_run_from_deployment(deployment_id, parameters={"n": n})
            ids.append(str(run.id))
        return ids


async def check(pool: str, run_ids: list[str]) -> int:
    async with get_client() as client:
        bad = 0
        for run_id in run_ids:
            run = await client.read_flow_run(uuid.UUID(run_id))
            state = run.state.type.value if run.state else "NONE"
            print(f"demo: flow run {run.name} ({run_id}): {state}")
            bad += state != "COMPLETED"
        paused = (await client.read_work_pool(pool)).is_paused
        print(f"demo: work pool {pool}: {'paused' if paused else 'NOT PAUSED'}")
        return 1 if bad or not paused else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", required=True)
    parser.add_argument("--flows-dir")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--print-run-ids", action="store_true")
    parser.add_argument("--check", nargs="*")
    args = parser.parse_args()
    if args.check is not None:
        return asyncio.run(check(args.pool, args.check))
    ids = asyncio.run(setup(args.pool, args.flows_dir, args.runs))
    print(" ".join(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
