"""The one writer of nginx state: write, `nginx -t`, swap, reload, confirm, restart, stop.

nginx runs as our child in its own process group, so a crashed master's orphaned workers can be
cleared before it is started again. A config is swapped in only after `nginx -t` accepts it (the
blocks a change made, see `delta`, or the whole file), and a reload counts only once the new
config version answers on the status socket; a reload the master refuses is noticed in its error
log at once, and the last good file is put back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import aiohttp

from ingress_ctrl.delta import Delta, Layout, layout_and_delta
from ingress_ctrl.render import CONFIG_VERSION_PATH, EMERGENCY_SOCKET, STATUS_SOCKET, Rendered
from ingress_ctrl.settings import NginxSettings
from ingress_ctrl.translate.model import Certificate

log = logging.getLogger(__name__)
DEFAULT_CERTIFICATE = "default.pem"  # in certs/: the self-signed one made at start


class NginxError(Exception):
    """nginx refused a config, or did not start or reload; the message says what nginx said."""


class _Refused(NginxError):
    """The running master refused to load a config (and still serves the one it had)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Candidate:
    """A config written beside the live one that `nginx -t` accepted (or is checking)."""

    rendered: Rendered
    path: Path
    certificates: frozenset[str]   # ids of the certificate files it names
    clock: _Phases
    layout: Layout                 # what the master's blocks will be once it is live
    checked: str                   # what `nginx -t` read: "whole", or "k of n blocks"
    refusals: int                  # loads refused before it was checked


