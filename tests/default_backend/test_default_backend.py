"""Tests for default-backend/default_backend.py (in-process app, real process, Dockerfile)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_DIR = REPO_ROOT / "default-backend"
MODULE_PATH = BACKEND_DIR / "default_backend.py"
DOCKERFILE = BACKEND_DIR / "Dockerfile"


def _load_module() -> ModuleType:
    # "default-backend" is not an importable package name, so load the file directly.
    spec = importlib.util.spec_from_file_location("_default_backend_under_test", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


db = _load_module()


def fetch(method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """Send one request to an in-process app; return (status, headers, body)."""

    async def go() -> tuple[int, Any, str]:
        async with TestClient(TestServer(db.make_app())) as client:
            resp = await client.request(method, path, headers=headers or {})
            return resp.status, resp.headers, await resp.text()

    return asyncio.run(go())


# --- 404 for everything -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/nope", "/a/b/c.html", "/api/v1/items?x=1", "/healthz/extra"])
def test_any_method_and_path_is_404(method: str, path: str) -> None:
    status, headers, body = fetch(method, path)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "404 Not Found" in body
    assert headers["Vary"] == "Accept"


@pytest.mark.parametrize("path", ["/", "/nope", "/deep/er/path"])
def test_head_is_404_without_body(path: str) -> None:
    status, headers, body = fetch("HEAD", path)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert body == ""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_healthz_other_methods_are_404(method: str) -> None:
    status, _, _ = fetch(method, "/healthz")
    assert status == 404  # not 405: the catch-all owns everything but GET/HEAD /healthz


def test_path_in_html_and_query_not_echoed() -> None:
    status, _, body = fetch("GET", "/some/where?secret=xyz")
    assert status == 404
    assert "/some/where" in body
    assert "secret" not in body


# --- content negotiation -----------------------------------------------------------------

@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/json, text/html;q=0.9",
        "text/html;q=0.1, application/json;q=0.2",
        "application/*",
        "*/*;q=0.1, application/json",
        "APPLICATION/JSON; charset=utf-8",
    ],
)
def test_json_when_preferred(accept: str) -> None:
    status, headers, body = fetch("GET", "/missing/thing", {"Accept": accept})
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"status": 404, "error": "not found", "path": "/missing/thing"}


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "text/html",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # typical browser
        "application/json;q=0.5, text/html",
        "application/json, text/html",  # tie -> HTML
        "application/json;q=0, */*",
        "application/json;q=bogus",  # malformed entry is ignored
        "image/png",  # nothing acceptable -> HTML fallback
    ],
)
def test_html_otherwise(accept: str | None) -> None:
    status, headers, body = fetch("GET", "/missing", {"Accept": accept} if accept else None)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert body.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("text/html;level=1;q=0.4, application/json;q=0.5", True),
        ("*/*;q=0.9, application/*;q=0.1", False),  # application/* is more specific than */*
        ("application/json, */*;q=0.5", True),  # exact match wins over a later */*
        ("text/html;q=0.1, */*", True),  # text/html's own q applies, not */*'s
        ("text/*;q=0.3, application/json;q=0.4", True),
        ("application/json;q=1.5", False),  # out-of-range q is ignored
        ("", False),
        (None, False),
    ],
)
def test_prefers_json(accept: str | None, expected: bool) -> None:
    assert db.prefers_json(accept) is expected


def test_parse_accept() -> None:
    assert db.parse_accept("text/html;q=0.5, Application/JSON, bad, a/b;q=x") == [
        ("text/html", 0.5),
        ("application/json", 1.0),
    ]


# --- escaping and size -------------------------------------------------------------------

@pytest.mark.parametrize(
    "path",
    ["/<script>alert(1)</script>", '/"><img src=x onerror=alert(1)>', "/<script>"],
)
def test_hostile_path_is_escaped_in_html(path: str) -> None:
    status, _, body = fetch("GET", path)
    assert status == 404
    assert "<script" not in body
    assert "<img" not in body
    assert "&lt;" in body
    assert body.count("<") == body.count(">")  # only the template's own tags


def test_hostile_path_is_verbatim_in_json() -> None:
    status, _, body = fetch("GET", "/<script>", {"Accept": "application/json"})
    assert status == 404
    assert json.loads(body)["path"] == "/<script>"


def test_long_path_is_truncated() -> None:
    status, _, body = fetch("GET", "/" + "a" * 4000, {"Accept": "application/json"})
    assert status == 404
    assert len(json.loads(body)["path"]) == db.MAX_PATH_CHARS
    assert len(body) < 400


# --- health ------------------------------------------------------------------------------

def test_healthz() -> None:
    status, headers, body = fetch("GET", "/healthz")
    assert status == 200
    assert body == "ok"
    assert headers["Content-Type"].startswith("text/plain")


def test_healthz_head() -> None:
    status, _, body = fetch("HEAD", "/healthz")
    assert status == 200
    assert body == ""


def test_cli_defaults_and_flags() -> None:
    args = db.parse_args([])
    assert (args.host, args.port, args.shutdown_timeout) == ("0.0.0.0", 8080, 10.0)
    args = db.parse_args(["--port", "9999", "--host", "127.0.0.1", "--shutdown-timeout", "2.5"])
    assert (args.host, args.port, args.shutdown_timeout) == ("127.0.0.1", 9999, 2.5)


# --- real process ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, accept: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX SIGTERM")
def test_real_process_serves_logs_and_exits_cleanly_on_sigterm() -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "default-backend/default_backend.py", "--port", str(port), "--host", "127.0.0.1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"backend exited early: {proc.communicate()}"
            try:
                if _get(f"{base}/healthz") == (200, "ok"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "backend did not become ready"
            time.sleep(0.1)

        status, body = _get(f"{base}/no/such/route", accept="application/json")
        assert status == 404
        assert json.loads(body)["path"] == "/no/such/route"

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 0, err
    assert re.search(r'"GET /no/such/route HTTP/1\.1" 404 ', out), out
    assert re.search(r'"GET /healthz HTTP/1\.1" 200 ', out), out


# --- Dockerfile --------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _args(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def test_dockerfile_copy_sources_exist_and_entrypoint_matches() -> None:
    instructions = _dockerfile_instructions()
    copies: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword in ("COPY", "ADD"):
            *sources, dest = [a for a in _args(rest) if not a.startswith("--")]
            for src in sources:
                assert (BACKEND_DIR / src).is_file(), f"COPY source missing: {src}"
                copies[dest] = src
    entrypoints = [_args(rest) for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    entrypoint = entrypoints[0]
    assert entrypoint[0].startswith("python")
    script = entrypoint[1]
    assert script in copies, f"ENTRYPOINT runs {script}, which no COPY provides"
    assert (BACKEND_DIR / copies[script]).resolve() == MODULE_PATH.resolve()


def test_dockerfile_pins_base_and_aiohttp_and_runs_as_non_root() -> None:
    instructions = dict(_dockerfile_instructions())
    assert instructions["FROM"] == "python:3.11.7-slim-bookworm"
    assert re.search(r"pip install --no-cache-dir aiohttp==\d+\.\d+\.\d+\b", instructions["RUN"])
    assert instructions["USER"].split(":")[0] == "65532"
    assert instructions["EXPOSE"] == "8080"
