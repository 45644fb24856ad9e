#!/usr/bin/env python3
"""Reloads under load: keep-alive traffic against served routes while config changes are applied.

Starts two echo backends (examples/echo_backend.py), `ingress-ctrl serve` with real nginx in
folder mode on loopback, and N keep-alive client connections (raw asyncio sockets). After a
quiet baseline it applies `--changes` config changes one at a time, each confirmed live (the
reload counter in /metrics) before the next, and prints one row per reload:

  requests     requests sent in that reload's window (first attempts)
  non-2xx      answers other than 2xx
  raw errors   socket-level failures a NON-retrying keep-alive client sees (EOF or reset instead
               of an answer); by kind: `closed` = EOF before any byte of the answer on a reused
               connection, `reset` = ECONNRESET there, `mid-answer`, `connect`, `timeout`
  retry fails  failures of a client that retries an idempotent request once, on a fresh
               connection, when a kept-alive connection is closed under it before any byte of
               the answer (what browsers and HTTP libraries do)

Usage: python scripts/reload_under_load.py [--changes 50] [--connections 16] [--tls] [--json]
Loopback only; the load is bounded by --changes (and --max-seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
RELOADS_OK = 'ingress_ctrl_nginx_reloads_total{result="success"}'
HOSTS = ("load.example", "steady.example")  # `load` is changed by the reloads, `steady` never


# --- the load generator ----------------------------------------------------------------------------

class RequestError(Exception):
    def __init__(self, kind: str, received: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.received = received  # some bytes of the answer had arrived


@dataclasses.dataclass
class Counts:
    requests: int = 0        # first attempts
    ok: int = 0              # 2xx
    non_2xx: int = 0
    raw_errors: int = 0      # first attempts that failed at the socket level
    retried: int = 0         # ... of which retried once on a fresh connection
    retry_failures: int = 0  # requests lost even with one retry (all raw errors not retried, plus failed retries)
    kinds: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)

    def copy(self) -> Counts:
        return dataclasses.replace(self, kinds=collections.Counter(self.kinds), statuses=collections.Counter(self.statuses))

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests, self.ok - other.ok, self.non_2xx - other.non_2xx,
            self.raw_errors - other.raw_errors, self.retried - other.retried, self.retry_failures - other.retry_failures,
            self.kinds - other.kinds, self.statuses - other.statuses,
        )


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.used = reader, writer, 0

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None, sni: str, timeout: float) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname=sni if tls else None), timeout)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as error:
            raise RequestError("connect", False) from error
        return cls(reader, writer)

    async def request(self, data: bytes, timeout: float) -> tuple[int, bool]:
        """Send one request, read the whole answer: (status, connection reusable)."""
        received = False
        try:
            self.writer.write(data)
            await self.writer.drain()
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
            received = True
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int((await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)).split(b";")[0], 16)
                    await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
                    if size == 0:
                        break
            else:
                await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), timeout)
        except asyncio.IncompleteReadError as error:
            received = received or bool(error.partial)
            raise RequestError("mid-answer" if received else "closed", received) from None
        except asyncio.TimeoutError:
            raise RequestError("timeout", True) from None  # not retried: it may have been processed
        except (ConnectionResetError, BrokenPipeError) as error:
            raise RequestError("mid-answer" if received else "reset", received) from error
        except (OSError, ssl.SSLError, ValueError, IndexError) as error:
            raise RequestError(f"mid-answer:{type(error).__name__}" if received else f"other:{type(error).__name__}", received) from error
        self.used += 1
        return status, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class LoadGenerator:
    """`connections` keep-alive clients sending GETs back to back until `stop()`."""

    def __init__(self, port: int, connections: int = 16, tls: bool = False, timeout: float = 10.0) -> None:
        self.port, self.connections, self.timeout = port, connections, timeout
        self.tls: ssl.SSLContext | None = None
        if tls:
            self.tls = ssl.create_default_context()
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        self.counts = Counts()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.connections)]

    async def stop(self) -> Counts:
        self._stopping = True
        await asyncio.gather(*self._tasks)
        return self.counts

    async def _client(self, index: int) -> None:
        host = HOSTS[index % len(HOSTS)]
        data = f"GET /load?c={index} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reload-under-load\r\n\r\n".encode()
        connection: Connection | None = None
        counts = self.counts
        while not self._stopping:
            counts.requests += 1
            try:
                if connection is None:
                    connection = await Connection.open(self.port, self.tls, host, self.timeout)
                reused = connection.used > 0
                status, keep = await connection.request(data, self.timeout)
            except RequestError as error:
                counts.raw_errors += 1
                counts.kinds[error.kind] += 1
                reused = connection is not None and connection.used > 0
                if connection is not None:
                    connection.close()
                connection = None
                if not (reused and not error.received):
                    counts.retry_failures += 1  # nothing a client may safely retry
                    await asyncio.sleep(0.01)
                    continue
                counts.retried += 1  # the retrying client: once, on a fresh connection
                try:
                    connection = await Connection.open(self.port, self.tls, host, self.timeout)
                    status, keep = await connection.request(data, self.timeout)
                except RequestError:
                    counts.retry_failures += 1
                    if connection is not None:
                        connection.close()
                    connection = None
                    continue
            counts.statuses[status] += 1
            if 200 <= status < 300:
                counts.ok += 1
            else:
                counts.non_2xx += 1
            if not keep:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


# --- the controller under test ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manifest_objects(ports: Sequence[int], second_endpoint: bool, timeout: int, extras: Sequence[int]) -> list[dict[str, Any]]:
    def slice_(name: str, port: int) -> dict[str, Any]:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": f"echo-{name}", "labels": {"kubernetes.io/service-name": "echo"}},
                "ports": [{"name": "http", "port": port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}

    def ingress(name: str, host: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "annotations": annotations or {}},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "echo", "port": {"number": 80}}}}]}}]}}

    objects: list[dict[str, Any]] = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-ctrl"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"}, "spec": {"ports": [{"name": "http", "port": 80}]}},
        slice_("a", ports[0]),
        ingress("load", HOSTS[0], {"nginx.ingress.kubernetes.io/proxy-read-timeout": str(timeout)}),
        ingress("steady", HOSTS[1]),
    ]
    if second_endpoint:
        objects.append(slice_("b", ports[1]))
    objects += [ingress(f"extra-{i}", f"extra-{i}.example") for i in extras]
    return objects


class Scenario:
    """Backends, a manifest folder and the controller; `change(i)` applies config change i."""

    KINDS = ("annotation on the loaded Ingress", "Ingress added", "endpoint added/removed", "Ingress removed", "annotation on the loaded Ingress")

    def __init__(self, nginx_binary: str = "nginx", args: Sequence[str] = ()) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ictl-reload-", dir="/tmp"))
        self.workdir.chmod(0o755)
        self.folder = self.workdir / "manifests"
        self.folder.mkdir()
        self.backends = []
        self.backend_ports = [free_port(), free_port()]
        for name, port in zip(("echo-a", "echo-b"), self.backend_ports):
            self.backends.append(subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "examples" / "echo_backend.py"), "--name", name, "--port", str(port)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.http_port, self.https_port, self.healthz_port = free_port(), free_port(), free_port()
        self.state = dict(second_endpoint=False, timeout=60, extras=[])
        self._write()
        self.log_path = self.workdir / "controller.log"
        self.command = [
            sys.executable, "-m", "ingress_ctrl", "serve", "--manifests", str(self.folder),
            "--http-port", str(self.http_port), "--https-port", str(self.https_port),
            "--healthz-port", str(self.healthz_port), "--listen-address", "127.0.0.1",
            "--state-dir", str(self.workdir / "state"), "--access-log", "off", "--nginx-binary", nginx_binary,
            "--worker-shutdown-timeout", "30s", "--sync-debounce", "0.05", *args,
        ]
        self.controller: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Scenario:
        for port in self.backend_ports:
            _wait(lambda port=port: _listening(port), 10, f"backend on {port}")
        with open(self.log_path, "wb") as log:
            self.controller = subprocess.Popen(self.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        _wait(lambda: self._get("/readyz")[0] == 200, 60, "controller ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            try:
                self.controller.wait(60)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait()
        for backend in self.backends:
            backend.terminate()
            backend.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def exit_code(self) -> int | None:
        return self.controller.returncode if self.controller else None

    def _write(self) -> None:
        objects = _manifest_objects(self.backend_ports, self.state["second_endpoint"], self.state["timeout"], self.state["extras"])
        temporary = self.folder / ".all.yaml.tmp"
        temporary.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        os.replace(temporary, self.folder / "all.yaml")

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz_port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""
        except OSError:
            return 0, ""

    def reloads(self) -> float:
        for line in self._get("/metrics")[1].splitlines():
            if line.startswith(RELOADS_OK + " "):
                return float(line.split()[1])
        return -1.0

    def change(self, index: int) -> str:
        kind = index % len(self.KINDS)
        if kind in (0, 4):
            self.state["timeout"] += 1
        elif kind == 1:
            self.state["extras"].append(index)
        elif kind == 2:
            self.state["second_endpoint"] = not self.state["second_endpoint"]
        elif kind == 3:
            self.state["extras"].pop(0)
        self._write()
        return self.KINDS[kind]


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached within {timeout}s")
        time.sleep(0.02)


# --- the run -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Row:
    label: str
    what: str
    reload_ms: float | None
    counts: Counts


@dataclasses.dataclass
class Result:
    rows: list[Row]
    total: Counts
    exit_code: int | None


async def _await_thread(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def run(changes: int = 50, connections: int = 16, tls: bool = False, baseline: float = 1.0, gap: float = 0.3,
              nginx_binary: str = "nginx", args: Sequence[str] = (), max_seconds: float = 600.0) -> Result:
    """The whole measurement; `gap` is the load time after each reload is confirmed live."""
    scenario = Scenario(nginx_binary, args)
    rows: list[Row] = []
    with scenario:
        port = scenario.https_port if tls else scenario.http_port
        load = LoadGenerator(port, connections, tls)
        load.start()
        started = time.monotonic()
        before = load.counts.copy()
        await asyncio.sleep(baseline)
        rows.append(Row("baseline", f"{baseline:g}s without changes", None, load.counts.copy() - before))
        for index in range(changes):
            if time.monotonic() - started > max_seconds:
                break
            before = load.counts.copy()
            reloads = await _await_thread(scenario.reloads)
            began = time.monotonic()
            what = await _await_thread(scenario.change, index)
            while await _await_thread(scenario.reloads) <= reloads:
                if time.monotonic() - began > 60:
                    raise RuntimeError(f"change {index + 1} ({what}) did not go live within 60s; see {scenario.log_path}")
                await asyncio.sleep(0.01)
            reload_ms = (time.monotonic() - began) * 1000
            await asyncio.sleep(gap)
            rows.append(Row(str(index + 1), what, reload_ms, load.counts.copy() - before))
        total = await load.stop()
    return Result(rows, total, scenario.exit_code)


def table(result: Result) -> str:
    header = ("reload", "change", "live after ms", "requests", "non-2xx", "raw errors", "raw error kinds", "retry fails")
    lines = [header]
    for row in result.rows:
        c = row.counts
        lines.append((row.label, row.what, "" if row.reload_ms is None else f"{row.reload_ms:.0f}", str(c.requests),
                      str(c.non_2xx), str(c.raw_errors), " ".join(f"{k}={v}" for k, v in sorted(c.kinds.items())), str(c.retry_failures)))
    t = result.total
    lines.append(("total", f"{len(result.rows) - 1} reloads", "", str(t.requests), str(t.non_2xx), str(t.raw_errors),
                  " ".join(f"{k}={v}" for k, v in sorted(t.kinds.items())), str(t.retry_failures)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tls", action="store_true", help="HTTPS instead of plain HTTP")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds of load after each reload is live")
    parser.add_argument("--nginx-binary", default="nginx")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    if shutil.which(args.nginx_binary) is None:
        print(f"{args.nginx_binary}: not found", file=sys.stderr)
        return 2
    result = asyncio.run(run(args.changes, args.connections, args.tls, gap=args.gap, nginx_binary=args.nginx_binary,
                             max_seconds=args.max_seconds))
    if args.json:
        print(json.dumps({"rows": [dataclasses.asdict(r) for r in result.rows], "total": dataclasses.asdict(result.total),
                          "exit_code": result.exit_code}, default=dict))
    else:
        print(table(result))
        t = result.total
        print(f"\n{t.requests} requests, {t.non_2xx} non-2xx, {t.retry_failures} failed for the retrying client, "
              f"{t.raw_errors} raw socket errors for a non-retrying client ({t.retried} retried); controller exit {result.exit_code}")
    ok = result.total.non_2xx == 0 and result.total.retry_failures == 0 and result.exit_code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
