"""Is this Ingress ours? The IngressClass rules, as ingress-nginx applied them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingress_ctrl.settings import ClassSettings
from ingress_ctrl.state import Snapshot

LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


class ClassMatcher:
    """Decides class membership against one snapshot's IngressClasses."""

    def __init__(self, snapshot: Snapshot, settings: ClassSettings) -> None:
        self._settings = settings
        self._ours: set[str] = set()
        self._default_is_ours = False
        for (_, name), ingress_class in snapshot.of("IngressClass").items():
            if _spec(ingress_class).get("controller") == settings.controller_class:
                self._ours.add(name)
                if _annotations(ingress_class).get(DEFAULT_CLASS_ANNOTATION) == "true":
                    self._default_is_ours = True

    def is_ours(self, ingress: Mapping[str, Any]) -> bool:
        class_name = _spec(ingress).get("ingressClassName")
        if class_name is not None:
            return isinstance(class_name, str) and class_name in self._ours
        legacy = _annotations(ingress).get(LEGACY_CLASS_ANNOTATION)
        if legacy is not None:
            return legacy == self._settings.ingress_class
        return self._default_is_ours or self._settings.watch_ingress_without_class
