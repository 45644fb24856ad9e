"""Default backend for ingress-ctrl: answers 404 to every request no Ingress rule matched.

Content negotiation: the 404 body is JSON when the client's ``Accept`` header
gives ``application/json`` a strictly higher q-value than ``text/html``;
otherwise (no header, ``*/*``, a tie, or only unrelated types) it is HTML.
``GET /healthz`` answers 200 ``ok``. Only the standard library and aiohttp are used.
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

HTML_TYPE = "text/html"
JSON_TYPE = "application/json"
MAX_PATH_CHARS = 256  # keeps bodies small whatever the request path

HTML_TEMPLATE = (
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>404 Not Found</title></head>\n"
    "<body><h1>404 Not Found</h1><p>No route for <code>{path}</code>.</p></body></html>\n"
)

access_logger = logging.getLogger("aiohttp.access")


def parse_accept(header: str) -> list[tuple[str, float]]:
    """Parse an ``Accept`` header into ``(media_range, q)`` pairs, skipping malformed entries."""
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        media_range = media_range.lower()
        if media_range.count("/") != 1 or "" in media_range.split("/"):
            continue
        q = 1.0
        valid = True
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    valid = False
                    break
                if not 0.0 <= q <= 1.0:  # also rejects nan
                    valid = False
                    break
        if valid:
            ranges.append((media_range, q))
    return ranges


def quality(media_type: str, ranges: Sequence[tuple[str, float]]) -> float:
    """Return the q-value of the most specific range matching ``media_type`` (0.0 if none)."""
    main, sub = media_type.split("/")
    best_specificity, best_q = -1, 0.0
    for media_range, q in ranges:
        r_main, r_sub = media_range.split("/")
        if (r_main, r_sub) == (main, sub):
            specificity = 2
        elif (r_main, r_sub) == (main, "*"):
            specificity = 1
        elif (r_main, r_sub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
    return best_q


def prefers_json(accept: str | None) -> bool:
    """True when ``Accept`` rates JSON strictly above HTML; ties and absence mean HTML."""
    if not accept:
        return False
    ranges = parse_accept(accept)
    return quality(JSON_TYPE, ranges) > quality(HTML_TYPE, ranges)


async def healthz(request: web.Request) -> web.Response:
    """Liveness/readiness probe."""
    return web.Response(text="ok", content_type="text/plain")


async def not_found(request: web.Request) -> web.Response:
    """Answer 404 for any method and path, as JSON or escaped HTML."""
    path = request.path[:MAX_PATH_CHARS]
    headers = {"Vary": "Accept", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if prefers_json(request.headers.get("Accept")):
        body = {"status": 404, "error": "not found", "path": path}
        return web.json_response(body, status=404, headers=headers)
    return web.Response(
        status=404,
        text=HTML_TEMPLATE.format(path=html.escape(path, quote=True)),
        content_type=HTML_TYPE,
        charset="utf-8",
        headers=headers,
    )


def make_app() -> web.Application:
    """Build the application: ``GET /healthz`` plus a catch-all 404 route for every method."""
    app = web.Application()
    app.router.add_get("/healthz", healthz)  # also registers HEAD
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def setup_access_log() -> logging.Logger:
    """Send aiohttp's access log to stdout, one line per request."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_logger.addHandler(handler)
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False
    return access_logger


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line flags."""
    parser = argparse.ArgumentParser(description="ingress-ctrl default backend (404 for everything)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="seconds to let in-flight requests finish after SIGTERM/SIGINT (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server until SIGTERM/SIGINT, then shut down gracefully."""
    args = parse_args(argv)
    web.run_app(
        make_app(),
        host=args.host,
        port=args.port,
        shutdown_timeout=args.shutdown_timeout,
        access_log=setup_access_log(),
    )


if __name__ == "__main__":
    main()
