"""prefect-cycle's warm-start launcher (PREFECT_CYCLE_WARM_START, issue 19).

One Python that imports Prefect's engine (and the modules named with
--preload) once, checks that it can fork safely, then forks one process per
flow run. The protocol is in ARCHITECTURE.md ("Warm start");
in short :

    -The cycle starts us with a SOCK_SEQPACKET socket on the fd named by-- control -
    fd,
    after making itself a child subreaper.- We answer one message : {"type" : "ready", ...} or
        {"type" : "unsafe", "reason" : ...}."unsafe" means : do not use me; we exit after sending it.
- Each {"type": "launch", "id": ..., "env": {...}, "cwd": ...} (and, in the
  unit tests, "module" to run instead of prefect.engine) arrives with
  two fds (the run's stdout and stderr pipes). We fork an intermediate
  process that forks the flow process and exits at once, so the flow process
  is re-parented to the cycle (the subreaper): the cycle waits for it, signals
  its group and reads its exit status exactly as for a process it spawned.
- The flow process itself reports {"type": "started", "id", "pid"} before it
  does anything else, so a launcher that dies mid-launch cannot hide a run.
  {"type": "failed", "id", "reason"} is ours when the fork failed.
- End of the socket (the cycle closed it, or died) ends the launcher.

We never talk to the Prefect API before forking: nothing here opens a
connection, starts a thread or an event loop.
"""

import argparse
import asyncio
import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings

ENGINE_MODULES = "prefect,prefect.flow_engine,prefect.engine"
RUN_MODULE = "prefect.engine"
MAX_MESSAGE = 1 << 20


def os_threads() -> int:
    """Threads of this process as the kernel counts them (C threads too)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()


def thread_names() -> list[str]:
    names = []
    for task in sorted(os.listdir("/proc/self/task")):
        if int(task) == os.getpid():
            continue
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                names.append(comm.read().strip())
        except OSError:
            names.append("?")
    return names


def preload(engine: list[str], extra: list[str]) -> tuple[list[str], str]:
    """Imports the engine and `extra`; returns (warnings, reason not safe)."""
    notes: list[str] = []
    for name in engine + extra:
        before = os_threads()
        try:
            importlib.import_module(name)
        except BaseException as exc:  # a preload may raise anything, even SystemExit
            if name in engine:
                return notes, f"importing {name} failed: {type(exc).__name__}: {exc}"
            notes.append(f"preloading {name} failed ({type(exc).__name__}: {exc}); "
                         "flow runs import it themselves")
            continue
        started = os_threads() - before
        if started > 0:
            return notes, (f"importing {name} started {started} thread(s) "
                           f"({', '.join(thread_names()) or '?'}); forking now could "
                           "deadlock a flow run")
    if asyncio.events._get_running_loop() is not None:
        return notes, "an event loop is running after the preload"
    if os_threads() != 1:
        return notes, f"{os_threads()} threads after the preload ({', '.join(thread_names())})"
    return notes, ""


def names(comma_list: str) -> list[str]:
    return [name.strip() for name in comma_list.split(",") if name.strip()]


def send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def receive(sock: socket.socket):
    """(message, [fds]) or (None, []) at the end of the socket."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 2)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


def refresh_prefect_settings() -> None:
    """Prefect read its settings from the launcher's environment at import;
    the run's environment must win, as it does in a fresh interpreter."""
    import prefect.context
    import prefect.logging.configuration

    refresh = getattr(prefect.context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()
    else:  # Prefect 3.0-3.4
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.root_settings_context()
    prefect.logging.configuration.setup_logging(incremental=False)


def run_engine(module: str) -> int:
    """`python -m <module>` (Prefect's engine), in this process."""
    import runpy

    warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
    loaded = sys.modules.get(module)
    sys.argv = [getattr(loaded, "__file__", None) or module]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def become_flow_run(sock: socket.socket, message: dict, fds: list[int], middle: int) -> int:
    """In the flow process: report, take the run's streams, environment and
    directory, and run the engine. Returns the exit code."""
#Our own session first : a launcher stopped with SIGKILL to its group
#must not take us with it.
    os.setsid()
#Report once re - parented to the cycle : until the intermediate has gone,
#the cycle could not wait for us yet.
    while os.getppid() == middle:
        time.sleep(0.0005)
    try:
        send(sock, {"type": "started", "id": message["id"], "pid": os.getpid()})
    finally:
        sock.close()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.environ.clear()
    os.environ.update(message.get("env", {}))
    if message.get("cwd"):
        os.chdir(message["cwd"])
    if os.environ.get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(write_through=True)
        sys.stderr.reconfigure(write_through=True)
    try:
        if "prefect" in sys.modules:
            refresh_prefect_settings()
        return run_engine(message.get("module") or RUN_MODULE)
    except BaseException:
        traceback.print_exc()
        return 1


def launch(sock: socket.socket, message: dict, fds: list[int]):
    """Forks the flow process through an intermediate that exits at once.
    Returns the exit code in the flow process, None in the launcher."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        middle = os.fork()
    except OSError as exc:
        send(sock, {"type": "failed", "id": message["id"], "reason": f"fork: {exc}"})
        return None
    if middle == 0:
        try:
            me = os.getpid()
            if os.fork() == 0:
                return become_flow_run(sock, message, fds, me)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(middle, 0)
    if status != 0:
        send(sock, {"type": "failed", "id": message["id"],
                    "reason": f"intermediate process ended with status {status}"})
    return None


def main() -> int:
    parser = argparse.ArgumentParser(prog="prefect-cycle warm launcher")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--preload", default="")
#The unit tests stand a small module in for Prefect's engine.
    parser.add_argument("--engine-modules", default=ENGINE_MODULES)
    args = parser.parse_args()
    sock = socket.socket(fileno=args.control_fd)
    notes, unsafe = preload(names(args.engine_modules), names(args.preload))
    if unsafe:
        send(sock, {"type": "unsafe", "reason": unsafe, "warnings": notes})
        return 0
#What is imported now is shared with every fork until written to; the
#collector writes to each object it tracks, so move them out of its
#reach(a fork's private memory after one collection: 33 MiB without,
# 1 MiB with, bench / fork_pss.py).
    gc.freeze()
    send(sock, {"type": "ready", "pid": os.getpid(), "warnings": notes,
                "python": sys.version.split()[0]})
    while True:
        message, fds = receive(sock)
        if message is None:
            return 0
        if message.get("type") != "launch" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            send(sock, {"type": "failed", "id": message.get("id"),
                        "reason": "expected a launch message with two fds"})
            continue
        code = launch(sock, message, fds)
        if code is not None:  # the flow process, done
            return code


if __name__ == "__main__":
    sys.exit(main())
