"""A fault-injecting HTTP proxy between prefect-cycle and the real Prefect
server, for the faults a real server cannot be made to produce on demand.

    proxy = FaultProxy(upstream="http://127.0.0.1:4200").start()
    rule = proxy.add(Rule("POST", r"/flow_runs/[^/]+/set_state$", "drop_after_apply",
                          body_contains='"PENDING"'))
    ... run prefect-cycle with PREFECT_API_URL=proxy.api_url ...
    assert rule.fired == 1

A rule matches a request by method, a regex searched in the path, an optional
substring of the request body, and the n-th matching call (`nth`, 1-based);
`permanent=True` fires on that call and every later one; `for_seconds=2.5`
fires on that call and every later one for 2.5 s from the first (an outage
that ends, as the edge's 502s during a redeploy). Each rule counts the
requests it matched (`seen`) and the faults it injected (`fired`), so that a
test can fail when its fault never happened. Actions:

  status            answer `status` (e.g. 429, 500, 502, 503) with a JSON
                    detail, and Retry-After when `retry_after` is set; the
                    request is not forwarded
  reset_before      close the connection with a TCP reset, not forwarded
  drop_after_apply  forward (the server applies it), then reset instead of
                    answering: a retry arrives twice
  delay             sleep `seconds`, then forward and answer
  truncate          forward, answer the first half of the server's body
  malformed         forward, answer 200 with a body that is not JSON
  huge              forward, answer 200 with a 100 MB body
Requests no rule fires on are forwarded unchanged.

A network: `FaultProxy(upstream, latency=0.3, jitter=0.05)` holds every answer
(forwarded or injected) for `latency` ± `jitter` seconds (uniform), as an API
in another region or Prefect Cloud would; `delays` records what each request
was given, so that a test can prove the latency was there.

TLS with a slow handshake: `FaultProxy(upstream, tls_dir=path, handshake_delay=0.5)`
serves HTTPS with a self-signed certificate for 127.0.0.1 (written to
`tls_dir / "cert.pem"`: pass it as PREFECT_API_SSL_CERT_FILE) and holds every
new connection's handshake `handshake_delay` seconds (after the client's hello,
before the server's), as a far server whose TLS round trips cost that much;
`handshakes` records each one that completed, so that a test can prove
connections were set up (and, by their count, reused).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from harness import self_signed_cert

HUGE_BYTES = 100 * 1024 * 1024
ACTIONS = {"status", "reset_before", "drop_after_apply", "delay", "truncate", "malformed",
           "huge"}


@dataclass
class Rule:
    method: str
    path: str  # regex, searched in the request path (after /api)
    action: str
    nth: int = 1
    permanent: bool = False
    body_contains: str | None = None
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    for_seconds: float = 0.0
    seen: int = 0
    fired: int = 0
    first_fired: float | None = None  # time.monotonic() of the first fault
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        self._path = re.compile(self.path)

    def take(self, method: str, path: str, body: bytes) -> bool:
        """Whether this request is matched and the fault fires on it."""
        if method != self.method or not self._path.search(path):
            return False
        if self.body_contains is not None and self.body_contains.encode() not in body:
            return False
        with self._lock:
            self.seen += 1
            fire = self.seen == self.nth or (self.permanent and self.seen > self.nth)
            if self.for_seconds > 0 and self.seen > self.nth:
                fire = time.monotonic() - self.first_fired < self.for_seconds
            if fire:
                self.fired += 1
                if self.first_fired is None:
                    self.first_fired = time.monotonic()
            return fire


class FaultProxy:
    def __init__(self, upstream: str, latency: float = 0.0, jitter: float = 0.0,
                 tls_dir: Path | None = None, handshake_delay: float = 0.0):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.latency = latency
        self.jitter = jitter
        self.delays: list[float] = []  # seconds each answer was held
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._server: ThreadingHTTPServer | None = None
        self.handshake_delay = handshake_delay
        self.handshakes: list[float] = []  # seconds each completed handshake took here
        self.cert: Path | None = None
        self._tls: ssl.SSLContext | None = None
        if tls_dir is not None:
            self.cert, key = self_signed_cert(tls_dir)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(self.cert, key)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/api"

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                rule = next((r for r in proxy.rules if r.take(self.command, path, body)), None)
                proxy.log.append((self.command, path, rule.action if rule else "forward"))
                if rule is None:
                    return self._reply(*self._forward(body))
                if rule.action == "status":
                    headers = {"Content-Type": "application/json"}
                    if rule.retry_after is not None:
                        headers["Retry-After"] = rule.retry_after
                    detail = json.dumps({"detail": f"injected {rule.status}"}).encode()
                    return self._reply(rule.status, headers, detail)
                if rule.action == "reset_before":
                    return self._reset()
                if rule.action == "delay":
                    time.sleep(rule.seconds)
                    return self._reply(*self._forward(body))
                status, headers, answer = self._forward(body)
                if rule.action == "drop_after_apply":
                    return self._reset()
                if rule.action == "truncate":
                    return self._reply(status, headers, answer[: max(1, len(answer) // 2)])
                if rule.action == "malformed":
                    return self._reply(200, {"Content-Type": "application/json"},
                                       b'{"id": "not json')
                if rule.action == "huge":
                    return self._huge()

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                  timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length", "accept-encoding")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                out = {k: v for k, v in response.getheaders()
                       if k.lower() in ("content-type", "retry-after")}
                conn.close()
                return response.status, out, answer

            def _reply(self, status: int, headers: dict, body: bytes):
                if proxy.latency > 0:
                    delay = max(0.0, proxy.latency + random.uniform(-proxy.jitter, proxy.jitter))
                    time.sleep(delay)
                    proxy.delays.append(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True

            def _huge(self):
                chunk = b"[" + b'"xxxxxxxxxxxxxxx",' * 4096
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(HUGE_BYTES))
                    self.end_headers()
                    sent = 0
                    while sent < HUGE_BYTES:
                        part = chunk[: HUGE_BYTES - sent]
                        self.wfile.write(part)
                        sent += len(part)
                except OSError:
                    pass  # the client gave up reading: what it should do
                self.close_connection = True

            def _reset(self):
                # SO_LINGER with a zero timeout: close() sends RST.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            # socketserver's default backlog is 5: a client opening 16
            # connections at once would see SYNs dropped and resent 1 s later,
            # which no real server (uvicorn: 2048) does.
            request_queue_size = 128

            def process_request_thread(self, request, client_address):
                # In the connection's own thread: a slow handshake holds only
                # this connection, as it would over a network.
                if proxy._tls is not None:
                    started = time.monotonic()
                    try:
                        request.settimeout(30)
                        request.recv(1, socket.MSG_PEEK)  # the client's hello is here
                        time.sleep(proxy.handshake_delay)
                        request = proxy._tls.wrap_socket(request, server_side=True)
                        request.settimeout(None)
                    except (OSError, ssl.SSLError):
                        self.shutdown_request(request)
                        return
                    proxy.handshakes.append(time.monotonic() - started)
                super().process_request_thread(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
