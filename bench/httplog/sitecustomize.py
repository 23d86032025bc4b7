"""Counts the HTTP requests of the baseline's Python processes (benchmark only).

Loaded through PYTHONPATH by bench/bench.py for the baseline's `prefect` CLI
processes and its wait loop. When BENCH_HTTP_LOG is set, every httpx request
(each attempt, retries included) appends "pid<TAB>method<TAB>url<TAB>status<TAB>ms"
to that file, and every websocket connection attempt (Prefect's events client)
a line with method "WS". The driver keeps only the lines of the controller's own pids (flow
processes inherit the variable and are filtered out).
"""

import os
import time

_path = os.environ.get("BENCH_HTTP_LOG")
if _path:
    try:
        import httpx

        def _write(method, url, status, started):
            ms = (time.monotonic() - started) * 1000
            try:
                with open(_path, "a") as f:
                    f.write(f"{os.getpid()}\t{method}\t{url}\t{status}\t{ms:.0f}\n")
            except OSError:
                pass

        def _record(request, status, started):
            _write(request.method, request.url, status, started)

        _sync_send = httpx.Client.send
        _async_send = httpx.AsyncClient.send

        def send(self, request, *args, **kwargs):
            status, started = "error", time.monotonic()
            try:
                response = _sync_send(self, request, *args, **kwargs)
                status = response.status_code
                return response
            finally:
                _record(request, status, started)

        async def async_send(self, request, *args, **kwargs):
            status, started = "error", time.monotonic()
            try:
                response = await _async_send(self, request, *args, **kwargs)
                status = response.status_code
                return response
            finally:
                _record(request, status, started)

        httpx.Client.send = send
        httpx.AsyncClient.send = async_send

        from websockets.asyncio.client import connect as _ws_connect

        _ws_await = _ws_connect.__await_impl__

        async def ws_await(self):
            status, started = "error", time.monotonic()
            try:
                connection = await _ws_await(self)
                status = 101
                return connection
            finally:
                _write("WS", getattr(self, "uri", "?"), status, started)

        _ws_connect.__await_impl__ = ws_await
    except Exception:  # noqa: BLE001 - never break the measured program
        pass
