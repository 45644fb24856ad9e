"""Processes the benchmark runs and watches: a backend nginx, the controller, nginx -t, RSS, HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingress_ctrl.nginx import live_processes

REPO_ROOT = Path(__file__).resolve().parents[1]
# The controller under test: this checkout, or another (e.g. an export of an older commit, to
# measure "before"); its `ingress_ctrl` must be importable from there (`python -m` runs in it).
PRODUCT_ROOT = Path(os.environ.get("BENCH_PRODUCT_ROOT", REPO_ROOT)).resolve()
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MARKER_BODY = "marker"  # what the marker backend answers: a route to it is the "new route"
_handed_out: set[int] = set()


def free_port() -> int:
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def load_average() -> float:
    return os.getloadavg()[0]


def scratch(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"ingress-bench-{name}-"))


# --- RSS ----------------------------------------------------------------------------------------

def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    return sorted(child for child, fields in live_processes() if int(fields[1]) == pid)


def nginx_rss(master: int) -> dict[str, Any]:
    """RSS of an nginx master and of its workers (MiB)."""
    workers = [p for p in children(master) if b"worker process" in _cmdline(p) and b"shutting down" not in _cmdline(p)]
    worker_rss = [rss_kib(p) or 0 for p in workers]
    return {"master_mib": round((rss_kib(master) or 0) / 1024, 1),
            "worker_mib": round(max(worker_rss, default=0) / 1024, 1), "workers": len(workers)}


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


# --- HTTP ---------------------------------------------------------------------------------------

def get(port: int, host: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def answers(port: int, host: str, path: str, body: str = MARKER_BODY) -> bool:
    try:
        status, data = get(port, host, path, timeout=2.0)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and data.strip() == body.encode()


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.005, what: str = "") -> float:
    """Poll until `check()` is truthy; the time.monotonic() at which it first was."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or check}")
        time.sleep(interval)


def parse_metrics(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        match = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if match and not line.startswith("#"):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


# --- nginx -t -------------------------------------------------------------------------------------

def nginx_test(state_dir: Path, config: Path) -> dict[str, float]:
    """`nginx -t` on `config`: wall and CPU seconds (CPU is less disturbed by other load than wall
    time) and its own peak RSS (wait4: this child's figures, not the maximum over all children)."""
    start = time.perf_counter()
    process = subprocess.Popen([NGINX, "-t", "-q", "-p", str(state_dir), "-e", "stderr", "-c", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"nginx -t failed on {config}: {stderr[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


# --- a fast backend: nginx answering `return 200` -------------------------------------------------------

class BackendNginx:
    """nginx answering "ok" on `port` and MARKER_BODY on `marker_port`, on 127.0.0.1 and 127.0.0.2."""

    def __init__(self, addresses: Sequence[str] = ("127.0.0.1", "127.0.0.2"), workers: int = 1) -> None:
        self.dir = scratch("backend")
        self.port, self.marker_port, self.alt_port = free_port(), free_port(), free_port()
        listens = lambda port: "".join(f"        listen {a}:{port} reuseport backlog=4096;\n" for a in addresses)  # noqa: E731
        config = f"""worker_processes {workers};
pid {self.dir}/nginx.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {self.dir}/tmp;
    proxy_temp_path {self.dir}/tmp;
    fastcgi_temp_path {self.dir}/tmp;
    uwsgi_temp_path {self.dir}/tmp;
    scgi_temp_path {self.dir}/tmp;
    server {{
{listens(self.port)}{listens(self.alt_port)}        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
    server {{
{listens(self.marker_port)}        location / {{ default_type text/plain; return 200 "{MARKER_BODY}\\n"; }}
    }}
}}
"""
        (self.dir / "tmp").mkdir()
        (self.dir / "nginx.conf").write_text(config)
        self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-e", "stderr", "-c", str(self.dir / "nginx.conf"),
                                         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_until(lambda: _connectable(self.port) and _connectable(self.marker_port), 10, 0.02, "the backend nginx")

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def _connectable(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # its children too, when it leads a group
            process.wait()


# --- the controller, as a user runs it ----------------------------------------------------------------------

class Controller:
    """`python -m ingress_ctrl serve|run …` with real nginx; ports on 127.0.0.1."""

    def __init__(self, mode: str, workdir: Path, extra: Sequence[str] = (), env: dict[str, str] | None = None,
                 module: str = "ingress_ctrl") -> None:
        self.dir = workdir
        self.state_dir = workdir / "state"
        self.http_port, self.https_port, self.healthz_port = free_port(), free_port(), free_port()
        self.args = [sys.executable, "-m", module, "--log-level", "WARNING", mode,
                     "--http-port", str(self.http_port), "--https-port", str(self.https_port),
                     "--healthz-port", str(self.healthz_port), "--listen-address", "127.0.0.1",
                     "--state-dir", str(self.state_dir), "--access-log", "off", *extra]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if module != "ingress_ctrl":  # a launcher from bench/: importable beside the product
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), self.env.get("PYTHONPATH")]))
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.log_path = workdir / "controller.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> Controller:
        with open(self.log_path, "ab") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(self.args, cwd=PRODUCT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        return self

    def is_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"controller exited with {self.process.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 600) -> float:
        """Seconds from start until /readyz says 200."""
        return wait_until(self.is_ready, timeout, 0.02, "/readyz") - self.started

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}/metrics", timeout=10) as response:
            return parse_metrics(response.read().decode())

    def reloads(self) -> int:
        return int(self.metrics().get('ingress_ctrl_nginx_reloads_total{result="success"}', 0))

    def nginx_master(self) -> int | None:
        assert self.process is not None
        masters = [p for p in children(self.process.pid) if b"nginx: master" in _cmdline(p)]
        return masters[0] if masters else None

    def memory(self) -> dict[str, Any]:
        assert self.process is not None
        out: dict[str, Any] = {"controller_mib": round((rss_kib(self.process.pid) or 0) / 1024, 1)}
        master = self.nginx_master()
        if master:
            out.update({f"nginx_{k}": v for k, v in nginx_rss(master).items()})
        return out

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGTERM, 60)


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
