"""Fixtures of the end-to-end suite: echo backends shared by the whole session, and a factory
for manifest folders. Each module starts its own `ingress-ctrl serve` (see support.running)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/e2e is not a package, so pytest does not put the repository root on sys.path for it (it does
# for tests/kube and tests/faults); do it here so that `tests.support` imports under a bare `pytest`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support.nginx import skip_without_nginx  # noqa: E402

# Load support.py under a unique name: test folders without __init__.py share one module namespace.
_spec = importlib.util.spec_from_file_location("e2e_support", Path(__file__).with_name("support.py"))
assert _spec is not None and _spec.loader is not None
support = importlib.util.module_from_spec(_spec)
sys.modules["e2e_support"] = support
_spec.loader.exec_module(support)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_without_nginx(items, "tests/e2e/")


@pytest.fixture(scope="session")
def backends() -> Iterator["support.Backends"]:
    """Echo backends, started on demand, for the whole session."""
    servers = support.Backends()
    yield servers
    servers.close()


@pytest.fixture(scope="session", autouse=True)
def _scratch_dirs() -> Iterator[None]:
    yield
    support.remove_scratch_dirs()


@pytest.fixture(scope="module")
def folder() -> Path:
    """A manifest folder for the module's controller."""
    return support.scratch_dir("manifests")
