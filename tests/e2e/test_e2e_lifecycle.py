"""The controller process: health endpoints, signals, graceful shutdown, startup failures."""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import subprocess
import sys
import time

import pytest

import e2e_support as s


@pytest.fixture(scope="module")
def folder_with_app(backends):
    folder = s.scratch_dir("manifests")
    s.write_manifests(folder, "all.yaml", [
        s.ingress_class(), *s.backed_service("life", backends.start("life")),
        s.ingress("life", [s.rule("life.example", s.path("/", "life"))]),
    ])
    return folder


def test_health_endpoints(folder_with_app):
    with s.running(folder_with_app) as ctl:
        assert ctl.healthz("/healthz") == (200, "ok\n")
        assert ctl.healthz("/readyz") == (200, "ready\n")
        status, text = ctl.healthz("/metrics")
        assert status == 200
        assert "ingress_ctrl_config_last_reload_successful 1.0" in text
        assert ctl.healthz("/nope")[0] == 404


def test_sigterm_lets_in_flight_requests_finish(folder_with_app):
    ctl = s.Controller(folder_with_app).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(ctl.get, "/?sleep=1.5", "life.example")
            time.sleep(0.5)
            ctl.process.send_signal(signal.SIGTERM)
            reply = slow.result(10)
        assert reply.backend == "life", reply
        assert ctl.process.wait(30) == 0
        assert not ctl.nginx_alive()
    finally:
        ctl.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_grace_period_keeps_serving_while_not_ready(folder_with_app, sig):
    ctl = s.Controller(folder_with_app, ["--shutdown-grace-period", "2"]).start()
    try:
        ctl.process.send_signal(sig)
        s.wait_until(lambda: ctl.healthz("/readyz")[0] == 503, timeout=1.5, interval=0.02, what="not ready after the signal")
        assert ctl.process.poll() is None
        assert ctl.backend("/", "life.example") == "life"  # traffic still served while endpoints drain
        assert ctl.process.wait(30) == 0
        with pytest.raises(OSError):
            ctl.get("/", "life.example")
    finally:
        ctl.kill()


def test_serve_with_a_missing_folder_exits_2():
    folder = s.scratch_dir("manifests") / "missing"
    result = subprocess.run([sys.executable, "-m", "ingress_ctrl", "serve", "--manifests", str(folder),
                             "--state-dir", str(s.scratch_dir("state")), "--http-port", str(s.free_port()),
                             "--https-port", str(s.free_port()), "--healthz-port", str(s.free_port()),
                             "--listen-address", "127.0.0.1"],
                            cwd=s.REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert str(folder) in result.stderr


def test_recovers_from_a_port_that_is_busy_at_startup(folder_with_app):
    """E.g. the previous pod's nginx still holding a hostNetwork port for a moment."""
    ctl = s.Controller(folder_with_app)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", ctl.http_port))
    blocker.listen()
    try:
        with open(ctl.stdout_path, "wb") as out, open(ctl.stderr_path, "wb") as err:
            ctl.process = subprocess.Popen(ctl.command, cwd=s.REPO_ROOT, stdout=out, stderr=err)
        s.wait_until(lambda: ctl.healthz("/healthz")[0] == 200, timeout=15, what="healthz")
        time.sleep(4)  # longer than nginx's own bind retries (5 x 500ms)
        assert ctl.healthz("/readyz")[0] == 503
        blocker.close()
        s.wait_until(lambda: ctl.healthz("/readyz")[0] == 200, timeout=10, what="ready once the port is free")
        ctl.wait_backend("life", "/", "life.example")
        assert ctl.stop() == 0
    finally:
        blocker.close()
        ctl.kill()
