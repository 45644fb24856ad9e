"""Hypothesis strategies: a whole cluster's worth of objects, well-formed and hostile.

`worlds()` draws a `World`: IngressClasses, Services (ClusterIP and ExternalName),
EndpointSlices, v1 Endpoints, TLS Secrets (see `certs.pool`), Ingresses, and the translate flags.
Names come from small pools and the objects share a plan (Service -> port), so that references
(Ingress -> Service -> EndpointSlice, Ingress -> Secret, flags -> objects) actually resolve.

Hostility comes two ways. A world's `level` is the chance (in %) that any one field, simple or
compound, is replaced; its `target` is one kind of field (host, path, Service name, ...) that is
replaced in half of its occurrences, so that a hostile value often sits in an otherwise valid
Ingress. A replacement is a good value with nginx syntax spliced in, hostile text (syntax,
control characters, unicode, very long), a near miss, a value of the wrong type, or nothing.

Every hostile fragment that carries `MARKER` also carries a character that no grammar accepts in
any field, so `MARKER` must never appear in a rendered config.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from ingress_ctrl.settings import ClassSettings, ObjectRef, TranslateSettings
from ingress_ctrl.state import Object
from tests.fuzz import certs

CONTROLLER = "k8s.io/ingress-ctrl"
MARKER = "_INJ_"
MISSING = object()  # a field left out

NAMESPACES = ("default", "team-a")
CLASS_NAMES = ("nginx", "other")
CLASS_CHOICES = ("nginx",) * 5 + ("other",)
SERVICE_NAMES = ("web", "api", "ext", "b-2", "s" * 63)
SECRET_NAMES = ("tls-a", "tls-b", "wild.cert")
PORT_NAMES = ("http", "grpc", "")
PORT_NUMBERS = (80, 8080, 443, 1, 65535)
LABELS = ("foo", "bar", "a", "x-1", "0a", "q" * 63)
PATH_SEGMENTS = ("a", "b", "api", "v1", "x.y", "~u", "a-b", "(x)", "*", "@", "=", ",", "+", "!", "&", ":", "A", "Z9")
IPS = ("10.0.0.1", "10.0.0.2", "192.168.1.9", "0.0.0.0", "fd00::1", "::1", "2001:db8::5", "::ffff:10.1.2.3")
TIMESTAMPS = ("2024-01-01T00:00:00Z", "2025-06-01T12:00:00Z", "")
ANNOTATION_GOOD = {
    "ssl-redirect": ("true", "false"),
    "force-ssl-redirect": ("true", "false"),
    "proxy-body-size": ("0", "8m", "512k", "1g", "123456789"),
    "proxy-connect-timeout": ("1", "30", "86400"),
    "proxy-read-timeout": ("5", "600"),
    "proxy-send-timeout": ("60",),
}
ANNOTATION_ODD = {  # refused (the Ingress is rejected) or unknown (a warning)
    "configuration-snippet": ("return 200 x;",),
    "server-snippet": ("location /x { }",),
    "rewrite-target": ("/",),
}
PREFIX = "nginx.ingress.kubernetes.io/"
TARGETS = (None, None, None, None, "name", "namespace", "port", "service", "path", "path_type", "host", "tls", "annotation", "class",
           "service_port", "external", "address", "slice_port", "secret")

FRAGMENTS = (
    f";return 200 {MARKER};", "{", "}", f"}} location / {{ return 200 {MARKER}; }} #", '"', "'", f'";{MARKER} "',
    "$host", f"${{{MARKER}}}", f"$request_uri{MARKER};", "\n", f"\n{MARKER} on;\n", "\r\n", "\t", " ", "\x00",
    f"#{MARKER}", "\\", "\\x22", "`", "%0a", "%3B", "é", "\u202e", "\ufeff", "\u00a0", "\u212a", "日本語",
    "\U0001f600", "\x7f", "\x1b[31m", "/../", "//", "?a=1", "*.", ".", "-",
)
# field-specific near misses: values a lax grammar would let through
NEAR_MISSES = (
    "fe80::1%eth0", f"fe80::1%;{MARKER}", "10.0.0.1:80", "10.0.0.1 ", "1.2.3.4", "[::1]", "localhost.",
    "*.*.foo", "*", "foo..bar", "-foo", "foo-", "FOO.COM", "/a//b", "/a/./b", "/a/..", "a" * 64, "/" + "a" * 1100,
    "8M ", "8 m", "0x10", "1e3", "-1", "86401", "True", "TRUE", "yes", "http2", "80", "0", "65536",
    "kubernetes.io/tls ", "kubernetes.io/TLS", "Opaque",
)


def _long(unit: str, count: int) -> str:
    return unit * count


hostile_text = st.one_of(
    st.builds(lambda head, parts: head + "".join(parts),
              st.sampled_from(("", "a", "/a", "foo.com", "web", "80", "10.0.0.1")),
              st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4)),
    st.sampled_from(NEAR_MISSES),
    st.text(max_size=24),
    st.builds(_long, st.sampled_from(("a", "/a", "a.", "é", ";", "{", "\n")), st.integers(200, 5000)),
)
wrong_type = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just([{"a": 1}]), st.just({"spec": None}),
)


@dataclasses.dataclass(frozen=True)
class World:
    objects: tuple[Object, ...]
    settings: TranslateSettings
    level: int  # % of fields replaced
    target: str | None = None  # the kind of field attacked in half of its occurrences


class _Fields:
    """Draws each field well-formed, or with probability `level`% hostile, mistyped or missing."""

    def __init__(self, draw: Any, level: int, namespace: str, target: str | None) -> None:
        self.draw = draw
        self.level = level
        self.namespace = namespace
        self.target = target  # one kind of field that is attacked in most of its occurrences
        self.shared = False  # the target is a name all objects share, tainted once for all

    def __call__(self, good: st.SearchStrategy[Any] | Any, kind: str | None = None) -> Any:
        hit = bool(self.level) and self.draw(st.integers(0, 99)) < self.level
        if not hit and kind is not None and kind == self.target and not self.shared:
            hit = self.draw(st.booleans())
        if hit:
            kind = self.draw(st.sampled_from(("taint", "taint", "hostile", "hostile", "wrong", "missing")))
            if kind == "taint":  # a good value with syntax spliced in: what a lax grammar would miss
                value = self.draw(good) if isinstance(good, st.SearchStrategy) else good
                if isinstance(value, str | int) and not isinstance(value, bool):
                    return self.taint(str(value))
                kind = "hostile"
            if kind == "hostile":
                return self.draw(hostile_text)
            if kind == "wrong":
                return self.draw(wrong_type)
            return MISSING
        return self.draw(good) if isinstance(good, st.SearchStrategy) else good

    def taint(self, value: str) -> str:
        at = self.draw(st.integers(min(1, len(value)), len(value)))  # keep a leading '/'
        return value[:at] + "".join(self.draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3))) + value[at:]

    def dict(self, **fields: Any) -> dict[str, Any]:
        """A mapping of the fields that are not MISSING (each already drawn through `self`)."""
        return {k: v for k, v in fields.items() if v is not MISSING}


def _host(draw: Any) -> str:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=4))
    host = ".".join(labels)
    if draw(st.integers(0, 4)) == 0:
        host = "*." + host
    if draw(st.integers(0, 5)) == 0:
        host = host.upper()
    return host


def _path(draw: Any) -> str:
    segments = draw(st.lists(st.sampled_from(PATH_SEGMENTS), max_size=4))
    text = "/" + "/".join(segments)
    if segments and draw(st.booleans()):
        text += "/"
    return text


hosts = st.composite(_host)()
paths = st.composite(_path)()


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What this world's objects agree on, so that references resolve: Service → its port."""

    services: dict[str, tuple[int, str]]  # name -> (port number, port name or "")
    secrets: tuple[str, ...]


