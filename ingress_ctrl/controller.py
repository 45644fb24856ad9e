"""The long-running controller: sources, sync loop, nginx supervision and the healthz port.

The same for folder mode and Kubernetes mode: only the sources (and reporters) differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

from ingress_ctrl.metrics import Metrics
from ingress_ctrl.nginx import NginxProcess
from ingress_ctrl.settings import Settings
from ingress_ctrl.state import Store
from ingress_ctrl.sync import Reporter, SyncLoop
from ingress_ctrl.web import make_app

log = logging.getLogger(__name__)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def fix_mmap_threshold() -> bool:
    """Keep glibc serving blocks of 128 KiB and more by mmap, which returns them when freed.

    glibc raises that threshold to the size of each large block freed (up to 32 MiB): after the
    first LIST page or rendered config is freed, the next ones come from the heap, which keeps
    what it once held (11 MiB of the controller's RSS at 10,000 Ingresses). Setting it turns the
    raising off. Returns whether it was set (False without glibc, e.g. musl).
    """
    libc = _libc()
    try:
        return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except AttributeError:
        return False


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)` (None without glibc).

    glibc gives back to the OS only the free memory at the top of a heap; pages free in the
    middle, left by a burst of short-lived blocks between long-lived ones (the objects of a LIST
    page, Kopf's events, a sync's garbage), stay resident until malloc_trim releases them.
    """
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


TRIM_INTERVAL = 1.0  # seconds between two heap trims, at most


class Source(Protocol):
    ready: asyncio.Event  # set once everything that exists has been listed into the Store

    async def run(self, stop: asyncio.Event) -> None: ...


class Controller:
    def __init__(self, settings: Settings, store: Store, sources: Sequence[Source], reporters: Sequence[Reporter] = (),
                 metrics: Metrics | None = None, companions: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = ()) -> None:
        self.settings = settings
        self.store = store
        self.sources = list(sources)
        self.companions = list(companions)  # e.g. leader election: run beside, told to stop with the sources
        self.metrics = metrics or Metrics()
        self.nginx = NginxProcess(settings.nginx)
        self.sync = SyncLoop(store, self.nginx, settings, self.metrics, reporters)
        self.stop_requested = asyncio.Event()
        self._shutting_down = False

    def is_alive(self) -> bool:
        return self.nginx.alive or self.nginx.live is None

    def is_ready(self) -> bool:
        return self.sync.ready.is_set() and self.nginx.alive and not self._shutting_down

    async def run(self) -> int:
        fix_mmap_threshold()
        self._handle_signals()
        await self.nginx.prepare()
        runner = web.AppRunner(make_app(self.metrics, self.is_alive, self.is_ready), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.settings.healthz_address or None, self.settings.healthz_port).start()
        source_stop = asyncio.Event()
        tasks = [asyncio.create_task(source.run(source_stop), name=type(source).__name__) for source in self.sources]
        tasks += [asyncio.create_task(companion(source_stop), name="companion") for companion in self.companions]
        tasks.append(asyncio.create_task(self.sync.run([s.ready for s in self.sources]), name="sync"))
        tasks.append(asyncio.create_task(self._supervise(), name="nginx"))
        trim = heap_trimmer()
        if trim is not None:
            tasks.append(asyncio.create_task(self._trim_heap(trim), name="trim"))
        stop = asyncio.create_task(self.stop_requested.wait())
        done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stop]
        for task in failed:
            if not task.cancelled() and task.exception():
                log.error("%s stopped: %r", task.get_name(), task.exception())
        code = await self._shutdown(tasks, source_stop, runner)
        return 1 if failed else code

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)

    async def _supervise(self) -> None:
        restarts = self.nginx.restarts
        supervisor = asyncio.create_task(self.nginx.supervise())
        while not supervisor.done():
            await asyncio.sleep(0.2)
            if self.nginx.restarts != restarts:
                self.metrics.nginx_restarts.inc(self.nginx.restarts - restarts)
                restarts = self.nginx.restarts
        await supervisor

    async def _trim_heap(self, trim: Callable[[], object]) -> None:
        """Return freed heap pages to the OS after work: at most every TRIM_INTERVAL, and only when
        the Store or the last sync moved since the previous trim (nothing is freed while idle).
        In a thread: the call takes milliseconds on a large heap and releases the GIL."""
        version, last = -1, None
        while True:
            await asyncio.sleep(TRIM_INTERVAL)
            if self.store.version != version or self.sync.last is not last:
                version, last = self.store.version, self.sync.last
                await asyncio.to_thread(trim)

    async def _shutdown(self, tasks: list[asyncio.Task[None]], source_stop: asyncio.Event, runner: web.AppRunner) -> int:
        """Not ready at once; keep serving for the grace period; then nginx quits gracefully."""
        self._shutting_down = True
        log.info("shutting down: draining for %gs", self.settings.shutdown_grace_period)
        source_stop.set()
        await asyncio.sleep(self.settings.shutdown_grace_period)
        for task in tasks:
            if task.get_name() not in ("nginx", "companion") or task.done():
                task.cancel()
        companions = [t for t in tasks if t.get_name() == "companion"]
        if companions:  # let them finish their goodbyes (e.g. releasing the Lease)
            await asyncio.wait(companions, timeout=5)
        await self.nginx.stop(grace=30.0)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        return 0
