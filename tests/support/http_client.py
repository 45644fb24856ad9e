"""One HTTP(S) exchange on a fresh connection to 127.0.0.1 (explicit Host, explicit SNI, no
certificate verification so the served certificate can be inspected), and the echo backend's
answer. Not named http.py so it can never shadow the standard library."""

from __future__ import annotations

import dataclasses
import http.client
import json
import ssl
from typing import Any


@dataclasses.dataclass
class EchoReply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    certificate: Any = None  # cryptography x509.Certificate served over TLS

    @property
    def data(self) -> dict[str, Any] | None:
        """The echo backend's JSON answer, or None if something else answered."""
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return None
        return json.loads(self.body)

    @property
    def backend(self) -> str | None:
        data = self.data
        return data["backend"] if data else None


class TLSConnection(http.client.HTTPConnection):
    """HTTPS to 127.0.0.1 with an explicit SNI name, no verification (we inspect the cert)."""

    def __init__(self, host: str, port: int, sni: str | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.sni = sni

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname=self.sni)


def exchange(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None, *,
             tls: bool = False, sni: str | None = None,
             timeout: float = 10.0) -> tuple[int, http.client.HTTPMessage, bytes, Any]:
    """One request on a fresh connection to 127.0.0.1:`port`: (status, headers, body, certificate)."""
    if tls:
        connection: http.client.HTTPConnection = TLSConnection("127.0.0.1", port, sni, timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        certificate = None
        if tls:
            from cryptography import x509
            connection.connect()
            der = connection.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            certificate = x509.load_der_x509_certificate(der)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read(), certificate
    finally:
        connection.close()