def _namespace(draw: Any, f: _Fields) -> str:
    """Mostly the world's own namespace, so that references resolve."""
    return f.namespace if draw(st.integers(0, 9)) else draw(st.sampled_from(NAMESPACES))


def _meta(draw: Any, f: _Fields, names: tuple[str, ...] | str, namespaced: bool = True, **extra: Any) -> dict[str, Any]:
    meta = f.dict(name=f(names if isinstance(names, str) else st.sampled_from(names), kind="name"), **extra)
    if namespaced:
        namespace = f(_namespace(draw, f), kind="namespace")
        if namespace is not MISSING:
            meta["namespace"] = namespace
    return meta


def _backend(draw: Any, f: _Fields, plan: _Plan) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(plan.services))) if draw(st.integers(0, 9)) else draw(st.sampled_from(SERVICE_NAMES))
    number, port_name = plan.services.get(name, (80, "http"))
    if port_name and draw(st.integers(0, 2)) == 0:
        port = f.dict(name=f(port_name, kind="port"))
    else:
        port = f.dict(number=f(number if draw(st.integers(0, 9)) else draw(st.sampled_from(PORT_NUMBERS)), kind="port"))
    service = f.dict(name=f(name, kind="service"), port=f(port))
    return f.dict(service=f(service))


def _ingress(draw: Any, f: _Fields, plan: _Plan) -> dict[str, Any]:
    def path_entry() -> dict[str, Any]:
        return f.dict(path=f(paths, kind="path"), pathType=f(st.sampled_from(("Prefix", "Exact", "ImplementationSpecific")), kind="path_type"),
                      backend=f(_backend(draw, f, plan)))

    rules, rule_hosts = [], []
    for _ in range(draw(st.sampled_from((0, 1, 1, 1, 2, 2, 3)))):
        host = f(hosts, kind="host") if draw(st.integers(0, 4)) else MISSING
        if isinstance(host, str):
            rule_hosts.append(host)
        entries = [path_entry() for _ in range(draw(st.sampled_from((0, 1, 1, 2, 2, 3))))]
        rules.append(f.dict(host=host, http=f(f.dict(paths=f(entries)))))
    tls = []
    for _ in range(draw(st.integers(0, 2))):
        pick = st.sampled_from(rule_hosts) if rule_hosts and draw(st.integers(0, 3)) else hosts
        tls_hosts = [f(pick, kind="tls") for _ in range(draw(st.integers(0, 2)))]
        secret = f(st.sampled_from(plan.secrets), kind="tls") if draw(st.integers(0, 9)) else MISSING
        tls.append(f.dict(hosts=f([h for h in tls_hosts if h is not MISSING]), secretName=secret))
    annotations: dict[Any, Any] = {}
    suffixes = draw(st.lists(st.sampled_from(sorted(ANNOTATION_GOOD)), max_size=3, unique=True))
    if draw(st.integers(0, 19)) == 0:
        suffixes.append(draw(st.sampled_from(sorted(ANNOTATION_ODD))))
    for suffix in suffixes:
        value = f(st.sampled_from(ANNOTATION_GOOD.get(suffix) or ANNOTATION_ODD[suffix]), kind="annotation")
        if value is not MISSING:
            annotations[PREFIX + suffix] = value
    how = draw(st.sampled_from(("name", "name", "name", "name", "legacy", "none")))
    spec = f.dict(
        ingressClassName=f(st.sampled_from(CLASS_CHOICES), kind="class") if how == "name" else MISSING,
        rules=f(rules) if rules else MISSING,
        tls=f(tls) if tls else MISSING,
        defaultBackend=f(_backend(draw, f, plan)) if draw(st.integers(0, 3)) == 0 else MISSING,
    )
    if how == "legacy":
        annotations["kubernetes.io/ingress.class"] = f(st.sampled_from(CLASS_CHOICES))
    if draw(st.integers(0, 19)) == 0:
        annotations[draw(st.sampled_from((1, None, ("t",))))] = "x"  # a non-string key (YAML allows it)
    meta = _meta(draw, f, ("app", "app-2", "z"), annotations=f(annotations), creationTimestamp=f(st.sampled_from(TIMESTAMPS)))
    return f.dict(kind="Ingress", metadata=meta, spec=f(spec))


