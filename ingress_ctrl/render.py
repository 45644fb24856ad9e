"""Model → nginx.conf text, through the Jinja2 templates. Nothing else decides the file's shape.

The templates only place values; every value passes `quote`, which refuses anything that
could end an argument or start a directive, as a last line of defence behind `grammar`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import jinja2

from ingress_ctrl.settings import NginxSettings
from ingress_ctrl.translate.model import Config, Server, ServerName, Upstream

VERSION_PLACEHOLDER = "@@CONFIG_VERSION@@"
STATUS_SOCKET = "nginx-status.sock"
EMERGENCY_SOCKET = "nginx-emerg.sock"  # nginx's emergency log lines, as syslog datagrams (nginx.py)
CONFIG_VERSION_PATH = "/config-version"
T = TypeVar("T")
_SAFE_ARGUMENT = re.compile(r"[A-Za-z0-9._~!&()*+,=:@/\-\[\]^$\\]*\Z")


@dataclasses.dataclass(frozen=True)
class Rendered:
    text: str
    version: str  # sha256 of the text without its version line: equal configs, equal versions


def quote(value: object) -> str:
    """A double-quoted nginx argument; raises for characters no validated value can contain."""
    text = str(value)
    if not _SAFE_ARGUMENT.match(text):
        raise ValueError(f"refusing to place {text!r} in nginx.conf")
    return f'"{text}"'


def server_name(name: ServerName) -> str:
    """`*.foo.com` must match exactly one more label; nginx's own wildcard matches any number."""
    if name.is_wildcard:
        return quote("~^[^.]+" + re.escape(name.host[1:]) + "$")
    return quote(name.host)


def endpoint_address(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def templates_dir() -> Path:
    """`templates/` beside the package in a checkout; `ingress_ctrl/templates` when installed."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "nginx.conf.j2").is_file():
            return candidate
    raise FileNotFoundError("nginx.conf.j2 not found beside the ingress_ctrl package")


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(q=quote, server_name=server_name, address=endpoint_address)
    return env


def _hash_sizes(config: Config) -> tuple[int, int]:
    """server_names_hash_{bucket,max}_size that fit the actual names (the defaults fail past ~100 hosts)."""
    longest = max((len(s.name.host) for s in config.servers if s.name), default=0)
    bucket = 64
    while bucket < 2 * (longest + 32):  # room for two of the longest names: nginx then finds a fit
        bucket *= 2
    return bucket, max(1024, 2 * len(config.servers))


def _server_blocks(servers: list[Server], settings: NginxSettings, default_pem: str | None) -> list[str]:
    """Many server blocks in one template call (a call costs as much as a small block)."""
    if not servers:
        return []
    text = _environment().get_template("server.j2").render(servers=servers, nginx=settings, state_dir=str(settings.state_dir),
                                                           default_pem=default_pem, separator=_SEPARATOR)
    return text.split(_SEPARATOR)[:-1]


def _upstream_blocks(upstreams: list[Upstream], settings: NginxSettings) -> list[str]:
    """Many upstream blocks in one template call (a call costs as much as a small block)."""
    if not upstreams:
        return []
    text = _environment().get_template("upstream.j2").render(upstreams=upstreams, nginx=settings, separator=_SEPARATOR)
    return text.split(_SEPARATOR)[:-1]


_SEPARATOR = "\x00"  # between blocks rendered together; quote() lets no control character through


class _Blocks:
    """Rendered blocks of the previous render, by the identity of the model object each came from.

    translate hands over the very same Server and Upstream objects for everything a change did not
    touch (its memos), so a sync at 10,000 Ingresses re-renders only what changed, without even
    hashing the rest. Blocks not used by a render are forgotten by the next one.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, object, str]] = {}
        self._fresh: dict[int, tuple[object, object, str]] = {}

    def get_many(self, objs: Sequence[T], context: object, make: Callable[[list[T]], list[str]]) -> list[str]:
        """The blocks of `objs`; those not remembered are made by one call of `make`."""
        found: list[str | None] = []
        missing: list[T] = []
        for obj in objs:
            entry = self._fresh.get(id(obj)) or self._entries.get(id(obj))
            if entry is None or entry[0] is not obj or entry[1] != context:
                found.append(None)
                missing.append(obj)
            else:
                self._fresh[id(obj)] = entry
                found.append(entry[2])
        made = iter(make(missing) if missing else ())
        blocks = []
        for obj, block in zip(objs, found):
            if block is None:
                block = next(made).strip("\n")
                self._fresh[id(obj)] = (obj, context, block)
            blocks.append(block)
        return blocks

    def new_round(self) -> None:
        self._entries, self._fresh = self._fresh, {}


_BLOCKS = _Blocks()
_BLOCKS_LOCK = threading.Lock()


def default_pem(config: Config, settings: NginxSettings) -> str:
    """The default certificate's file: --default-ssl-certificate's, else the self-signed one."""
    name = f"{config.default_certificate.id}.pem" if config.default_certificate else "default.pem"
    return str(settings.state_dir / "certs" / name)


def render(config: Config, settings: NginxSettings) -> Rendered:
    bucket, max_size = _hash_sizes(config)
    with _BLOCKS_LOCK:
        _BLOCKS.new_round()
        default = (settings, default_pem(config, settings))
        blocks = _BLOCKS.get_many([config.default_server], default, lambda missing: _server_blocks(missing, *default))
        blocks += _BLOCKS.get_many(config.servers, settings, lambda missing: _server_blocks(missing, settings, None))
        upstreams = _BLOCKS.get_many(config.upstreams, settings, lambda missing: _upstream_blocks(missing, settings))
    text = _environment().get_template("nginx.conf.j2").render(
        server_blocks=blocks,
        upstream_blocks=upstreams,
        config=config,
        nginx=settings,
        state_dir=str(settings.state_dir),
        status_socket=str(settings.state_dir / STATUS_SOCKET),
        emergency_socket=str(settings.state_dir / EMERGENCY_SOCKET),
        config_version_path=CONFIG_VERSION_PATH,
        version=VERSION_PLACEHOLDER,
        hash_bucket_size=bucket,
        hash_max_size=max_size,
    )
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Rendered(text.replace(VERSION_PLACEHOLDER, version), version)
