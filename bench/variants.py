"""What makes nginx's load slow: `nginx -t` on our config and on variants of it, same run.

The variants are text edits of the rendered config (same routes): locations folded or not, where
the default certificate sits, where the upstream{} blocks sit, how upstream names are spelt, the
keepalive pool size, `proxy_pass` through a variable, and lower bounds that do not serve the
same thing (no per-host certificates; one upstream for everything).
"""

from __future__ import annotations

import datetime
import re
import shutil
from typing import Any

from bench import objects, procs, scale
from ingress_ctrl.render import render
from ingress_ctrl.state import Store
from ingress_ctrl.translate import translate

_UPSTREAM_BLOCK = re.compile(r"\n    upstream (\S+) \{\n.*?\n    \}\n", re.S)
_INTERNAL = "\n    # Internal: the controller"
_PROXIED_CATCH_ALL = re.compile(r'\n        location "/" \{(\n            proxy_pass http://[^\n]*\n        )\}\n')


def _http_level_certificate(text: str) -> str:
    """The default certificate at http level (as before): every server inherits it."""
    block = re.search(r"\n        ssl_certificate (\S+);\n        ssl_certificate_key (\S+);", text)
    assert block, "no default certificate in the default server"
    text = text.replace(block.group(0), "", 1)
    return text.replace("    ssl_session_timeout 10m;\n",
                        f"    ssl_session_timeout 10m;\n    ssl_certificate {block.group(1)};\n    ssl_certificate_key {block.group(2)};\n", 1)


def _upstreams_last(text: str) -> str:
    blocks = [m.group(0) for m in _UPSTREAM_BLOCK.finditer(text)]
    text = _UPSTREAM_BLOCK.sub("\n", text)
    return text.replace(_INTERNAL, "".join(blocks) + _INTERNAL, 1)


def _names_sharing_a_prefix(text: str) -> str:
    """The names as they were: <namespace>_<service>_<port>, without the hash that leads them now."""
    text = re.sub(r"(?<=\n    upstream )u[0-9a-f]{6}_(?=\S+ \{)", "", text)
    return re.sub(r"(?<=proxy_pass http://)u[0-9a-f]{6}_(?=[^;$]+;)", "", text)


def _keepalive_320(text: str) -> str:
    """ingress-nginx's pool size (meant for its one Lua balancer upstream), per upstream, as before."""
    return re.sub(r"(?<=\n        keepalive )\d+;", "320;", text)


def _no_host_certificates(text: str) -> str:
    """Hosts without certificates of their own (the default server keeps its one)."""
    return re.sub(r'(server_name "[^"]+";)\n        ssl_certificate \S+;\n        ssl_certificate_key \S+;', r"\1", text)


def _unfolded(text: str) -> str:
    """Each Prefix path its two locations (`= /api`, `/api/`), as before `translate.fold`: as many
    locations as a fanout Ingress whose paths go to Services of their own makes."""
    def unfold(match: re.Match[str]) -> str:
        body = match.group(1)
        return match.group(0) + "".join(f'        location = "{p}" {{{body}}}\n        location "{p}/" {{{body}}}\n'
                                        for p in objects.PATHS if p != "/")
    unfolded, count = _PROXIED_CATCH_ALL.subn(unfold, text)
    assert count, "no proxied catch-all location to unfold"
    return unfolded


def _proxy_pass_variable(text: str) -> str:
    return re.sub(r"proxy_pass http://([^;$]+);", r'set $upstream_name "\1";\n            proxy_pass http://$upstream_name;', text)


def _one_upstream(text: str) -> str:
    first = _UPSTREAM_BLOCK.search(text)
    assert first
    name = first.group(1)
    text = _UPSTREAM_BLOCK.sub(lambda m: m.group(0) if m.group(1) == name else "\n", text)
    return re.sub(r"proxy_pass http://[^;$]+;", f"proxy_pass http://{name};", text)


VARIANTS = {
    "ours": lambda t: t,
    "every Prefix path its own two locations (before)": _unfolded,
    "default certificate at http level (before)": _http_level_certificate,
    "upstream{} blocks after the servers": _upstreams_last,
    "upstream names sharing their first characters (before)": _names_sharing_a_prefix,
    "keepalive 320 per upstream (before)": _keepalive_320,
    "no certificate per TLS host (lower bound; not the same TLS)": _no_host_certificates,
    "proxy_pass through a variable": _proxy_pass_variable,
    "one upstream for every route (lower bound; not the same routing)": _one_upstream,
}


def run(n: int, reps: int, backend_port: int, log: Any = print) -> dict[str, Any]:
    store = Store()
    for obj in objects.world(n, backend_port):
        store.put(obj)
    directory = procs.scratch(f"variants-{n}")
    settings = scale.nginx_settings(directory)
    translation = translate(store.snapshot(), scale.SETTINGS, datetime.datetime.now(datetime.timezone.utc))
    rendered = render(translation.config, settings)
    scale._write_state(directory, rendered, translation)
    rows = []
    try:
        for name, edit in VARIANTS.items():
            path = directory / f"variant-{len(rows)}.conf"
            text = edit(rendered.text)
            path.write_text(text)
            tests = [procs.nginx_test(directory, path) for _ in range(reps)]
            rows.append({"variant": name, "wall_s": procs.median([t["wall_s"] for t in tests]),
                         "cpu_s": procs.median([t["cpu_s"] for t in tests]), "maxrss_mib": procs.median([t["maxrss_mib"] for t in tests]),
                         "upstreams": text.count("\n    upstream "), "proxy_pass": text.count("proxy_pass ")})
            log(f"  nginx -t, {n:,} Ingresses, {name}: {rows[-1]['wall_s']:.2f}s (cpu {rows[-1]['cpu_s']:.2f}s)")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"n": n, "reps": reps, "rows": rows}
