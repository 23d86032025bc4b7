"""Secrets never appear in output, and TLS to the API behaves (issue 6)."""

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from git_server import Repo
from harness import Cycle, Prefect, PrefectServer, free_port, self_signed_cert

AUTH_USER = "admin"
DRAIN = {"PREFECT_CYCLE_DRAIN": "true"}
CANARIES = {
    "PREFECT_API_KEY": "pc-canary-apikey-5512",
    "PREFECT_API_AUTH_STRING": "pc-canary-authpw-7781",
    "GITHUB_ACCESS_TOKEN": "pc-canary-ghtoken-9931",
    "DATABASE_URL": "pc-canary-dbpw-2207",
    "PREFECT_WORKER_REPOSITORY": "pc-canary-repopw-4410",
}


@pytest.fixture(scope="module")
def auth_server():
    server = PrefectServer(
        {"PREFECT_SERVER_API_AUTH_STRING": f"{AUTH_USER}:{CANARIES['PREFECT_API_AUTH_STRING']}"}
    ).start()
    yield server
    server.stop()


def _leaks(result: Cycle, summary_text: str) -> list[str]:
    found = []
    for name, canary in CANARIES.items():
        for where, text in (("stdout", result.stdout), ("stderr", result.stderr),
                            ("summary", summary_text)):
            if canary in text:
                found.append(f"{name} canary in {where}")
    return found


def test_no_canary_in_any_output(auth_server, tmp_path):
    prefect = Prefect(auth_server)
    pool = prefect.create_pool(paused=True)
    repo = Repo(tmp_path, "flows", branches=("main",))
    good = {
        "PREFECT_API_KEY": CANARIES["PREFECT_API_KEY"],
        "PREFECT_API_AUTH_STRING": f"{AUTH_USER}:{CANARIES['PREFECT_API_AUTH_STRING']}",
        "GITHUB_ACCESS_TOKEN": CANARIES["GITHUB_ACCESS_TOKEN"],
        "DATABASE_URL": f"postgresql://app:{CANARIES['DATABASE_URL']}@127.0.0.1:{free_port()}/app",
        "PREFECT_WORKER_REPOSITORY": repo.file_url,
        "PREFECT_WORKER_GIT_TIMEOUT_SECONDS": "5",
    }
    bad_repo = f"http://git:{CANARIES['PREFECT_WORKER_REPOSITORY']}@127.0.0.1:{free_port()}/r.git"
    cases = {
        "run ok": (["run"], {}, 0),
        "run 401": (["run"], {"PREFECT_API_AUTH_STRING": f"{AUTH_USER}:wrong-"
                              + CANARIES["PREFECT_API_AUTH_STRING"]}, 3),
        # A drain cycle is never idle: it runs the preflight (an idle tick does not).
        "run bad branch": (["run"], {"PREFECT_WORKER_BRANCH": "nope", **DRAIN}, 4),
        "run bad repo host": (["run"], {"PREFECT_WORKER_REPOSITORY": bad_repo, **DRAIN}, 4),
        "run bad db": (["run"], {"PREFECT_WORKER_CHECK_DATABASE": "true", **DRAIN}, 4),
        "doctor bad db+branch": (["doctor"], {"PREFECT_WORKER_CHECK_DATABASE": "true",
                                              "PREFECT_WORKER_BRANCH": "nope"}, None),
        "doctor 401": (["doctor", "--json"], {"PREFECT_API_AUTH_STRING": "x:"
                                              + CANARIES["PREFECT_API_AUTH_STRING"]}, 3),
        "config": (["config"], {"PREFECT_WORKER_REPOSITORY": bad_repo}, 0),
        "dry run": (["run", "--dry-run"], {}, 0),
    }
    leaks = []
    for fmt in ("text", "json"):
        for name, (args, overrides, expected) in cases.items():
            cycle = Cycle(auth_server, tmp_path / f"{fmt}-{name.replace(' ', '_')}")
            cycle.tmp.mkdir()
            env = good | overrides | {"PREFECT_WORKER_CYCLE_LOG_FORMAT": fmt,
                                      "PREFECT_WORKER_CYCLE_LOG_LEVEL": "trace"}
            result = cycle.run(pool, env, args=args, timeout=120)
            if expected is not None:
                assert result.returncode == expected, (fmt, name, str(result))
            summary = cycle.tmp / "summary.json"
            leaks += [f"{fmt} / {name}: {leak}"
                      for leak in _leaks(result, summary.read_text() if summary.exists() else "")]
    assert leaks == []
    assert prefect.pool(pool).is_paused


# --- TLS -------------------------------------------------------------------


class TlsProxy:
    """nginx terminating TLS with a self-signed certificate in front of a server."""

    def __init__(self, root: Path, upstream_port: int):
        self.dir = root
        self.port = free_port()
        self.upstream = upstream_port
        self.proc = None
        self.cert = root / "cert.pem"

    def start(self) -> "TlsProxy":
        d = self.dir
        self.cert, key = self_signed_cert(d)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
            (d / sub).mkdir(exist_ok=True)
        (d / "nginx.conf").write_text(f"""
daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {key};
    location / {{ proxy_pass http://127.0.0.1:{self.upstream}; proxy_http_version 1.1; }}
  }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", str(d), "-c", str(d / "nginx.conf"),
                                      "-e", str(d / "logs" / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx TLS proxy did not start: "
                           + (d / "logs" / "error.log").read_text(errors="replace"))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def tls_proxy(prefect_server, tmp_path):
    proxy = TlsProxy(tmp_path, prefect_server.port).start()
    yield proxy
    proxy.stop()


def test_tls_self_signed(prefect, pool, cycle, tls_proxy):
    url = f"https://127.0.0.1:{tls_proxy.port}/api"

    rejected = cycle.run(pool, {"PREFECT_API_URL": url}, timeout=60)
    assert rejected.returncode == 3, rejected
    assert "PREFECT_API_SSL_CERT_FILE" in rejected.output
    assert rejected.duration < 20  # a bad certificate is not retried

    with_ca = cycle.run(pool, {"PREFECT_API_URL": url,
                               "PREFECT_API_SSL_CERT_FILE": str(tls_proxy.cert)})
    assert with_ca.returncode == 0, with_ca
    assert prefect.pool(pool).is_paused

    insecure = cycle.run(pool, {"PREFECT_API_URL": url,
                                "PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"})
    assert insecure.returncode == 0, insecure
    assert "PREFECT_API_TLS_INSECURE_SKIP_VERIFY is on" in insecure.output
    assert prefect.pool(pool).is_paused
