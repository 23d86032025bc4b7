"""A real PostgreSQL (Debian's server binaries) on 127.0.0.1 for the database
check: initdb into a temp dir, pg_ctl start on a free port, password (scram)
authentication, stopped and removed afterwards. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` user (or `nobody`)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/setup.sh")
    return Path(found[-1]).parent


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


class PostgresServer:
    user = "pcuser"
    database = "postgres"

    def __init__(self, password: str = "pg-right-pw-123"):
        self.password = password
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pc-pg-"))
        self.data = self.dir / "data"
        self.bindir = _bindir()
        self.as_user = _run_as()

    def url(self, password: str | None = None, port: int | None = None) -> str:
        pw = self.password if password is None else password
        return (f"postgresql://{self.user}:{pw}@127.0.0.1:{port or self.port}/{self.database}"
                "?sslmode=disable")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)

    def start(self) -> "PostgresServer":
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            owner = pwd.getpwnam(self.as_user[2])
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                      "--pwfile", str(pwfile), "-A", "scram-sha-256", "--no-sync")
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                      str(self.dir / "server.log"), "-w", "-t", "60",
                      "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                      "start")
        except subprocess.CalledProcessError as e:
            log = self.dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {e.stderr}\n{tail}") from e
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                            "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
