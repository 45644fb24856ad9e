"""The state dir unwritable or full: a clear error naming the directory and the OS's reason, the
last config keeps serving, and the next change after the fault is lifted applies.

The tests run as root in CI, and root ignores file permissions (chmod 0500 changes nothing), so
the faults are ones root cannot write through either:
- a file-size limit (RLIMIT_FSIZE, set on the running controller with prlimit): writes past it
  fail with EFBIG "File too large"; needs no privileges, always runs;
- a tiny tmpfs as the state dir, filled up: ENOSPC "No space left on device";
- the same tmpfs remounted read-only: EROFS "Read-only file system".
The tmpfs tests need mount(2) (CAP_SYS_ADMIN) and are skipped where it is not allowed.
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import harness as h


def _base(folder: Path, echo) -> None:
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])


def _many_hosts(name: str, count: int) -> dict:
    """An Ingress that makes nginx.conf grow by roughly 200 bytes per host."""
    return h.ingress(name, *(h.rule(f"{name}-{i}.example", h.path("/", "echo")) for i in range(count)))


def _assert_fault_reported_and_last_config_serves(ctl: h.Controller, mark: int, reason: str) -> None:
    live = (ctl.state_dir / "nginx.conf").read_text()
    line = ctl.wait_log("nginx refused config", after=mark)
    assert f"cannot write the config to {ctl.state_dir}" in line, line
    assert reason in line, line
    h.wait_until(lambda: ctl.metric(h.LAST_RELOAD_OK) == 0, what="failure in metrics")
    assert ctl.backend("/", "a.example") == "echo"
    assert ctl.backend("/", "big-0.example") == 404
    assert (ctl.state_dir / "nginx.conf").read_text() == live
    assert ctl.healthz("/healthz")[0] == 200 and ctl.healthz("/readyz")[0] == 200
    assert ctl.process is not None and ctl.process.poll() is None


def test_file_size_limit(echo, folder):
    """EFBIG part-way through a file: a short write must be an error, not a truncated config."""
    _base(folder, echo)
    with h.running(folder) as ctl:
        assert ctl.backend("/", "a.example") == "echo"
        size = (ctl.state_dir / "nginx.conf").stat().st_size
        limits = resource.prlimit(ctl.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(ctl.pid, resource.RLIMIT_FSIZE, (size + 4096, limits[1]))
        mark = len(ctl.log())
        h.write_manifests(folder, "big.yaml", [_many_hosts("big", 100)])  # ~20 kB more
        _assert_fault_reported_and_last_config_serves(ctl, mark, "File too large")
        assert not list(ctl.state_dir.glob(".*.tmp")), "a partial temporary file was left behind"

        resource.prlimit(ctl.pid, resource.RLIMIT_FSIZE, limits)
        h.write_manifests(folder, "c.yaml", [h.ingress("c", h.rule("c.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "c.example")
        ctl.wait_backend("echo", "/", "big-0.example")  # (not at once: old workers accept for ~100 ms)


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A 256 kB tmpfs, or a skip where mounting is not allowed."""
    mountpoint = h.scratch_dir("tmpfs")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(directory: Path, leave: int) -> Path:
    """Fill the file system until about `leave` bytes are free; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 4096)
        out.truncate(max(0, out.tell() - leave))
    return filler


def test_state_dir_full(echo, folder, tmpfs):
    _base(folder, echo)
    state = tmpfs / "state"
    with h.running(folder, state_dir=state) as ctl:
        assert ctl.backend("/", "a.example") == "echo"
        filler = _fill(tmpfs, leave=8192)  # room for a little, not for the next config
        mark = len(ctl.log())
        h.write_manifests(folder, "big.yaml", [_many_hosts("big", 100)])
        _assert_fault_reported_and_last_config_serves(ctl, mark, "No space left on device")

        filler.unlink()
        h.write_manifests(folder, "c.yaml", [h.ingress("c", h.rule("c.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "c.example")
        ctl.wait_backend("echo", "/", "big-0.example")  # (not at once: old workers accept for ~100 ms)


def test_state_dir_read_only(echo, folder, tmpfs):
    _base(folder, echo)
    state = tmpfs / "state"
    with h.running(folder, state_dir=state) as ctl:
        assert ctl.backend("/", "a.example") == "echo"
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
        try:
            mark = len(ctl.log())
            h.write_manifests(folder, "big.yaml", [_many_hosts("big", 2)])
            _assert_fault_reported_and_last_config_serves(ctl, mark, "Read-only file system")
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
        h.write_manifests(folder, "c.yaml", [h.ingress("c", h.rule("c.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "c.example")
        ctl.wait_backend("echo", "/", "big-0.example")  # (not at once: old workers accept for ~100 ms)
