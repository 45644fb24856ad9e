"""Data plane: requests/s and p99 through our generated config versus a hand-written minimal proxy
config (HTTP/1.1, upstream keepalive) to the same backend, interleaved A B A B in one run (wrk)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any

from bench import live, objects, procs

WRK = shutil.which("wrk")


OUR_HEADERS = """    map $http_upgrade $proxy_connection {{ default upgrade; "" ""; }}
    map $http_host $proxy_host_header {{ "" $host; default $http_host; }}
    proxy_set_header Host $proxy_host_header;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $proxy_connection;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Host $proxy_host_header;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Forwarded-Proto $scheme;
"""


def hand_written_config(directory: str, port: int, backend_port: int, headers: bool = False) -> str:
    """What an operator would write by hand for one host: the same two endpoints, HTTP/1.1 and
    keepalive to them, and as many requests per client connection as ours allows. With
    `headers`, plus the request headers ours sets (templates/nginx.conf.j2): not a target, an
    explanation of the difference."""
    extra = OUR_HEADERS.replace("{{", "{").replace("}}", "}") if headers else ""
    connection = "" if headers else '\n            proxy_set_header Connection "";'
    return f"""worker_processes auto;
pid {directory}/nginx.pid;
error_log stderr error;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path {directory}/tmp;
    proxy_temp_path {directory}/tmp;
    fastcgi_temp_path {directory}/tmp;
    uwsgi_temp_path {directory}/tmp;
    scgi_temp_path {directory}/tmp;
{extra}    upstream backend {{
        server 127.0.0.1:{backend_port};
        server 127.0.0.2:{backend_port};
        keepalive 320;
        keepalive_requests 10000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;{connection}
        }}
    }}
}}
"""


def wrk(port: int, host: str, path: str, seconds: float, connections: int) -> dict[str, float]:
    assert WRK is not None
    result = subprocess.run([WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-H", f"Host: {host}",
                             f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=seconds + 60)
    text = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {"rps": rps, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else ""}


def _seconds(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run(n: int, rounds: int, seconds: float, connections: int, backend: procs.BackendNginx, log: Any = print) -> dict[str, Any]:
    if WRK is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    workdir = procs.scratch("dataplane")
    manual: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    for name, headers in (("hand", False), ("hand_headers", True)):
        directory = workdir / name
        (directory / "tmp").mkdir(parents=True)
        port = procs.free_port()
        (directory / "nginx.conf").write_text(hand_written_config(str(directory), port, backend.port, headers))
        manual[name] = (port, subprocess.Popen([procs.NGINX, "-p", str(directory), "-e", "stderr", "-c", str(directory / "nginx.conf"),
                                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))
    manifests = live.folder_world(workdir, n, backend.port, backend.marker_port)
    controller = live.start_folder(workdir, manifests)
    try:
        controller.wait_ready()
        for name, (port, _) in manual.items():
            procs.wait_until(lambda port=port: procs._connectable(port), 10, 0.02, f"the {name} nginx")
        host, path = objects.host(1), "/api/bench"
        targets = {"ours": controller.http_port, **{name: port for name, (port, _) in manual.items()}}
        for name, port in targets.items():  # both answer the same, and both are warm
            status, body = procs.get(port, host, path)
            assert status == 200 and body.strip() == b"ok", (name, status, body)
            wrk(port, host, path, 1, connections)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        names = list(targets)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotated: no config always goes first
            for name in order:
                samples[name].append(wrk(targets[name], host, path, seconds, connections))
                time.sleep(0.5)
        ours_rps = [s["rps"] for s in samples["ours"]]
        hand_rps = [s["rps"] for s in samples["hand"]]
        result = {
            "n": n, "rounds": rounds, "seconds": seconds, "connections": connections,
            "ours_rps": procs.median(ours_rps), "hand_rps": procs.median(hand_rps),
            "ours_p99_ms": procs.median([s["p99_ms"] for s in samples["ours"]]),
            "hand_p99_ms": procs.median([s["p99_ms"] for s in samples["hand"]]),
            "ratio": procs.median(ours_rps) / procs.median(hand_rps),  # type: ignore[operator]
            "pair_ratios": [a / b for a, b in zip(ours_rps, hand_rps)],
            "hand_headers_rps": procs.median([s["rps"] for s in samples["hand_headers"]]),
            "hand_headers_p99_ms": procs.median([s["p99_ms"] for s in samples["hand_headers"]]),
            "non_2xx": sum(s["non_2xx"] for v in samples.values() for s in v),
            "samples": samples,
        }
        log(f"  data plane: ours {result['ours_rps']:.0f} req/s, hand-written {result['hand_rps']:.0f} req/s, ratio {result['ratio']:.3f}")
        return result
    finally:
        controller.stop()
        for _, process in manual.values():
            procs._stop(process, 3)
        shutil.rmtree(workdir, ignore_errors=True)
