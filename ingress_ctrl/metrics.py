"""Prometheus metrics of the sync loop, in a registry of their own (one per controller)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reloads = Counter("ingress_ctrl_nginx_reloads", "nginx config loads, by result", ["result"], registry=self.registry)
        self.last_reload_successful = Gauge("ingress_ctrl_config_last_reload_successful", "1 if the last config load succeeded", registry=self.registry)
        self.last_reload_timestamp = Gauge("ingress_ctrl_config_last_reload_timestamp_seconds", "when the last config load succeeded", registry=self.registry)
        self.config_hash = Gauge("ingress_ctrl_config_hash", "the live config version as a number", registry=self.registry)
        self.load_seconds = Histogram("ingress_ctrl_nginx_load_seconds",
                                      "nginx's part of a config load: from the signal (or the start) until the new version answers",
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=self.registry)
        self.ingresses = Gauge("ingress_ctrl_ingresses", "Ingresses of our class, by state", ["state"], registry=self.registry)
        self.nginx_restarts = Counter("ingress_ctrl_nginx_restarts", "times nginx was restarted after dying", registry=self.registry)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)
        for state in ("served", "rejected"):
            self.ingresses.labels(state=state)

    def reloaded(self, ok: bool, version: str | None, load_seconds: float | None = None) -> None:
        self.reloads.labels(result="success" if ok else "failure").inc()
        self.last_reload_successful.set(1 if ok else 0)
        if load_seconds is not None:
            self.load_seconds.observe(load_seconds)
        if ok and version:
            self.last_reload_timestamp.set(time.time())
            self.config_hash.set(config_hash(version))

    def counted(self, served: int, rejected: int) -> None:
        self.ingresses.labels(state="served").set(served)
        self.ingresses.labels(state="rejected").set(rejected)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def config_hash(version: str) -> int:
    """A config version as the `ingress_ctrl_config_hash` gauge shows it: its first 48 bits, which
    a float (Prometheus' value type) holds exactly."""
    return int(version[:12], 16)
