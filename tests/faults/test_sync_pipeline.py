"""The sync loop's two stages: a check (`nginx -t`) that a newer change has made moot is stopped,
never loaded; and a checked candidate keeps its certificates while an earlier one is activated
(the next config is checked while the previous one loads). nginx is slowed through the
--nginx-binary seam: a wrapper whose `-t` logs its start and end and sleeps while a marker exists.
The orderings asserted here come from that log and the reload counter, not from timings."""

from __future__ import annotations

import asyncio
import datetime
import math
import time
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
        sleep {seconds}
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
        ctl.wait_backend("echo", "/", "b.example", timeout=30)
        assert ctl.backend("/", "a.example") == "echo"  # the stopped check's change is in the newer config

        lines = checks.read_text().splitlines()
        first = lines[0].split()[-1]  # the candidate's path, which names its config version
        assert lines[0].startswith("start ") and f"end {' '.join(lines[0].split()[1:])}" not in lines
        assert any(line.startswith("end ") and line.split()[-1] != first for line in lines)
        h.wait_until(lambda: ctl.metric(h.RELOADS_OK) > reloads, what="the reload counted")
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
        ctl.wait_backend("echo", "/start", "burst.example")
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
        ctl.wait_backend("echo", "/", "b.example", timeout=30)
        assert ctl.backend("/", "a.example") == "echo"
        h.wait_until(lambda: ctl.metric(h.RELOADS_OK) > reloads, what="the reload counted")
        assert ctl.metric(h.RELOADS_OK) == reloads + 1
        assert moot not in _candidates(ctl.state_dir) and not _candidates(ctl.state_dir)


def test_a_change_during_the_last_configs_report_is_not_held_to_the_load_bound(tmp_path):
    """The load bound (one per max_delay) is for changes that come while nginx loads. A change that
    comes while only the live config's report runs (a reporter can be slow: Events and statuses to
    a busy API server) is loaded once that report is done, not max_delay (60 s here) after the load."""
    async def scenario() -> None:
        nginx_settings = NginxSettings(http_port=h.free_port(), https_port=h.free_port(), listen_address="127.0.0.1",
                                       binary=h.NGINX, state_dir=tmp_path / "state", worker_shutdown_timeout="1s")
        settings = Settings(nginx=nginx_settings, sync=SyncSettings(debounce=0.05, max_delay=60))
        reporting = asyncio.Event()

        async def slow_reporter(result: SyncResult) -> None:
            reporting.set()
            await asyncio.sleep(1)

        store = Store()
        for obj in [h.ingress_class(), *h.service("echo", 9), h.ingress("a", h.rule("a.example", h.path("/", "echo")))]:
            store.put(obj)
        nginx = NginxProcess(nginx_settings)
        await nginx.prepare()
        supervisor = asyncio.create_task(nginx.supervise())
        sync = SyncLoop(store, nginx, settings, Metrics(), [slow_reporter])
        loop_task = asyncio.create_task(sync.run([]))
        try:
            await asyncio.wait_for(reporting.wait(), 30)  # the first config is live, its report runs
            first = nginx.live
            store.put(h.ingress("b", h.rule("b.example", h.path("/", "echo"))))
            await asyncio.wait_for(_until(lambda: nginx.live not in (None, first)), 20)  # well before 60 s
        finally:
            loop_task.cancel()
            await nginx.stop(2)
            supervisor.cancel()

    asyncio.run(scenario())


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def test_the_load_bound_holds_while_changes_come_and_ends_with_the_burst(tmp_path):
    """`_bound` (one load per max_delay, 4 s here) waits through changes 0.3 s apart, which each settle
    within the debounce (a rollout's endpoint updates), and returns once none came for a quarter of
    max_delay (1 s), long before the bound: the burst's last change is not held for it."""
    async def scenario() -> None:
        store = Store()
        settings = Settings(nginx=NginxSettings(state_dir=tmp_path), sync=SyncSettings(debounce=0.05, max_delay=4))
        sync = SyncLoop(store, NginxProcess(settings.nginx), settings, Metrics())
        loop = asyncio.get_running_loop()

        async def rollout() -> None:
            for k in range(8):
                store.put(h.ingress(f"i{k}", h.rule("a.example", h.path("/", "echo"))))
                await asyncio.sleep(0.3)

        changes = asyncio.create_task(rollout())
        started = loop.time()
        await sync._bound(started + 60)
        assert changes.done() and store.version == 8  # it waited through the whole rollout
        assert loop.time() - started < 30  # and returned after it, not at the bound

    asyncio.run(scenario())
