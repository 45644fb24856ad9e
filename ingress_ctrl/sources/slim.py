"""What the Store keeps of an object: the fields translate and the reporters read, nothing else.

Objects as the API (or a manifest) has them carry much that nothing here reads: managedFields,
the `last-applied-configuration` annotation (a second copy of the object), every Service's
clusterIPs and selector, every endpoint's targetRef and zone, a Secret's other keys. At 10,000
Ingresses that was most of the controller's memory, so every source passes objects through
`slim` before they reach the Store.

A shape lists the keys kept at each level. A value of an unexpected type (a list where a mapping
belongs, a number where a list belongs) is kept whole, so translate sees exactly what it would
have seen in the full object and reports the same problems: its output is the same for the
slim object as for the full one (tests/translate/test_slim.py).

Much of what is left repeats: kinds, namespaces and Service names are interned, and small parts
that are often equal (a backend named on every path of an Ingress, a port list, `ready: true`,
the load balancer status every served Ingress carries) are shared: equal parts become one
object. Objects in the Store are never changed in place, so sharing is safe.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Union

from ingress_ctrl.state import Object
from ingress_ctrl.translate.annotations import PREFIX as OPTION_ANNOTATION_PREFIX
from ingress_ctrl.translate.backends import SERVICE_NAME_LABEL
from ingress_ctrl.translate.classes import DEFAULT_CLASS_ANNOTATION, LEGACY_CLASS_ANNOTATION


class _Leaf:
    """A value kept as it is (`KEEP`), or interned when it is a string (`INTERN`)."""

    def __init__(self, intern: bool) -> None:
        self.intern = intern


class Shared:
    """A part reduced to `shape`, then replaced by an equal part seen recently, if any."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape


KEEP = _Leaf(intern=False)
INTERN = _Leaf(intern=True)
Shape = Union[_Leaf, Shared, dict[str, "Shape"], list["Shape"], Callable[[Any], Any]]
SHARED_LIMIT = 4096  # parts remembered for sharing; all are forgotten when there are more
SHARED_SIZE = 256  # longest repr of a part that is shared: large parts are rare, and kept as they are
_shared: dict[str, Any] = {}


def _keep(value: Any) -> Any:
    return value


