"""An Ingress with only spec.defaultBackend, and the --default-backend-service flag."""

from __future__ import annotations

import pytest

import e2e_support as s


@pytest.fixture(scope="module")
def ctl(backends, folder):
    port = backends.start("catchall")
    older = s.ingress("only-default", default_backend=s.backend("catchall"))
    older["metadata"]["creationTimestamp"] = "2021-01-01T00:00:00Z"
    newer = s.ingress("a-second-default", default_backend=s.backend("catchall-2"))  # sorts first by name
    newer["metadata"]["creationTimestamp"] = "2022-01-01T00:00:00Z"
    s.write_manifests(folder, "all.yaml", [
        s.ingress_class(),
        *s.backed_service("catchall", port),
        *s.backed_service("catchall-2", backends.start("catchall-2")),
        older,
        newer,
    ])
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/anything", "/a/b/c.html", "/api/v1/items?x=1&y=2"])
def test_every_method_and_path_reaches_the_default_backend(ctl, method, path):
    body = b'{"hello": "world"}' if method in ("POST", "PUT", "PATCH") else None
    reply = ctl.get(path, "example.com", method=method, body=body)
    assert reply.status == 200, reply
    assert reply.backend == "catchall"
    assert reply.data["method"] == method
    assert reply.data["path"] == path
    assert reply.data["body_length"] == (len(body) if body else 0)


def test_head_reaches_the_default_backend(ctl):
    reply = ctl.get("/some/page", "example.com", method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.headers["Content-Type"].startswith("application/json")  # the backend's answer


@pytest.mark.parametrize("host", ["example.com", "WWW.Other.ORG", "a.b.c.d.e", "localhost:1234", "127.0.0.1", None])
def test_any_host_reaches_the_default_backend(ctl, host):
    reply = ctl.get("/x", host)
    assert reply.backend == "catchall", reply


def test_https_reaches_the_default_backend_with_the_default_certificate(ctl):
    reply = ctl.get_tls("/secure", "anything.example")
    assert reply.backend == "catchall"
    assert s.common_name(reply.certificate) == s.DEFAULT_CERT_CN


def test_a_second_default_backend_loses_to_the_older_one(ctl):
    assert ctl.backend("/", "example.com") == "catchall"
    line = ctl.wait_stderr(r"Ingress default/a-second-default: spec\.defaultBackend: ")
    assert "default/only-default" in line


def test_larger_request_body_passes(ctl):
    body = b"x" * 200_000  # larger than nginx's in-memory body buffer, below the 1m default limit
    reply = ctl.get("/upload", "example.com", method="POST", body=body)
    assert reply.backend == "catchall", reply
    assert reply.data["body_length"] == len(body)


# --- --default-backend-service ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flagged(backends):
    folder = s.scratch_dir("manifests")
    fallback_port = backends.start("fallback")
    app_port = backends.start("app-dbs")
    s.write_manifests(folder, "all.yaml", [
        s.ingress_class(),
        *s.backed_service("fallback", fallback_port, namespace="infra"),
        *s.backed_service("app", app_port),
        s.ingress("app", [s.rule("app.example", s.path("/api", "app"))]),
        s.tls_secret("default-cert", *s.make_certificate("my default", ["*.example"]), namespace="infra"),
    ])
    with s.running(folder, ["--default-backend-service", "infra/fallback",
                            "--default-ssl-certificate", "infra/default-cert"]) as controller:
        yield controller


def test_without_the_flag_unmatched_requests_get_404(backends):
    folder = s.scratch_dir("manifests")
    app_port = backends.start("app-nodbs")
    s.write_manifests(folder, "all.yaml", [
        s.ingress_class(), *s.backed_service("app", app_port),
        s.ingress("app", [s.rule("app.example", s.path("/api", "app"))]),
    ])
    with s.running(folder) as controller:
        assert controller.backend("/api/x", "app.example") == "app-nodbs"
        assert controller.backend("/", "unknown.example") == 404
        assert controller.backend("/other", "app.example") == 404


def test_default_backend_service_gets_unknown_hosts(flagged):
    reply = flagged.get("/whatever?q=1", "unknown.example")
    assert reply.backend == "fallback"
    assert reply.data["path"] == "/whatever?q=1"


def test_default_backend_service_gets_unmatched_paths_of_known_hosts(flagged):
    assert flagged.backend("/other", "app.example") == "fallback"
    assert flagged.backend("/", "app.example") == "fallback"


def test_default_backend_service_leaves_matched_routes_alone(flagged):
    assert flagged.backend("/api", "app.example") == "app-dbs"
    assert flagged.backend("/api/v1", "app.example") == "app-dbs"


def test_default_ssl_certificate_flag_replaces_the_self_signed_one(flagged):
    for host in ("unknown.example", "app.example"):
        reply = flagged.get_tls("/api", host)
        assert s.common_name(reply.certificate) == "my default"
    assert flagged.get_tls("/api", "app.example").backend == "app-dbs"
    assert flagged.get_tls("/", "unknown.example").backend == "fallback"