class NginxProcess:
    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir
        self.config_path = self.state_dir / "nginx.conf"
        self.certs_dir = self.state_dir / "certs"
        self._process: asyncio.subprocess.Process | None = None
        self._live: str | None = None            # the version of the config nginx serves
        self._stopping = False
        self._restarts = 0
        self._pending: list[frozenset[str]] = []  # certificates of candidates not yet live or dropped
        self._live_certificates: frozenset[str] = frozenset()
        self._live_layout: Layout | None = None   # None: the next check reads the whole file
        self._refusals = 0                        # loads that failed, so far
        self._emergencies: _EmergencyLines | None = None
        self._activation = asyncio.Lock()
        self.exited = asyncio.Event()  # set whenever the master is found dead

    @property
    def live(self) -> str | None:
        """The version of the config nginx is serving now (confirmed), if any. Its text is only on
        disk: at 10,000 Ingresses a copy in memory would be 8 MB of the controller's RSS."""
        return self._live

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def restarts(self) -> int:
        return self._restarts

    async def prepare(self) -> None:
        """Create the state directory and the self-signed default certificate."""
        await asyncio.to_thread(self._prepare_files)

    def _prepare_files(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _chmod(self.state_dir, 0o711)  # workers may need to reach tmp/; nothing here is listable
        self.certs_dir.mkdir(exist_ok=True)
        os.chmod(self.certs_dir, 0o700)
        (self.state_dir / "tmp").mkdir(exist_ok=True)
        _chmod(self.state_dir / "tmp", 0o755)
        default = self.certs_dir / DEFAULT_CERTIFICATE
        if not default.exists():
            _write_private(default, self_signed_pem())

    async def apply(self, rendered: Rendered, certificates: Iterable[Certificate]) -> None:
        """Make `rendered` the live config, or raise NginxError leaving the last good one live."""
        await self.activate(await self.check(rendered, certificates))

    async def check(self, rendered: Rendered, certificates: Iterable[Certificate]) -> Candidate:
        """Write `rendered` (and its certificates) beside the live config and `nginx -t` it.

        May run while an earlier candidate is being activated: each candidate has its own file,
        and its certificates are kept until it is live or dropped. Cancelling it stops `nginx -t`.
        """
        certificates = tuple(certificates)
        ids = frozenset(c.id for c in certificates)
        path = self.state_dir / f"nginx.conf.{rendered.version}"
        delta_path = path.with_name(f"{path.name}.delta")
        clock = _Phases(rendered.version)
        self._pending.append(ids)
        try:
            base = self._live_layout if self.settings.config_check == "changed" and self.alive else None
            try:
                layout, delta = await asyncio.to_thread(self._write_candidate, path, delta_path, rendered, certificates, base)
            except OSError as error:
                raise NginxError(f"cannot write the config to {self.state_dir}: {error}") from None
            candidate = Candidate(rendered, path, ids, clock, layout,
                                  f"{delta.blocks} of {delta.of} blocks" if delta else "whole", self._refusals)
            candidate.clock("written")
            await self.test(delta_path if delta else path)
            candidate.clock(f"tested ({candidate.checked})")
        except BaseException:
            self._pending.remove(ids)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise
        finally:
            with contextlib.suppress(OSError):
                delta_path.unlink(missing_ok=True)
        return candidate

    async def discard(self, candidate: Candidate) -> None:
        """Drop a checked candidate that will not be activated (a newer one takes its place), and
        the certificate files only it named."""
        self._pending.remove(candidate.certificates)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(candidate.path.unlink, True)
        await asyncio.to_thread(self._collect_certificates)

    async def activate(self, candidate: Candidate) -> float:
        """Swap a checked candidate in, reload, and wait until it answers and the old workers left;
        on failure the last good config is back on disk and live, and NginxError says why.
        Returns nginx's part: seconds from the signal (or the start) until the new version answered."""
        async with self._activation:
            try:
                load_seconds = await self._activate(candidate)
            finally:
                self._pending.remove(candidate.certificates)
            await asyncio.to_thread(self._collect_certificates)
        return load_seconds

    async def _activate(self, candidate: Candidate) -> float:
        good = self.state_dir / "nginx.conf.good"   # the live config, kept to go back to
        if candidate.checked != "whole" and (not self.alive or candidate.refusals != self._refusals):
            # its blocks were checked against a config nginx will not build on: a master to be
            # started afresh, or a load refused since (which this candidate may well repeat)
            await self.test(candidate.path)
            candidate.clock("tested (whole)")
        try:
            await asyncio.to_thread(self._swap, candidate.path, good)
        except OSError as error:
            raise NginxError(f"cannot swap in the config in {self.state_dir}: {error}") from None
        clock = candidate.clock
        try:
            if self.alive:
                serving = await asyncio.to_thread(self._workers)
                since = self._emergencies.seen if self._emergencies else None
                loading = time.monotonic()
                self._signal(signal.SIGHUP)
            else:
                serving, since = set(), None
                loading = time.monotonic()
                await self._start()
            clock("signalled")
            await self._confirm(candidate.rendered.version, since)
            load_seconds = time.monotonic() - loading
            clock("answering")
            await self._retired(serving)
            clock("old workers retired")
        except NginxError as error:
            self._live_layout = None  # check the whole file next time: it tells what the master saw
            self._refusals += 1
            if self._live is not None:  # never leave a config on disk that nginx would not load
                await asyncio.to_thread(os.replace, good, self.config_path)
                if self.alive and not isinstance(error, _Refused):  # a refusing master kept its config
                    self._signal(signal.SIGHUP)
            raise
        with contextlib.suppress(OSError):
            good.unlink()
        self._live = candidate.rendered.version
        self._live_certificates = candidate.certificates
        self._live_layout = candidate.layout
        return load_seconds

    async def test(self, path: Path) -> None:
        """`nginx -t` on `path`; raises NginxError with nginx's own words."""
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command("-t", "-q", "-c", str(path)),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise NginxError(f"cannot run {self.settings.binary}: {error}") from None
        try:
            _, stderr = await process.communicate()
        except asyncio.CancelledError:  # superseded by a newer config: stop spending a core on it
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise NginxError(_tidy(stderr) or f"nginx -t exited {process.returncode}")

    async def supervise(self) -> None:
        """Restart nginx whenever it dies, with the last config it accepted."""
        while True:
            if self._process is None:
                await asyncio.sleep(0.05)
                continue
            await self._process.wait()
            self.exited.set()
            if self._stopping:
                return
            log.error("nginx master exited with %s; restarting it", self._process.returncode)
            self._kill_group(signal.SIGKILL)
            await self._group_gone()  # orphaned workers still hold the listening sockets
            self._restarts += 1
            try:
                await self._start()
                if self._live:
                    await self._confirm(self._live)
            except NginxError as error:
                log.error("nginx restart failed: %s", error)
                await asyncio.sleep(1)

    async def stop(self, grace: float) -> None:
        """Graceful quit (in-flight requests finish), then force after `grace` seconds."""
        self._stopping = True
        if self._emergencies is not None:
            self._emergencies.close()
        if not self.alive:
            return
        self._signal(signal.SIGQUIT)
        try:
            await asyncio.wait_for(self._process.wait(), grace)  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            self._kill_group(signal.SIGKILL)
            await self._process.wait()  # type: ignore[union-attr]
        self._kill_group(signal.SIGKILL)  # workers that outlived their master

    async def live_version(self) -> str | None:
        """What the running nginx says its config version is (via the status socket)."""
        connector = aiohttp.UnixConnector(path=str(self.state_dir / STATUS_SOCKET))
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=1)) as session:
                async with session.get(f"http://nginx{CONFIG_VERSION_PATH}") as response:
                    return (await response.text()).strip() if response.status == 200 else None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return None

    def _command(self, *args: str) -> list[str]:
        return [self.settings.binary, "-p", str(self.state_dir), "-e", "stderr", *args]

    async def _start(self) -> None:
        # A master that died without cleaning up (SIGKILL, OOM) leaves its unix socket behind, and
        # nginx will not bind over it ("Address already in use"); no nginx of ours is running now.
        with contextlib.suppress(OSError):
            (self.state_dir / STATUS_SOCKET).unlink(missing_ok=True)
        if self._emergencies is None:
            try:
                self._emergencies = await _EmergencyLines.listen(self.state_dir / EMERGENCY_SOCKET)
            except OSError as error:  # a refused reload then shows as a timeout instead
                log.warning("cannot listen for nginx's emergency lines on %s: %s", self.state_dir / EMERGENCY_SOCKET, error)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._command("-c", str(self.config_path), "-g", "daemon off; master_process on;"),
                start_new_session=True,
            )
        except OSError as error:
            raise NginxError(f"cannot run {self.settings.binary}: {error}") from None
        self.exited.clear()

    async def _confirm(self, version: str, since: int | None = None) -> None:
        """Until `version` answers; raises NginxError if nginx exits, or if the master logs a
        refusal (an emergency line of its own, after the first `since` lines)."""
        deadline = asyncio.get_running_loop().time() + self.settings.confirm_timeout
        while asyncio.get_running_loop().time() < deadline:
            if not self.alive:
                raise NginxError(f"nginx exited with {self._process.returncode if self._process else '?'} while loading the config")
            if await self.live_version() == version:
                return
            if since is not None and self._emergencies and self._process:
                refusal = self._emergencies.first_of(self._process.pid, since)
                if refusal:
                    raise _Refused(f"the nginx master refused the config: {refusal}")
            await asyncio.sleep(0.02)
        raise NginxError(f"nginx did not serve config version {version} within {self.settings.confirm_timeout:g}s")

    async def _retired(self, workers: set[int]) -> None:
        """Wait until the workers of the old config stop accepting connections.

        On SIGHUP the master starts the new workers, and only about 100 ms later tells the old
        ones to quit; until then both accept, so the new version answering is not yet "live".
        An old worker retitles itself "... is shutting down" as it closes its listening sockets.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.confirm_timeout
        while workers and asyncio.get_running_loop().time() < deadline:
            titles = await asyncio.to_thread(_titles, workers)
            workers = {pid for pid, title in titles.items() if title.endswith("worker process")}
            if workers:
                await asyncio.sleep(0.01)

    def _workers(self) -> set[int]:
        """The master's worker processes (from /proc; none where there is no /proc)."""
        if self._process is None:
            return set()
        master = str(self._process.pid).encode()
        found = set()
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with contextlib.suppress(OSError, IndexError):
                        with open(f"/proc/{entry}/stat", "rb") as stat:
                            if stat.read().rsplit(b")", 1)[1].split()[1] == master:
                                found.add(int(entry))
        return found

    def _signal(self, sig: int) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(sig)

    async def _group_gone(self, timeout: float = 1.0) -> None:
        """Wait (briefly) until no process of nginx's group is running; zombies hold no sockets,
        and may never be reaped when we are PID 1, so they do not count."""
        if self._process is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while _group_running(self._process.pid) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    def _kill_group(self, sig: int) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, sig)

    def _write_files(self, candidate: Path, text: str, certificates: Iterable[Certificate]) -> None:
        for certificate in certificates:
            path = self.certs_dir / f"{certificate.id}.pem"
            if not path.exists():
                _write_private(path, certificate.pem)
        _write_private(candidate, text.encode())

    def _write_candidate(self, path: Path, delta_path: Path, rendered: Rendered, certificates: tuple[Certificate, ...],
                         live: Layout | None) -> tuple[Layout, Delta | None]:
        """Write the certificates, the candidate, and (if only part of it needs checking) its delta."""
        self._write_files(path, rendered.text, certificates)
        layout, delta = layout_and_delta(rendered.text, rendered.version, live)
        if delta is not None:
            _write_private(delta_path, delta.text.encode())
        return layout, delta

    def _swap(self, candidate: Path, good: Path) -> None:
        """Keep a hard link to the live config (if any), then move the candidate in its place."""
        with contextlib.suppress(FileNotFoundError):
            good.unlink()
        with contextlib.suppress(FileNotFoundError):
            os.link(self.config_path, good)
        os.replace(candidate, self.config_path)

    def _collect_certificates(self) -> None:
        """Remove the certificate files that neither the live config nor a pending candidate uses."""
        keep = self._live_certificates.union(*self._pending)
        for path in self.certs_dir.glob("*.pem"):
            if path.stem not in keep and path.name != DEFAULT_CERTIFICATE:
                path.unlink(missing_ok=True)


