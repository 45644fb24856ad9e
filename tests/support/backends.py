"""Echo backends in-process: examples/echo_backend.make_app served by aiohttp on one event loop
in a background thread, so tests can start many named backends cheaply."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_echo_module() -> Any:
    spec = importlib.util.spec_from_file_location("_tests_echo_backend", REPO_ROOT / "examples" / "echo_backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_backend = _load_echo_module()


class EchoBackends:
    """Echo backends (examples/echo_backend.make_app) on one event loop in a background thread."""

    def __init__(self, thread_name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=thread_name, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def serve(self, name: str, addresses: Sequence[str], port: int) -> int:
        """Serve a backend called `name` on every one of `addresses` at `port`; returns the port."""
        asyncio.run_coroutine_threadsafe(self._serve(name, addresses, port), self.loop).result(10)
        return port

    async def _serve(self, name: str, addresses: Sequence[str], port: int) -> None:
        runner = web.AppRunner(echo_backend.make_app(name), access_log=None)
        await runner.setup()
        self._runners.append(runner)
        for address in addresses:
            await web.TCPSite(runner, address, port).start()

    def close(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
