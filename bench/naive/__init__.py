"""The baseline of the reload target: the "naive" config and reload sequence.

The same routes as ours, but one `upstream{}` per Ingress (named after it, as a controller that
keys upstreams by Ingress would), rendered with the templates as they were before the benchmark
work (copied here so the baseline never moves), reloaded with `nginx -t` + `nginx -s reload`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import jinja2

from ingress_ctrl import render as product_render
from ingress_ctrl.settings import NginxSettings
from ingress_ctrl.translate.model import Backend, Config, Location, Server, Upstream


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), undefined=jinja2.StrictUndefined,
                             autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(q=product_render.quote, server_name=product_render.server_name, address=product_render.endpoint_address)
    return env


def per_ingress_upstreams(config: Config) -> Config:
    """Each server (one Ingress each in the benchmark's world) gets its own copy of every upstream it uses."""
    by_name = {u.name: u for u in config.upstreams}
    upstreams: dict[str, Upstream] = {}

    def own(server: Server) -> Server:
        owner = server.name.host.replace(".", "-") if server.name else "default"
        locations = []
        for location in server.locations:
            backend = location.backend
            if backend.upstream:
                name = f"ingress_{owner}_{backend.upstream}"
                upstreams[name] = Upstream(name, by_name[backend.upstream].endpoints)
                location = dataclasses.replace(location, backend=Backend(upstream=name))
            locations.append(location)
        return dataclasses.replace(server, locations=tuple(locations))

    servers = tuple(own(s) for s in config.servers)
    default = own(config.default_server)
    return dataclasses.replace(config, servers=servers, default_server=default,
                               upstreams=tuple(upstreams[k] for k in sorted(upstreams)))


def render(config: Config, settings: NginxSettings) -> product_render.Rendered:
    config = per_ingress_upstreams(config)
    env = _environment()
    longest = max((len(s.name.host) for s in config.servers if s.name), default=0)
    bucket = 64
    while bucket < 2 * (longest + 32):
        bucket *= 2
    server = env.get_template("server.j2")
    blocks = [server.render(server=s, nginx=settings, state_dir=str(settings.state_dir)).rstrip("\n")
              for s in (config.default_server, *config.servers)]
    text = env.get_template("nginx.conf.j2").render(
        server_blocks=blocks, config=config, nginx=settings, state_dir=str(settings.state_dir),
        status_socket=str(settings.state_dir / product_render.STATUS_SOCKET),
        config_version_path=product_render.CONFIG_VERSION_PATH, version=product_render.VERSION_PLACEHOLDER,
        hash_bucket_size=bucket, hash_max_size=max(1024, 2 * len(config.servers)))
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    return product_render.Rendered(text.replace(product_render.VERSION_PLACEHOLDER, version), version)
