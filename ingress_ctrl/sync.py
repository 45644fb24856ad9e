"""The debounced loop: snapshot → translate → render → nginx, and the result to the reporters,
which run beside it (a slow API server delays no load).

Bursts of changes coalesce: a config is loaded after `debounce` seconds without a change, or
`max_delay` after the first one, whichever is sooner; while changes keep coming, nginx begins
at most one load per `max_delay`, and a burst's last change goes once none has come for
twice the burst's spacing. An identical render reloads nothing. A change that finds nothing in
flight is translated, rendered and checked while it settles, so that work adds
nothing to its way to nginx unless another change comes within `debounce` (then it is redone).

Two stages overlap: the next config is translated, rendered and checked (`nginx -t`) while the
previous one is being loaded by the master, and a check that a newer, settled change has made
moot is stopped rather than finished. At 1,000 Ingresses each nginx parse takes ~0.3 s here, so
this is what keeps the last change of a burst from waiting for two whole syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ingress_ctrl.metrics import Metrics
from ingress_ctrl.nginx import Candidate, NginxError, NginxProcess
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
    version: str            # of the rendered config (its text is in the file, not kept here)
    reloaded: bool          # a new config was loaded (False: identical to the live one, or failed)
    error: str | None       # why nginx refused it, if it did

    @property
    def live(self) -> bool:
        return self.error is None


Reporter = Callable[[SyncResult], Awaitable[None]]
_Step = tuple[Translation, Rendered, "Candidate | None", "str | None"]  # a checked config, or why it failed


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
        self._target: str | None = None    # the version live, or being made live
        self._loaded_at = float("-inf")     # (loop time) when the last load began
        self._loading = False               # nginx is loading a config (its report comes after)
        self.moot_unsettled = False         # the last check was made moot before its change settled
        self._unreported: list[SyncResult] = []  # for the reporters: failed results, then the newest
        self._report_wanted = asyncio.Event()

    async def run(self, sources_ready: Sequence[asyncio.Event]) -> None:
        for event in sources_ready:
            await event.wait()
        loop = asyncio.get_running_loop()
        built = -1                          # the store version of the newest config checked
        dirty_since = loop.time()           # when the oldest change not yet checked came
        retry_in = RETRY_MIN
        activation: asyncio.Task[None] | None = None
        moot_unsettled = False  # the last check was made moot by a change before its own settled
        reporting = asyncio.create_task(self._run_reporters())
        try:
            while True:
                # the change came while a config was checked or loaded (one that came before the
                # last change settled is part of it, as in any debounce)
                burst, moot_unsettled = not moot_unsettled, False
                settle_from: float | None = None
                if built == self.store.version:
                    if activation is not None and not activation.done():
                        # the next change may be checked while this config is being loaded
                        changed = asyncio.create_task(self.store.wait_changed(built))
                        try:
                            await asyncio.wait({changed, activation}, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            changed.cancel()
                        if built == self.store.version:
                            continue  # it is loaded (or refused): wait as usual
                        dirty_since = loop.time()
                        if self._loading:
                            await self._debounce(dirty_since + self.settings.sync.max_delay)
                        else:  # nginx has it; only its report is in flight: no burst
                            burst, settle_from = False, dirty_since
                    else:
                        burst = False  # nothing in flight: the change goes to nginx as soon as it settles
                        failed = self.last is not None and not self.last.live
                        try:  # a failed sync is retried with backoff: a busy port or a full disk may clear
                            await asyncio.wait_for(self.store.wait_changed(built), retry_in if failed else None)
                            dirty_since = settle_from = loop.time()  # it settles while it is checked
                        except asyncio.TimeoutError:
                            retry_in = min(retry_in * 2, RETRY_MAX)
                            dirty_since = loop.time()
                else:
                    # Changes came while the last config was checked or loaded (or before the last
                    # change settled): coalesce them with those still coming, as any other burst.
                    await self._debounce(dirty_since + self.settings.sync.max_delay)
                if burst:  # at most one load per max_delay: with quick checks (delta.py) a burst
                    # otherwise reloaded back to back, as often as a reload takes
                    await self._bound(self._loaded_at + self.settings.sync.max_delay)
                built = self.store.version
                step = await self._check(built, dirty_since, activation, settle_from)
                if step is None:
                    moot_unsettled = self.moot_unsettled
                    continue  # superseded while `nginx -t` ran: start again from the newer objects
                dirty_since = loop.time()
                if activation is not None:
                    await activation
                activation = self._start_activation(step)
                nothing_to_load, step = step[2] is None, None  # (the step holds the config's text)
                if nothing_to_load:
                    await activation  # identical, or refused: report it now
                if self.last is not None and self.last.live:
                    retry_in = RETRY_MIN
        finally:
            reporting.cancel()
            if activation is not None and not activation.done():
                activation.cancel()

    async def _debounce(self, deadline: float) -> None:
        """Until `debounce` seconds pass without a change, or `deadline`."""
        loop = asyncio.get_running_loop()
        while True:
            version = self.store.version
            quiet = min(self.settings.sync.debounce, deadline - loop.time())
            if quiet <= 0:
                return
            try:
                await asyncio.wait_for(self.store.wait_changed(version), quiet)
            except asyncio.TimeoutError:
                return

    async def _bound(self, until: float) -> None:
        """Until `until`, or until the burst is over: no change for twice the longest gap between
        its changes seen (at least `debounce`). A rollout's changes a few hundred ms apart still
        wait for the bound; a burst's last change is not held a whole `max_delay`."""
        gap = min(self.store.gap, self.settings.sync.max_delay)  # (the first change ever: no gap)
        while (remaining := until - time.monotonic()) > 0:
            quiet = max(self.settings.sync.debounce, 2 * gap) - (time.monotonic() - self.store.changed_at)
            if quiet <= 0:
                return
            version = self.store.version
            try:
                await asyncio.wait_for(self.store.wait_changed(version), min(quiet, remaining))
            except asyncio.TimeoutError:
                continue
            gap = max(gap, self.store.gap)

    async def _check(self, version: int, dirty_since: float, activation: asyncio.Task[None] | None,
                     settle_from: float | None = None) -> _Step | None:
        """translate, render and `nginx -t` the store at `version` (None: superseded).

        Runs while the previous config is still being activated, so its `nginx -t` overlaps the
        master's load. A newer change that has settled (`debounce` quiet) while `nginx -t` runs
        makes this check moot: it is stopped and the loop starts over, unless the oldest change
        has waited twice `max_delay` already (so changes keep reaching nginx). With `settle_from`
        (when the change came, not yet settled) any newer change before it has settled does too,
        at once, and `moot_unsettled` says so. Problems are logged once the config is not moot: a
        half-applied change (an Ingress before its Service) is not worth a warning.
        """
        self.moot_unsettled = False
        settles_at = float("-inf") if settle_from is None else settle_from + self.settings.sync.debounce
        unsettled: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # never done
        if settle_from is not None:
            unsettled = asyncio.ensure_future(self._change_before(version, settles_at))
        try:
            step = await self._build_and_check(version, dirty_since, activation, unsettled, settles_at)
        finally:
            unsettled.cancel()
        if step is not None:
            self._log_problems(step[0].problems)
        return step

    async def _build_and_check(self, version: int, dirty_since: float, activation: asyncio.Task[None] | None,
                               unsettled: asyncio.Future[None], settles_at: float) -> _Step | None:
        started = time.monotonic()
        translation, rendered = await asyncio.to_thread(build, self.store.snapshot(), self.settings)
        log.debug("config %s translated and rendered in %.3fs", rendered.version, time.monotonic() - started)
        if activation is not None and self._target == rendered.version:
            await asyncio.wait({activation})  # the same config is being loaded: see how that ends
        if self._target == rendered.version and self.nginx.alive:
            return translation, rendered, None, None  # identical to what is (being made) live
        loop = asyncio.get_running_loop()
        # Starting over is what gets a burst's last change live soonest, even when this check was
        # forced by max_delay; a bound (twice that) keeps changes spaced just over the debounce
        # from stopping every check forever.
        deadline = dirty_since + 2 * self.settings.sync.max_delay
        check = asyncio.create_task(self.nginx.check(rendered, translation.config.certificates))
        newer = asyncio.create_task(self._newer_change(version, deadline))
        try:
            await asyncio.wait({check, newer, unsettled}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (the controller stops): so is the check, which drops its candidate
            check.cancel()
            raise
        finally:
            newer.cancel()
        if not check.done() and (unsettled.done() or loop.time() < deadline):
            check.cancel()
            with contextlib.suppress(asyncio.CancelledError, NginxError):
                await check
            self.moot_unsettled = unsettled.done()
            log.debug("config %s superseded while nginx -t ran", rendered.version)
            return None
        try:
            step: _Step = translation, rendered, await check, None
        except NginxError as error:
            step = translation, rendered, None, str(error)
        moot = True  # (also when cancelled while it settles: nothing will load the candidate)
        try:
            await asyncio.wait({unsettled}, timeout=max(0.0, settles_at - loop.time()))
            moot = unsettled.done()
        finally:
            if moot and step[2] is not None:
                await self.nginx.discard(step[2])
        if moot:
            self.moot_unsettled = True
            log.debug("config %s superseded before its change settled", rendered.version)
            return None
        return step

    async def _change_before(self, version: int, until: float) -> None:
        """Returns if the store moves past `version` before `until`; never returns otherwise."""
        try:
            await asyncio.wait_for(self.store.wait_changed(version), until - asyncio.get_running_loop().time())
        except asyncio.TimeoutError:
            await asyncio.Event().wait()

    async def _newer_change(self, version: int, deadline: float) -> None:
        """Returns once a change after `version` has settled, if that happens before `deadline`."""
        await self.store.wait_changed(version)
        await self._debounce(deadline)
        if asyncio.get_running_loop().time() >= deadline:
            await asyncio.Event().wait()  # too late to start over: let the check finish

    def _start_activation(self, step: _Step) -> asyncio.Task[None]:
        """Activate `step` in a task; from now on its config is the one the next check compares to."""
        if step[2] is not None:
            self._target = step[1].version
            self._loaded_at = asyncio.get_running_loop().time()
        return asyncio.create_task(self._activate(*step))

    async def _activate(self, translation: Translation, rendered: Rendered, candidate: Candidate | None,
                        error: str | None) -> None:
        load_seconds: float | None = None
        if candidate is not None:
            self._loading = True
            try:
                load_seconds = await self.nginx.activate(candidate)
            except NginxError as failure:
                error = str(failure)
                self._target = self.nginx.live
            finally:
                self._loading = False
        if error is not None:
            log.error("nginx refused config %s; the last good config stays live: %s", rendered.version, error)
            self.metrics.reloaded(False, None)
        elif candidate is not None:
            log.info("config %s is live (%d Ingresses served, %d rejected)", rendered.version,
                     len(translation.served), len(translation.rejected))
            self.metrics.reloaded(True, rendered.version, load_seconds)
        result = SyncResult(translation, rendered.version, reloaded=candidate is not None and error is None, error=error)
        del rendered, candidate  # the config's text (4.9 MB at 10,000) need not wait for the reporters
        await self._report(result)

    async def sync_once(self) -> SyncResult:
        """One whole sync, now (no debounce, no pipelining): for tests and tools."""
        step = await self._check(self.store.version, asyncio.get_running_loop().time() - self.settings.sync.max_delay, None)
        assert step is not None
        await self._start_activation(step)
        await self._reports_due()
        assert self.last is not None
        return self.last

    async def _report(self, result: SyncResult) -> None:
        self.metrics.counted(len(result.translation.served), len(result.translation.rejected))
        self.last = result
        if result.live or self.nginx.live is not None:
            self.ready.set()
        if self.reporters:
            # A live result the reporters have not reached is superseded by this one (they compare
            # with what they reported before); a failed one is still told.
            self._unreported = [r for r in self._unreported if not r.live] + [result]
            self._report_wanted.set()

    async def _run_reporters(self) -> None:
        """The reporters, beside the data path: Events and statuses to a busy API server (10,000
        Events after start-up at 10,000 Ingresses: half a minute here) must not hold up the next load."""
        while True:
            await self._report_wanted.wait()
            await self._reports_due()

    async def _reports_due(self) -> None:
        self._report_wanted.clear()
        results, self._unreported = self._unreported, []
        for result in results:
            for reporter in self.reporters:
                try:
                    await reporter(result)
                except Exception:  # a reporter must never stop the data path
                    log.exception("reporter %r failed", reporter)

    def _log_problems(self, problems: Sequence[Problem]) -> None:
        """Each problem once, when it appears; not again on every sync."""
        current = set(problems)
        for problem in sorted(current - self._logged):
            log.warning("%s", problem)
        self._logged = current
