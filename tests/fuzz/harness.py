"""One world through the real pipeline, and every property checked on the way.

objects → Store → translate → render → files in a real state dir → `nginx -t` → crossplane.
`Harness.check(world)` never raises for a property failure: it returns an `Outcome` whose
`violations` name each broken property, so the in-suite test can assert and the long run can
count. Properties:

- translate and render never raise; problems name objects that exist (or a flag's reference);
  each rejected Ingress has a rejecting problem; served and rejected are disjoint Ingresses;
- `nginx -t` accepts every rendered config;
- crossplane parses it cleanly; every directive is on the allow-list of its block; the blocks
  are exactly the model's (servers, their names, locations and backends, upstreams and their
  endpoints), so a hostile value can neither add nor reshape a block;
- every model value that came from a user is exactly one argument, no argument holds nginx
  syntax or control characters, the rendered file is ASCII, and `MARKER` never appears.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import crossplane

from ingress_ctrl.nginx import NginxProcess
from ingress_ctrl.render import STATUS_SOCKET, Rendered, render
from ingress_ctrl.settings import NginxSettings
from ingress_ctrl.state import ObjectKey, Store, key_of
from ingress_ctrl.translate import translate
from ingress_ctrl.translate.model import Config, Location, Server, Translation
from tests.fuzz.world import MARKER, World, leaf_strings

# directive names allowed in each block, by the path of block names from the top
ALLOWED: dict[tuple[str, ...], frozenset[str]] = {
    (): frozenset({"worker_processes", "pid", "error_log", "worker_shutdown_timeout", "events", "http"}),
    ("events",): frozenset({"worker_connections"}),
    ("http",): frozenset({
        "server_tokens", "server_names_hash_bucket_size", "server_names_hash_max_size", "types_hash_max_size",
        "default_type", "sendfile", "tcp_nodelay", "keepalive_timeout", "keepalive_requests", "client_max_body_size",
        "access_log", "log_format", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
        "scgi_temp_path", "resolver", "map", "proxy_http_version", "proxy_set_header", "proxy_connect_timeout",
        "proxy_read_timeout", "proxy_send_timeout", "proxy_next_upstream", "ssl_protocols", "ssl_ciphers",
        "ssl_prefer_server_ciphers", "ssl_session_cache", "ssl_session_timeout", "ssl_certificate",
        "ssl_certificate_key", "upstream", "server",
    }),
    ("http", "map"): frozenset({"default", ""}),
    ("http", "upstream"): frozenset({"server", "keepalive", "keepalive_requests", "keepalive_timeout"}),
    ("http", "server"): frozenset({"listen", "server_name", "ssl_certificate", "ssl_certificate_key", "location", "access_log"}),
    ("http", "server", "location"): frozenset({
        "if", "client_max_body_size", "proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout",
        "proxy_pass", "set", "return", "default_type", "stub_status",
    }),
    ("http", "server", "location", "if"): frozenset({"return"}),
}
BLOCKS = frozenset({"events", "http", "map", "upstream", "server", "location", "if"})
INTERNAL_LOCATIONS = (["=", "/config-version"], ["=", "/nginx-status"], ["/"])
SYNTAX = re.compile(r"[\s;{}\"'#\\\x00-\x1f\x7f]")  # what no argument may hold (regex server names aside)
NGINX_TIMEOUT = 60


@dataclasses.dataclass
class Outcome:
    violations: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (property, detail)
    stats: Counter[str] = dataclasses.field(default_factory=Counter)
    nginx_seconds: float = 0.0
    text: str = ""  # the rendered config
    config: Config | None = None  # its model

    def fail(self, prop: str, detail: str) -> None:
        self.violations.append((prop, detail[:4000]))


class Harness:
    def __init__(self, state_dir: Path, *, nginx: bool = True, binary: str = "nginx") -> None:
        self.settings = NginxSettings(state_dir=state_dir, http_port=18080, https_port=18443, listen_address="127.0.0.1",
                                      binary=binary, worker_processes="1", access_log="off")
        self.process = NginxProcess(self.settings)
        self.process._prepare_files()
        self.candidate = state_dir / "nginx.conf.new"
        self.nginx = nginx

    def check(self, world: World, now: datetime.datetime | None = None) -> Outcome:
        out = Outcome()
        now = now or datetime.datetime.now(datetime.timezone.utc)
        store = Store()
        keyed = []
        for obj in world.objects:
            try:
                keyed.append((key_of(obj), obj))
            except ValueError:
                out.stats["objects_unkeyable"] += 1  # a source reports these before the Store sees them
        store.replace(keyed)
        snapshot = store.snapshot()
        out.stats["objects"] += len(keyed)
        try:
            translation = translate(snapshot, world.settings, now)
        except Exception as error:  # noqa: BLE001 - the property is that nothing escapes
            out.fail("translate-raised", f"{type(error).__name__}: {error}")
            return out
        self._check_problems(translation, {key for key, _ in keyed}, world, out)
        try:
            rendered = render(translation.config, self.settings)
        except Exception as error:  # noqa: BLE001
            out.fail("render-raised", f"{type(error).__name__}: {error}")
            return out
        out.text, out.config = rendered.text, translation.config
        self._count(translation, out)
        self.process._write_files(self.candidate, rendered.text, translation.config.certificates)
        if self.nginx:
            self._nginx_test(out)
        self._check_text(rendered, world, translation.config, out)
        self._check_parse(translation.config, out)
        return out

    # -- translate ---------------------------------------------------------------------------

    @staticmethod
    def _check_problems(t: Translation, keys: set[ObjectKey], world: World, out: Outcome) -> None:
        allowed = set(keys)
        if world.settings.default_ssl_certificate:
            ref = world.settings.default_ssl_certificate
            allowed.add(ObjectKey("Secret", ref.namespace, ref.name))
        for problem in t.problems:
            if problem.object not in allowed:
                out.fail("problem-object", f"{problem} names no object of the snapshot")
            if not isinstance(problem.field, str) or not isinstance(problem.reason, str) or not problem.reason:
                out.fail("problem-shape", repr(problem))
        ingresses = {k for k in keys if k.kind == "Ingress"}
        if set(t.served) & set(t.rejected):
            out.fail("served-and-rejected", str(set(t.served) & set(t.rejected)))
        if not (set(t.served) | set(t.rejected)) <= ingresses:
            out.fail("served-unknown", str((set(t.served) | set(t.rejected)) - ingresses))
        rejecting = {p.object for p in t.problems if p.rejected}
        for key in t.rejected:
            if key not in rejecting:
                out.fail("rejected-without-reason", str(key))

    @staticmethod
    def _count(t: Translation, out: Outcome) -> None:
        c = t.config
        out.stats.update({
            "ingresses_served": len(t.served), "ingresses_rejected": len(t.rejected), "problems": len(t.problems),
            "problems_rejecting": sum(p.rejected for p in t.problems), "servers": len(c.servers),
            "locations": sum(len(s.locations) for s in _servers(c)), "upstreams": len(c.upstreams),
            "certificates": len(c.certificates),
        })

    # -- nginx -t ----------------------------------------------------------------------------

    def _nginx_test(self, out: Outcome) -> None:
        command = [self.settings.binary, "-t", "-q", "-p", str(self.settings.state_dir), "-e", "stderr", "-c", str(self.candidate)]
        started = time.monotonic()
        try:
            result = subprocess.run(command, capture_output=True, timeout=NGINX_TIMEOUT)
        except subprocess.TimeoutExpired:
            out.fail("nginx-t", "timed out")
            return
        out.nginx_seconds = time.monotonic() - started
        if result.returncode != 0:
            out.fail("nginx-t", result.stderr.decode(errors="replace"))

    # -- the text ----------------------------------------------------------------------------

    @staticmethod
    def _check_text(rendered: Rendered, world: World, config: Config, out: Outcome) -> None:
        text = rendered.text
        if MARKER.lower() in text.lower():
            line = next(line for line in text.splitlines() if MARKER.lower() in line.lower())
            out.fail("marker", f"hostile fragment reached the config: {line!r}")
        if not text.isascii() or "\x00" in text:
            out.fail("non-ascii", repr([c for c in text if not c.isascii() or c == "\x00"][:10]))
        user_values = list(_model_values(config))
        hostile = [s for s in leaf_strings(list(world.objects)) if len(s) >= 2 and SYNTAX.search(s)]
        for value in user_values:
            for s in hostile:
                if s in value:
                    out.fail("hostile-in-value", f"{s!r} inside model value {value!r}")

    # -- crossplane --------------------------------------------------------------------------

    def _check_parse(self, config: Config, out: Outcome) -> None:
        payload = crossplane.parse(str(self.candidate), single=True, comments=False, catch_errors=True,
                                   check_ctx=True, check_args=True)
        if payload["status"] != "ok" or payload["errors"]:
            out.fail("crossplane-parse", str(payload["errors"]))
            return
        tree = payload["config"][0]["parsed"]
        for path, stmt in _walk(tree):
            name = stmt["directive"]
            if name not in ALLOWED.get(path, frozenset()):
                out.fail("crossplane-allow-list", f"{name!r} in {'/'.join(path) or 'main'} (args {stmt['args']!r})")
            if ("block" in stmt) != (name in BLOCKS and path != ("http", "upstream")):
                out.fail("crossplane-block", f"{name!r} in {'/'.join(path) or 'main'}: block {'block' in stmt}")
            for arg in stmt["args"]:
                if SYNTAX.search(arg) and name != "log_format" and not (name == "server_name" and arg.startswith("~")):
                    out.fail("crossplane-arg", f"{name} argument {arg!r} holds nginx syntax or a control character")
        _check_model(tree, config, self.settings, out)


def _walk(block: list[dict[str, Any]], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for stmt in block:
        yield path, stmt
        if "block" in stmt:
            yield from _walk(stmt["block"], path + (stmt["directive"],))


def _servers(config: Config) -> list[Server]:
    return [config.default_server, *config.servers]


def _model_values(config: Config) -> Iterator[str]:
    """The model's strings that came from users (all have passed a grammar)."""
    for server in _servers(config):
        if server.name:
            yield server.name.host
        for location in server.locations:
            yield location.path
            b = location.backend
            for value in (b.upstream, b.external_host, location.options.proxy_body_size):
                if value:
                    yield value
    for upstream in config.upstreams:
        yield upstream.name
        for endpoint in upstream.endpoints:
            yield endpoint.address


