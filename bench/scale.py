"""Scale: translate, render, config bytes, `nginx -t`, reload-to-live (ours and the naive sequence),
nginx RSS, for N Ingresses. In-process for our own costs; real nginx for the rest."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import naive, objects, procs
from ingress_ctrl import render as render_module
from ingress_ctrl.nginx import NginxProcess, self_signed_pem
from ingress_ctrl.render import Rendered, render
from ingress_ctrl.settings import NginxSettings, TranslateSettings
from ingress_ctrl.state import Store
from ingress_ctrl.translate import core, tls, translate
from ingress_ctrl.translate.model import Translation

SETTINGS = TranslateSettings()


def forget_caches() -> None:
    """Make the next translate and render cold: no memo, no cached server block, no parsed PEM."""
    for memo in core.MEMOS:
        memo.new_round()
        memo.new_round()
    tls._pem.cache_clear()
    blocks = getattr(render_module, "_BLOCKS", None)  # identity cache of rendered blocks
    if blocks is not None:
        blocks.new_round()
        blocks.new_round()
    else:  # before it: an lru_cache by value
        render_module._server_block.cache_clear()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def nginx_settings(state_dir: Path, **kw: Any) -> NginxSettings:
    return NginxSettings(state_dir=state_dir, http_port=kw.get("http_port", procs.free_port()),
                         https_port=kw.get("https_port", procs.free_port()), listen_address="127.0.0.1",
                         access_log="off", worker_shutdown_timeout="1s", confirm_timeout=600.0)


def run(n: int, backend_port: int, reps: int, naive_reps: int, log: Any = print) -> dict[str, Any]:
    store = Store()
    for obj in objects.world(n, backend_port):
        store.put(obj)
    state_dir = procs.scratch(f"scale-{n}")
    settings = nginx_settings(state_dir / "ours")
    out: dict[str, Any] = {"n": n, "objects": sum(len(store.snapshot().of(k)) for k in ("Ingress", "Service", "EndpointSlice", "Secret"))}

    # our own cost, cold (start-up) and warm (one Ingress changed since the last sync)
    cold_t, cold_r, warm_t, warm_r = [], [], [], []
    translation: Translation | None = None
    rendered: Rendered | None = None
    for rep in range(reps):
        forget_caches()
        seconds, translation = timed(translate, store.snapshot(), SETTINGS, _now())
        cold_t.append(seconds)
        seconds, rendered = timed(render, translation.config, settings)
        cold_r.append(seconds)
        store.put(objects.ingress(rep % n, extra_paths=(f"/warm-{rep}",)))
        seconds, translation = timed(translate, store.snapshot(), SETTINGS, _now())
        warm_t.append(seconds)
        seconds, rendered = timed(render, translation.config, settings)
        warm_r.append(seconds)
        store.put(objects.ingress(rep % n))
    assert translation is not None and rendered is not None
    if len(translation.served) != n or translation.problems:
        raise RuntimeError(f"the benchmark world does not translate cleanly: {translation.problems[:3]}")
    out.update(translate_cold_s=procs.median(cold_t), translate_warm_s=procs.median(warm_t),
               render_cold_s=procs.median(cold_r), render_warm_s=procs.median(warm_r),
               translate_render_warm_s=procs.median([a + b for a, b in zip(warm_t, warm_r)]),
               translate_render_cold_s=procs.median([a + b for a, b in zip(cold_t, cold_r)]),
               config_bytes=len(rendered.text), upstreams=len(translation.config.upstreams),
               proxy_pass=rendered.text.count("proxy_pass "), locations=rendered.text.count("location "))
    log(f"  scale n={n}: translate cold {out['translate_cold_s']:.3f}s warm {out['translate_warm_s']:.3f}s, "
        f"render cold {out['render_cold_s']:.3f}s warm {out['render_warm_s']:.3f}s, {len(rendered.text)/1e6:.1f} MB")

    # nginx -t on exactly that config (and, for the record, on the naive one)
    _write_state(settings.state_dir, rendered, translation)
    tests = [procs.nginx_test(settings.state_dir, settings.state_dir / "nginx.conf.bench") for _ in range(reps)]
    out.update(nginx_t_s=procs.median([t["wall_s"] for t in tests]), nginx_t_cpu_s=procs.median([t["cpu_s"] for t in tests]),
               nginx_t_maxrss_mib=procs.median([t["maxrss_mib"] for t in tests]))
    log(f"  scale n={n}: nginx -t {out['nginx_t_s']:.2f}s (cpu {out['nginx_t_cpu_s']:.2f}s)")

    # reload-to-live, ours: NginxProcess.apply (write, nginx -t of the blocks that changed, swap, SIGHUP, confirm)
    ours = asyncio.run(_ours_reloads(store, settings, n, reps))
    out.update(ours)
    log(f"  scale n={n}: reload-to-live ours {out['reload_to_live_s']:.2f}s (start {out['start_to_live_s']:.2f}s)")

    # the naive sequence on the per-Ingress-upstream config
    naive_settings = nginx_settings(state_dir / "naive")
    out.update(_naive_reloads(store, naive_settings, n, naive_reps))
    log(f"  scale n={n}: naive nginx -t {out['naive_nginx_t_s']:.2f}s, reload-to-live {out['naive_reload_to_live_s']:.2f}s")
    subprocess.run(["rm", "-rf", str(state_dir)], check=False)
    return out


def _write_state(state_dir: Path, rendered: Rendered, translation: Translation) -> None:
    for sub in ("certs", "tmp"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    (state_dir / "certs" / "default.pem").write_bytes(self_signed_pem())
    for certificate in translation.config.certificates:
        (state_dir / "certs" / f"{certificate.id}.pem").write_bytes(certificate.pem)
    (state_dir / "nginx.conf.bench").write_text(rendered.text)


def _variant(store: Store, n: int, k: int) -> Translation:
    """The world with Ingress k changed: one new path (a real change for nginx to load)."""
    store.put(objects.ingress(k % n, extra_paths=(f"/changed-{k}",)))
    return translate(store.snapshot(), SETTINGS, _now())


async def _ours_reloads(store: Store, settings: NginxSettings, n: int, reps: int) -> dict[str, Any]:
    nginx = NginxProcess(settings)
    await nginx.prepare()
    supervisor = asyncio.create_task(nginx.supervise())
    try:
        first = translate(store.snapshot(), SETTINGS, _now())
        start = time.perf_counter()
        with _stderr_to(settings.state_dir / "nginx.log"):  # nginx (our child) keeps it: its notices go there
            await nginx.apply(render(first.config, settings), first.config.certificates)
        started = time.perf_counter() - start
        times = []
        for rep in range(reps):
            translation = _variant(store, n, rep)
            rendered = render(translation.config, settings)
            start = time.perf_counter()
            await nginx.apply(rendered, translation.config.certificates)
            times.append(time.perf_counter() - start)
        await asyncio.sleep(1.5)  # old workers gone (worker_shutdown_timeout 1s)
        master = nginx._process.pid if nginx._process else None  # noqa: SLF001 - the bench reads the pid
        memory = procs.nginx_rss(master) if master else {}
        return {"start_to_live_s": started, "reload_to_live_s": procs.median(times), "reload_to_live_all_s": times,
                "nginx_master_mib": memory.get("master_mib"), "nginx_worker_mib": memory.get("worker_mib")}
    finally:
        await nginx.stop(30)
        supervisor.cancel()
        store.put(objects.ingress(0))
        for rep in range(reps):
            store.put(objects.ingress(rep % n))


def _naive_reloads(store: Store, settings: NginxSettings, n: int, reps: int) -> dict[str, Any]:
    state = settings.state_dir
    conf = state / "nginx.conf"
    first = translate(store.snapshot(), SETTINGS, _now())
    rendered = naive.render(first.config, settings)
    _write_state(state, rendered, first)
    conf.write_text(rendered.text)
    command = [procs.NGINX, "-p", str(state), "-e", "stderr", "-c", str(conf)]
    master = subprocess.Popen([*command, "-g", "daemon off; master_process on;"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    socket_path = state / render_module.STATUS_SOCKET
    try:
        procs.wait_until(lambda: _version(socket_path) == rendered.version, 900, 0.02, "the naive nginx to start")
        tests, totals = [], []
        for rep in range(reps):
            translation = _variant(store, n, 1000 + rep)
            candidate = naive.render(translation.config, settings)
            start = time.perf_counter()
            (state / "nginx.conf.new").write_text(candidate.text)
            tests.append(procs.nginx_test(state, state / "nginx.conf.new")["wall_s"])
            (state / "nginx.conf.new").replace(conf)
            subprocess.run([*command, "-s", "reload"], check=True, capture_output=True)
            procs.wait_until(lambda: _version(socket_path) == candidate.version, 900, 0.02, "the naive reload")
            totals.append(time.perf_counter() - start)
        return {"naive_nginx_t_s": procs.median(tests), "naive_reload_to_live_s": procs.median(totals),
                "naive_reload_to_live_all_s": totals, "naive_upstreams": candidate.text.count("\n    upstream ")}
    finally:
        procs._stop(master, 3)  # SIGQUIT
        for rep in range(reps):
            store.put(objects.ingress((1000 + rep) % n))


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _version(socket_path: Path) -> str | None:
    import http.client
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(str(socket_path))

    connection = UnixConnection("nginx")
    try:
        connection.request("GET", render_module.CONFIG_VERSION_PATH)
        response = connection.getresponse()
        return response.read().decode().strip() if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


if __name__ == "__main__":
    backend = procs.BackendNginx()
    try:
        print(json.dumps(run(int(sys.argv[1]), backend.port, int(sys.argv[2]) if len(sys.argv) > 2 else 1, 1), indent=2))
    finally:
        backend.stop()
