"""What we accept from users, as grammars (allow-lists), never as blocklists.

Every value that can reach nginx.conf goes through one of these. A value that fails raises
`Invalid`, which the caller turns into a `Problem` naming the object and the field.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any


class Invalid(Exception):
    """A field failed its grammar or type; `field` is a JSON-path-like location."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"{_LABEL}\Z")
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")
IANA_SVC_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?\Z")
# RFC 3986 path characters without ; $ ' " \ { } # % ? whitespace and controls: what nginx
# would read as syntax, variables or escapes has no place in a location.
PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@/-]*\Z")
MAX_PATH_LENGTH = 1024
_LETTER = re.compile("[a-z]")


def mapping(value: Any, field: str, *, optional: bool = False) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the ABC check's cost
        return value
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(field, "must be an object")
    return value


def sequence(value: Any, field: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise Invalid(field, "must be a list")
    return value


def string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Invalid(field, "must be a string")
    return value


def dns_label(value: Any, field: str) -> str:
    text = string(value, field)
    if not DNS1123_LABEL.match(text):
        raise Invalid(field, f"{text!r} is not a DNS-1123 label")
    return text


def dns_subdomain(value: Any, field: str) -> str:
    text = string(value, field)
    if len(text) > 253 or not DNS1123_SUBDOMAIN.match(text):
        raise Invalid(field, f"{text!r} is not a DNS-1123 subdomain")
    return text


def service_name(value: Any, field: str) -> str:
    text = string(value, field)
    if not DNS1035_LABEL.match(text):
        raise Invalid(field, f"{text!r} is not a valid Service name (DNS-1035 label)")
    return text


def host(value: Any, field: str) -> str:
    """A rule or TLS host: a DNS name or `*.` + a DNS name, compared case-insensitively."""
    text = string(value, field).lower()
    bare = text[2:] if text.startswith("*.") else text
    if len(text) > 253 or not DNS1123_SUBDOMAIN.match(bare):
        raise Invalid(field, f"{text!r} is not a valid host (DNS-1123 subdomain, optionally with a leading '*.')")
    if bare.replace(".", "").isdigit() and _is_ip(bare):  # only digits and dots can be an address here
        raise Invalid(field, f"{text!r} is an IP address; hosts must be DNS names")
    return text


def path(value: Any, field: str) -> str:
    text = string(value, field)
    why = _path_problem(text)
    if why is not None:
        raise Invalid(field, why)
    return text


@functools.lru_cache(maxsize=1024)
def _path_problem(text: str) -> str | None:
    """Why `text` is not an acceptable path, or None (cached: a few paths recur in every Ingress)."""
    if len(text) > MAX_PATH_LENGTH:
        return f"longer than {MAX_PATH_LENGTH} characters"
    if not PATH.match(text):
        return f"{text!r} must start with '/' and use only letters, digits and ._~!&()*+,=:@/-"
    if "//" in text or "/." in text and any(seg in (".", "..") for seg in text.split("/")):
        # nginx normalizes request URIs, so such a location could never match.
        return f"{text!r} has an empty, '.' or '..' segment"
    return None


def port_number(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Invalid(field, f"{value!r} is not a port number (1-65535)")
    return value


def port_name(value: Any, field: str) -> str:
    text = string(value, field)
    if not IANA_SVC_NAME.match(text) or "--" in text or not _LETTER.search(text):
        raise Invalid(field, f"{text!r} is not a valid port name")
    return text


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")


def ip_address(value: Any, field: str) -> str:
    text = string(value, field)
    if _IPV4.match(text):  # the common case, without ipaddress's cost
        return text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(field, f"{text!r} is not an IP address") from None
    if getattr(address, "scope_id", None) is not None:  # ipaddress takes any text after '%'
        raise Invalid(field, f"{text!r} has a zone index; use an address without '%'")
    return str(address)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
