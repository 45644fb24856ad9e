"""TLS hygiene, with real certificates (cryptography, and openssl for SHA-1/SM2) and a real nginx:
bad Secrets are refused by translate with a reason before nginx sees them, keys are 0600 in a
0700 directory, and nginx speaks TLS 1.2 and 1.3 only, with AEAD + ECDHE ciphers only."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import crossplane
import pytest
from cryptography import x509

from ingress_ctrl.nginx import NginxProcess
from ingress_ctrl.render import render
from ingress_ctrl.settings import NginxSettings, ObjectRef, TranslateSettings
from tests.fuzz import certs
from tests.translate.objects import ingress, ingress_class, path, rule, run, served_service, server

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


def _world(case: str, *extra: dict) -> list[dict]:
    """`good.example` with a good Secret, `bad.example` with a Secret of `case`."""
    return [
        ingress_class(), *served_service("web"),
        certs.tls_secret("good-tls", "ec-p256"), certs.tls_secret("bad-tls", case),
        ingress("good", rule("good.example", path("/", "web")), tls=[{"hosts": ["good.example"], "secretName": "good-tls"}]),
        ingress("bad", rule("bad.example", path("/", "web")), tls=[{"hosts": ["bad.example"], "secretName": "bad-tls"}]),
        *extra,
    ]


@pytest.mark.parametrize("case,reason", [
    ("mismatched", "data.tls.key: does not match the certificate in tls.crt"),
    ("expired", "data.tls.crt: certificate expired at"),
    ("rsa-1024", "1024-bit RSA key"),
    ("ec-p192", "192-bit EC key"),
    ("dsa-2048", "DSA key"),
    ("x25519", "X25519 key"),
    ("sha1-signed", "signed with SHA1"),
    ("sm2", "uses an algorithm"),
    ("not-pem", "is not a PEM certificate"),
    ("encrypted-key", "is not an unencrypted PEM private key"),
])
def test_a_bad_secret_falls_back_to_the_default_certificate_with_a_reason(case: str, reason: str) -> None:
    if case not in certs.pool():
        pytest.skip("needs the openssl command")
    t = run(*_world(case))
    assert [k.name for k in t.served] == ["bad", "good"]  # plain HTTP keeps working for both
    assert server(t, "good.example").certificate is not None
    assert server(t, "bad.example").certificate is None  # the default certificate
    [problem] = [p for p in t.problems if p.object.name == "bad"]
    assert problem.field == "spec.tls[0].secretName" and not problem.rejected
    assert reason in problem.reason and "Secret default/bad-tls" in problem.reason
    assert "'bad.example' uses the default certificate" in problem.reason


def test_a_bad_default_ssl_certificate_falls_back_to_the_self_signed_one() -> None:
    settings = TranslateSettings(default_ssl_certificate=ObjectRef("default", "bad-tls"))
    t = run(*_world("expired"), settings=settings)
    assert t.config.default_certificate is None
    assert any(p.object.name == "bad-tls" and "expired" in p.reason for p in t.problems)


def test_the_good_certificates_are_accepted() -> None:
    for case in certs.GOOD:
        t = run(*_world(case))
        assert server(t, "bad.example").certificate is not None, case


def test_rendered_tls_policy_is_tls12_plus_with_aead_ecdhe_ciphers(tmp_path: Path) -> None:
    t = run(*_world("ec-p256"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(t.config, NginxSettings(state_dir=tmp_path)).text)
    payload = crossplane.parse(str(conf), single=True, check_ctx=False, check_args=False)
    assert payload["status"] == "ok", payload["errors"]
    found: dict[str, list[list[str]]] = {}

    def walk(block: list[dict]) -> None:
        for stmt in block:
            if stmt["directive"].startswith("ssl_") and stmt["directive"] not in ("ssl_certificate", "ssl_certificate_key"):
                found.setdefault(stmt["directive"], []).append(stmt["args"])
            walk(stmt.get("block", []))

    walk(payload["config"][0]["parsed"])
    assert found["ssl_protocols"] == [["TLSv1.2", "TLSv1.3"]]  # once, at http level, never overridden
    [[ciphers]] = found["ssl_ciphers"]
    assert found.get("ssl_prefer_server_ciphers", [["off"]]) == [["off"]]  # all are strong: the client's choice is fine
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(ciphers)
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and len(tls12) == len(ciphers.split(":"))
    for cipher in tls12:
        assert cipher["aead"] and cipher["kea"] == "kx-ecdhe", cipher["name"]
        assert cipher["auth"] in ("auth-ecdsa", "auth-rsa"), cipher["name"]
    for weak in ("RC4", "DES", "MD5", "NULL", "EXP", "CBC", "SHA:", "PSK", "SRP", "CAMELLIA", "ARIA", "anon", "aNULL", "eNULL"):
        assert weak not in ciphers + ":", weak


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The modes must not depend on the process's umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_keys_are_0600_in_a_0700_directory(tmp_path: Path, umask_zero: None) -> None:
    state = tmp_path / "state"
    process = NginxProcess(NginxSettings(state_dir=state))
    asyncio.run(process.prepare())
    t = run(*_world("rsa-2048"), settings=TranslateSettings(default_ssl_certificate=ObjectRef("default", "good-tls")))
    assert len(t.config.certificates) == 2
    rendered = render(t.config, process.settings)
    process._write_files(state / "nginx.conf.new", rendered.text, t.config.certificates)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(state / "certs") == 0o700
    assert mode(state) & 0o077 in (0o011, 0o000)  # others may traverse (workers reach tmp/), never list
    pems = sorted((state / "certs").iterdir())
    assert {p.name for p in pems} == {"default.pem", *(f"{c.id}.pem" for c in t.config.certificates)}
    for pem in pems:
        assert mode(pem) == 0o600, pem.name
        assert b"PRIVATE KEY" in pem.read_bytes()
    assert mode(state / "nginx.conf.new") == 0o600
    assert not list((state / "certs").glob(".*"))  # no temporary files left behind


# -- a real nginx, on loopback ports ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(version: ssl.TLSVersion) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = context.maximum_version = version
        context.set_ciphers("ALL:@SECLEVEL=0")  # the client would offer anything: nginx must refuse
    return context


def _handshake(port: int, version: ssl.TLSVersion, sni: str) -> tuple[str, x509.Certificate]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, _client(version).wrap_socket(raw, server_hostname=sni) as tls:
        return tls.version() or "", x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")


def _client_can_speak_tls11() -> bool:
    """Positive control: this machine's OpenSSL lets a client and server agree on TLS 1.1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.minimum_version = ssl.TLSVersion.TLSv1_1
        server_context.set_ciphers("ALL:@SECLEVEL=0")
    crt, key = certs.pool()["rsa-2048"]
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as pem:
        pem.write(base64.b64decode(crt) + base64.b64decode(key))
        pem.flush()
        server_context.load_cert_chain(pem.name)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        result: list[str] = []

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    result.append(tls.version() or "")
            except (ssl.SSLError, OSError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            version, _ = _handshake(listener.getsockname()[1], ssl.TLSVersion.TLSv1_1, "x")
        except (ssl.SSLError, OSError):
            return False
        thread.join(5)
        return version == "TLSv1.1"


@needs_nginx
async def test_nginx_refuses_tls11_and_serves_tls12_and_13_with_the_right_certificates(tmp_path: Path) -> None:
    settings = NginxSettings(state_dir=tmp_path / "state", http_port=_free_port(), https_port=_free_port(),
                             listen_address="127.0.0.1", worker_processes="1", access_log="off", confirm_timeout=10)
    process = NginxProcess(settings)
    await process.prepare()
    t = run(*_world("mismatched"))
    await process.apply(render(t.config, settings), t.config.certificates)
    try:
        good_cert = x509.load_pem_x509_certificate(t.config.certificates[0].pem)
        default_cert = x509.load_pem_x509_certificate((settings.state_dir / "certs" / "default.pem").read_bytes())
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            got, cert = await asyncio.to_thread(_handshake, settings.https_port, version, "good.example")
            assert got == version.name.replace("_", ".") and cert == good_cert
            got, cert = await asyncio.to_thread(_handshake, settings.https_port, version, "bad.example")
            assert cert == default_cert  # the mismatched Secret never reached nginx
        if not await asyncio.to_thread(_client_can_speak_tls11):
            pytest.skip("this OpenSSL cannot speak TLS 1.1 even at security level 0: nothing to prove")
        for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            # nginx's alert, not our client giving up ("unsupported protocol" would be the latter)
            with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
                await asyncio.to_thread(_handshake, settings.https_port, version, "good.example")
    finally:
        await process.stop(5)
