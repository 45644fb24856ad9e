"""Helpers for the end-to-end suite: real echo backends, the real `ingress-ctrl serve` process
with real nginx, manifests, certificates and small HTTP(S) clients.

Loaded by conftest.py as the module `e2e_support` (a unique name, so it never clashes with a
`support` module of another test folder).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.backends import EchoBackends
from tests.support.certs import self_signed
from tests.support.controller import HealthPort, listener_args, process_alive, terminate, wait_ready
from tests.support.files import ScratchDirs, write_atomic
from tests.support.http_client import EchoReply, exchange
from tests.support.polling import wait_until
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLLER = "k8s.io/ingress-ctrl"
DEFAULT_CERT_CN = "ingress-ctrl default certificate"


# --- echo backends ----------------------------------------------------------------------------------

class Backends(EchoBackends):
    """Echo backends (examples/echo_backend.make_app) on one event loop in a background thread."""

    def __init__(self) -> None:
        super().__init__("e2e-backends")

    def start(self, name: str, addresses: Sequence[str] = ("127.0.0.1",), port: int | None = None) -> int:
        """Serve a backend called `name` on `addresses` (one shared port); returns the port."""
        return self.serve(name, addresses, port or free_port(addresses))


# --- HTTP(S) clients ---------------------------------------------------------------------------------

class Reply(EchoReply):
    @property
    def seen_headers(self) -> dict[str, str]:
        """Headers as the backend received them, with lower-case names."""
        data = self.data
        assert data is not None, f"no backend answered: {self.status} {self.body[:200]!r}"
        return {k.lower(): v for k, v in data["headers"].items()}

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


def request(port: int, path: str = "/", host: str | None = "example.com", method: str = "GET",
            body: bytes | None = None, headers: dict[str, str] | None = None, *, tls: bool = False,
            sni: str | None = None, timeout: float = 10.0) -> Reply:
    """One request on a fresh connection to 127.0.0.1:`port`, with the Host header set explicitly."""
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["Host"] = host
    return Reply(*exchange(port, method, path, all_headers, body, tls=tls, sni=sni, timeout=timeout))


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send raw bytes to 127.0.0.1:`port`, read until the server closes; (status, whole response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return (int(match.group(1)) if match else 0), response


def backend_of(port: int, path: str = "/", host: str = "example.com", **kwargs: Any) -> str | int:
    """The name of the echo backend that answered, or the status code when none did."""
    reply = request(port, path, host, **kwargs)
    return reply.backend or reply.status


def common_name(certificate: Any) -> str:
    from cryptography.x509.oid import NameOID
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else ""


def dns_names(certificate: Any) -> list[str]:
    from cryptography import x509
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return extension.value.get_values_for_type(x509.DNSName)


# --- certificates ----------------------------------------------------------------------------------

def make_certificate(common: str, hosts: Sequence[str], expired: bool = False) -> tuple[bytes, bytes]:
    """A self-signed certificate for `hosts` (SAN) and its key, both PEM."""
    certificate, key, _ = self_signed(common, hosts, datetime.timedelta(days=-60),
                                      datetime.timedelta(days=-1 if expired else 30))
    return certificate, key


# --- manifests -------------------------------------------------------------------------------------

def ingress_class(name: str = "nginx", controller: str = CONTROLLER, default: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": meta, "spec": {"controller": controller}}


def service(name: str, namespace: str = "default", ports: Sequence[tuple[str, int]] = (("http", 80),)) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": n, "port": p} for n, p in ports]}}


def external_service(name: str, external_name: str, namespace: str = "default", port: int = 80) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ExternalName", "externalName": external_name, "ports": [{"name": "http", "port": port}]}}


def endpoint_slice(service_name: str, port: int, addresses: Iterable[str | tuple[str, bool]], namespace: str = "default",
                   port_name: str = "http", name: str | None = None) -> dict[str, Any]:
    """An EndpointSlice; an address given as `(ip, False)` is not ready."""
    endpoints = []
    for entry in addresses:
        address, ready = (entry, True) if isinstance(entry, str) else entry
        endpoints.append({"addresses": [address], "conditions": {"ready": ready}})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service_name}-abcde", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}], "endpoints": endpoints}


def endpoints_v1(service_name: str, port: int, addresses: Iterable[str], namespace: str = "default",
                 port_name: str = "http") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": service_name, "namespace": namespace},
            "subsets": [{"addresses": [{"ip": a} for a in addresses], "ports": [{"name": port_name, "port": port}]}]}


def backed_service(name: str, port: int, addresses: Iterable[str | tuple[str, bool]] = ("127.0.0.1",),
                   namespace: str = "default") -> list[dict[str, Any]]:
    """A Service (port 80, named http) and an EndpointSlice sending it to `addresses`:`port`."""
    return [service(name, namespace), endpoint_slice(name, port, addresses, namespace)]


def backend(service_name: str, port: int | str = 80) -> dict[str, Any]:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service_name, "port": {key: port}}}


def path(path: str, service_name: str, path_type: str = "Prefix", port: int | str = 80) -> dict[str, Any]:
    entry: dict[str, Any] = {"pathType": path_type, "backend": backend(service_name, port)}
    if path is not None:
        entry["path"] = path
    return entry


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host is not None:
        entry["host"] = host
    return entry


def ingress(name: str, rules: Sequence[dict[str, Any]] = (), namespace: str = "default", *,
            class_name: str | None = "nginx", default_backend: dict[str, Any] | None = None,
            tls: Sequence[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default_backend is not None:
        spec["defaultBackend"] = default_backend
    if rules:
        spec["rules"] = list(rules)
    if tls:
        spec["tls"] = list(tls)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def tls_secret(name: str, certificate: bytes, key: bytes, namespace: str = "default") -> dict[str, Any]:
    import base64
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": base64.b64encode(certificate).decode(), "tls.key": base64.b64encode(key).decode()}}


def write_manifests(folder: Path, filename: str, objects: Iterable[dict[str, Any]]) -> Path:
    """Write `objects` as multi-document YAML, atomically (rename), so the watcher never reads half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    write_text(target, yaml.safe_dump_all(list(objects), sort_keys=False))
    return target