class _Phases:
    """Debug log of how long each step of a reload took (`--log-level DEBUG`)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        log.debug("config %s %s after %.3fs", self.version, phase, now - self.last)
        self.last = now


def live_processes() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, /proc/PID/stat fields after the command name) of every live, not zombie, process."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
            yield int(name), fields


def _group_running(pgid: int) -> bool:
    """Whether a live (not zombie) process of the group is left (False without /proc)."""
    return any(fields[2] == str(pgid).encode() for _, fields in live_processes())


def _titles(pids: Iterable[int]) -> dict[int, str]:
    """The process titles of those of `pids` that still exist ("" for a zombie)."""
    titles = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                titles[pid] = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return titles


def _chmod(path: Path, mode: int) -> None:
    """Best effort: a mounted volume's root may belong to someone else (e.g. root for an emptyDir)."""
    with contextlib.suppress(PermissionError):
        os.chmod(path, mode)


def _write_private(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, mode 0600, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:  # a full disk or a file-size limit first shortens a write, then fails the next
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.close(fd)
    os.replace(temporary, path)


class _EmergencyLines(asyncio.DatagramProtocol):
    """nginx's emergency lines, sent to us as syslog datagrams (`error_log syslog:… emerg`).

    A reload the master refuses is told only in its log; this is how the controller hears it at
    once instead of waiting `confirm_timeout` for a version that will not come. Datagrams never
    block nginx, whether or not anyone reads them.
    """

    KEEP = 100

    def __init__(self) -> None:
        self.seen = 0                       # lines received so far
        self.lines: collections.deque[str] = collections.deque(maxlen=self.KEEP)  # the last of them
        self.transport: asyncio.BaseTransport | None = None

    @classmethod
    async def listen(cls, path: Path) -> _EmergencyLines:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(cls, sock=sock)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.seen += 1
        self.lines.append(data.decode(errors="replace"))

    def first_of(self, pid: int, since: int) -> str | None:
        """The first line from process `pid` among those received after the first `since`."""
        new = list(self.lines)[len(self.lines) - min(self.seen - since, len(self.lines)):]
        mark = f"] {pid}#"
        return next((line.split(": ", 2)[-1] for line in new if mark in line), None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _tidy(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return "; ".join(line for line in lines if "test failed" not in line)[:2000]


def self_signed_pem() -> bytes:
    """A throwaway certificate and key for hosts without their own, like ingress-nginx's fake one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ingress-ctrl default certificate")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
