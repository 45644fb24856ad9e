"""The fault suite: real nginx in folder mode, one controller per test (faults leave marks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import harness
from tests.support.nginx import skip_without_nginx


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_without_nginx(items, "tests/faults/")


@pytest.fixture(scope="session", autouse=True)
def _scratch() -> Iterator[None]:
    yield
    harness.remove_scratch_dirs()


@pytest.fixture(scope="session")
def echo() -> Iterator[harness.EchoBackend]:
    backend = harness.EchoBackend("echo")
    yield backend
    backend.close()


@pytest.fixture
def folder() -> Path:
    return harness.scratch_dir("manifests")
