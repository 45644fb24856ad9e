"""The template contract: plain frozen dataclasses that `render` turns into nginx.conf.

Every string in here has passed `grammar` already; the templates still quote them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

from ingress_ctrl.state import ObjectKey


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Problem:
    """Something wrong with one object: which object, which field, why."""

    object: ObjectKey
    field: str
    reason: str
    rejected: bool = False  # True: the whole object was left out

    def __str__(self) -> str:
        verdict = "rejected" if self.rejected else "warning"
        return f"{self.object}: {self.field}: {self.reason} ({verdict})"


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Endpoint:
    address: str  # a validated IPv4 or IPv6 address
    port: int


@dataclasses.dataclass(frozen=True, slots=True)
class Upstream:
    """One per Service port in use, shared by every Ingress that routes to it."""

    name: str
    endpoints: tuple[Endpoint, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Backend:
    """Where a location sends requests: an upstream, an ExternalName host, or a fixed status."""

    upstream: str | None = None
    external_host: str | None = None
    external_port: int | None = None
    status: int | None = None


NOT_FOUND = Backend(status=404)
UNAVAILABLE = Backend(status=503)


@dataclasses.dataclass(frozen=True, slots=True)
class LocationOptions:
    """Per-location knobs from annotations (see translate.annotations)."""

    ssl_redirect: bool = False        # redirect plain HTTP to HTTPS when the host has TLS
    force_ssl_redirect: bool = False  # ... even when it has none
    proxy_body_size: str | None = None
    proxy_connect_timeout: int | None = None
    proxy_read_timeout: int | None = None
    proxy_send_timeout: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """`exact` is nginx `location = path`; `prefix` is a plain prefix location (path ends with /)."""

    match: Literal["exact", "prefix"]
    path: str
    backend: Backend
    options: LocationOptions = LocationOptions()


@dataclasses.dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate chain and its key, in one PEM file named by its content hash."""

    pem: bytes

    @property
    def id(self) -> str:
        return hashlib.sha256(self.pem).hexdigest()[:32]


@dataclasses.dataclass(frozen=True, slots=True)
class ServerName:
    """An exact host, or `*.suffix`, which matches exactly one more DNS label."""

    host: str

    @property
    def is_wildcard(self) -> bool:
        return self.host.startswith("*.")


@dataclasses.dataclass(frozen=True, slots=True)
class Server:
    name: ServerName | None  # None: the default (catch-all) server
    locations: tuple[Location, ...]
    certificate: Certificate | None = None  # None: the default certificate


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    servers: tuple[Server, ...]
    default_server: Server
    upstreams: tuple[Upstream, ...]
    default_certificate: Certificate | None = None  # None: the self-signed one made at start

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        found = {s.certificate.id: s.certificate for s in self.servers if s.certificate}
        if self.default_certificate:
            found[self.default_certificate.id] = self.default_certificate
        return tuple(found[k] for k in sorted(found))


@dataclasses.dataclass(frozen=True, slots=True)
class Translation:
    config: Config
    problems: tuple[Problem, ...]
    served: tuple[ObjectKey, ...]    # Ingresses of our class that are (at least partly) served
    rejected: tuple[ObjectKey, ...]  # Ingresses of our class left out entirely
