"""Fixtures of the Kubernetes-mode suite: echo backends for the session and a `world` per module
(one API emulator on a fixed port, a user's API client, and the controllers the module starts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube import support
from tests.support.nginx import skip_without_nginx


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_without_nginx(items, "tests/kube/")


class World:
    def __init__(self, name: str) -> None:
        self.dir = support.scratch_dir(name)
        self.emulator = support.Emulator()
        self.api = support.Api(self.emulator.url)
        self.controllers: list[support.Controller] = []

    def controller(self, name: str = "ctl-a", extra: tuple[str, ...] = (), **kwargs: object) -> support.Controller:
        ctl = support.Controller(self.emulator, self.dir, name=name, extra=extra, **kwargs)  # type: ignore[arg-type]
        self.controllers.append(ctl)
        return ctl

    def close(self) -> None:
        for ctl in self.controllers:
            ctl.stop()
        self.emulator.close()
        if not os.environ.get("KUBE_TESTS_KEEP"):  # set it to keep the controllers' logs and state
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def backends() -> Iterator[support.Backends]:
    servers = support.Backends()
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    w = World(Path(str(request.node.name)).stem)
    yield w
    w.close()