def _server_name(server: Server) -> str:
    if server.name is None:
        return "_"
    host = server.name.host
    return "~^[^.]+" + re.escape(host[1:]) + "$" if server.name.is_wildcard else host


def _address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _children(stmt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in stmt.get("block", []) if s["directive"] == name]


def _check_model(tree: list[dict[str, Any]], config: Config, settings: NginxSettings, out: Outcome) -> None:
    """The parsed blocks are exactly the model's: nothing added, nothing reshaped."""
    [http] = [s for s in tree if s["directive"] == "http"]
    servers = _children(http, "server")
    expected = _servers(config)
    if len(servers) != len(expected) + 1:
        out.fail("crossplane-servers", f"{len(servers)} server blocks for {len(expected)} model servers + 1 internal")
        return
    internal = servers[-1]
    if [s["args"] for s in _children(internal, "listen")] != [[f"unix:{settings.state_dir / STATUS_SOCKET}"]]:
        out.fail("crossplane-internal", "the last server is not the status socket's")
    if tuple(s["args"] for s in _children(internal, "location")) != INTERNAL_LOCATIONS:
        out.fail("crossplane-internal", f"internal locations {[s['args'] for s in _children(internal, 'location')]}")
    for stmt, server in zip(servers, expected):
        where = _server_name(server)
        if [s["args"] for s in _children(stmt, "server_name")] != [[where]]:
            out.fail("crossplane-server-name", f"{[s['args'] for s in _children(stmt, 'server_name')]} != {[where]}")
        certs = settings.state_dir / "certs"
        default = [str(certs / (f"{config.default_certificate.id}.pem" if config.default_certificate else "default.pem"))]
        for directive in ("ssl_certificate", "ssl_certificate_key"):
            got = [s["args"] for s in _children(stmt, directive)]
            if server.certificate:  # its own; otherwise nothing or (the default server) the default one
                allowed = [[[str(certs / f"{server.certificate.id}.pem")]]]
            else:
                allowed = [[], [default]] if server.name is None else [[]]
            if got not in allowed:
                out.fail("crossplane-certificate", f"{where}: {directive} {got}")
        locations = _children(stmt, "location")
        want = [["=", loc.path] if loc.match == "exact" else [loc.path] for loc in server.locations]
        if [s["args"] for s in locations] != want:
            out.fail("crossplane-locations", f"{where}: {[s['args'] for s in locations]} != {want}")
            continue
        for block, location in zip(locations, server.locations):
            _check_location(block, location, settings, f"{where} {location.path}", out)

    upstreams = _children(http, "upstream")
    if [u["args"] for u in upstreams] != [[u.name] for u in config.upstreams]:
        out.fail("crossplane-upstreams", f"{[u['args'] for u in upstreams]} != {[u.name for u in config.upstreams]}")
    else:
        for block, upstream in zip(upstreams, config.upstreams):
            got = [s["args"] for s in _children(block, "server")]
            if got != [[_address(e.address, e.port), "max_fails=0"] for e in upstream.endpoints]:
                out.fail("crossplane-endpoints", f"{upstream.name}: {got}")

    counts = Counter(name for _, stmt in _walk(tree) for name in [stmt["directive"]])
    want_counts = {
        "server": len(expected) + 1 + sum(len(u.endpoints) for u in config.upstreams),  # server{} blocks + upstream servers
        "location": sum(len(s.locations) for s in expected) + len(INTERNAL_LOCATIONS),
        "upstream": len(config.upstreams),
        "if": sum(loc.options.ssl_redirect for s in expected for loc in s.locations),
        "map": 2, "http": 1, "events": 1,
    }
    for name, count in want_counts.items():
        if counts[name] != count:
            out.fail("crossplane-count", f"{counts[name]} {name!r} directives, the model says {count}")


