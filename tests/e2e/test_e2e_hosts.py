"""Host rules: exact, case, port, wildcards, host-less rules; TLS certificates by SNI."""

from __future__ import annotations

import stat

import pytest

import e2e_support as s


LONG_HOST = ".".join(["a" * 63, "b" * 63, "c" * 63, "example"])
BAD_CERT_HOSTS = ["expired.example", "mismatched.example", "garbage.example", "elsewhere.example"]


@pytest.fixture(scope="module")
def ctl(backends, folder):
    ports = {name: backends.start(f"hosts-{name}") for name in
             ("exact", "other", "wild", "wildexact", "any", "tls", "nosecret", "tlswild", "long", "badcert")}
    certificate, key = s.make_certificate("secure.example", ["secure.example"])
    wild_certificate, wild_key = s.make_certificate("wildcard.tlswild.example", ["*.tlswild.example"])
    objects = [s.ingress_class()]
    for name, port in ports.items():
        objects += s.backed_service(name, port)
    objects += [
        s.ingress("hosts", [
            s.rule("exact.example", s.path("/", "exact")),
            s.rule("other.example", s.path("/", "other")),
            s.rule("*.foo.com", s.path("/", "wild")),
            s.rule("exact.foo.com", s.path("/", "wildexact")),  # an exact name beats the wildcard
            s.rule(LONG_HOST, s.path("/", "long")),
        ]),
        s.ingress("anyhost", [s.rule(None, s.path("/", "any"))]),
        s.ingress("tls", [s.rule("secure.example", s.path("/", "tls"))],
                  tls=[{"hosts": ["secure.example"], "secretName": "secure-cert"}]),
        s.tls_secret("secure-cert", certificate, key),
        s.ingress("missing-secret", [s.rule("nosecret.example", s.path("/", "nosecret"))],
                  tls=[{"hosts": ["nosecret.example"], "secretName": "does-not-exist"}]),
        # a wildcard TLS entry covers both a wildcard rule and an exact rule under it
        s.ingress("tls-wild", [s.rule("*.tlswild.example", s.path("/", "tlswild")),
                               s.rule("exact.tlswild.example", s.path("/", "tlswild"))],
                  tls=[{"hosts": ["*.tlswild.example"], "secretName": "wild-cert"}]),
        s.tls_secret("wild-cert", wild_certificate, wild_key),
        # certificates that cannot be used: the host keeps serving with the default certificate
        s.ingress("bad-certs", [s.rule(host, s.path("/", "badcert")) for host in BAD_CERT_HOSTS],
                  tls=[{"hosts": [host], "secretName": host.split(".")[0]} for host in BAD_CERT_HOSTS]),
        s.tls_secret("expired", *s.make_certificate("expired.example", ["expired.example"], expired=True)),
        s.tls_secret("mismatched", s.make_certificate("mismatched.example", ["mismatched.example"])[0],
                     s.make_certificate("other", ["other"])[1]),
        s.tls_secret("garbage", b"not a certificate", b"not a key"),
        s.tls_secret("elsewhere", *s.make_certificate("elsewhere.example", ["elsewhere.example"]), namespace="other-ns"),
    ]
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize(("host", "expected"), [
    ("exact.example", "hosts-exact"),
    ("other.example", "hosts-other"),
    ("EXACT.Example", "hosts-exact"),           # Host is case-insensitive
    ("Other.EXAMPLE", "hosts-other"),
    ("exact.example:8080", "hosts-exact"),      # the port in Host plays no part
    ("exact.example:1", "hosts-exact"),
    ("exact.example.", "hosts-exact"),         # a trailing dot names the same host
    ("bar.foo.com", "hosts-wild"),             # *.foo.com: exactly one more label
    ("BAR.foo.com:99", "hosts-wild"),
    ("x-1.foo.com", "hosts-wild"),
    ("exact.foo.com", "hosts-wildexact"),
    ("EXACT.foo.com", "hosts-wildexact"),
    (LONG_HOST, "hosts-long"),
    (LONG_HOST.upper() + ":80", "hosts-long"),
    ("baz.bar.foo.com", "hosts-any"),          # two more labels: not the wildcard
    ("foo.com", "hosts-any"),                  # the bare suffix: not the wildcard
    ("barfoo.com", "hosts-any"),
    ("exact.example.evil", "hosts-any"),
    ("sub.exact.example", "hosts-any"),
    ("unknown.example", "hosts-any"),          # a rule without host matches any other host
    ("127.0.0.1", "hosts-any"),
])
def test_host_selects_the_rule(ctl, host, expected):
    assert ctl.backend("/page", host) == expected


