"""The baseline's wait loop, as the Python cycle script did it: count the pool's
active flow runs with Prefect's client until there are none.

usage: python bench/wait_active.py POOL [POLL_SECONDS]
"""

import asyncio
import sys

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType


async def main(pool: str, poll: float) -> None:
    active = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    async with get_client() as client:
        while True:
            n = await client.count_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))),
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            )
            if n == 0:
                return
            print(f"{n} active flow run(s) in pool {pool}", flush=True)
            await asyncio.sleep(poll)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0))
