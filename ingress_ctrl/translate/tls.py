"""`kubernetes.io/tls` Secrets → validated, re-serialized PEM for nginx.

nginx would refuse the whole config for one bad key pair; checking here keeps the damage to the
hosts of that one Secret, which then fall back to the default certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ingress_ctrl.translate.grammar import Invalid
from ingress_ctrl.translate.model import Certificate

TLS_SECRET_TYPE = "kubernetes.io/tls"


def certificate_from_secret(secret: Mapping[str, Any], now: datetime.datetime) -> Certificate:
    """The Secret's certificate chain and key as one PEM; raises `Invalid` naming the field."""
    if secret.get("type", TLS_SECRET_TYPE) != TLS_SECRET_TYPE:
        raise Invalid("type", f"must be {TLS_SECRET_TYPE}")
    data = secret.get("data")
    if not isinstance(data, Mapping):
        raise Invalid("data", "must hold tls.crt and tls.key")
    crt, key = data.get("tls.crt"), data.get("tls.key")
    if not isinstance(crt, str) or not isinstance(key, str):
        raise Invalid("data", "must hold tls.crt and tls.key as base64 strings")
    pem, not_after = _pem(crt, key)
    if not_after < now:
        raise Invalid("data.tls.crt", f"certificate expired at {not_after.isoformat()}")
    return Certificate(pem)


@functools.lru_cache(maxsize=4096)
def _pem(crt_b64: str, key_b64: str) -> tuple[bytes, datetime.datetime]:
    try:
        crt_pem = base64.b64decode(crt_b64, validate=True)
        key_pem = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("data", "tls.crt and tls.key must be base64") from None
    try:
        chain = x509.load_pem_x509_certificates(crt_pem)
    except ValueError:
        raise Invalid("data.tls.crt", "is not a PEM certificate") from None
    for index, cert in enumerate(chain):
        _check_loadable(cert, "data.tls.crt" if index == 0 else f"data.tls.crt (certificate {index + 1} of the chain)")
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise Invalid("data.tls.key", "is not an unencrypted PEM private key") from None
    encoding = serialization.Encoding.PEM
    if chain[0].public_key() != private_key.public_key():  # compares the key material, as SPKI bytes would
        raise Invalid("data.tls.key", "does not match the certificate in tls.crt")
    pem = b"".join(cert.public_bytes(encoding) for cert in chain) + private_key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, chain[0].not_valid_after_utc


def _check_loadable(cert: x509.Certificate, field: str) -> None:
    """Refuse what OpenSSL (at Debian's default security level 2) would refuse to load, so that
    one Secret cannot make `nginx -t` fail for the whole config ("ee key too small", "ca md too
    weak", "unknown certificate type"). SHA-1 is refused even on a self-signed certificate."""
    try:
        key = cert.public_key()
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as error:
        raise Invalid(field, f"uses an algorithm TLS here cannot use ({error})") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise Invalid(field, f"has a {key.key_size}-bit RSA key; at least 2048 bits are required")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < 256:
            raise Invalid(field, f"has a {key.curve.key_size}-bit EC key ({key.curve.name}); at least 256 bits are required")
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise Invalid(field, f"has a {type(key).__name__.removesuffix('PublicKey') or 'unknown'} key; TLS needs RSA, EC, Ed25519 or Ed448")
    if isinstance(digest, hashes.MD5 | hashes.SHA1):
        raise Invalid(field, f"is signed with {digest.name.upper()}; re-issue it with SHA-256 or better")
