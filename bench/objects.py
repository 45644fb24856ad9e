"""The benchmark's world: N Ingresses, each with 1 host and 3 paths, its own Service with 2 ready
endpoints (an EndpointSlice), and TLS (its own Secret, its own certificate) on every 10th one."""

from __future__ import annotations

import base64
import datetime
import functools
from typing import Any

NAMESPACE = "bench"
CLASS_NAME = "bench"
CONTROLLER_CLASS = "k8s.io/ingress-ctrl"
PATHS = ("/api", "/static", "/")   # Prefix: "/" is the host's catch-all, the others two locations each
ENDPOINT_ADDRESSES = ("127.0.0.1", "127.0.0.2")


def name(i: int) -> str:
    return f"app-{i:05d}"


def host(i: int) -> str:
    return f"{name(i)}.bench.example"


def has_tls(i: int) -> bool:
    return i % 10 == 0


def ingress_class() -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": CLASS_NAME},
            "spec": {"controller": CONTROLLER_CLASS}}


def _path(path: str, service: str, path_type: str = "Prefix") -> dict[str, Any]:
    return {"path": path, "pathType": path_type,
            "backend": {"service": {"name": service, "port": {"number": 80}}}}


def ingress(i: int, extra_paths: tuple[str, ...] = (), extra_service: str | None = None) -> dict[str, Any]:
    """Ingress i; `extra_paths` (Prefix) go to `extra_service` (default: its own Service)."""
    paths = [_path(p, name(i)) for p in PATHS] + [_path(p, extra_service or name(i)) for p in extra_paths]
    spec: dict[str, Any] = {"ingressClassName": CLASS_NAME, "rules": [{"host": host(i), "http": {"paths": paths}}]}
    if has_tls(i):
        spec["tls"] = [{"hosts": [host(i)], "secretName": f"{name(i)}-tls"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name(i), "namespace": NAMESPACE,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec}


MARKER = "marker"  # a Service whose backend answers "marker": routes to it are the "new routes"


def service(i: int | str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name(i) if isinstance(i, int) else i, "namespace": NAMESPACE},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}


def endpoint_slice(i: int | str, port: int, addresses: tuple[str, ...] = ENDPOINT_ADDRESSES, generation: int = 0) -> dict[str, Any]:
    service_name = name(i) if isinstance(i, int) else i
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-abcde", "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": service_name},
                         "annotations": {"bench/generation": str(generation)}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


@functools.lru_cache(maxsize=None)
def _certificate(common_name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    crt = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(crt).decode(), base64.b64encode(pem_key).decode()


def secret(i: int) -> dict[str, Any]:
    crt, key = _certificate(host(i))
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": f"{name(i)}-tls", "namespace": NAMESPACE},
            "data": {"tls.crt": crt, "tls.key": key}}


def world(n: int, port: int, marker_port: int | None = None) -> list[dict[str, Any]]:
    """Every object of an N-Ingress world, endpoints on `port` of ENDPOINT_ADDRESSES (and the
    marker Service on `marker_port`, when given)."""
    objects: list[dict[str, Any]] = [ingress_class()]
    if marker_port is not None:
        objects += [service(MARKER), endpoint_slice(MARKER, marker_port)]
    for i in range(n):
        objects += [ingress(i), service(i), endpoint_slice(i, port)]
        if has_tls(i):
            objects.append(secret(i))
    return objects
