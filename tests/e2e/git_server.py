"""A real git HTTP server for the e2e tests: `git http-backend` (CGI) run by
fcgiwrap behind nginx with Basic auth, all from Debian's packages, on
127.0.0.1, as foreground processes in a temp dir, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FCGIWRAP = shutil.which("fcgiwrap") or "/usr/sbin/fcgiwrap"
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()


class Repo:
    """A bare repository <root>/<name>.git and a work clone to commit from."""

    def __init__(self, root: Path, name: str, branches=("main",)):
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        git("init", "-q", "--bare", "-b", branches[0], str(self.bare))
        git("init", "-q", "-b", branches[0], str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)
        self.commit({"README.md": "hello\n"}, "first")
        for b in branches[1:]:
            git("push", "-q", "origin", f"{branches[0]}:refs/heads/{b}", cwd=self.work)
        # http-backend serves only exported repositories (or GIT_HTTP_EXPORT_ALL).
        (self.bare / "git-daemon-export-ok").touch()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for rel, text in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    @property
    def file_url(self) -> str:
        return f"file://{self.bare}"


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} did not start:\n{log.read_text(errors='replace')[-3000:]}")


class GitHttpServer:
    """Serves every bare repository under `root` at http://127.0.0.1:<port>/git/<name>.git,
    for Basic-auth users {name: password} only ({PLAIN} passwords in the user file)."""

    def __init__(self, root: Path, users: dict[str, str]):
        self.root = root
        self.users = users
        self.dir = Path(tempfile.mkdtemp(prefix="pc-git-http-"))
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []

    def url(self, name: str, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}/git/{name}.git"

    def start(self) -> "GitHttpServer":
        d = self.dir
        for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi", "logs"):
            (d / sub).mkdir()
        (d / "htpasswd").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        sock = d / "fcgiwrap.sock"
        user = "user root;" if os.geteuid() == 0 else ""
        (d / "nginx.conf").write_text(f"""
{user}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/body;
  fastcgi_temp_path {d}/fastcgi;
  proxy_temp_path {d}/proxy;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    location ~ ^/git(/.*)$ {{
      auth_basic "git";
      auth_basic_user_file {d}/htpasswd;
      client_max_body_size 0;
      fastcgi_pass unix:{sock};
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {HTTP_BACKEND};
      fastcgi_param GIT_PROJECT_ROOT {self.root};
      fastcgi_param PATH_INFO $1;
      fastcgi_param REMOTE_USER $remote_user;
    }}
  }}
}}
""")
        fcgi_log = d / "logs" / "fcgiwrap.log"
        fcgi = subprocess.Popen(
            [FCGIWRAP, "-c", "2", "-s", f"unix:{sock}"],
            stdout=open(fcgi_log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(fcgi)
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline and fcgi.poll() is None:
            time.sleep(0.05)
        if not sock.exists():
            self.stop()
            raise RuntimeError(f"fcgiwrap did not start: {fcgi_log.read_text(errors='replace')}")
        nginx_log = d / "logs" / "nginx.out"
        nginx = subprocess.Popen(
            [NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "logs" / "error.log")],
            stdout=open(nginx_log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(nginx)
        try:
            _wait_port(self.port, nginx, d / "logs" / "error.log")
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