def test_http10_request_without_host_header_goes_to_the_hostless_rule(ctl):
    status, body = s.raw_request(ctl.http_port, b"GET /nohost HTTP/1.0\r\n\r\n")
    assert status == 200
    assert b'"backend": "hosts-any"' in body


def test_tls_host_serves_its_own_certificate(ctl):
    reply = ctl.get_tls("/", "secure.example")
    assert reply.backend == "hosts-tls"
    assert s.common_name(reply.certificate) == "secure.example"
    assert s.dns_names(reply.certificate) == ["secure.example"]


@pytest.mark.parametrize("host", ["a.tlswild.example", "exact.tlswild.example"])
def test_wildcard_tls_host_serves_the_wildcard_certificate(ctl, host):
    reply = ctl.get_tls("/", host)
    assert s.common_name(reply.certificate) == "wildcard.tlswild.example"
    assert reply.backend == "hosts-tlswild"


def test_wildcard_tls_does_not_cover_deeper_names(ctl):
    reply = ctl.get_tls("/", "a.b.tlswild.example")
    assert s.common_name(reply.certificate) == s.DEFAULT_CERT_CN
    assert reply.backend == "hosts-any"


def test_tls_sni_is_case_insensitive(ctl):
    reply = ctl.get_tls("/", "Secure.Example", sni="SECURE.example")
    assert s.common_name(reply.certificate) == "secure.example"
    assert reply.backend == "hosts-tls"


@pytest.mark.parametrize("host", ["exact.example", "bar.foo.com", "unknown.example"])
def test_other_hosts_get_the_default_certificate(ctl, host):
    reply = ctl.get_tls("/", host)
    assert s.common_name(reply.certificate) == s.DEFAULT_CERT_CN
    assert reply.status == 200


def test_https_routes_by_host_header_like_http(ctl):
    assert ctl.get_tls("/", "exact.example").backend == "hosts-exact"
    assert ctl.get_tls("/", "bar.foo.com").backend == "hosts-wild"


def test_missing_secret_falls_back_to_the_default_certificate(ctl):
    reply = ctl.get_tls("/", "nosecret.example")
    assert s.common_name(reply.certificate) == s.DEFAULT_CERT_CN
    assert reply.backend == "hosts-nosecret"


def test_missing_secret_keeps_plain_http_working(ctl):
    assert ctl.backend("/x", "nosecret.example") == "hosts-nosecret"


def test_missing_secret_is_reported(ctl):
    line = ctl.wait_stderr(r"Ingress default/missing-secret: spec\.tls\[0\]\.secretName")
    assert "does-not-exist" in line


@pytest.mark.parametrize("host", BAD_CERT_HOSTS)
def test_unusable_secret_falls_back_to_the_default_certificate(ctl, host):
    reply = ctl.get_tls("/", host)
    assert s.common_name(reply.certificate) == s.DEFAULT_CERT_CN
    assert reply.backend == "hosts-badcert"
    assert ctl.backend("/", host) == "hosts-badcert"
    line = ctl.wait_stderr(r"Ingress default/bad-certs: spec\.tls\[\d\]\.secretName: Secret default/" + host.split(".")[0])
    assert "default certificate" in line


def test_certificate_files_are_private(ctl):
    files = sorted((ctl.state_dir / "certs").glob("*.pem"))
    assert len([f for f in files if f.name != "default.pem"]) == 2, files  # secure-cert, wild-cert
    for path in [*files, *ctl.state_dir.glob("*.pem")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path} has mode {mode:o}"
    assert stat.S_IMODE((ctl.state_dir / "certs").stat().st_mode) == 0o700
    text = b"".join(path.read_bytes() for path in files)
    assert b"PRIVATE KEY" in text
