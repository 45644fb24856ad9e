"""Self-signed test certificates: TLS Secrets for SNI routing, rotation and expiry tests."""

from __future__ import annotations

import datetime
from collections.abc import Sequence


def self_signed(common_name: str, hosts: Sequence[str], valid_from: datetime.timedelta,
                valid_until: datetime.timedelta) -> tuple[bytes, bytes, int]:
    """An EC P-256 certificate for `hosts` (SAN), valid from now+`valid_from` to now+`valid_until`:
    (certificate PEM, key PEM (PKCS8), serial number)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now + valid_from)
        .not_valid_after(now + valid_until)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            serial)
