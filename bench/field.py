"""The field scenario (issue 30): a cron tick as its users run it, with a
repository, a code directory and a four-line requirements file (requests,
pandas, SQLAlchemy, psycopg2-binary, from PyPI), against a local Prefect
server on SQLite.

Cases (each a fresh pool):
  idle, no repository     prefect-cycle on an idle pool, nothing configured
  idle, repository        the same with repository + code dir + requirements,
                          fresh container (no code dir, empty caches)
  3 runs, fresh container fresh venv, empty cache, fresh code dir
  3 runs, kept volume     fresh venv and code dir, the cache dir kept
  3 runs, kept host       the venv and code dir kept (the stamp's case)
prefect-cycle (uv beside the interpreter, as in the image) against the
seed-000-style Python cycle doing the same sync and install: `git clone`,
`pip install -r`, `prefect work-pool resume`, `prefect worker start
--run-once`, the wait, `prefect work-pool pause`.

"fresh venv" is a venv of its own that sees the suite's packages (Prefect)
through a .pth file, so only the requirements go into it (SQLAlchemy and
requests are in the suite's venv: pip finds them satisfied there, uv
installs them into the new venv). Figures: wall time of the tick; time from
the tick's start to the first flow's body (the flow writes time.time()
first, then imports pandas and SQLAlchemy and writes how long that took);
installer processes (prefect-cycle: its "installing" lines; baseline: one pip
per tick). Run by `scripts/bench.sh --field` (or BENCH_SCENARIOS=field).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from git_server import Repo  # noqa: E402
from harness import VENV_BIN, VENV_PYTHON, Prefect, PrefectServer, binary_path  # noqa: E402

REQUIREMENTS = "requests\npandas\nSQLAlchemy\npsycopg2-binary\n"
FLOW = '''
import time

from prefect import flow


@flow(name="field")
def field(marker: str):
    start = time.time()
    import pandas, sqlalchemy  # noqa: E401,F401  the requirements, imported as a flow would
    with open(marker, "a") as f:
        f.write(f"{start} {time.time() - start}\\n")
'''
REPEATS = int(os.environ.get("BENCH_REPEATS", "1"))


def sh(argv, env=None, cwd=None, log=None) -> float:
    t0 = time.monotonic()
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        rc = subprocess.run(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    finally:
        if log:
            out.close()
    if rc != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {rc} (log {log})")
    return time.monotonic() - t0


def overlay_venv(dest: Path, uv: Path | None) -> Path:
    sh([str(VENV_PYTHON), "-m", "venv", "--without-pip", str(dest)])
    def purelib(py):
        return subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    python = dest / "bin" / "python"
    Path(purelib(python), "suite.pth").write_text(purelib(VENV_PYTHON) + "\n")
    if uv:
        (dest / "bin" / "uv").symlink_to(uv)
    return python


class Field:
    def __init__(self, work: Path, uv: Path):
        self.work = work
        self.uv = uv
        self.server = PrefectServer().start()
        self.prefect = Prefect(self.server)
        root = work / "git"
        root.mkdir()
        self.repo = Repo(root, "flows")
        self.repo.commit({"requirements.txt": REQUIREMENTS, "flows/field.py": FLOW})

    def stop(self):
        self.server.stop()

    def pool_with_runs(self, n: int, marker: Path, working_dir: Path | None = None) -> str:
        """Prefect's worker runs a flow in a temp dir unless the deployment
        names one: the baseline's deployment names its clone."""
        pool = self.prefect.create_pool(paused=True)
        job_variables = {"working_dir": str(working_dir)} if working_dir else {}
        if n:
            flow_id = self.prefect.call("create_flow_from_name", "field")

            async def go():
                async with self.prefect._client() as c:
                    return await c.create_deployment(flow_id=flow_id, name="field",
                                                     work_pool_name=pool,
                                                     entrypoint="flows/field.py:field",
                                                     job_variables=job_variables)
            from harness import _retry, _run
            dep = str(_retry(lambda: _run(go())))
            self.prefect.schedule_runs(dep, n, {"marker": str(marker)})
        return pool

    def env(self, home: Path) -> dict[str, str]:
        # The machine's CA bundle and proxy reach pip and uv (a TLS-intercepting
        # proxy otherwise fails uv, which reads SSL_CERT_FILE).
        passed = {k: v for k, v in os.environ.items()
                  if k in ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                           "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                           "no_proxy")}
        return passed | {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                         "LANG": "C.UTF-8", "PREFECT_HOME": str(home / "prefect-home"),
                         "PREFECT_API_URL": self.server.api_url, "PREFECT_WAIT_POLL_SECONDS": "1"}

    def cycle(self, case: str, n: int, python: Path | None, code: Path | None,
              cache: Path | None) -> dict:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.work))
        marker = home / "marker.txt"
        pool = self.pool_with_runs(n, marker)
        env = self.env(home) | {"PREFECT_WORK_POOL": pool,
                                "PREFECT_WORKER_PYTHON": str(python or VENV_PYTHON),
                                "PREFECT_CYCLE_SUMMARY_FILE": str(home / "summary.json")}
        if code:
            env |= {"PREFECT_WORKER_REPOSITORY": self.repo.file_url,
                    "PREFECT_WORKER_CODE_DIR": str(code)}
        if cache:
            env["PREFECT_CYCLE_CACHE_DIR"] = str(cache)
        log = self.work / f"{case.replace(' ', '_').replace(',', '')}-cycle.log"
        start = time.time()
        wall = sh([str(binary_path()), "run"], env=env, log=log)
        text = log.read_text(errors="replace")
        return self.result("prefect-cycle", case, wall, start, marker, n,
                           installs=len(re.findall(r'(?:\] |"message":")installing ', text)))

    def baseline(self, case: str, n: int, python: Path, code: Path, pip_cache: Path) -> dict:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.work))
        marker = home / "marker.txt"
        pool = self.pool_with_runs(n, marker, working_dir=code)
        env = self.env(home) | {"PIP_CACHE_DIR": str(pip_cache)}
        log = self.work / f"{case.replace(' ', '_').replace(',', '')}-baseline.log"
        start = time.time()
        t0 = time.monotonic()
        if code.exists():
            sh(["git", "-C", str(code), "pull", "-q"], env=env, log=log)
        else:
            sh(["git", "clone", "-q", "-b", "main", self.repo.file_url, str(code)], env=env, log=log)
        sh([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r",
            str(code / "requirements.txt")], env=env, cwd=code, log=log)
        prefect = [str(python), "-m", "prefect"]
        sh(prefect + ["work-pool", "resume", pool], env=env, log=log)
        sh(prefect + ["worker", "start", "--pool", pool, "--type", "process", "--run-once"],
           env=env | {"PYTHONPATH": str(code)}, cwd=code, log=log)
        sh([str(python), str(ROOT / "bench" / "wait_active.py"), pool, "1"], env=env, log=log)
        sh(prefect + ["work-pool", "pause", pool], env=env, log=log)
        return self.result("seed-000-style", case, time.monotonic() - t0, start, marker, n,
                           installs=1)

    def result(self, who, case, wall, start, marker: Path, n: int, installs: int) -> dict:
        lines = marker.read_text().split("\n") if marker.exists() else []
        starts = [float(ln.split()[0]) for ln in lines if ln.strip()]
        imports = [float(ln.split()[1]) for ln in lines if ln.strip()]
        if len(starts) != n:
            raise RuntimeError(f"{who} {case}: {len(starts)} of {n} flow runs wrote their marker")
        return {"who": who, "case": case, "wall": wall,
                "first_flow": (min(starts) - start) if starts else None,
                "import": statistics.median(imports) if imports else None, "installs": installs}