def write_text(target: Path, text: str) -> None:
    write_atomic(target, text)


# --- the controller process ------------------------------------------------------------------------

_scratch = ScratchDirs("ictl-e2e")


def scratch_dir(prefix: str) -> Path:
    """A fresh directory under /tmp whose path is valid for --state-dir, traversable by nginx
    workers (which run as nobody); removed by `remove_scratch_dirs` at the end of the session."""
    return _scratch.make(prefix)


def remove_scratch_dirs() -> None:
    _scratch.remove_all()


class Controller(HealthPort):
    """`python -m ingress_ctrl serve` as a subprocess on loopback ports picked at random."""

    def __init__(self, manifests: Path, args: Sequence[str] = (), debounce: float = 0.05, state_dir: Path | None = None) -> None:
        self.manifests = manifests
        self.http_port, self.https_port, self.healthz_port = free_port(), free_port(), free_port()
        self.workdir = scratch_dir("ctl")
        self.state_dir = state_dir or self.workdir / "state"
        self.stderr_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        self.command = [
            sys.executable, "-m", "ingress_ctrl", "serve", "--manifests", str(manifests),
            *listener_args(self.http_port, self.https_port, self.healthz_port, self.state_dir),
            "--sync-debounce", str(debounce),
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Controller:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wait_ready(self.process, lambda: self.healthz("/readyz")[0], timeout, self.stderr, self.kill, " before ready")
        return self

    def reloads(self) -> float:
        return self.metrics()['ingress_ctrl_nginx_reloads_total{result="success"}']

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str = "/", host: str | None = "example.com", **kwargs: Any) -> Reply:
        return request(self.http_port, path, host, **kwargs)

    def get_tls(self, path: str = "/", host: str | None = "example.com", sni: str | None = None, **kwargs: Any) -> Reply:
        return request(self.https_port, path, host, tls=True, sni=sni if sni is not None else host, **kwargs)

    def backend(self, path: str = "/", host: str = "example.com", **kwargs: Any) -> str | int:
        """The echo backend that answered, or the status code when nginx answered itself."""
        reply = self.get(path, host, **kwargs)
        return reply.backend or reply.status

    def wait_backend(self, expected: str | int, path: str = "/", host: str = "example.com", timeout: float = 5.0) -> None:
        """Until the route answers `expected` and the controller has confirmed the config on disk
        (so the next request cannot meet one of nginx's old workers)."""
        wait_until(lambda: self.backend(path, host) == expected, timeout, what=f"{host}{path} -> {expected!r}")
        wait_until(self.confirmed, timeout, what="the controller's confirmation of the config on disk")

    def wait_stderr(self, pattern: str, timeout: float = 5.0) -> str:
        """Wait for a stderr line matching the regex; returns the line."""
        def find() -> str | None:
            for line in self.stderr().splitlines():
                if re.search(pattern, line):
                    return line
            return None
        return wait_until(find, timeout, what=f"stderr line matching {pattern!r}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM; returns the exit code (and kills it if it does not exit in time)."""
        assert self.process is not None
        return terminate(self.process, timeout, self.kill)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        pid_file = self.state_dir / "nginx.pid"  # an nginx left behind by a killed controller
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)

    def nginx_alive(self) -> bool:
        pid_file = self.state_dir / "nginx.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        return process_alive(pid)


@contextlib.contextmanager
def running(manifests: Path, args: Sequence[str] = (), debounce: float = 0.05, state_dir: Path | None = None,
            start_timeout: float = 30.0):  # noqa: ANN201
    """A started controller; on exit SIGTERM and require exit code 0 and nginx gone."""
    controller = Controller(manifests, args, debounce, state_dir).start(start_timeout)
    try:
        yield controller
    except BaseException:
        controller.kill()
        raise
    else:
        code = controller.stop()
        assert code == 0, f"controller exited with {code}:\n{controller.stderr()[-3000:]}"
        assert not controller.nginx_alive(), "nginx still running after the controller exited"
