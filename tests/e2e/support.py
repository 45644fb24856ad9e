"""Helpers for the end-to-end suite: real echo backends, the real `ingress-ctrl serve` process
with real nginx, manifests, certificates and small HTTP(S) clients.

Loaded by conftest.py as the module `e2e_support` (a unique name, so it never clashes with a
`support` module of another test folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLLER = "k8s.io/ingress-ctrl"
DEFAULT_CERT_CN = "ingress-ctrl default certificate"


# --- ports ---------------------------------------------------------------------------------------

_handed_out: set[int] = set()


def free_port(addresses: Sequence[str] = ("127.0.0.1",)) -> int:
    """A TCP port free on every one of `addresses` right now (and not handed out before)."""
    def family(address: str) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in address else socket.AF_INET

    for _ in range(200):
        with socket.socket(family(addresses[0])) as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        if port in _handed_out:
            continue
        sockets = []
        try:
            for address in addresses:
                sock = socket.socket(family(address))
                sockets.append(sock)
                sock.bind((address, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port")


# --- echo backends ----------------------------------------------------------------------------------

def _load_echo_module() -> Any:
    spec = importlib.util.spec_from_file_location("_e2e_echo_backend", REPO_ROOT / "examples" / "echo_backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_backend = _load_echo_module()


class Backends:
    """Echo backends (examples/echo_backend.make_app) on one event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="e2e-backends", daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def start(self, name: str, addresses: Sequence[str] = ("127.0.0.1",), port: int | None = None) -> int:
        """Serve a backend called `name` on `addresses` (one shared port); returns the port."""
        port = port or free_port(addresses)
        asyncio.run_coroutine_threadsafe(self._start(name, addresses, port), self.loop).result(10)
        return port

    async def _start(self, name: str, addresses: Sequence[str], port: int) -> None:
        runner = web.AppRunner(echo_backend.make_app(name), access_log=None)
        await runner.setup()
        self._runners.append(runner)
        for address in addresses:
            await web.TCPSite(runner, address, port).start()

    def close(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# --- HTTP(S) clients ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Reply:
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

    @property
    def seen_headers(self) -> dict[str, str]:
        """Headers as the backend received them, with lower-case names."""
        data = self.data
        assert data is not None, f"no backend answered: {self.status} {self.body[:200]!r}"
        return {k.lower(): v for k, v in data["headers"].items()}

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


class _TLSConnection(http.client.HTTPConnection):
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


def request(port: int, path: str = "/", host: str | None = "example.com", method: str = "GET",
            body: bytes | None = None, headers: dict[str, str] | None = None, *, tls: bool = False,
            sni: str | None = None, timeout: float = 10.0) -> Reply:
    """One request on a fresh connection to 127.0.0.1:`port`, with the Host header set explicitly."""
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["Host"] = host
    if tls:
        connection: http.client.HTTPConnection = _TLSConnection("127.0.0.1", port, sni, timeout)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        certificate = None
        if tls:
            from cryptography import x509
            connection.connect()
            der = connection.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            certificate = x509.load_der_x509_certificate(der)
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read(), certificate)
    finally:
        connection.close()


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


def wait_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, http.client.HTTPException) as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")
        time.sleep(interval)


# --- certificates ----------------------------------------------------------------------------------

def make_certificate(common: str, hosts: Sequence[str], expired: bool = False) -> tuple[bytes, bytes]:
    """A self-signed certificate for `hosts` (SAN) and its key, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=60))
        .not_valid_after(now + datetime.timedelta(days=-1 if expired else 30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


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
    temporary = target.with_name(f".{target.name}.tmp")  # hidden: never read as a manifest
    temporary.write_text(text)
    os.replace(temporary, target)


# --- the controller process ------------------------------------------------------------------------

_scratch: list[Path] = []


def scratch_dir(prefix: str) -> Path:
    """A fresh directory under /tmp whose path is valid for --state-dir, traversable by nginx
    workers (which run as nobody); removed by `remove_scratch_dirs` at the end of the session."""
    path = Path(tempfile.mkdtemp(prefix=f"ictl-e2e-{prefix}-", dir="/tmp"))
    path.chmod(0o755)
    _scratch.append(path)
    return path


def remove_scratch_dirs() -> None:
    while _scratch:
        shutil.rmtree(_scratch.pop(), ignore_errors=True)


class Controller:
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
            "--http-port", str(self.http_port), "--https-port", str(self.https_port),
            "--healthz-port", str(self.healthz_port), "--listen-address", "127.0.0.1",
            "--state-dir", str(self.state_dir), "--access-log", "off", "--sync-debounce", str(debounce),
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Controller:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"controller exited with {self.process.returncode} before ready:\n{self.stderr()}")
            if self.healthz("/readyz")[0] == 200:
                return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"controller not ready within {timeout}s:\n{self.stderr()}")

    def healthz(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def metrics(self) -> dict[str, float]:
        """`/metrics` as `{'name{labels}': value}`."""
        status, text = self.healthz("/metrics")
        assert status == 200, text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

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
        wait_until(lambda: self.backend(path, host) == expected, timeout, what=f"{host}{path} -> {expected!r}")

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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"controller did not exit within {timeout}s of SIGTERM")
        return self.process.returncode

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


def process_alive(pid: int) -> bool:
    """True unless `pid` is gone or a zombie (an orphan may wait a while to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


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
