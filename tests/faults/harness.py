"""Helpers of the fault suite: echo backends in child processes, `ingress-ctrl serve` with real
nginx in folder mode, manifests, an nginx wrapper that can be told to refuse configs, and small
HTTP clients. What the suites share (ports, polling, controller plumbing) is in tests/support.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support import polling
from tests.support.controller import HealthPort, listener_args, terminate, wait_ready
from tests.support.controller import process_alive  # noqa: F401  (re-exported: the tests use h.process_alive)
from tests.support.files import ScratchDirs, write_atomic
from tests.support.http_client import exchange
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RELOADS_OK = 'ingress_ctrl_nginx_reloads_total{result="success"}'
RELOADS_FAILED = 'ingress_ctrl_nginx_reloads_total{result="failure"}'
LAST_RELOAD_OK = "ingress_ctrl_config_last_reload_successful"
RESTARTS = "ingress_ctrl_nginx_restarts_total"

_scratch = ScratchDirs("ictl-faults")


def scratch_dir(prefix: str) -> Path:
    """A fresh directory under /tmp whose path is valid for --state-dir and that nginx workers
    (which run as nobody) can traverse."""
    return _scratch.make(prefix)


def remove_scratch_dirs() -> None:
    _scratch.remove_all()


def wait_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str = "condition") -> Any:
    return polling.wait_until(check, timeout, interval, what)


# --- backends -------------------------------------------------------------------------------------

class EchoBackend:
    """examples/echo_backend.py in a child process (so load tests do not share our GIL)."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "examples" / "echo_backend.py"), "--name", name, "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, 10, what=f"echo backend {name} listening")

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True
        return False

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --- manifests ------------------------------------------------------------------------------------

def ingress_class() -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-ctrl"}}


def service(name: str, port: int, addresses: Sequence[str] = ("127.0.0.1",)) -> list[dict[str, Any]]:
    """A Service (port 80, named http) and an EndpointSlice sending it to `addresses`:`port`."""
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": {"name": f"{name}-{port}", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
         "ports": [{"name": "http", "port": port}],
         "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]},
    ]


def path(p: str, service_name: str, path_type: str = "Prefix") -> dict[str, Any]:
    return {"path": p, "pathType": path_type, "backend": {"service": {"name": service_name, "port": {"number": 80}}}}


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host is not None:
        entry["host"] = host
    return entry


def ingress(name: str, *rules: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
            "spec": {"ingressClassName": "nginx", "rules": list(rules)}}


def write_manifests(folder: Path, filename: str, objects: Iterable[dict[str, Any]]) -> Path:
    """Multi-document YAML, written through a hidden temporary file and a rename."""
    target = folder / filename
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    write_atomic(target, yaml.dump_all(list(objects), Dumper=dumper, sort_keys=False))
    return target


# --- the nginx seam -------------------------------------------------------------------------------