def _intern(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _compile(shape: Shape) -> Callable[[Any], Any]:
    """A function reducing a value to `shape`: mappings keep the shape's keys (when present), lists
    have each element reduced; a value that is not what the shape expects is returned unchanged.
    Compiled once per kind: a call per level, no interpretation of the shape per object."""
    if isinstance(shape, _Leaf):
        return _intern if shape.intern else _keep
    if isinstance(shape, dict):
        fields = tuple((key, _compile(sub)) for key, sub in shape.items())

        def mapping(value: Any) -> Any:
            if type(value) is not dict and not isinstance(value, Mapping):
                return value
            return {key: field(value[key]) for key, field in fields if key in value}
        return mapping
    if isinstance(shape, list):
        element = _compile(shape[0])
        return lambda value: [element(item) for item in value] if isinstance(value, list) else value
    if isinstance(shape, Shared):
        inner = _compile(shape.shape)
        return lambda value: _share(inner(value))
    return shape


def _share(value: Any) -> Any:
    """An equal value seen before, else `value`. The key is the repr: for what JSON and YAML
    produce it tells apart what `==` does not (`1`, `1.0`, `True`; `"1"` and `1`)."""
    key = repr(value)
    if len(key) > SHARED_SIZE:
        return value
    found = _shared.get(key)
    if found is None:
        if len(_shared) >= SHARED_LIMIT:
            _shared.clear()
        _shared[key] = found = value
    return found


def _only_keys(keep: Callable[[str], bool]) -> Callable[[Any], Any]:
    """A filter for annotations and labels: the string keys `keep` accepts, values interned."""
    def only(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {sys.intern(k): _intern(v) for k, v in value.items() if isinstance(k, str) and keep(k)}
    return only


_INGRESS_ANNOTATIONS = _only_keys(lambda k: k.startswith(OPTION_ANNOTATION_PREFIX) or k == LEGACY_CLASS_ANNOTATION)
_CLASS_ANNOTATIONS = _only_keys(lambda k: k == DEFAULT_CLASS_ANNOTATION)
_SLICE_LABELS = _only_keys(lambda k: k == SERVICE_NAME_LABEL)
_LOAD_BALANCER = Shared({"loadBalancer": {"ingress": KEEP}})  # the status reporter compares and copies these
_PORTS = Shared([{"name": INTERN, "port": KEEP}])
_BACKEND = Shared({"service": {"name": INTERN, "port": {"number": KEEP, "name": INTERN}}, "resource": KEEP})

_KINDS: Mapping[str, dict[str, Shape]] = {
    "Ingress": {
        "metadata": {"name": KEEP, "namespace": INTERN, "creationTimestamp": KEEP, "annotations": Shared(_INGRESS_ANNOTATIONS),
                     "uid": KEEP, "resourceVersion": KEEP, "generation": KEEP},  # the last three: Events and status
        "spec": {
            "ingressClassName": INTERN,
            "defaultBackend": _BACKEND,
            "rules": [{"host": KEEP, "http": {"paths": [{"path": KEEP, "pathType": INTERN, "backend": _BACKEND}]}}],
            "tls": [{"hosts": KEEP, "secretName": KEEP}],
        },
        "status": _LOAD_BALANCER,
    },
    "IngressClass": {
        "metadata": {"name": INTERN, "annotations": _CLASS_ANNOTATIONS},
        "spec": {"controller": INTERN},
    },
    "Service": {
        "metadata": {"name": INTERN, "namespace": INTERN},
        "spec": {"type": INTERN, "externalName": KEEP, "ports": _PORTS},
        "status": _LOAD_BALANCER,
    },
    "EndpointSlice": {
        "metadata": {"name": KEEP, "namespace": INTERN, "labels": _SLICE_LABELS},
        "addressType": INTERN,
        "endpoints": [{"addresses": KEEP, "conditions": Shared({"ready": KEEP})}],
        "ports": _PORTS,
    },
    "Endpoints": {
        "metadata": {"name": INTERN, "namespace": INTERN},
        "subsets": [{"addresses": [{"ip": KEEP}], "ports": _PORTS}],
    },
    "Secret": {
        "metadata": {"name": KEEP, "namespace": INTERN},
        "type": INTERN,
        "data": {"tls.crt": KEEP, "tls.key": KEEP},
    },
}
SHAPES: Mapping[str, dict[str, Shape]] = {kind: {"apiVersion": INTERN, "kind": INTERN, **shape} for kind, shape in _KINDS.items()}
_REDUCERS: Mapping[str, Callable[[Any], Any]] = {kind: _compile(shape) for kind, shape in SHAPES.items()}


def reuse(old: Any, new: Any) -> Any:
    """`new`, with each part equal to the same part of `old` (the version of the object the Store
    holds) taken from `old`: a new version shares what did not change with the one it replaces.

    The old version can outlive its replacement in the Store: translate's memos hold the objects
    of the last syncs until later ones no longer ask for them, so an Ingress whose status alone
    changed (the 10,000 status writes after start-up come back as events, and start no sync) was
    held twice, its spec included. Equal means equal reprs as well, as for `Shared`: `1`, `1.0`
    and `True` stay apart. Mappings are compared key by key, everything else whole.
    """
    if type(old) is dict and type(new) is dict:
        if old == new and repr(old) == repr(new):
            return old
        return {key: reuse(old[key], value) if key in old else value for key, value in new.items()}
    if old == new and type(old) is type(new) and repr(old) == repr(new):
        return old
    return new


def slim(obj: Object) -> Object:
    """The part of `obj` that translate and the reporters read (the object itself for kinds the
    Store does not hold)."""
    kind = obj.get("kind")
    reduce = _REDUCERS.get(kind) if isinstance(kind, str) else None
    return obj if reduce is None else reduce(obj)  # type: ignore[no-any-return]
