"""Polling until a condition holds: the suites wait on live processes (nginx reloads, watchers)
and need one loop that tolerates connection errors while it waits."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, http.client.HTTPException) as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")
        time.sleep(interval)
