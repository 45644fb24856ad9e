"""Model → nginx.conf text, through the Jinja2 templates. Nothing else decides the file's shape.

The templates only place values; every value passes `quote`, which refuses anything that
could end an argument or start a directive, as a last line of defence behind `grammar`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from pathlib import Path

import jinja2

from ingress_ctrl.settings import NginxSettings
from ingress_ctrl.translate.model import Config, Server, ServerName

VERSION_PLACEHOLDER = "@@CONFIG_VERSION@@"
STATUS_SOCKET = "nginx-status.sock"
CONFIG_VERSION_PATH = "/config-version"
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


@functools.lru_cache(maxsize=1 << 16)
def _server_block(server: Server, settings: NginxSettings) -> str:
    """One server block. Cached: a change to one Ingress re-renders only the servers it touches."""
    return _environment().get_template("server.j2").render(server=server, nginx=settings, state_dir=str(settings.state_dir))


def render(config: Config, settings: NginxSettings) -> Rendered:
    bucket, max_size = _hash_sizes(config)
    blocks = [_server_block(server, settings).rstrip("\n") for server in (config.default_server, *config.servers)]
    text = _environment().get_template("nginx.conf.j2").render(
        server_blocks=blocks,
        config=config,
        nginx=settings,
        state_dir=str(settings.state_dir),
        status_socket=str(settings.state_dir / STATUS_SOCKET),
        config_version_path=CONFIG_VERSION_PATH,
        version=VERSION_PLACEHOLDER,
        hash_bucket_size=bucket,
        hash_max_size=max_size,
    )
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Rendered(text.replace(VERSION_PLACEHOLDER, version), version)
