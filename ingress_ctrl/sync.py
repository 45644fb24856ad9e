"""The debounced loop: snapshot → translate → render → nginx, and the result to the reporters.

Bursts of changes coalesce: a sync starts after `debounce` seconds without a change, or
`max_delay` after the first one, whichever is sooner. An identical render reloads nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ingress_ctrl.metrics import Metrics
from ingress_ctrl.nginx import NginxError, NginxProcess
from ingress_ctrl.render import Rendered, render
from ingress_ctrl.settings import Settings
from ingress_ctrl.state import Store
from ingress_ctrl.translate import translate
from ingress_ctrl.translate.model import Problem, Translation

log = logging.getLogger(__name__)
RETRY_MIN, RETRY_MAX = 1.0, 60.0  # seconds between retries of a sync that failed


@dataclasses.dataclass(frozen=True)
class SyncResult:
    translation: Translation
    rendered: Rendered
    reloaded: bool          # a new config was loaded (False: identical to the live one, or failed)
    error: str | None       # why nginx refused it, if it did

    @property
    def live(self) -> bool:
        return self.error is None


Reporter = Callable[[SyncResult], Awaitable[None]]


def build(store_snapshot: object, settings: Settings) -> tuple[Translation, Rendered]:
    """The pure half of a sync, run off the event loop."""
    translation = translate(store_snapshot, settings.translate, datetime.datetime.now(datetime.timezone.utc))  # type: ignore[arg-type]
    return translation, render(translation.config, settings.nginx)


class SyncLoop:
    def __init__(self, store: Store, nginx: NginxProcess, settings: Settings, metrics: Metrics,
                 reporters: Sequence[Reporter] = ()) -> None:
        self.store = store
        self.nginx = nginx
        self.settings = settings
        self.metrics = metrics
        self.reporters = list(reporters)
        self.ready = asyncio.Event()   # the first config is live
        self.last: SyncResult | None = None
        self._logged: set[Problem] = set()

    async def run(self, sources_ready: Sequence[asyncio.Event]) -> None:
        for event in sources_ready:
            await event.wait()
        seen = -1
        retry_in = RETRY_MIN
        while True:
            if seen == self.store.version:
                failed = self.last is not None and not self.last.live
                try:  # a failed sync is retried with backoff: a busy port or a full disk may clear
                    await asyncio.wait_for(self.store.wait_changed(seen), retry_in if failed else None)
                    await self._debounce()
                except asyncio.TimeoutError:
                    retry_in = min(retry_in * 2, RETRY_MAX)
            seen = self.store.version
            if (await self.sync_once()).live:
                retry_in = RETRY_MIN

    async def _debounce(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.sync.max_delay
        while True:
            version = self.store.version
            quiet = min(self.settings.sync.debounce, deadline - loop.time())
            if quiet <= 0:
                return
            try:
                await asyncio.wait_for(self.store.wait_changed(version), quiet)
            except asyncio.TimeoutError:
                return

    async def sync_once(self) -> SyncResult:
        started = time.monotonic()
        translation, rendered = await asyncio.to_thread(build, self.store.snapshot(), self.settings)
        log.debug("config %s translated and rendered in %.3fs", rendered.version, time.monotonic() - started)
        self._log_problems(translation.problems)
        live = self.nginx.live
        if live is not None and live.version == rendered.version and self.nginx.alive:
            result = SyncResult(translation, rendered, reloaded=False, error=None)
        else:
            try:
                await self.nginx.apply(rendered, translation.config.certificates)
            except NginxError as error:
                log.error("nginx refused config %s; the last good config stays live: %s", rendered.version, error)
                self.metrics.reloaded(False, None)
                result = SyncResult(translation, rendered, reloaded=False, error=str(error))
            else:
                log.info("config %s is live (%d Ingresses served, %d rejected)", rendered.version,
                         len(translation.served), len(translation.rejected))
                self.metrics.reloaded(True, rendered.version)
                result = SyncResult(translation, rendered, reloaded=True, error=None)
        self.metrics.counted(len(translation.served), len(translation.rejected))
        self.last = result
        if result.live or self.nginx.live is not None:
            self.ready.set()
        for reporter in self.reporters:
            try:
                await reporter(result)
            except Exception:  # a reporter must never stop the data path
                log.exception("reporter %r failed", reporter)
        return result

    def _log_problems(self, problems: Sequence[Problem]) -> None:
        """Each problem once, when it appears; not again on every sync."""
        current = set(problems)
        for problem in sorted(current - self._logged):
            log.warning("%s", problem)
        self._logged = current
