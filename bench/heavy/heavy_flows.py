"""The flow of scenario 6 of bench/bench.py: one heavy import (bench_heavy, about
1 s), then a line of output. bench/heavy is on the PYTHONPATH of every contender
(and so of the flow runs they start)."""

from prefect import flow


@flow(log_prints=True)
def heavy():
    import bench_heavy  # the heavy import: free when the warm launcher preloaded it

    print(bench_heavy.summary())
    return len(bench_heavy.PRIMES)
