"""Real certificates and keys for the fuzz and TLS hygiene tests, made once per process.

`pool()` maps a case name to `(tls.crt, tls.key)` as the base64 strings a `kubernetes.io/tls`
Secret holds. Good cases must be served; every other case must be refused by translate with a
reason, because nginx would refuse the whole config for it (weak keys, SHA-1 signatures,
key types TLS cannot use) or because serving it is wrong (expired, key of another certificate).
A few cases need the `openssl` command (cryptography no longer signs with SHA-1 or SM3);
they are left out when it is missing.
"""

from __future__ import annotations

import base64
import datetime
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID

GOOD = ("ec-p256", "rsa-2048", "ed25519", "ec-chain")
BAD = ("mismatched", "expired", "rsa-1024", "ec-p192", "dsa-2048", "x25519", "sha1-signed", "sm2",
       "not-base64", "not-pem", "key-not-pem", "encrypted-key")

_NOW = datetime.datetime.now(datetime.timezone.utc)
_DAY = datetime.timedelta(days=1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key: Any, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def certificate(key: Any, *, cn: str = "fuzz.example", issuer_key: Any = None, issuer_cn: str | None = None,
                not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None,
                public_key: Any = None, ca: bool = False) -> x509.Certificate:
    """A certificate for `key` (or `public_key`), self-signed unless `issuer_key` is given."""
    signer = issuer_key or key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)]))
        .public_key(public_key or key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _NOW - _DAY)
        .not_valid_after(not_after or _NOW + 3650 * _DAY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(signer, algorithm)


def secret_data(crt: bytes, key: bytes) -> tuple[str, str]:
    return b64(crt), b64(key)


def tls_secret(name: str, case: str, namespace: str = "default") -> dict[str, Any]:
    crt, key = pool()[case]
    return {"kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": crt, "tls.key": key}}


@functools.cache
def pool() -> dict[str, tuple[str, str]]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = certificate(ca_key, cn="fuzz-ca", ca=True)
    leaf = certificate(ec_key, issuer_key=ca_key, issuer_cn="fuzz-ca")
    weak_rsa = rsa.generate_private_key(65537, 1024)
    weak_ec = ec.generate_private_key(ec.SECP192R1())
    dsa_key = dsa.generate_private_key(2048)
    x_key = x25519.X25519PrivateKey.generate()

    cases = {
        "ec-p256": secret_data(pem_cert(certificate(ec_key)), pem_key(ec_key)),
        "rsa-2048": secret_data(pem_cert(certificate(rsa_key)), pem_key(rsa_key)),
        "ed25519": secret_data(pem_cert(certificate(ed_key)), pem_key(ed_key)),
        "ec-chain": secret_data(pem_cert(leaf) + pem_cert(ca), pem_key(ec_key)),
        "mismatched": secret_data(pem_cert(certificate(ec_key)), pem_key(other_key)),
        "expired": secret_data(pem_cert(certificate(ec_key, not_before=_NOW - 60 * _DAY, not_after=_NOW - _DAY)), pem_key(ec_key)),
        "rsa-1024": secret_data(pem_cert(certificate(weak_rsa)), pem_key(weak_rsa)),
        "ec-p192": secret_data(pem_cert(certificate(weak_ec)), pem_key(weak_ec)),
        "dsa-2048": secret_data(pem_cert(certificate(dsa_key)), pem_key(dsa_key)),
        "x25519": secret_data(pem_cert(certificate(x_key, public_key=x_key.public_key(), issuer_key=ca_key, issuer_cn="fuzz-ca")), pem_key(x_key)),
        "not-base64": ("-----BEGIN CERTIFICATE-----;return 200 x;", "é"),
        "not-pem": (b64(b"certificate\n"), b64(pem_key(ec_key))),
        "key-not-pem": (b64(pem_cert(certificate(ec_key))), b64(b"}; location / { return 200 x; }")),
        "encrypted-key": secret_data(pem_cert(certificate(ec_key)), pem_key(ec_key, b"secret")),
    }
    cases.update(_openssl_cases())
    return cases


def _openssl_cases() -> dict[str, tuple[str, str]]:
    """SHA-1 signed (by a good CA, which nginx refuses: "ca md too weak") and SM2 (unsupported)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return {}
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def run(*args: str) -> bool:
            return subprocess.run([openssl, *args], cwd=d, capture_output=True).returncode == 0

        if (run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=ca", "-days", "3650", "-sha256")
                and run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf")
                and run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                        "-out", "leaf.crt", "-days", "3650", "-sha1")):
            cases["sha1-signed"] = secret_data((d / "leaf.crt").read_bytes() + (d / "ca.crt").read_bytes(), (d / "leaf.key").read_bytes())
        if (run("genpkey", "-algorithm", "SM2", "-out", "sm2.key")
                and run("req", "-new", "-x509", "-key", "sm2.key", "-out", "sm2.crt", "-subj", "/CN=sm2", "-days", "3650", "-sm3")):
            cases["sm2"] = secret_data((d / "sm2.crt").read_bytes(), (d / "sm2.key").read_bytes())
    return cases
