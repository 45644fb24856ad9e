"""Helpers for the Kubernetes-mode suite: the API emulator in a background thread, a small
synchronous API client, the real `ingress-ctrl run` process with real nginx, echo backends,
HTTP(S) clients, metrics and certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
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

import kmock

from tests.kube import k8semu
from tests.support.backends import EchoBackends
from tests.support.certs import self_signed
from tests.support.controller import healthz, listener_args
from tests.support.http_client import EchoReply, exchange
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLLER = "k8s.io/ingress-ctrl"
POD_NAMESPACE = "ingress-ctrl"

# Short names → (emulator resource key, API path prefix, plural, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "ingresses": ("networking.k8s.io/v1/ingresses", "/apis/networking.k8s.io/v1", "ingresses", True),
    "ingressclasses": ("networking.k8s.io/v1/ingressclasses", "/apis/networking.k8s.io/v1", "ingressclasses", False),
    "services": ("v1/services", "/api/v1", "services", True),
    "endpoints": ("v1/endpoints", "/api/v1", "endpoints", True),
    "endpointslices": ("discovery.k8s.io/v1/endpointslices", "/apis/discovery.k8s.io/v1", "endpointslices", True),
    "secrets": ("v1/secrets", "/api/v1", "secrets", True),
    "events": ("events.k8s.io/v1/events", "/apis/events.k8s.io/v1", "events", True),
    "leases": ("coordination.k8s.io/v1/leases", "/apis/coordination.k8s.io/v1", "leases", True),
}
WATCHED_KINDS = ("ingresses", "ingressclasses", "services", "endpoints", "endpointslices", "secrets")


# --- polling -------------------------------------------------------------------------------------

def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    """Call `check` until it returns something truthy without raising AssertionError; return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except (AssertionError, OSError, http.client.HTTPException) as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last {last!r}")
        time.sleep(interval)


def stays(check: Callable[[], Any], duration: float, interval: float = 0.2, what: str = "") -> None:
    """`check` holds (truthy, no AssertionError) for the whole of `duration` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        result = check()
        assert result, f"{what or check} stopped holding: {result!r}"
        time.sleep(interval)


# --- the API emulator, in a thread -------------------------------------------------------------------

class Emulator:
    """K8sEmulator + kmock.Server on a fixed port, run by an event loop in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="k8semu", daemon=True)
        self._thread.start()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        if not self._started.wait(10):
            raise RuntimeError(f"the emulator did not start: {self._main}")
        self.emu: k8semu.K8sEmulator = self._emu

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with k8semu.K8sEmulator() as emu, kmock.Server(emu, host="127.0.0.1", port=self.port):
            self._emu = emu
            self._started.set()
            await self._stop.wait()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a plain function on the emulator's loop (its state is not thread-safe)."""
        async def run() -> Any:
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    # conveniences on the emulator itself (run on its loop)
    def preload(self, kind: str, *objs: dict[str, Any]) -> None:
        self.call(self.emu.preload, RESOURCES[kind][0], *objs)

    def remove(self, kind: str, namespace: str | None, name: str) -> bool:
        return self.call(self.emu.remove, RESOURCES[kind][0], namespace, name)

    def drop_watches(self, kind: str | None = None, gone: bool = False) -> None:
        self.run(self.emu.drop_watches(RESOURCES[kind][0] if kind else None, gone=gone))

    def compact(self, kind: str | None = None) -> None:
        self.call(self.emu.compact, RESOURCES[kind][0] if kind else None)

    def watch_count(self) -> int:
        return self.call(lambda: self.emu.watch_count)

    def writes(self, token: str | None = None) -> list[dict[str, Any]]:
        return self.call(lambda: [w for w in self.emu.writes if token is None or w["token"] == token])

    def objects(self) -> list[tuple[str, str | None, str, dict[str, Any]]]:
        return self.call(self.emu.objects_of)

    def kubeconfig(self, directory: Path, token: str) -> Path:
        path = directory / f"kubeconfig-{token}"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "emu", "cluster": {"server": self.url}}],
            "users": [{"name": token, "user": {"token": token}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": token, "namespace": "default"}}],
            "current-context": "emu",
        }))
        return path

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        with contextlib.suppress(Exception):
            self._main.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# --- a synchronous API client ----------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:300]}")
        self.status = status


