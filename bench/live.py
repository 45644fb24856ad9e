"""Change-to-live, churn and start-up: the controller as users run it (folder mode and Kubernetes
mode against the kmock emulator), a real nginx, and the clock from the write until the route answers."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import objects, procs
from bench.kube import Emulator


# --- worlds on disk and in the emulator -----------------------------------------------------------------

def folder_world(directory: Path, n: int, port: int, marker_port: int) -> Path:
    """backends.json (class, Services, EndpointSlices, Secrets), one file per Ingress, and an empty
    slices/ for EndpointSlices written later (they override backends.json's)."""
    manifests = directory / "manifests"
    (manifests / "ingresses").mkdir(parents=True, exist_ok=True)
    (manifests / "slices").mkdir()
    rest = [o for o in objects.world(n, port, marker_port) if o["kind"] != "Ingress"]
    (manifests / "backends.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": rest}))
    for i in range(n):
        write_ingress(manifests, objects.ingress(i))
    return manifests


def write_ingress(manifests: Path, ingress: dict[str, Any]) -> None:
    final = manifests / "ingresses" / f"{ingress['metadata']['name']}.json"
    temporary = final.with_name(f".{final.name}.tmp")  # hidden: never read as a manifest
    temporary.write_text(json.dumps(ingress))
    os.replace(temporary, final)


@contextlib.contextmanager
def running(mode: str, name: str, n: int, backend: procs.BackendNginx, kopf: dict[str, str] | None = None,
            extra: tuple[str, ...] = ()) -> Iterator[tuple[procs.Controller, Path, Emulator | None]]:
    """The controller on a world of n Ingresses: folder mode (manifests on disk) or Kubernetes mode
    (objects preloaded into an emulator). Yields (controller, its work dir's manifests folder, the
    emulator or None); stops and removes everything on leaving."""
    workdir = procs.scratch(f"{name}-{mode}")
    emulator = None
    try:
        if mode == "folder":
            manifests = folder_world(workdir, n, backend.port, backend.marker_port)
            controller = start_folder(workdir, manifests, extra)
        else:
            manifests = workdir / "manifests"
            emulator = Emulator()
            emulator.preload(objects.world(n, backend.port, backend.marker_port))
            controller = start_kube(workdir, emulator, extra, kopf=kopf)
        try:
            yield controller, manifests, emulator
        finally:
            controller.stop()
    finally:
        if emulator is not None:
            emulator.close()
        shutil.rmtree(workdir, ignore_errors=True)


def start_folder(workdir: Path, manifests: Path, extra: tuple[str, ...] = ()) -> procs.Controller:
    return procs.Controller("serve", workdir, ["--manifests", str(manifests), *extra]).start()


def start_kube(workdir: Path, emulator: Emulator, extra: tuple[str, ...] = (), kopf: dict[str, str] | None = None) -> procs.Controller:
    """`ingress-ctrl run` against the emulator; with `kopf` settings, through bench/kopf_tuned.py."""
    env = {"KUBECONFIG": str(emulator.kubeconfig(workdir)), "POD_NAMESPACE": "ingress-ctrl", "POD_NAME": "bench", **(kopf or {})}
    return procs.Controller("run", workdir, list(extra), env=env, module="bench.kopf_tuned" if kopf else "ingress_ctrl").start()


SETTLE_S = 2.0  # after ready, before the first change
RELOADS_OK = 'ingress_ctrl_nginx_reloads_total{result="success"}'
LOAD_SUM = "ingress_ctrl_nginx_load_seconds_sum"  # the controller's histogram of nginx's part of each load


# --- change-to-live --------------------------------------------------------------------------------------

def change_to_live(mode: str, n: int, changes: int, backend: procs.BackendNginx, log: Any = print,
                   check: str = "changed") -> dict[str, Any]:
    """`changes` single changes one after another, each: one Ingress gains a path to the marker
    Service; the time from the write (file or API call) until that path answers "marker".
    `check`: what `nginx -t` reads (--config-check; "whole" is how it was before)."""
    with running(mode, "c2l", n, backend, extra=("--config-check", check)) as (controller, manifests, emulator):
        ready = controller.wait_ready()
        # Steady state: right after ready, Kopf is still handling the watch's initial events for
        # every preloaded object, and a change waits behind them (seen: 3.3 s, once).
        time.sleep(SETTLE_S)
        reloads_before = controller.reloads()
        rng = random.Random(1)
        latencies: list[float] = []
        loads: list[float | None] = []  # nginx's part of each change (the controller's load-seconds metric)
        load_total = controller.metrics().get(LOAD_SUM, 0.0)
        for k in range(changes):
            counted = controller.reloads()
            i = rng.randrange(n)
            changed = objects.ingress(i, extra_paths=(f"/chg-{k}",), extra_service=objects.MARKER)
            start = time.monotonic()
            if emulator is None:
                write_ingress(manifests, changed)
            else:
                emulator.patch("Ingress", objects.NAMESPACE, objects.name(i), {"spec": changed["spec"]})
            live = procs.wait_until(lambda: procs.answers(controller.http_port, objects.host(i), f"/chg-{k}/x"), 60,
                                    0.005, f"change {k}")
            latencies.append(live - start)
            # one after another: the next change once the controller has finished this one
            # (counted its load), not at the instant its route answers, which is a few ms before
            # and would make the next change one that comes during a load (a burst: sync.py)
            procs.wait_until(lambda: controller.reloads() > counted, 30, 0.01, f"change {k} loaded")
            metrics = controller.metrics()
            # (None when the change took more than one load: its share is not known)
            loads.append(metrics[LOAD_SUM] - load_total if metrics[RELOADS_OK] == counted + 1 else None)
            load_total = metrics[LOAD_SUM]
        result = {"mode": mode, "check": check, "n": n, "changes": changes, "ready_s": ready,
                  "p50_s": procs.percentile(latencies, 50), "p99_s": procs.percentile(latencies, 99),
                  "max_s": max(latencies), "mean_s": sum(latencies) / len(latencies),
                  "reloads": controller.reloads() - reloads_before, "latencies_s": latencies,
                  "nginx_load_p50_s": procs.percentile([x for x in loads if x is not None], 50),
                  "rest_p50_s": procs.percentile([t - x for t, x in zip(latencies, loads) if x is not None], 50),
                  "nginx_loads_s": loads}
        log(f"  change-to-live {mode} ({check}): p50 {result['p50_s']:.3f}s p99 {result['p99_s']:.3f}s ({result['reloads']} reloads), "
            f"nginx's load p50 {result['nginx_load_p50_s'] or 0:.3f}s")
        return result


