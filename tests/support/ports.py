"""Free loopback TCP ports: every suite starts servers on ports picked at random, and two picks
in one session must never collide, so the handed-out set is shared by all suites."""

from __future__ import annotations

import socket
from collections.abc import Sequence

_handed_out: set[int] = set()


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def free_port(addresses: Sequence[str] = ("127.0.0.1",)) -> int:
    """A TCP port free on every one of `addresses` right now (and not handed out before)."""
    for _ in range(200):
        with socket.socket(_family(addresses[0])) as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        if port in _handed_out:
            continue
        sockets = []
        try:
            for address in addresses:
                sock = socket.socket(_family(address))
                sockets.append(sock)
                sock.bind((address, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port")
