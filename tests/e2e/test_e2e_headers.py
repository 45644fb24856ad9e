"""What the backend sees: Host and X-Forwarded-* headers; WebSocket upgrades; a few annotations."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

import e2e_support as s

HOST = "hdr.example"


@pytest.fixture(scope="module")
def ctl(backends, folder):
    certificate, key = s.make_certificate(HOST, [HOST, "redirect.example"])
    objects = [
        s.ingress_class(),
        *s.backed_service("hdr", backends.start("hdr")),
        s.tls_secret("hdr-cert", certificate, key),
        s.ingress("hdr", [s.rule(HOST, s.path("/", "hdr"))], tls=[{"hosts": [HOST], "secretName": "hdr-cert"}]),
        s.ingress("redirect", [s.rule("redirect.example", s.path("/", "hdr"))],
                  tls=[{"hosts": ["redirect.example"], "secretName": "hdr-cert"}],
                  annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "true"}),
        s.ingress("force-redirect", [s.rule("force.example", s.path("/", "hdr"))],
                  annotations={"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}),
        s.ingress("redirect-no-tls", [s.rule("plain.example", s.path("/", "hdr"))],
                  annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "true"}),
        s.ingress("limits", [s.rule("limits.example", s.path("/", "hdr"))],
                  annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "1k",
                               "nginx.ingress.kubernetes.io/proxy-read-timeout": "1"}),
    ]
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize("host", [HOST, f"{HOST}:8080", "HDR.Example", f"HDR.example:{65535}"])
def test_host_header_is_passed_as_sent(ctl, host):
    assert ctl.get("/", host).seen_headers["host"] == host


def test_forwarded_headers_over_http(ctl):
    seen = ctl.get("/", HOST).seen_headers
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == HOST
    assert seen["x-forwarded-port"] == str(ctl.http_port)


def test_forwarded_headers_over_https(ctl):
    reply = ctl.get_tls("/", HOST)
    assert s.common_name(reply.certificate) == HOST
    seen = reply.seen_headers
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-port"] == str(ctl.https_port)
    assert seen["x-forwarded-host"] == HOST
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["host"] == HOST


def test_https_offers_http2(ctl):
    import socket
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", ctl.https_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=HOST) as tls:
            assert tls.selected_alpn_protocol() == "h2"


def test_client_forwarded_for_is_extended_with_the_client_address(ctl):
    seen = ctl.get("/", HOST, headers={"X-Forwarded-For": "203.0.113.7"}).seen_headers
    assert seen["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"


def test_client_cannot_spoof_real_ip_or_scheme(ctl):
    seen = ctl.get("/", HOST, headers={"X-Real-IP": "203.0.113.7", "X-Forwarded-Proto": "https",
                                      "X-Forwarded-Port": "1", "X-Forwarded-Host": "evil.example"}).seen_headers
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-port"] == str(ctl.http_port)
    assert seen["x-forwarded-host"] == HOST


def test_other_headers_pass_both_ways(ctl):
    reply = ctl.get("/", HOST, headers={"X-Custom": "abc", "Authorization": "Bearer t0ken", "Cookie": "a=b"})
    seen = reply.seen_headers
    assert seen["x-custom"] == "abc"
    assert seen["authorization"] == "Bearer t0ken"
    assert seen["cookie"] == "a=b"
    assert reply.headers["Content-Type"].startswith("application/json")


def test_slow_backend_is_waited_for(ctl):
    reply = ctl.get("/?sleep=1.5", HOST)
    assert reply.backend == "hdr"


async def test_websocket_upgrade_passes_through(ctl):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{ctl.http_port}/ws", headers={"Host": HOST}) as ws:
            for message in ("hello", "second message", "x" * 10000):
                await ws.send_str(message)
                assert await ws.receive_str(timeout=5) == f"hdr:{message}"


async def test_websocket_over_tls_passes_through(ctl):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"https://127.0.0.1:{ctl.https_port}/ws", headers={"Host": HOST},
                                      ssl=context, server_hostname=HOST) as ws:
            await ws.send_str("secure")
            assert await ws.receive_str(timeout=5) == "hdr:secure"


async def test_websocket_to_unserved_host_is_refused(ctl):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as error:
            await session.ws_connect(f"http://127.0.0.1:{ctl.http_port}/ws", headers={"Host": "nobody.example"})
        assert error.value.status == 404


# --- annotations ------------------------------------------------------------------------------------------

def test_ssl_redirect_sends_http_to_https(ctl):
    reply = ctl.get("/path?q=1", "redirect.example")
    assert reply.status == 308
    assert reply.headers["Location"] == f"https://redirect.example:{ctl.https_port}/path?q=1"
    assert ctl.get_tls("/path", "redirect.example").backend == "hdr"


def test_ssl_redirect_is_off_by_default(ctl):
    assert ctl.get("/path", HOST).backend == "hdr"


def test_ssl_redirect_needs_tls(ctl):
    assert ctl.get("/path", "plain.example").backend == "hdr"


def test_force_ssl_redirect_redirects_without_tls(ctl):
    reply = ctl.get("/x", "force.example")
    assert reply.status == 308
    assert reply.headers["Location"] == f"https://force.example:{ctl.https_port}/x"


def test_proxy_body_size(ctl):
    assert ctl.get("/", "limits.example", method="POST", body=b"x" * 512).backend == "hdr"
    assert ctl.get("/", "limits.example", method="POST", body=b"x" * 4096).status == 413


def test_proxy_read_timeout(ctl):
    assert ctl.get("/?sleep=1.5", "limits.example").status == 504
