"""The Kubernetes API emulator (tests/kube/k8semu.py, used read-only) in a background thread, and a
small synchronous client: what `kubectl` does, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs

RESOURCES = {
    "Ingress": ("networking.k8s.io/v1/ingresses", "/apis/networking.k8s.io/v1", "ingresses"),
    "IngressClass": ("networking.k8s.io/v1/ingressclasses", "/apis/networking.k8s.io/v1", "ingressclasses"),
    "Service": ("v1/services", "/api/v1", "services"),
    "EndpointSlice": ("discovery.k8s.io/v1/endpointslices", "/apis/discovery.k8s.io/v1", "endpointslices"),
    "Secret": ("v1/secrets", "/api/v1", "secrets"),
}


def _k8semu() -> Any:
    """tests/kube/k8semu.py, loaded from this checkout by path (read-only; it belongs to the tests)."""
    import importlib.util
    import sys

    module = sys.modules.get("bench_k8semu")
    if module is None:
        spec = importlib.util.spec_from_file_location("bench_k8semu", procs.REPO_ROOT / "tests" / "kube" / "k8semu.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_k8semu"] = module
        spec.loader.exec_module(module)
    return module


class Emulator:
    def __init__(self) -> None:
        import kmock  # noqa: F401 - fail early, with the import error, when the test extras are missing
        _k8semu()
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="k8semu", daemon=True)
        self._thread.start()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        if not self._started.wait(20):
            raise RuntimeError(f"the emulator did not start: {self._main}")

    async def _serve(self) -> None:
        import kmock

        self._stop = asyncio.Event()
        async with _k8semu().K8sEmulator() as emu, kmock.Server(emu, host="127.0.0.1", port=self.port):
            self.emu = emu
            self._started.set()
            await self._stop.wait()

    def preload(self, objects: list[dict[str, Any]]) -> None:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            by_kind.setdefault(obj["kind"], []).append(obj)

        async def load() -> None:
            for kind, objs in by_kind.items():
                self.emu.preload(RESOURCES[kind][0], *objs)
        asyncio.run_coroutine_threadsafe(load(), self.loop).result(120)

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "emu", "cluster": {"server": self.url}}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "bench", "namespace": "default"}}],
            "current-context": "emu",
        }))
        return path

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        _, prefix, plural = RESOURCES[kind]
        request = urllib.request.Request(f"{self.url}{prefix}/namespaces/{namespace}/{plural}/{name}",
                                         data=json.dumps(patch).encode(), method="PATCH")
        request.add_header("Content-Type", "application/merge-patch+json")
        request.add_header("Authorization", "Bearer bench")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        with contextlib.suppress(Exception):
            self._main.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
