"""Plumbing for `python -m ingress_ctrl serve|run` as a subprocess: the listener arguments every
suite passes, /healthz-port requests, waiting for /readyz, SIGTERM with a deadline, and /proc
checks. Each suite's Controller class keeps its own options, logs and conveniences."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ingress_ctrl.metrics import config_hash


def listener_args(http_port: int, https_port: int, healthz_port: int, state_dir: Path) -> list[str]:
    """Loopback listeners, the state directory and no access log."""
    return ["--http-port", str(http_port), "--https-port", str(https_port),
            "--healthz-port", str(healthz_port), "--listen-address", "127.0.0.1",
            "--state-dir", str(state_dir), "--access-log", "off"]


def healthz(port: int, path: str) -> tuple[int, str]:
    """GET `path` on the health port: (status, body); (0, "") when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def parse_metric_lines(text: str) -> dict[str, float]:
    """`/metrics` text as `{'name{labels}': value}` (the value is what follows the last space)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def wait_ready(process: subprocess.Popen[bytes], ready_status: Callable[[], int], timeout: float,
               log: Callable[[], str], kill: Callable[[], None], exited: str = "") -> None:
    """Poll until `ready_status()` is 200; fail (with the log) if the process exits first, or
    kill it and fail after `timeout`. `exited` is put after the exit code in the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"controller exited with {process.returncode}{exited}:\n{log()}")
        if ready_status() == 200:
            return
        time.sleep(0.05)
    kill()
    raise AssertionError(f"controller not ready within {timeout}s:\n{log()}")


def terminate(process: subprocess.Popen[bytes], timeout: float, kill: Callable[[], None],
              detail: Callable[[], str] = lambda: "") -> int:
    """SIGTERM; the exit code. Kills (with `kill`) and fails if it does not exit in `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill()
            raise AssertionError(f"controller did not exit within {timeout}s of SIGTERM{detail()}")
    return process.returncode


def process_alive(pid: int) -> bool:
    """True unless `pid` is gone or a zombie (an orphan may wait a while to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class HealthPort:
    """The health port of a `serve` controller: /healthz, /readyz and /metrics (mixin; the
    subclass sets `healthz_port`)."""

    healthz_port: int
    state_dir: Path

    def healthz(self, path: str) -> tuple[int, str]:
        return healthz(self.healthz_port, path)

    def confirmed(self) -> bool:
        """The config on disk is the one the controller last confirmed live (its config-hash metric,
        set once a load's old workers stopped accepting). After a route answered from a new config
        this says that load is over: until then nginx's old workers keep accepting beside the new
        ones for ~100 ms. (Before a change is swapped in, it says nothing about that change.)"""
        try:
            with open(self.state_dir / "nginx.conf") as config:
                config.readline()
                version = config.readline().removeprefix("# config version ").strip()
            return self.metrics().get("ingress_ctrl_config_hash") == config_hash(version)
        except (OSError, ValueError):
            return False

    def metrics(self) -> dict[str, float]:
        """`/metrics` as `{'name{labels}': value}`."""
        status, text = self.healthz("/metrics")
        assert status == 200, text
        return parse_metric_lines(text)
