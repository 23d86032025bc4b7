"""The flow the demo (scripts/demo.sh) and the container test deploy."""

from prefect import flow


@flow(log_prints=True)
def demo(n: int = 1):
    print(f"demo flow run {n}: hello from a flow run started by prefect-cycle")
    return n * 2
