"""The sync loop's two stages: a check (`nginx -t`) that a newer change has made moot is stopped,
never loaded; and a checked candidate keeps its certificates while an earlier one is activated
(the next config is checked while the previous one loads). nginx is slowed through the
--nginx-binary seam: a wrapper whose `-t` logs its start and end and sleeps while a marker exists.
The orderings asserted here come from that log and the reload counter, not from timings."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ingress_ctrl.metrics import Metrics
from ingress_ctrl.nginx import NginxProcess
from ingress_ctrl.render import render
from ingress_ctrl.settings import NginxSettings, Settings, SyncSettings, TranslateSettings
from ingress_ctrl.state import Store
from ingress_ctrl.sync import SyncLoop, SyncResult
from ingress_ctrl.translate import translate
from tests.faults import harness as h
from tests.fuzz import certs


def slow_check_nginx(directory: Path, seconds: float) -> tuple[Path, Path, Path]:
    """(wrapper, marker, log): while `marker` exists, `-t` logs "start <args>", sleeps, logs "end <args>"."""
    marker, log = directory / "slow", directory / "checks.log"
    wrapper = directory / "nginx-wrapper"
    wrapper.write_text(f"""#!/bin/sh
for arg in "$@"; do
    if [ "$arg" = "-t" ] && [ -e {marker} ]; then
        echo "start $*" >> {log}
        sleep {seconds} </dev/null >/dev/null 2>&1  # (holding no pipe of ours: a stopped check ends at once)
        echo "end $*" >> {log}
    fi
done
exec {h.NGINX} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper, marker, log


