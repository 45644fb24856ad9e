"""Leave out the locations nginx does not need: those that answer as nginx would without them.

nginx's load time and memory grow with the number of `location` blocks (every module allocates
and merges its settings for each one), and an Ingress often sends several paths to one Service:
`/`, `/api` and `/static` to the same app make five locations (`= /api`, `/api/`, ...) that all
say the same thing as `/`. Folding them into `/` changes no answer, and nginx loads the config
faster (the unfolded variant in docs/performance.md's table of what nginx's load time is made of).

How nginx picks among the locations translate makes (exact `= p` and prefix ones, never a regex):
the exact location equal to the URI; else, if a location is named the URI plus `/`, a 301 to it
(which `core` prevents by pinning the bare path with an exact location); else the longest prefix
location the URI starts with. So without a prefix location P its URIs go to the longest other
prefix location P starts with, and without an exact location E the URI E goes to the longest
prefix location E starts with: a location whose backend and options equal that one's is left
out. Exact locations go longest first, so that `= /x/` is gone before `= /x` asks whether a
location `/x/` remains; `/` always stays.
"""

from __future__ import annotations

from collections.abc import Mapping

from ingress_ctrl.translate.model import Location

Key = tuple[str, str]  # (match, path), as `core` keys its locations


def fold(locations: Mapping[Key, Location]) -> dict[Key, Location]:
    root = locations[("prefix", "/")]
    backend, options = root.backend, root.options
    if all((loc.backend is backend or loc.backend == backend) and (loc.options is options or loc.options == options)
           for loc in locations.values()):
        return {("prefix", "/"): root}  # a host served by one Service: what the rest comes to, sooner
    kept = dict(locations)
    for path in sorted((p for m, p in kept if m == "prefix" and p != "/"), key=len):
        if _same(kept[("prefix", path)], _longest_prefix(kept, path[:-1])):
            del kept[("prefix", path)]
    for path in sorted((p for m, p in kept if m == "exact"), key=len, reverse=True):
        if ("prefix", path + "/") in kept or ("exact", path + "/") in kept:
            continue  # without `= path`, nginx would redirect `path` to `path/`
        if _same(kept[("exact", path)], _longest_prefix(kept, path)):
            del kept[("exact", path)]
    return kept


def _longest_prefix(kept: Mapping[Key, Location], uri: str) -> Location:
    """The prefix location nginx picks for `uri` (prefix locations end with `/`; `/` is always there)."""
    end = len(uri)
    while (end := uri.rfind("/", 0, end)) >= 0:
        found = kept.get(("prefix", uri[:end + 1]))
        if found is not None:
            return found
    return kept[("prefix", "/")]


def _same(location: Location, other: Location) -> bool:
    return location.backend == other.backend and location.options == other.options