class Api:
    """What a user (kubectl) does, over HTTP, with its own token."""

    def __init__(self, url: str, token: str = "test-user") -> None:
        self.url = url
        self.token = token

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        _, prefix, plural, namespaced = RESOURCES[kind]
        parts = [prefix]
        if namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                query: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path + (f"?{query}" if query else ""), data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("User-Agent", "kube-tests")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        namespace = (body.get("metadata") or {}).get("namespace")
        return self.request("POST", self.path(kind, namespace), body)

    def apply(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create, or replace the spec/data of an existing object (keeps its status)."""
        meta = body["metadata"]
        current = self.get(kind, meta.get("namespace"), meta["name"])
        if current is None:
            return self.create(kind, body)
        new = dict(body)
        new["metadata"] = {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}
        return self.request("PUT", self.path(kind, meta.get("namespace"), meta["name"]), new)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(kind, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None = None, query: str = "") -> list[dict[str, Any]]:
        return self.request("GET", self.path(kind, namespace), query=query)["items"]

    def patch(self, kind: str, namespace: str | None, name: str, patch: Any, sub: str | None = None) -> dict[str, Any]:
        content_type = "application/json-patch+json" if isinstance(patch, list) else "application/merge-patch+json"
        return self.request("PATCH", self.path(kind, namespace, name, sub), patch, content_type)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        self.request("DELETE", self.path(kind, namespace, name))

    # Ingress status and Events, as the controller leaves them
    def lb(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        ingress = self.get("ingresses", namespace, name)
        assert ingress is not None, f"Ingress {namespace}/{name} is gone"
        return ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")

    def events(self, namespace: str, name: str | None = None, reason: str | None = None) -> list[dict[str, Any]]:
        found = []
        for event in self.list("events", namespace):
            regarding = event.get("regarding") or {}
            if name is not None and (regarding.get("kind"), regarding.get("name")) != ("Ingress", name):
                continue
            if reason is not None and event.get("reason") != reason:
                continue
            found.append(event)
        return sorted(found, key=lambda e: e.get("eventTime") or "")


# --- manifests -------------------------------------------------------------------------------------------

def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        out["namespace"] = namespace
    return out


def ingress_class(name: str, controller: str = CONTROLLER, default: bool = False) -> dict[str, Any]:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": meta(name, annotations=annotations), "spec": {"controller": controller}}


def ingress(namespace: str, name: str, host: str | None, service: str, port: int | str = 80, path: str = "/",
            class_name: str | None = "ours", annotations: dict[str, str] | None = None,
            tls: Sequence[tuple[Sequence[str], str]] = (), path_type: str = "Prefix") -> dict[str, Any]:
    backend_port = {"number": port} if isinstance(port, int) else {"name": port}
    rule: dict[str, Any] = {"http": {"paths": [{"path": path, "pathType": path_type,
                                                "backend": {"service": {"name": service, "port": backend_port}}}]}}
    if host is not None:
        rule["host"] = host
    spec: dict[str, Any] = {"rules": [rule]}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if tls:
        spec["tls"] = [{"hosts": list(hosts), "secretName": secret} for hosts, secret in tls]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": meta(name, namespace, annotations=annotations or {}), "spec": spec}


def service(namespace: str, name: str, port: int = 80, target_port: int | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace),
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": port, "protocol": "TCP",
                                                     "targetPort": target_port or port}]}}


def endpoint_slice(namespace: str, service_name: str, addresses: Iterable[str], port: int, name: str | None = None,
                   ready: bool = True) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": meta(name or f"{service_name}-slice", namespace,
                             labels={"kubernetes.io/service-name": service_name}),
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def tls_secret(namespace: str, name: str, pem_cert: bytes, pem_key: bytes) -> dict[str, Any]:
    import base64
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta(name, namespace),
            "data": {"tls.crt": base64.b64encode(pem_cert).decode(), "tls.key": base64.b64encode(pem_key).decode()}}


def certificate(common_name: str, hosts: Sequence[str]) -> tuple[bytes, bytes, int]:
    """A self-signed certificate for `hosts`: (cert PEM, key PEM, serial number)."""
    return self_signed(common_name, hosts, datetime.timedelta(days=-1), datetime.timedelta(days=30))


# --- echo backends --------------------------------------------------------------------------------------

class Backends(EchoBackends):
    """Echo backends (examples/echo_backend.make_app) on one event loop in a background thread."""

    def __init__(self) -> None:
        super().__init__("kube-backends")

    def start(self, name: str, address: str, port: int | None = None) -> int:
        return self.serve(name, [address], port or free_port([address]))


# --- HTTP(S) through nginx ------------------------------------------------------------------------------

class Reply(EchoReply):
    @property
    def address(self) -> str | None:
        data = self.data
        return data["address"] if data else None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:200]!r})"


def get(port: int, host: str, path: str = "/", tls: bool = False, timeout: float = 10.0) -> Reply:
    """One request on a fresh connection to 127.0.0.1:`port` with this Host (and SNI for TLS)."""
    return Reply(*exchange(port, "GET", path, {"Host": host, "Connection": "close"}, tls=tls, sni=host,
                           timeout=timeout))


# --- metrics -------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def parse_metrics(text: str) -> dict[str, float]:
    """`name{labels}` → value; labels exactly as exposed (sorted by prometheus_client)."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


# --- the controller -------------------------------------------------------------------------------------

class Controller:
    """`python -m ingress_ctrl run` against the emulator, with real nginx, as a subprocess."""

    def __init__(self, emulator: Emulator, workdir: Path, name: str = "ctl-a", extra: Sequence[str] = (),
                 nginx_binary: str | None = None, env: dict[str, str] | None = None) -> None:
        self.emulator = emulator
        self.name = name
        self.token = f"token-{name}"
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.dir / "state"
        self.log_path = self.dir / "controller.log"
        self.http_port, self.https_port, self.healthz_port = free_port(), free_port(), free_port()
        self.args = [
            sys.executable, "-m", "ingress_ctrl", "run",
            *listener_args(self.http_port, self.https_port, self.healthz_port, self.state_dir),
            "--worker-shutdown-timeout", "1s",
            "--sync-debounce", "0.05", "--election-ttl", "2", "--resync-period", "2",
            *(["--nginx-binary", nginx_binary] if nginx_binary else []),
            *extra,
        ]
        self.env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig(self.dir, self.token)),
                    "POD_NAMESPACE": POD_NAMESPACE, "POD_NAME": name, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True, timeout: float = 60.0) -> Controller:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"controller {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            return self.healthz("/readyz") == 200
        try:
            eventually(ready, timeout=timeout, what=f"{self.name} /readyz")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- log ---\n{self.log_tail()}") from None

    def healthz(self, path: str) -> int:
        return healthz(self.healthz_port, path)[0]

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}/metrics", timeout=5) as response:
            return parse_metrics(response.read().decode())

    def metric(self, name: str) -> float:
        return self.metrics()[name]

    def reloads(self, result: str = "success") -> float:
        return self.metric(f'ingress_ctrl_nginx_reloads_total{{result="{result}"}}')

    def get(self, host: str, path: str = "/", tls: bool = False) -> Reply:
        return get(self.https_port if tls else self.http_port, host, path, tls=tls)

    def serves(self, host: str, backend: str | None = None, path: str = "/") -> Reply | None:
        """The reply if `host` is routed (to `backend`, if given), else None: for `eventually`."""
        reply = self.get(host, path)
        if reply.backend is not None and (backend is None or reply.backend == backend):
            return reply
        return None

    def not_served(self, host: str, path: str = "/") -> bool:
        reply = self.get(host, path)
        return reply.status == 404 and reply.backend is None

    def nginx_pid(self) -> int:
        return int((self.state_dir / "nginx.pid").read_text().strip())

    def workers(self) -> dict[int, str]:
        """nginx's master's children and their process titles (Linux /proc)."""
        master = self.nginx_pid()
        titles = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                if int(stat.rsplit(b")", 1)[1].split()[1]) == master:
                    titles[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, ValueError, IndexError):
                continue
        return titles

    def live_version(self) -> str:
        """The config version nginx itself serves, from its status socket."""
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(str(self.state_dir / "nginx-status.sock"))
        try:
            sock.sendall(b"GET /config-version HTTP/1.0\r\nHost: nginx\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        finally:
            sock.close()
        return data.split(b"\r\n\r\n", 1)[1].decode().strip()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as when the node dies: no goodbyes (the Lease is not released); nginx goes too."""
        assert self.process is not None
        pid = self.nginx_pid()
        self.process.kill()
        self.process.wait(10)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as the kubelet does; SIGKILL (and nginx's group) if it does not go."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        pid = None
        with contextlib.suppress(OSError, ValueError):
            pid = self.nginx_pid()
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            if pid:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            return None


def failing_nginx(directory: Path) -> tuple[str, Path]:
    """A `--nginx-binary` wrapper: real nginx, except that `nginx -t` fails while the marker exists."""
    marker = directory / "refuse-configs"
    script = directory / "nginx-wrapper.sh"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    script.write_text(f"""#!/bin/sh
for arg in "$@"; do
  if [ "$arg" = "-t" ] && [ -e {marker} ]; then
    echo "nginx: [emerg] refused by the test marker {marker.name}" >&2
    exit 1
  fi
done
exec {nginx} "$@"
""")
    script.chmod(0o755)
    return str(script), marker


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"kube-{prefix}-"))
