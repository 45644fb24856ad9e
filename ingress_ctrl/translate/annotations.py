"""The annotations we honour: a table of parsers, one line each, and nothing that is raw nginx.

Keys keep ingress-nginx's names so migrated Ingresses mean the same thing. Snippet annotations
are refused outright: they were the door for IngressNightmare-style config injection.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from ingress_ctrl.translate.grammar import Invalid
from ingress_ctrl.translate.model import LocationOptions

PREFIX = "nginx.ingress.kubernetes.io/"
_SIZE = re.compile(r"[0-9]{1,9}[kKmMgG]?\Z")
_SECONDS = re.compile(r"[0-9]{1,5}\Z")
REFUSED_SUFFIX = "-snippet"
DEFAULTS = LocationOptions()  # shared by every Ingress without our annotations (nearly all)


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError("must be \"true\" or \"false\"")
    return text == "true"


def _size(text: str) -> str:
    if not _SIZE.match(text):
        raise ValueError("must be a size such as 8m, 512k or 0")
    return text


def _seconds(text: str) -> int:
    if not _SECONDS.match(text) or not 1 <= int(text) <= 86400:
        raise ValueError("must be whole seconds from 1 to 86400")
    return int(text)


# annotation suffix -> (LocationOptions field, parser)
PARSERS: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    "ssl-redirect": ("ssl_redirect", _boolean),
    "force-ssl-redirect": ("force_ssl_redirect", _boolean),
    "proxy-body-size": ("proxy_body_size", _size),
    "proxy-connect-timeout": ("proxy_connect_timeout", _seconds),
    "proxy-read-timeout": ("proxy_read_timeout", _seconds),
    "proxy-send-timeout": ("proxy_send_timeout", _seconds),
}


def parse(annotations: Mapping[str, Any]) -> tuple[LocationOptions, list[tuple[str, str]]]:
    """Options from an Ingress's annotations, and warnings `(field, reason)` for ignored ones.

    Raises `Invalid` for a refused or malformed annotation: the Ingress is then left out, since
    serving it without what its author asked for could expose what they meant to protect.
    """
    values: dict[str, Any] = {}
    warnings: list[tuple[str, str]] = []
    for key in sorted(k for k in annotations if isinstance(k, str) and k.startswith(PREFIX)):  # YAML allows other key types
        suffix = key[len(PREFIX):]
        field = f"metadata.annotations[{key!r}]"
        if suffix.endswith(REFUSED_SUFFIX):
            raise Invalid(field, "snippet annotations are not supported: raw nginx configuration is never accepted")
        entry = PARSERS.get(suffix)
        if entry is None:
            warnings.append((field, "annotation not supported by ingress-ctrl; ignored"))
            continue
        option, parser = entry
        text = annotations[key]
        if not isinstance(text, str):
            raise Invalid(field, "must be a string")
        try:
            value = parser(text)
        except ValueError as error:
            raise Invalid(field, f"{text[:64]!r} {error}") from None
        values[option] = value
    return (dataclasses.replace(DEFAULTS, **values) if values else DEFAULTS), warnings