def _service(draw: Any, f: _Fields, name: str, number: int, port_name: str) -> dict[str, Any]:
    ports = [f.dict(name=f(port_name, kind="service_port") if port_name else MISSING, port=f(number, kind="service_port"))]
    if draw(st.integers(0, 3)) == 0:
        ports.append(f.dict(name=f(st.sampled_from(PORT_NAMES)), port=f(st.sampled_from(PORT_NUMBERS))))
    external = draw(st.integers(0, 4)) == 0
    spec = f.dict(type=f("ExternalName" if external else "ClusterIP"),
                  externalName=f(st.sampled_from(("example.com", "db.team-a.svc.cluster.local", "x")), kind="external") if external else MISSING,
                  ports=f(ports))
    return f.dict(kind="Service", metadata=_meta(draw, f, name), spec=f(spec))


def _endpoint_slice(draw: Any, f: _Fields, name: str, port_name: str) -> dict[str, Any]:
    endpoints = []
    for _ in range(draw(st.sampled_from((0, 1, 1, 2, 3)))):
        addresses = [f(st.sampled_from(IPS), kind="address") for _ in range(draw(st.sampled_from((0, 1, 1, 2))))]
        conditions = f.dict(ready=f(st.sampled_from((True, True, True, False, None))))
        endpoints.append(f.dict(addresses=f([a for a in addresses if a is not MISSING]), conditions=f(conditions)))
    ports = [f.dict(name=f(port_name, kind="slice_port") if port_name else MISSING, port=f(st.sampled_from((8080, 80, 9000)), kind="slice_port"))]
    labels = f.dict(**{"kubernetes.io/service-name": f(name)})
    meta = _meta(draw, f, (f"{name}-1", f"{name}-2"), labels=f(labels))
    address_type = f(st.sampled_from(("IPv4", "IPv4", "IPv6", "FQDN"))) if draw(st.integers(0, 4)) else MISSING
    return f.dict(kind="EndpointSlice", metadata=meta, addressType=address_type, ports=f(ports), endpoints=f(endpoints))


