"""Flags as users mistype them (issue 31): a flag that does not exist is an
error that names it and the flag meant, with the fix, like every other error;
`--work-pool` (Prefect's own words) is `--pool`. Nothing reaches a server: the
command line fails before the configuration is read."""

from __future__ import annotations

import re
import subprocess

import pytest

ENV = {"PATH": "/usr/bin:/bin", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
FIX = ("; fix: use the flag named above, or another that `prefect-cycle --help` lists; each "
       "has an environment variable too (`prefect-cycle config` shows them)")


def run(binary, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30,
                          env=ENV, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, unknown, meant", [
    (("run", "--limt", "3"), "--limt", "--limit"),
    (("--pol", "etl", "run"), "--pol", "--pool"),
    (("run", "--limt=3"), "--limt", "--limit"),
    (("doctor", "--jsn"), "--jsn", "--json"),
    (("run", "--dryrun"), "--dryrun", "--dry-run"),
    # Prefect's names for our flags.
    (("run", "--work-queue", "a"), "--work-queue", "--queues"),
    (("--name", "w", "run"), "--name", "--worker-name"),
    (("run", "--frobnicate"), "--frobnicate", None),
])
def test_an_unknown_flag_names_itself_and_the_flag_meant(binary, args, unknown, meant):
    proc = run(binary, *args)
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    line = proc.stderr.strip()
    hint = f": did you mean {meant}?" if meant else ""
    assert line == f"prefect-cycle: error: unknown flag {unknown}{hint}{FIX}", line
    assert "not expected" not in line  # CLI11's own message, which named no fix


def test_work_pool_is_pool(binary):
    proc = run(binary, "--work-pool", "etl", "config")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^PREFECT_WORK_POOL\s+etl\s+\[flag --pool\]", proc.stdout, re.M), proc.stdout
    proc = run(binary, "--help")
    assert "-p,--pool TEXT" in proc.stdout, proc.stdout
    assert "work pool to drain [PREFECT_WORK_POOL] (also --work-pool)" in proc.stdout, proc.stdout
    proc = run(binary, "--pool", "a", "--work-pool", "b", "config")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^PREFECT_WORK_POOL\s+b\s", proc.stdout, re.M), proc.stdout


def test_other_usage_errors_keep_their_message(binary):
    proc = run(binary, "run", "stray")
    assert proc.returncode == 2, proc
    assert "stray" in proc.stderr and "see prefect-cycle --help" in proc.stderr, proc.stderr
