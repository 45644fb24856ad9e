"""Hostile manifests are refused, each named on stderr, while a good Ingress beside them serves."""

from __future__ import annotations

import pytest

import e2e_support as s

NS = "hostile"


def _hostile_path(name: str, bad: str) -> dict:
    return s.ingress(name, [s.rule(f"{name}.example", s.path("/ok", "victim"), s.path(bad, "victim"))], NS)


# Ingress name -> (manifest, rejected field, a fragment that must never reach nginx.conf)
HOSTILE = {
    "path-semicolon": (_hostile_path("path-semicolon", "/a;return 200 pwned"), "spec.rules[0].http.paths[1].path", "pwned"),
    "path-brace-open": (_hostile_path("path-brace-open", "/a{"), "spec.rules[0].http.paths[1].path", "/a{"),
    "path-brace-close": (_hostile_path("path-brace-close", "/a}location /x{"), "spec.rules[0].http.paths[1].path", "/a}"),
    "path-double-quote": (_hostile_path("path-double-quote", '/a";deny all;"'), "spec.rules[0].http.paths[1].path", "deny all"),
    "path-single-quote": (_hostile_path("path-single-quote", "/a'b"), "spec.rules[0].http.paths[1].path", "/a'b"),
    "path-space": (_hostile_path("path-space", "/a b"), "spec.rules[0].http.paths[1].path", "/a b"),
    "path-newline": (_hostile_path("path-newline", "/a\nreturn 200 injected;"), "spec.rules[0].http.paths[1].path", "injected"),
    "path-dollar": (_hostile_path("path-dollar", "/a$host"), "spec.rules[0].http.paths[1].path", "/a$host"),
    "path-backslash": (_hostile_path("path-backslash", "/a\\"), "spec.rules[0].http.paths[1].path", "/a\\"),
    "host-semicolon": (s.ingress("host-semicolon", [s.rule("host-semicolon.example", s.path("/ok", "victim")),
                                                    s.rule("evil.example;return 200 x", s.path("/", "victim"))], NS),
                       "spec.rules[1].host", "evil.example"),
    "snippet": (s.ingress("snippet", [s.rule("snippet.example", s.path("/ok", "victim"))], NS,
                          annotations={"nginx.ingress.kubernetes.io/configuration-snippet": "return 200 snipped;"}),
                "metadata.annotations['nginx.ingress.kubernetes.io/configuration-snippet']", "snipped"),
    "server-snippet": (s.ingress("server-snippet", [s.rule("server-snippet.example", s.path("/ok", "victim"))], NS,
                                 annotations={"nginx.ingress.kubernetes.io/server-snippet": "location /x { return 200 snap; }"}),
                       "metadata.annotations['nginx.ingress.kubernetes.io/server-snippet']", "snap"),
    "service-dollar": (s.ingress("service-dollar", [s.rule("service-dollar.example", s.path("/ok", "victim"),
                                                           s.path("/svc", "victim$host"))], NS),
                       "spec.rules[0].http.paths[1].backend.service.name", "victim$host"),
    "tls-secret-name": (s.ingress("tls-secret-name", [s.rule("tls-secret-name.example", s.path("/ok", "victim"))], NS,
                                  tls=[{"hosts": ["tls-secret-name.example"], "secretName": "x;ssl_certificate /etc/shadow"}]),
                        "spec.tls[0].secretName", "/etc/shadow"),
    "bad-annotation-value": (s.ingress("bad-annotation-value", [s.rule("bad-annotation-value.example", s.path("/ok", "victim"))], NS,
                                       annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "1m; return 200 x"}),
                             "metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']", "return 200 x"),
}


@pytest.fixture(scope="module")
def ctl(backends, folder):
    victim = backends.start("victim")
    good = backends.start("good")
    s.write_manifests(folder, "base.yaml", [
        s.ingress_class(),
        *s.backed_service("victim", victim, namespace=NS),
        *s.backed_service("good", good, namespace=NS),
    ])
    s.write_manifests(folder, "good.yaml", [s.ingress("good", [s.rule("good.example", s.path("/", "good"))], NS)])
    s.write_manifests(folder, "hostile-backends.yaml", [
        s.external_service("evil-external", "evil.example;return 200 x", NS),
        s.service("evil-slice", NS),
        s.endpoint_slice("evil-slice", victim, ["127.0.0.1;return 200 y"], NS),
        s.ingress("backends", [s.rule("backends.example", s.path("/fine", "victim"), s.path("/ext", "evil-external"),
                                      s.path("/slice", "evil-slice"))], NS),
        s.ingress("bad-namespace", [s.rule("bad-namespace.example", s.path("/ok", "victim"))], "bad;ns"),
    ])
    for name, (manifest, _, _) in HOSTILE.items():
        s.write_manifests(folder, f"{name}.yaml", [manifest])
    with s.running(folder) as controller:
        yield controller


def test_good_ingress_beside_hostile_ones_serves(ctl):
    reply = ctl.get("/anything", "good.example")
    assert reply.backend == "good", reply


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_ingress_routes_do_not_answer(ctl, name):
    reply = ctl.get("/ok", f"{name}.example")
    assert reply.status == 404, reply
    assert reply.backend is None


@pytest.mark.parametrize("name", list(HOSTILE))
def test_stderr_names_object_and_field(ctl, name):
    _, field, _ = HOSTILE[name]
    line = ctl.wait_stderr(f"Ingress {NS}/{name}: " + _re(field))
    assert "rejected" in line


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_never_reaches_nginx_conf(ctl, name):
    _, _, fragment = HOSTILE[name]
    config = (ctl.state_dir / "nginx.conf").read_text()
    assert fragment not in config
    assert f"{name}.example" not in config


def test_hostile_services_and_endpoints_answer_503_beside_good_routes(ctl):
    assert ctl.backend("/fine", "backends.example") == "victim"
    assert ctl.get("/ext", "backends.example").status == 503
    assert ctl.get("/slice", "backends.example").status == 503
    ctl.wait_stderr(r"Service hostile/evil-external: spec\.externalName")
    ctl.wait_stderr(r"EndpointSlice hostile/evil-slice-abcde: endpoints\[0\]\.addresses\[0\]")
    config = (ctl.state_dir / "nginx.conf").read_text()
    assert "return 200 x" not in config and "return 200 y" not in config


def test_hostile_namespace_is_rejected(ctl):
    assert ctl.get("/ok", "bad-namespace.example").status == 404
    ctl.wait_stderr(r"Ingress bad;ns/bad-namespace: metadata\.namespace")


def test_metrics_count_rejected_ingresses(ctl):
    metrics = ctl.metrics()
    assert metrics['ingress_ctrl_ingresses{state="served"}'] == 2  # good, backends
    assert metrics['ingress_ctrl_ingresses{state="rejected"}'] == len(HOSTILE) + 1


def test_hostile_host_header_is_not_a_route(ctl):
    status, response = s.raw_request(ctl.http_port, b"GET /ok HTTP/1.1\r\nHost: evil.example;return\r\nConnection: close\r\n\r\n")
    assert status in (400, 404), response[:200]


def _re(text: str) -> str:
    import re
    return re.escape(text)