def _endpoints(draw: Any, f: _Fields, name: str, port_name: str) -> dict[str, Any]:
    subsets = []
    for _ in range(draw(st.integers(0, 2))):
        addresses = [f.dict(ip=f(st.sampled_from(IPS), kind="address")) for _ in range(draw(st.integers(0, 2)))]
        ports = [f.dict(name=f(port_name) if port_name else MISSING, port=f(st.sampled_from((8080, 80))))]
        subsets.append(f.dict(addresses=f(addresses), ports=f(ports)))
    return f.dict(kind="Endpoints", metadata=_meta(draw, f, name), subsets=f(subsets))


def _secret(draw: Any, f: _Fields, name: str) -> dict[str, Any]:
    case = draw(st.sampled_from(certs.GOOD if draw(st.booleans()) else sorted(certs.pool())))
    crt, key = certs.pool()[case]
    data = f.dict(**{"tls.crt": f(crt, kind="secret"), "tls.key": f(key, kind="secret")})
    return f.dict(kind="Secret", metadata=_meta(draw, f, name), type=f("kubernetes.io/tls"), data=f(data))


def _ingress_class(draw: Any, f: _Fields) -> dict[str, Any]:
    default = f(st.sampled_from(("true", "false"))) if draw(st.booleans()) else MISSING
    meta = _meta(draw, f, CLASS_NAMES, namespaced=False,
                 annotations=f(f.dict(**{"ingressclass.kubernetes.io/is-default-class": default})))
    return f.dict(kind="IngressClass", metadata=meta,
                  spec=f(f.dict(controller=f(st.sampled_from((CONTROLLER, CONTROLLER, "example.com/other"))))))


@st.composite
def worlds(draw: Any) -> World:
    level = draw(st.sampled_from((0, 0, 0, 1, 2, 5, 10, 25)))
    f = _Fields(draw, level, draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(TARGETS)))
    names = draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=3, unique=True))
    # names and namespaces that every object of the world agrees on, hostile ones included: they
    # end up in upstream names, which only resolve when Service and reference share them
    if f.target == "service" and draw(st.booleans()):
        names[0], f.shared = f.taint(names[0]), True
    if f.target == "namespace" and draw(st.booleans()):
        f.namespace, f.shared = f.taint(f.namespace), True
    plan = _Plan(
        {name: (draw(st.sampled_from(PORT_NUMBERS)), draw(st.sampled_from(PORT_NAMES))) for name in names},
        tuple(draw(st.lists(st.sampled_from(SECRET_NAMES), min_size=1, max_size=2, unique=True))),
    )
    objects: list[Any] = [_ingress_class(draw, f) for _ in range(draw(st.integers(0, 1)))]
    if draw(st.integers(0, 9)):  # usually our class "nginx" (the last object of a key wins)
        objects.append(f.dict(kind="IngressClass", metadata=f.dict(name=f("nginx")), spec=f(f.dict(controller=f(CONTROLLER)))))
    for name, (number, port_name) in plan.services.items():
        if draw(st.integers(0, 7)):
            objects.append(_service(draw, f, name, number, port_name))
        objects += [_endpoint_slice(draw, f, name, port_name) for _ in range(draw(st.sampled_from((0, 1, 1, 1, 2))))]
        if draw(st.integers(0, 5)) == 0:
            objects.append(_endpoints(draw, f, name, port_name))
    objects += [_secret(draw, f, name) for name in plan.secrets if draw(st.integers(0, 5))]
    objects += [_ingress(draw, f, plan) for _ in range(draw(st.integers(1, 4)))]
    # the flags are the operator's, not the objects' authors': well-formed, naming well-formed objects
    default_backend = default_certificate = None
    if draw(st.integers(0, 3)) == 0:
        default_backend = ObjectRef(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(SERVICE_NAMES)))
    if draw(st.integers(0, 3)) == 0:
        default_certificate = ObjectRef(draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(SECRET_NAMES)))
    settings = TranslateSettings(
        classes=ClassSettings(watch_ingress_without_class=draw(st.booleans())),
        default_backend_service=default_backend,
        default_ssl_certificate=default_certificate,
    )
    return World(tuple(o for o in objects if o is not MISSING), settings, level, f.target)


def leaf_strings(value: Any) -> set[str]:
    """Every string anywhere in `value` (keys included): what the objects' authors supplied."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found
