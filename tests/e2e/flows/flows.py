"""Tiny flows the end-to-end tests deploy from this directory."""

import os
import signal
import time

from prefect import flow


@flow(log_prints=True)
def hello(name: str = "world"):
    print(f"hello {name}")
    return 42


@flow(name="hello world")
def hello_world():
    return "spaces"


@flow
def fails():
    raise ValueError("this flow fails on purpose")


@flow
def sleeper(seconds: float = 300):
    time.sleep(seconds)


@flow
def hard_exit(code: int = 3):
    os._exit(code)


@flow
def killed_for_memory():
    # What the kernel's OOM killer does to a flow that outgrows its memory.
    os.kill(os.getpid(), signal.SIGKILL)


@flow(log_prints=True)
def show_env(names: list[str] = ["PYTHONPATH"]):  # noqa: B006 - a Prefect parameter default
    for name in names:
        print(f"ENV {name}={os.environ.get(name, '')}")
