"""A config nginx refuses: the last good config keeps serving, the failure is reported (log and
metrics), and the next good change applies. nginx is made to refuse through the --nginx-binary
seam: a wrapper that fails `nginx -t` like nginx does while a marker file exists."""

from __future__ import annotations

from tests.faults import harness as h


def test_refused_config_keeps_the_last_good_one_and_the_next_good_change_applies(echo, folder):
    wrapper, refuse = h.refusing_nginx(h.scratch_dir("seam"))
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
    with h.running(folder, nginx_binary=str(wrapper)) as ctl:
        assert ctl.backend("/", "a.example") == "echo"
        live = (ctl.state_dir / "nginx.conf").read_text()
        ok, failed = ctl.metric(h.RELOADS_OK), ctl.metric(h.RELOADS_FAILED)

        refuse.touch()
        mark = len(ctl.log())
        h.write_manifests(folder, "b.yaml", [h.ingress("b", h.rule("b.example", h.path("/", "echo")))])
        line = ctl.wait_log("nginx refused config", after=mark)
        assert "injected refusal" in line  # nginx's own words reach the log
        h.wait_until(lambda: ctl.metric(h.RELOADS_FAILED) >= failed + 1, what="failure counted")  # (and retried)
        metrics = ctl.metrics()
        assert metrics[h.LAST_RELOAD_OK] == 0
        assert metrics[h.RELOADS_OK] == ok
        # The last good config is still the one on disk and the one serving.
        assert (ctl.state_dir / "nginx.conf").read_text() == live
        assert ctl.backend("/", "a.example") == "echo"
        assert ctl.backend("/", "b.example") == 404
        assert ctl.healthz("/healthz")[0] == 200 and ctl.healthz("/readyz")[0] == 200

        refuse.unlink()
        h.write_manifests(folder, "c.yaml", [h.ingress("c", h.rule("c.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "c.example")
        ctl.wait_backend("echo", "/", "b.example")  # the refused change arrives with the next good one
        assert ctl.backend("/", "a.example") == "echo"
        h.wait_until(lambda: ctl.metric(h.LAST_RELOAD_OK) == 1, what="success reported")
        assert ctl.metric(h.RELOADS_OK) > ok


def test_refused_config_at_start_is_reported_and_the_next_good_change_starts_nginx(echo, folder):
    """No good config yet: not ready (nothing serves), alive (nothing to restart); then it recovers."""
    wrapper, refuse = h.refusing_nginx(h.scratch_dir("seam"))
    refuse.touch()
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
    ctl = h.Controller(folder, nginx_binary=str(wrapper))
    try:
        with open(ctl.log_path, "wb") as log:
            ctl.process = h.subprocess.Popen(ctl.command, cwd=h.REPO_ROOT, stdin=h.subprocess.DEVNULL,
                                             stdout=h.subprocess.DEVNULL, stderr=log)
        ctl.wait_log("nginx refused config")
        assert ctl.healthz("/readyz")[0] == 503
        assert ctl.healthz("/healthz")[0] == 200
        assert ctl.process.poll() is None
        refuse.unlink()
        h.write_manifests(folder, "b.yaml", [h.ingress("b", h.rule("b.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "a.example")
        h.wait_until(lambda: ctl.healthz("/readyz")[0] == 200, what="ready")
    except BaseException:
        ctl.kill()
        raise
    assert ctl.stop() == 0
