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
from cryptography.hazmat.primitives import serialization

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
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise Invalid("data.tls.key", "is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if chain[0].public_key().public_bytes(encoding, public) != private_key.public_key().public_bytes(encoding, public):
        raise Invalid("data.tls.key", "does not match the certificate in tls.crt")
    pem = b"".join(cert.public_bytes(encoding) for cert in chain) + private_key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, chain[0].not_valid_after_utc
