"""A module that takes about a second to import (scenario 6 of bench/bench.py).

It imports a few dozen standard-library modules that Prefect itself does not
(their code objects stay in memory), then computes a table in pure Python: CPU
work, no sleeping. Whoever imports it pays that once per process; prefect-cycle's
warm launcher pays it once (PREFECT_CYCLE_PRELOAD_MODULES=bench_heavy) and every
forked flow run shares the result.

BENCH_HEAVY_N sets the size of the computation (default 6_000_000: about 1 s
in all on one core of the 2-CPU benchmark machine).
"""

import importlib
import os
import time

_t0 = time.perf_counter()

STDLIB = (
    "argparse", "ast", "asyncio", "bz2", "calendar", "cmd", "code", "codeop", "colorsys",
    "configparser", "csv", "ctypes", "dataclasses", "decimal", "difflib", "doctest",
    "email.mime.multipart", "email.mime.text", "email.parser", "fractions", "ftplib",
    "gettext", "gzip", "html.parser", "http.client", "http.cookiejar", "http.server",
    "imaplib", "ipaddress", "lzma", "mailbox", "mimetypes", "modulefinder", "netrc",
    "optparse", "pdb", "pickletools", "pkgutil", "plistlib", "poplib", "pprint", "pstats",
    "pydoc", "queue", "quopri", "sched", "secrets", "shelve", "smtplib", "sqlite3",
    "statistics", "tarfile", "telnetlib", "textwrap", "timeit", "tkinter", "trace",
    "unittest", "unittest.mock", "urllib.robotparser", "uuid", "wave", "xml.dom.minidom",
    "xml.etree.ElementTree", "xml.sax", "xmlrpc.client", "xmlrpc.server", "zipfile",
    "zipimport",
)
IMPORTED = []
for _name in STDLIB:
    try:
        IMPORTED.append(importlib.import_module(_name))
    except Exception:  # noqa: BLE001 - absent on this Python (tkinter, telnetlib): skip
        pass


def _primes(n: int) -> list[int]:
    """The primes below n, by a sieve in pure Python (the CPU work)."""
    sieve = [True] * n
    sieve[0:2] = [False, False]
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            for j in range(i * i, n, i):
                sieve[j] = False
    return [i for i, is_prime in enumerate(sieve) if is_prime]


PRIMES = _primes(int(os.environ.get("BENCH_HEAVY_N", "6000000")))
IMPORT_SECONDS = time.perf_counter() - _t0


def summary() -> str:
    return (f"bench_heavy: {len(IMPORTED)} stdlib modules, {len(PRIMES)} primes, "
            f"imported in {IMPORT_SECONDS:.2f} s")
