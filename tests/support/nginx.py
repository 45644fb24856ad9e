"""The process-level suites need a real nginx: skip a suite's tests where it is not installed."""

from __future__ import annotations

import shutil

import pytest


def skip_without_nginx(items: list[pytest.Item], folder: str) -> None:
    """Mark the collected tests under `folder` (e.g. "tests/e2e/") skipped if nginx is missing."""
    if shutil.which("nginx") is None:
        skip = pytest.mark.skip(reason="nginx is not installed")
        for item in items:
            if folder in str(item.path).replace("\\", "/"):
                item.add_marker(skip)
