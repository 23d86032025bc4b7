"""An API 300 ms ± 50 ms away (Prefect Cloud, a server in another region),
through the proxy's latency (fault_proxy.py): `doctor`, `run --dry-run` and
`run` with real flow runs pass. The flow runs' own engine talks through the
same proxy, as it would over that network."""

from __future__ import annotations

import pytest

from fault_proxy import FaultProxy
from test_doctor import failed

LATENCY = 0.3
JITTER = 0.05
HANDSHAKE = 0.5  # each new TLS connection's handshake, on top of the latency


@pytest.fixture
def far_api(prefect_server):
    proxy = FaultProxy(prefect_server.api_url.removesuffix("/api"), latency=LATENCY,
                       jitter=JITTER).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def far_tls_api(prefect_server, tmp_path):
    proxy = FaultProxy(prefect_server.api_url.removesuffix("/api"), latency=LATENCY,
                       jitter=JITTER, tls_dir=tmp_path, handshake_delay=HANDSHAKE).start()
    yield proxy
    proxy.stop()


def assert_far(proxy: FaultProxy, at_least: int) -> None:
    """Guards each test: every answer it got was held 250-350 ms."""
    assert len(proxy.delays) >= at_least, proxy.log
    assert LATENCY - JITTER <= min(proxy.delays), proxy.delays
    assert max(proxy.delays) <= LATENCY + JITTER, proxy.delays


def test_doctor_passes(prefect, pool, deploy, cycle, far_api):
    _, name = deploy(pool, "flows.py", "hello")

    result = cycle.run(pool, {"PREFECT_API_URL": far_api.api_url,
                              "PREFECT_TRIGGER_DEPLOYMENTS": name}, args=("doctor",))

    assert result.returncode == 0, result
    assert failed(result) == [], result
    assert_far(far_api, 4)


def test_dry_run_passes(prefect, pool, deploy, schedule_runs, cycle, far_api):
    deployment_id, name = deploy(pool, "flows.py", "hello")
    runs = schedule_runs(deployment_id, 2)

    result = cycle.run(pool, {"PREFECT_API_URL": far_api.api_url,
                              "PREFECT_TRIGGER_DEPLOYMENTS": name}, args=("run", "--dry-run"))

    assert result.returncode == 0, result
    assert "  due flow runs (scheduled before now + 120 s): 2\n" in result.stdout, result
    assert_far(far_api, 3)
    assert [prefect.state_type(r) for r in runs] == ["SCHEDULED"] * 2
    assert prefect.pool(pool).is_paused


def test_run_completes_real_flow_runs(prefect, pool, deploy, schedule_runs, cycle, far_api):
    deployment_id, _ = deploy(pool, "flows.py", "hello")
    runs = schedule_runs(deployment_id, 3)

    result = cycle.run(pool, {"PREFECT_API_URL": far_api.api_url,
                              "PREFECT_WORKER_FLOW_LIMIT": "3",
                              "PREFECT_WAIT_POLL_SECONDS": "1"}, timeout=240)

    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 3, result
    assert prefect.pool(pool).is_paused, result
    assert result.summary["pool_paused_at_end"] is True, result.summary
    assert_far(far_api, 20)


def test_doctor_and_run_over_tls_with_a_slow_handshake(prefect, pool, deploy, schedule_runs,
                                                       cycle, far_tls_api):
    """HTTPS 300 ms away whose handshakes take another 500 ms: doctor passes
    and real flow runs complete (their engine trusts the same certificate)."""
    deployment_id, name = deploy(pool, "flows.py", "hello")
    runs = schedule_runs(deployment_id, 2)
    env = {"PREFECT_API_URL": far_tls_api.api_url,
           "PREFECT_API_SSL_CERT_FILE": str(far_tls_api.cert)}

    doctor = cycle.run(pool, {**env, "PREFECT_TRIGGER_DEPLOYMENTS": name}, args=("doctor",))
    assert doctor.returncode == 0, doctor
    assert failed(doctor) == [], doctor

    result = cycle.run(pool, {**env, "PREFECT_WORKER_FLOW_LIMIT": "2",
                              "PREFECT_WAIT_POLL_SECONDS": "1"}, timeout=240)
    assert result.returncode == 0, result
    assert [prefect.state_type(r) for r in runs] == ["COMPLETED"] * 2, result
    assert prefect.pool(pool).is_paused, result
    assert_far(far_tls_api, 20)
    handshakes = far_tls_api.handshakes
    assert handshakes and min(handshakes) >= HANDSHAKE, handshakes
    # Connections are kept alive: far fewer handshakes than requests.
    assert len(handshakes) * 2 < len(far_tls_api.delays), (len(handshakes), far_tls_api.log)