def test_a_check_made_moot_by_a_newer_change_is_stopped_and_never_loaded(echo, folder):
    wrapper, slow, checks = slow_check_nginx(h.scratch_dir("seam"), 3)
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    with h.running(folder, nginx_binary=str(wrapper)) as ctl:
        reloads = ctl.metric(h.RELOADS_OK)
        slow.touch()
        h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
        h.wait_until(lambda: checks.exists() and "start" in checks.read_text(), what="nginx -t of the first change")
        h.write_manifests(folder, "b.yaml", [h.ingress("b", h.rule("b.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "b.example", timeout=30)  # (and the controller counted its load)
        assert ctl.backend("/", "a.example") == "echo"  # the stopped check's change is in the newer config

        lines = checks.read_text().splitlines()
        first = lines[0].split()[-1]  # the candidate's path, which names its config version
        assert lines[0].startswith("start ") and f"end {' '.join(lines[0].split()[1:])}" not in lines
        assert any(line.startswith("end ") and line.split()[-1] != first for line in lines)
        assert ctl.metric(h.RELOADS_OK) == reloads + 1  # one reload, for the newer config only
        assert not Path(first).exists()  # the stopped candidate's file is gone


def test_certificates_of_a_pending_candidate_survive_the_previous_activation(tmp_path):
    """Activating config A must not delete the certificate file that checked, not yet live, config B names."""
    async def scenario() -> None:
        settings = NginxSettings(http_port=h.free_port(), https_port=h.free_port(), listen_address="127.0.0.1",
                                 binary=h.NGINX, state_dir=tmp_path / "state", worker_shutdown_timeout="1s")
        nginx = NginxProcess(settings)
        await nginx.prepare()
        supervisor = asyncio.create_task(nginx.supervise())
        try:
            configs = []
            for host, key in (("a.example", "ec-p256"), ("b.example", "rsa-2048")):
                store = Store()
                for obj in [h.ingress_class(), *h.service("echo", 9), certs.tls_secret("tls", key),
                            {**h.ingress("i", h.rule(host, h.path("/", "echo"))),
                             "spec": {"ingressClassName": "nginx", "tls": [{"hosts": [host], "secretName": "tls"}],
                                      "rules": [h.rule(host, h.path("/", "echo"))]}}]:
                    store.put(obj)
                t = translate(store.snapshot(), TranslateSettings(), datetime.datetime.now(datetime.timezone.utc))
                configs.append((render(t.config, settings), tuple(t.config.certificates)))
            (a, a_certs), (b, b_certs) = configs
            assert a_certs and b_certs and a_certs[0].id != b_certs[0].id
            candidate_a = await nginx.check(a, a_certs)
            candidate_b = await nginx.check(b, b_certs)
            await nginx.activate(candidate_a)
            assert (settings.state_dir / "certs" / f"{b_certs[0].id}.pem").exists()
            await nginx.activate(candidate_b)
            assert nginx.live == b.version
            assert not (settings.state_dir / "certs" / f"{a_certs[0].id}.pem").exists()
        finally:
            await nginx.stop(2)
            supervisor.cancel()

    asyncio.run(scenario())


def test_a_burst_loads_at_most_one_config_per_max_delay(echo, folder):
    """Changes 60 ms apart for 2.4 s, each settling within the 20 ms debounce: without the bound every
    change could be loaded on its own as soon as the previous load ended (21 loads); with max delay
    1 s, at most one load begins per second of the burst (plus one for a boundary), and the last
    change goes live."""
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    with h.running(folder, args=["--sync-debounce", "0.02", "--sync-max-delay", "1"]) as ctl:
        h.write_manifests(folder, "burst.yaml", [h.ingress("burst", h.rule("burst.example", h.path("/start", "echo")))])
        ctl.wait_backend("echo", "/start", "burst.example")  # (and the controller counted its load)
        reloads = ctl.metric(h.RELOADS_OK)
        started = time.monotonic()
        for k in range(40):
            h.write_manifests(folder, "burst.yaml", [h.ingress("burst", h.rule("burst.example", h.path(f"/p{k}", "echo")))])
            time.sleep(0.06)
        ctl.wait_backend("echo", "/p39", "burst.example", timeout=10)
        seconds = time.monotonic() - started  # longer on a busy machine, and the bound with it
        assert ctl.metric(h.RELOADS_OK) - reloads <= math.ceil(seconds) + 1


def _candidates(state_dir: Path) -> set[str]:
    """Checked configs waiting beside the live one (nginx.conf.<version>)."""
    return {p.name for p in state_dir.glob("nginx.conf.*") if p.suffix not in (".good", ".delta")}


def test_a_change_is_checked_while_it_settles_and_one_within_the_debounce_joins_it(echo, folder):
    """With a 2 s debounce: a change's config is written and checked (its candidate is there) while
    the old config still answers; a second change before the first has settled makes that candidate
    moot: one load carries both, and the moot candidate's file is gone."""
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    with h.running(folder, args=["--sync-debounce", "2", "--sync-max-delay", "30"]) as ctl:
        reloads = ctl.metric(h.RELOADS_OK)
        h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
        h.wait_until(lambda: _candidates(ctl.state_dir), what="the first change's candidate, checked")
        assert ctl.backend("/", "a.example") == 404  # checked, not loaded: the change has not settled
        [moot] = _candidates(ctl.state_dir)
        h.write_manifests(folder, "b.yaml", [h.ingress("b", h.rule("b.example", h.path("/", "echo")))])
        ctl.wait_backend("echo", "/", "b.example", timeout=30)  # (and the controller counted its load)
        assert ctl.backend("/", "a.example") == "echo"
        assert ctl.metric(h.RELOADS_OK) == reloads + 1
        assert moot not in _candidates(ctl.state_dir) and not _candidates(ctl.state_dir)


def test_a_slow_reporter_holds_up_no_load(tmp_path):
    """The reporters run beside the loop: while the first config's report still runs (Events and
    statuses to a busy API server; 30 s here), a change is checked and loaded at once. It waits
    neither for that report nor for the load bound (max_delay 600 s), which is for changes that
    come while nginx loads."""
    async def scenario() -> None:
        reporting = asyncio.Event()

        async def slow_reporter(result: SyncResult) -> None:
            reporting.set()
            await asyncio.sleep(30)

        objects = [h.ingress_class(), *h.service("echo", 9), h.ingress("a", h.rule("a.example", h.path("/", "echo")))]
        async with _sync_running(tmp_path / "state", objects, sync_settings=SyncSettings(debounce=0.05, max_delay=600),
                                 reporters=(slow_reporter,)) as (store, nginx, _, _):
            await asyncio.wait_for(reporting.wait(), 30)  # the first config is live, its report runs
            first = nginx.live
            await asyncio.sleep(1)
            store.put(h.ingress("b", h.rule("b.example", h.path("/", "echo"))))
            put = time.monotonic()
            await asyncio.wait_for(_until(lambda: nginx.live not in (None, first)), 40)
            assert time.monotonic() - put < 3  # a check and a load; the report has 29 s to go

    asyncio.run(scenario())


def test_busy_reporters_get_the_newest_result_and_every_failed_one(tmp_path):
    """While the reporters are busy, results wait for them: a live one is superseded by the next (the
    reporters compare with what they told before, so the newest says it all), a failed one is kept
    (its ReloadFailed Event is told)."""
    async def scenario() -> None:
        wrapper, refuse = h.refusing_nginx(tmp_path)
        release, seen = asyncio.Event(), []

        async def held_reporter(result: SyncResult) -> None:
            seen.append(result)
            await release.wait()

        objects = [h.ingress_class(), *h.service("echo", 9)]
        async with _sync_running(tmp_path / "state", objects, binary=str(wrapper), sync_settings=SyncSettings(debounce=0.05),
                                 reporters=(held_reporter,)) as (store, _, sync, _):
            await asyncio.wait_for(_until(lambda: len(seen) == 1), 30)  # the first config's report, held
            for k, refused in ((1, False), (2, True), (3, False), (4, False)):
                if refused:
                    refuse.touch()
                else:
                    refuse.unlink(missing_ok=True)
                before = sync.last
                store.put(h.ingress(f"i{k}", h.rule(f"i{k}.example", h.path("/", "echo"))))
                await asyncio.wait_for(_until(lambda: sync.last is not before), 30)
                assert sync.last is not None and sync.last.live != refused
            newest = sync.last
            release.set()
            await asyncio.wait_for(_until(lambda: len(seen) == 3), 10)
            await asyncio.sleep(0.5)  # and no more
            assert [r.live for r in seen] == [True, False, True]
            assert seen[2] is newest  # the 1st and 3rd changes' live results were superseded

    asyncio.run(scenario())


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _sync_running(state_dir: Path, objects: list[dict], binary: str = h.NGINX,
                        sync_settings: SyncSettings = SyncSettings(),
                        reporters: tuple = ()) -> AsyncIterator[tuple[Store, NginxProcess, SyncLoop, asyncio.Task[None]]]:
    """A Store with `objects`, a supervised nginx on loopback ports and a SyncLoop running over them
    (its task the last of the four); all stopped on leaving."""
    nginx_settings = NginxSettings(http_port=h.free_port(), https_port=h.free_port(), listen_address="127.0.0.1",
                                   binary=binary, state_dir=state_dir, worker_shutdown_timeout="1s")
    store = Store()
    for obj in objects:
        store.put(obj)
    nginx = NginxProcess(nginx_settings)
    await nginx.prepare()
    supervisor = asyncio.create_task(nginx.supervise())
    sync = SyncLoop(store, nginx, Settings(nginx=nginx_settings, sync=sync_settings), Metrics(), list(reporters))
    loop_task = asyncio.create_task(sync.run([]))
    try:
        yield store, nginx, sync, loop_task
    finally:
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task
        await nginx.stop(2)
        supervisor.cancel()


def test_the_load_bound_holds_while_changes_come_and_ends_with_the_burst(tmp_path):
    """At the default settings (debounce 0.1 s, max_delay 1 s), `_bound` — the wait that spaces loads
    while changes keep coming — waits through changes 0.3 s and 0.5 s apart (a rollout's endpoint
    updates: each settles within the debounce, none may cut the bound short), and once such a burst
    is over it returns after twice its spacing, not at a bound far away. The lower bounds on the
    elapsed time are what a sleep guarantees; the upper one has a wide margin."""
    async def scenario(spacing: float) -> None:
        store = Store()
        settings = Settings(nginx=NginxSettings(state_dir=tmp_path))
        sync = SyncLoop(store, NginxProcess(settings.nginx), settings, Metrics())

        async def rollout(changes: int) -> None:
            for k in range(changes):
                store.put(h.ingress(f"i{k}-{changes}", h.rule("a.example", h.path("/", "echo"))))
                await asyncio.sleep(spacing)

        await rollout(2)  # the burst has begun (the loop enters the bound after a change)
        changes = asyncio.create_task(rollout(6))
        started = time.monotonic()
        await sync._bound(started + 1.0)  # a load began just now: the next may begin in 1 s
        assert time.monotonic() - started >= 1.0 and not changes.done()  # held to the bound
        await changes
        last = time.monotonic() - spacing
        started = time.monotonic()
        await sync._bound(started + 60)  # a bound far away: the burst is over
        assert time.monotonic() - last >= 2 * spacing - 0.01 and time.monotonic() - started < 20

    asyncio.run(scenario(0.3))
    asyncio.run(scenario(0.5))


def test_a_change_before_the_last_one_settled_stops_its_check_at_once(echo, folder):
    """With a 3 s debounce and a 5 s `nginx -t`: the first change is checked while it settles; a
    second before it settled makes that check moot, and it is stopped, not finished and thrown
    away (its `nginx -t` never logs its end)."""
    wrapper, slow, checks = slow_check_nginx(h.scratch_dir("seam"), 5)
    h.write_manifests(folder, "base.yaml", [h.ingress_class(), *h.service("echo", echo.port)])
    with h.running(folder, nginx_binary=str(wrapper), args=["--sync-debounce", "3"]) as ctl:
        slow.touch()
        h.write_manifests(folder, "a.yaml", [h.ingress("a", h.rule("a.example", h.path("/", "echo")))])
        h.wait_until(lambda: checks.exists() and "start" in checks.read_text(), what="nginx -t of the first change")
        h.write_manifests(folder, "b.yaml", [h.ingress("b", h.rule("b.example", h.path("/", "echo")))])
        slow.unlink()
        ctl.wait_backend("echo", "/", "b.example", timeout=30)
        first = checks.read_text().splitlines()[0]
        assert first.startswith("start ") and f"end {first[len('start '):]}" not in checks.read_text().splitlines()


def test_a_change_after_the_last_one_settled_leaves_its_checked_config_to_be_loaded(tmp_path):
    """The first change came 10 s ago (settled); a newer one since does not make its checked config
    moot: that config is loaded, and the newer change follows (it used to be thrown away)."""
    async def scenario() -> None:
        settings = Settings(nginx=NginxSettings(binary=h.NGINX, state_dir=tmp_path / "state"), sync=SyncSettings(debounce=2))
        store = Store()
        for obj in [h.ingress_class(), *h.service("echo", 9), h.ingress("a", h.rule("a.example", h.path("/", "echo")))]:
            store.put(obj)
        nginx = NginxProcess(settings.nginx)
        await nginx.prepare()
        sync = SyncLoop(store, nginx, settings, Metrics())
        version, came = store.version, asyncio.get_running_loop().time() - 10
        store.put(h.ingress("b", h.rule("b.example", h.path("/", "echo"))))
        step = await sync._check(version, came, None, settle_from=came)
        assert step is not None and step[2] is not None and not sync.moot_unsettled
        await nginx.discard(step[2])

    asyncio.run(scenario())


def test_a_half_applied_change_is_not_warned_about(tmp_path, caplog):
    """An Ingress and, 20 ms later, its Service (as a `kubectl apply` arrives): the config built for
    the Ingress alone is moot before it settles, and its "Service not found" is never logged."""
    async def scenario() -> None:
        async with _sync_running(tmp_path / "state", [h.ingress_class()]) as (store, _, sync, _):
            await asyncio.wait_for(sync.ready.wait(), 30)
            store.put(h.ingress("app", h.rule("app.example", h.path("/", "echo"))))
            await asyncio.sleep(0.02)
            for obj in h.service("echo", 9):
                store.put(obj)
            await asyncio.wait_for(_until(lambda: sync.last is not None and any(k.name == "app" for k in sync.last.translation.served)), 30)

    with caplog.at_level("WARNING", logger="ingress_ctrl.sync"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "not found" in r.getMessage()]


def test_a_loop_stopped_while_it_checks_leaves_no_candidate_behind(tmp_path):
    """The controller stops (its sync loop is cancelled) while `nginx -t` of a change runs: the check
    is stopped with it, and its candidate's file and certificates are not kept for a load that
    will never come."""
    async def scenario() -> None:
        wrapper, slow, checks = slow_check_nginx(tmp_path, 30)
        state_dir = tmp_path / "state"
        async with _sync_running(state_dir, [h.ingress_class(), *h.service("echo", 9)], binary=str(wrapper)) as (store, nginx, sync, loop_task):
            await asyncio.wait_for(sync.ready.wait(), 30)
            slow.touch()
            store.put(h.ingress("a", h.rule("a.example", h.path("/", "echo"))))
            await asyncio.wait_for(_until(lambda: checks.exists() and "start" in checks.read_text()), 30)
            assert _candidates(state_dir) and nginx._pending
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
            await asyncio.wait_for(_until(lambda: not _candidates(state_dir)), 5)
            assert not nginx._pending

    asyncio.run(scenario())
