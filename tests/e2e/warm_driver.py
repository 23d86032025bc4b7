"""The cycle's side of the warm launcher's protocol, in Python, for
tests/e2e/test_warm_launcher.py: becomes a child subreaper, starts the
launcher on a SOCK_SEQPACKET socket, asks it for one flow process per run,
waits for each as its own child, and prints one JSON object:

  {"hello": {...ready or unsafe...},
   "runs": {id: {"pid", "status", "code", "signal", "ppid_was_us", "stdout", "stderr"}}}

Usage: warm_driver.py PYTHON LAUNCHER PRELOAD RUNS_JSON, where RUNS_JSON is a
list of {"id", "env", "cwd"}.
"""

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading

PR_SET_CHILD_SUBREAPER = 36


def read_all(fd: int, sink: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as stream:
        sink.append(stream.read())


def main() -> int:
    python, launcher, preload, runs_json = sys.argv[1:5]
    runs = json.loads(runs_json)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([python, launcher, "--control-fd", str(theirs.fileno()),
                             "--preload", preload], pass_fds=[theirs.fileno()])
    theirs.close()
    hello = json.loads(ours.recv(1 << 20) or b"null")
    result = {"hello": hello, "runs": {}}
    if not hello or hello.get("type") != "ready":
        proc.wait(30)
        print(json.dumps(result))
        return 0
    readers = {}
    for run in runs:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        message = {"type": "launch", "id": run["id"], "env": run["env"], "cwd": run["cwd"]}
        socket.send_fds(ours, [json.dumps(message).encode()], [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        out, err = [], []
        threads = [threading.Thread(target=read_all, args=(out_r, out)),
                   threading.Thread(target=read_all, args=(err_r, err))]
        for t in threads:
            t.start()
        readers[run["id"]] = (threads, out, err)
    pids = {}
    while len(pids) < len(runs):
        data = ours.recv(1 << 20)
        if not data:
            break
        answer = json.loads(data)
        if answer["type"] == "started":
            pids[answer["id"]] = answer["pid"]
        else:
            result["runs"][answer["id"]] = {"failed": answer}
    for run_id, pid in pids.items():
        with open(f"/proc/{pid}/stat") as stat:
            ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        _, status = os.waitpid(pid, 0)
        threads, out, err = readers[run_id]
        for t in threads:
            t.join(60)
        result["runs"][run_id] = {
            "pid": pid, "status": status, "ppid_was_us": ppid == os.getpid(),
            "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "stdout": b"".join(out).decode(errors="replace"),
            "stderr": b"".join(err).decode(errors="replace"),
        }
    ours.close()
    result["launcher_exit"] = proc.wait(30)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