def refusing_nginx(directory: Path) -> tuple[Path, Path]:
    """A `--nginx-binary` that is the real nginx, except that `-t` fails like nginx does while the
    returned marker file exists. Returns (wrapper, marker)."""
    marker = directory / "refuse"
    wrapper = directory / "nginx-wrapper"
    wrapper.write_text(f"""#!/bin/sh
for arg in "$@"; do
    if [ "$arg" = "-t" ] && [ -e {marker} ]; then
        echo 'nginx: [emerg] injected refusal: "proxy_pass" directive is not allowed here in nginx.conf.new:42' >&2
        echo 'nginx: configuration file nginx.conf.new test failed' >&2
        exit 1
    fi
done
exec {NGINX} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper, marker


# --- HTTP -----------------------------------------------------------------------------------------

def get(port: int, path: str = "/", host: str = "example.com", timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET on a fresh connection; (status, body)."""
    status, _, body, _ = exchange(port, "GET", path, {"Host": host}, timeout=timeout)
    return status, body


def backend_of(port: int, path: str = "/", host: str = "example.com") -> str | int:
    """The echo backend's name, the status when nginx answered itself, or 0 for no answer."""
    import json
    try:
        status, body = get(port, path, host, timeout=5)
    except (OSError, http.client.HTTPException) as error:
        return NoAnswer(error)
    if status == 200:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return json.loads(body)["backend"]
    return status


class NoAnswer(int):
    """0, for "no answer", that remembers why (for assertion messages)."""

    def __new__(cls, error: BaseException) -> NoAnswer:
        self = super().__new__(cls, 0)
        self.error = error
        return self

    def __repr__(self) -> str:
        return f"NoAnswer({self.error!r})"


# --- the controller -------------------------------------------------------------------------------

class Controller(HealthPort):
    """`python -m ingress_ctrl serve` as a child process on loopback ports."""

    def __init__(self, manifests: Path, *, state_dir: Path | None = None, nginx_binary: str = NGINX,
                 grace: float = 0.0, args: Sequence[str] = (), log_level: str = "INFO") -> None:
        self.manifests = manifests
        self.workdir = scratch_dir("ctl")
        self.state_dir = state_dir or self.workdir / "state"
        self.http_port, self.https_port, self.healthz_port = free_port(), free_port(), free_port()
        self.log_path = self.workdir / "stderr.log"
        self.command = [
            sys.executable, "-m", "ingress_ctrl", "--log-level", log_level, "serve", "--manifests", str(manifests),
            *listener_args(self.http_port, self.https_port, self.healthz_port, self.state_dir),
            "--nginx-binary", nginx_binary,
            "--shutdown-grace-period", str(grace), "--worker-shutdown-timeout", "30s",
            "--sync-debounce", "0.05", *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Controller:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log)
        wait_ready(self.process, lambda: self.healthz("/readyz")[0], timeout, self.log, self.kill)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 10.0, after: int = 0) -> str:
        """The first log line (from character `after` on) matching the regex."""
        def find() -> str | None:
            match = re.search(f"^.*(?:{pattern}).*$", self.log()[after:], re.MULTILINE)
            return match.group(0) if match else None
        return wait_until(find, timeout, what=f"log line matching {pattern!r}")

    def metric(self, name: str) -> float:
        return self.metrics()[name]

    def backend(self, path: str = "/", host: str = "example.com") -> str | int:
        return backend_of(self.http_port, path, host)

    def wait_backend(self, expected: str | int, path: str = "/", host: str = "example.com", timeout: float = 10.0) -> None:
        """Until the route answers `expected` and the controller has confirmed the config on disk
        (so the next request cannot meet one of nginx's old workers)."""
        wait_until(lambda: self.backend(path, host) == expected, timeout, what=f"{host}{path} -> {expected!r}")
        wait_until(self.confirmed, timeout, what="the controller's confirmation of the config on disk")

    def nginx_pid(self) -> int:
        """The master's pid from STATE/nginx.pid; 0 while there is none (or it is being written)."""
        try:
            return int((self.state_dir / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return 0

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM; the exit code."""
        assert self.process is not None
        return terminate(self.process, timeout, self.kill, lambda: f":\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """Hard cleanup after a failed test: the controller and any nginx it left behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.nginx_pid():
            with contextlib.suppress(OSError):
                os.killpg(self.nginx_pid(), signal.SIGKILL)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextlib.contextmanager
def running(manifests: Path, **kwargs: Any) -> Iterator[Controller]:
    """A started controller; on leaving, SIGTERM, and require exit 0 with nginx gone."""
    controller = Controller(manifests, **kwargs).start()
    try:
        yield controller
    except BaseException:
        controller.kill()
        sys.stderr.write(f"--- controller log (last 4000 characters) ---\n{controller.log()[-4000:]}\n")
        raise
    code = controller.stop()
    assert code == 0, f"controller exited with {code}:\n{controller.log()[-3000:]}"