def _check_location(block: dict[str, Any], location: Location, settings: NginxSettings, where: str, out: Outcome) -> None:
    def args(name: str) -> list[list[str]]:
        return [s["args"] for s in _children(block, name)]

    b, o = location.backend, location.options
    if b.upstream:
        want = {"proxy_pass": [[f"http://{b.upstream}"]], "set": [], "return": []}
    elif b.external_host:
        want = {"proxy_pass": [["http://$external_backend"]], "set": [["$external_backend", f"{b.external_host}:{b.external_port}"]], "return": []}
    else:
        want = {"proxy_pass": [], "set": [], "return": [[str(b.status)]]}
    want["client_max_body_size"] = [[o.proxy_body_size]] if o.proxy_body_size is not None else []
    for kind in ("connect", "read", "send"):
        seconds = getattr(o, f"proxy_{kind}_timeout")
        want[f"proxy_{kind}_timeout"] = [[f"{seconds}s"]] if seconds is not None else []
    for name, value in want.items():
        if args(name) != value:
            out.fail("crossplane-location", f"{where}: {name} {args(name)} != {value}")
    ifs = _children(block, "if")
    if len(ifs) != (1 if o.ssl_redirect else 0):
        out.fail("crossplane-location", f"{where}: {len(ifs)} if blocks, ssl_redirect={o.ssl_redirect}")
    port = f":{settings.https_port}" if settings.https_port != 443 else ""
    for stmt in ifs:
        inner = [(s["directive"], s["args"]) for s in stmt["block"]]
        if stmt["args"] != ["$scheme", "=", "http"] or inner != [("return", ["308", f"https://$host{port}$request_uri"])]:
            out.fail("crossplane-location", f"{where}: if {stmt['args']} {inner}")