# --- churn -----------------------------------------------------------------------------------------------

def churn(mode: str, n: int, updates: int, window: float, backend: procs.BackendNginx, max_delay: float = 1.0,
          log: Any = print) -> dict[str, Any]:
    """`updates` EndpointSlice updates spread evenly over `window` seconds, over n Ingresses; the
    last one moves one Service to the marker backend, so "final state live" is observable."""
    with running(mode, "churn", n, backend) as (controller, manifests, emulator):
        controller.wait_ready()
        time.sleep(0.5)
        reloads_before = controller.reloads()
        last = n // 2
        start = time.monotonic()
        for u in range(updates):
            i = (u * 7919) % n if u < updates - 1 else last
            port = backend.marker_port if u == updates - 1 else (backend.alt_port if u % 2 else backend.port)
            if emulator is None:
                slice_ = objects.endpoint_slice(i, port, generation=u)
                final = manifests / "slices" / f"{objects.name(i)}.json"
                temporary = final.with_name(f".{final.name}.tmp")
                temporary.write_text(json.dumps(slice_))
                os.replace(temporary, final)
            else:
                emulator.patch("EndpointSlice", objects.NAMESPACE, f"{objects.name(i)}-abcde",
                               {"metadata": {"annotations": {"bench/generation": str(u)}},
                                "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
            pause = start + window * (u + 1) / updates - time.monotonic()
            if pause > 0 and u < updates - 1:
                time.sleep(pause)
        last_write = time.monotonic()
        live = procs.wait_until(lambda: procs.answers(controller.http_port, objects.host(last), "/api/x"), 120,
                                0.005, "the final state")
        time.sleep(max_delay + 1)  # a late extra reload would show here
        reloads = controller.reloads() - reloads_before
        span = last_write - start
        result = {"mode": mode, "n": n, "updates": updates, "span_s": span, "lag_s": live - last_write,
                  "reloads": reloads, "max_delay_s": max_delay,
                  "reload_bound": int(-(-(span + live - last_write) // max_delay)) + 1}
        log(f"  churn {mode}: {updates} updates in {span:.1f}s, {reloads} reloads, final state live {result['lag_s']:.2f}s after the last")
        return result


# --- start-up ----------------------------------------------------------------------------------------------

def startup(mode: str, n: int, backend: procs.BackendNginx, log: Any = print, kopf: dict[str, str] | None = None) -> dict[str, Any]:
    """Time from the controller's start until /readyz, nginx loads meanwhile, and memory once ready
    (and its peak, sampled every 0.2 s until then)."""
    with running(mode, "startup", n, backend, kopf=kopf) as (controller, manifests, emulator):
        peak = [0]

        def ready_or_sample() -> bool:
            assert controller.process is not None
            peak[0] = max(peak[0], procs.rss_kib(controller.process.pid) or 0)
            return controller.is_ready()
        procs.wait_until(ready_or_sample, 1200, 0.2, "/readyz")
        ready = time.monotonic() - controller.started
        loads = controller.reloads()
        ok = procs.answers(controller.http_port, objects.host(n - 1), "/api/x", "ok")
        time.sleep(2)  # settle: the first status writes, old workers
        memory = controller.memory()
        log_text = controller.log_path.read_text(errors="replace")
        config = controller.state_dir / "nginx.conf"
        result = {"mode": mode, "n": n, "ready_s": ready, "nginx_loads": loads, "serves": ok,
                  "nginx_sighups": log_text.count("(SIGHUP) received"), "nginx_starts": log_text.count("start worker processes") - log_text.count("(SIGHUP) received"),
                  "config_bytes": config.stat().st_size if config.exists() else None,
                  "reloads_after_ready": controller.reloads() - loads, "controller_peak_mib": round(peak[0] / 1024, 1),
                  "kopf": kopf or {}, **memory}
        log(f"  start-up {mode} n={n}{' ' + str(kopf) if kopf else ''}: ready {ready:.1f}s, {loads} nginx load(s), "
            f"controller {memory['controller_mib']} MiB (peak {result['controller_peak_mib']} MiB)")
        return result
