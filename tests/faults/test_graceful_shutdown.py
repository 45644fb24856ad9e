"""SIGTERM: /readyz turns 503 at once, new connections are still served for the grace period
(--shutdown-grace-period), requests in flight finish (a 2-second slow one started before
SIGTERM, and one still running when nginx is told to quit), nginx quits, the process exits 0."""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import time

from tests.faults import harness as h

GRACE = 2.0


def test_sigterm_drains_and_exits_zero(echo, folder):
    h.write_manifests(folder, "all.yaml", [h.ingress_class(), *h.service("echo", echo.port),
                                           h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
    ctl = h.Controller(folder, grace=GRACE).start()
    pool = concurrent.futures.ThreadPoolExecutor(4)
    try:
        master = ctl.nginx_pid()
        workers = h.children_of(master)
        slow_before = pool.submit(h.get, ctl.http_port, "/?sleep=2", "a.example")
        time.sleep(0.3)  # the request is at the backend

        assert ctl.process is not None
        ctl.process.send_signal(signal.SIGTERM)
        term = time.monotonic()
        h.wait_until(lambda: ctl.healthz("/readyz")[0] == 503, timeout=GRACE, interval=0.005, what="/readyz 503")
        not_ready_after = time.monotonic() - term
        # Not ready while still serving: new connections are answered during the grace period.
        assert h.get(ctl.http_port, "/", "a.example")[0] == 200
        time.sleep(0.5)
        assert h.get(ctl.http_port, "/", "a.example")[0] == 200
        assert ctl.healthz("/healthz")[0] == 200
        # A slow request that will still be running when nginx gets its (graceful) quit.
        time.sleep(max(0.0, GRACE - 0.6 - (time.monotonic() - term)))
        slow_during = pool.submit(h.get, ctl.http_port, "/?sleep=2", "a.example")

        code = ctl.process.wait(30)
        exited_after = time.monotonic() - term
        assert code == 0, ctl.log()[-3000:]
        assert slow_before.result(5)[0] == 200
        assert slow_during.result(5)[0] == 200
        assert not h.process_alive(master) and not any(h.process_alive(w) for w in workers)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", ctl.http_port)) != 0, "something still listens"
        assert exited_after >= GRACE, "nginx quit before the grace period was over"
        print(f"\n/readyz 503 {not_ready_after * 1000:.0f} ms after SIGTERM; exit 0 after {exited_after:.2f}s "
              f"(grace {GRACE:g}s, last slow request started {GRACE - 0.6:.1f}s in)")
    except BaseException:
        ctl.kill()
        raise
    finally:
        pool.shutdown(wait=False)


def test_sigterm_without_grace_still_finishes_the_request_in_flight(echo, folder):
    h.write_manifests(folder, "all.yaml", [h.ingress_class(), *h.service("echo", echo.port),
                                           h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
    ctl = h.Controller(folder, grace=0).start()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            slow = pool.submit(h.get, ctl.http_port, "/?sleep=2", "a.example")
            time.sleep(0.3)
            assert ctl.stop() == 0
            assert slow.result(5)[0] == 200
        except BaseException:
            ctl.kill()
            raise
