"""Oversized objects: 1 MB of annotations, an Ingress with 5,000 paths, 10,000 hosts. Each is
handled (served) or rejected with a reason, never a crash; the pure pipeline is checked
in-process, and each shape also goes through real nginx."""

from __future__ import annotations

import datetime
import time

import pytest

from ingress_ctrl.render import render
from ingress_ctrl.settings import NginxSettings, TranslateSettings
from ingress_ctrl.state import Store, key_of
from ingress_ctrl.translate import translate
from ingress_ctrl.translate.model import Translation
from tests.faults import harness as h

MB = 1 << 20
PATHS = 5000
HOSTS = 10000
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"

# name -> (annotations, served?)
ANNOTATIONS = {
    "foreign-1mb": ({"example.com/notes": "x" * MB}, True),                      # not ours: ignored
    "unknown-1mb-in-10k": ({f"{NGINX_PREFIX}unknown-{i:05d}-{'x' * 80}": "1" for i in range(10000)}, True),
    "bad-value-1mb": ({f"{NGINX_PREFIX}proxy-body-size": "9" * MB}, False),      # fails its grammar
    "snippet-1mb": ({f"{NGINX_PREFIX}configuration-snippet": "return 200;\n" * (MB // 12)}, False),
}


def _translate(*objects: dict) -> Translation:
    store = Store()
    store.replace((key_of(o), o) for o in [h.ingress_class(), *h.service("echo", 8080), *objects])
    return translate(store.snapshot(), TranslateSettings(), datetime.datetime.now(datetime.timezone.utc))


def _paths_ingress() -> dict:
    return h.ingress("paths", h.rule("paths.example", *(h.path(f"/p{i}", "echo") for i in range(PATHS))))


def _hosts_ingress() -> dict:
    return h.ingress("hosts", *(h.rule(f"h{i}.example.com", h.path("/", "echo")) for i in range(HOSTS)))


@pytest.mark.parametrize("name", ANNOTATIONS)
def test_one_megabyte_of_annotations(name):
    annotations, served = ANNOTATIONS[name]
    key = key_of(h.ingress(name))
    t = _translate(h.ingress(name, h.rule("a.example", h.path("/", "echo")), annotations=annotations),
                   h.ingress("good", h.rule("good.example", h.path("/", "echo"))))
    assert key_of(h.ingress("good")) in t.served
    if served:
        assert key in t.served
    else:
        assert t.rejected == (key,)
        [problem] = [p for p in t.problems if p.object == key]
        assert problem.rejected and problem.field.startswith("metadata.annotations[")
        assert len(str(problem)) < 400, "the reason quotes the whole megabyte"
    render(t.config, NginxSettings())


def test_ingress_with_5000_paths():
    t = _translate(_paths_ingress())
    assert len(t.served) == 1 and not t.problems
    [server] = t.config.servers
    assert len(server.locations) == 2 * PATHS + 1  # `= /pN` and `/pN/` each, and the fallback `/`
    assert render(t.config, NginxSettings()).text.count("location ") == 2 * PATHS + 1 + 1 + 3  # + the default server's and the status socket's


def test_10000_hosts_translate_and_render():
    t = _translate(_hosts_ingress())
    rendered = render(t.config, NginxSettings())
    assert len(t.config.servers) == HOSTS and not t.problems
    assert rendered.text.count("\n    server {") == HOSTS + 2  # + the default server + the status socket's


def test_10000_hosts_go_live_through_the_controller_while_the_rest_keeps_serving(echo, folder):
    """Through real nginx: `nginx -t`, reload, confirm. The slow part is nginx loading the
    config; each server with a TLS context of its own costs milliseconds there, and with
    those a 10,000-host config did not load within the 30 s confirm timeout on a busy machine."""
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port),
                                            h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
    with h.running(folder) as ctl:
        started = time.monotonic()
        h.write_manifests(folder, "hosts.yaml", [_hosts_ingress()])
        slowest = 0.0
        while ctl.backend("/", f"h{HOSTS - 1}.example.com") != "echo":
            before = time.monotonic()
            assert ctl.backend("/", "a.example") == "echo"  # the other routes serve throughout
            slowest = max(slowest, time.monotonic() - before)
            assert "nginx refused config" not in ctl.log(), ctl.log()[-2000:]
            assert time.monotonic() - started < 180, "10,000 hosts not live after 180 s"
            time.sleep(0.1)
        live = time.monotonic() - started
        ctl.wait_backend("echo", "/", "h0.example.com")  # (old workers accept for ~100 ms after a reload)
        assert ctl.backend("/", "h10000.example.com") == 404
        assert ctl.metric(h.LAST_RELOAD_OK) == 1
        print(f"\n{HOSTS} hosts live {live:.1f}s after the file was written; a.example's slowest answer "
              f"meanwhile {slowest * 1000:.0f} ms")


def test_big_objects_beside_a_good_one_through_the_controller(echo, folder):
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    h.write_manifests(folder, "good.yaml", [h.ingress("good", h.rule("good.example", h.path("/", "echo")))])
    for name, (annotations, _) in ANNOTATIONS.items():
        h.write_manifests(folder, f"{name}.yaml", [
            h.ingress(name, h.rule(f"{name}.example", h.path("/", "echo")), annotations=annotations)])
    h.write_manifests(folder, "paths.yaml", [_paths_ingress()])
    with h.running(folder) as ctl:
        assert ctl.backend("/", "good.example") == "echo"
        for name, (_, served) in ANNOTATIONS.items():
            assert ctl.backend("/", f"{name}.example") == ("echo" if served else 404), name
        for i in (0, 1234, PATHS - 1):
            assert ctl.backend(f"/p{i}", "paths.example") == "echo"
            assert ctl.backend(f"/p{i}/x", "paths.example") == "echo"
        assert ctl.backend(f"/p{PATHS}", "paths.example") == 404
        metrics = ctl.metrics()
        assert metrics['ingress_ctrl_ingresses{state="served"}'] == 1 + 1 + sum(s for _, s in ANNOTATIONS.values())
        assert metrics['ingress_ctrl_ingresses{state="rejected"}'] == sum(not s for _, s in ANNOTATIONS.values())
        log = ctl.log()
        assert "Ingress default/bad-value-1mb: metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']" in log
        assert "snippet annotations are not supported" in log
        assert max(len(line) for line in log.splitlines()) < 4096, "a log line quotes a megabyte"
        # ...and the next small change still applies.
        h.write_manifests(folder, "later.yaml", [h.ingress("later", h.rule("later.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "later.example")