def main() -> int:
    uv = os.environ.get("PC_E2E_UV") or shutil.which("uv", path=str(VENV_BIN))
    if not uv:
        print("bench field: uv not found: run scripts/setup.sh (requirements-dev.txt has uv) or "
              "set PC_E2E_UV", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="pc-field-"))
    field = Field(work, Path(uv))
    results = []
    try:
        for rep in range(REPEATS):
            d = work / f"r{rep}"
            d.mkdir()
            results.append(field.cycle("idle, no repository", 0, None, None, None))
            results.append(field.cycle("idle, repository", 0, overlay_venv(d / "v0", field.uv),
                                       d / "c0", d / "cache0"))
            # Fresh container: a new venv, code dir and cache each.
            py1 = overlay_venv(d / "v1", field.uv)
            results.append(field.cycle("3 runs, fresh container", 3, py1, d / "c1", d / "cache1"))
            pyb = overlay_venv(d / "vb", None)
            results.append(field.baseline("3 runs, fresh container", 3, pyb, d / "cb", d / "pipb"))
            # Kept volume: the cache of the fresh run, a new venv and code dir.
            py2 = overlay_venv(d / "v2", field.uv)
            results.append(field.cycle("3 runs, kept volume", 3, py2, d / "c2", d / "cache1"))
            pyb2 = overlay_venv(d / "vb2", None)
            results.append(field.baseline("3 runs, kept volume", 3, pyb2, d / "cb2", d / "pipb"))
            # Kept host: the fresh run's venv and code dir again.
            results.append(field.cycle("3 runs, kept host", 3, py1, d / "c1", d / "cache1"))
            results.append(field.baseline("3 runs, kept host", 3, pyb, d / "cb", d / "pipb"))
    finally:
        field.stop()
    out = ["| case | contender | wall s | to first flow s | flow's import of pandas+SQLAlchemy s | installer runs |",
           "|---|---|---|---|---|---|"]
    for r in results:
        ff = f"{r['first_flow']:.2f}" if r["first_flow"] is not None else "—"
        imp = f"{r['import']:.2f}" if r["import"] is not None else "—"
        out.append(f"| {r['case']} | {r['who']} | {r['wall']:.2f} | {ff} | {imp} | {r['installs']} |")
    text = "\n".join(out)
    print(text)
    dest = ROOT / "bench" / "results" / f"{dt.date.today()}-field.md"
    dest.write_text(f"# field scenario (bench/field.py), {REPEATS} repetition(s)\n\n{text}\n")
    print(f"written to {dest}; logs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
