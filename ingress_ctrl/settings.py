"""Every flag and default in one frozen place, shared by all commands and sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path

DEFAULT_CONTROLLER_CLASS = "k8s.io/ingress-ctrl"


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """`namespace/name` of a Kubernetes object, as given in a flag."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str, *, flag: str) -> ObjectRef:
        namespace, sep, name = text.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise ValueError(f"{flag}: expected namespace/name, got {text!r}")
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class ClassSettings:
    """Which Ingresses are ours (see translate.classes)."""

    ingress_class: str = "nginx"
    controller_class: str = DEFAULT_CONTROLLER_CLASS
    watch_ingress_without_class: bool = False


@dataclasses.dataclass(frozen=True)
class TranslateSettings:
    """The inputs of the pure translate step besides the objects themselves."""

    classes: ClassSettings = ClassSettings()
    default_backend_service: ObjectRef | None = None
    default_ssl_certificate: ObjectRef | None = None


@dataclasses.dataclass(frozen=True)
class NginxSettings:
    """How nginx runs: ports, binary, state directory, and config-wide knobs."""

    http_port: int = 80
    https_port: int = 443
    listen_address: str = ""          # "" = all addresses; tests use 127.0.0.1
    binary: str = "nginx"
    state_dir: Path = Path("/tmp/ingress-ctrl")
    worker_processes: str = "auto"
    access_log: str = "off"           # a path, "stdout", or "off"
    worker_shutdown_timeout: str = "30s"
    resolvers: tuple[str, ...] = ()   # for ExternalName Services; from /etc/resolv.conf by default
    confirm_timeout: float = 30.0     # seconds to wait for a reload to show the new config version
    # Idle connections each worker keeps per upstream (one upstream per Service port). ingress-nginx's
    # 320 was for its single Lua balancer upstream; nginx zeroes the whole pool per upstream at every
    # load, so 320 here costs ~40 MB and ~25% of the load time per 1,000 Services.
    upstream_keepalive_connections: int = 64
    # What `nginx -t` reads before a reload: "changed" (the blocks a change made, see delta.py; the
    # whole file at start, after a refusal, or when http-level settings change) or "whole".
    config_check: str = "changed"


@dataclasses.dataclass(frozen=True)
class SyncSettings:
    """Debounce: wait `debounce` seconds of quiet, never more than `max_delay` after the first change."""

    debounce: float = 0.1
    max_delay: float = 1.0


@dataclasses.dataclass(frozen=True)
class Settings:
    translate: TranslateSettings = TranslateSettings()
    nginx: NginxSettings = NginxSettings()
    sync: SyncSettings = SyncSettings()
    healthz_port: int = 10254
    healthz_address: str = ""
    shutdown_grace_period: float = 5.0
