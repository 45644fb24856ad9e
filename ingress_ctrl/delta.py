"""The part of a rendered config that `nginx -t` has not yet seen, as a config of its own.

`nginx -t` on the whole file parses all of it: at 1,000 Ingresses that is 0.35–0.6 s here, and
the master then parses the whole file once more to load it. Everything but the blocks a change
made is byte for byte what the master already runs, so checking the whole again mostly repeats
the master's last load. The delta config is the live config's frame (everything outside the
server and upstream blocks: http-level settings, the internal status server) with only the
blocks that are new, the default server, and the upstreams the new servers name. It tells a
bad block as `nginx -t` on the whole would, in a few milliseconds.

What it cannot see is how a block fares beside the old ones (a limit the whole file crosses,
two blocks that clash). The master's own load still checks everything, and a config the master
refuses never replaces the live one; `NginxProcess` notices the refusal, puts the last good
file back, and checks the whole file before the next load.
"""

from __future__ import annotations

import dataclasses
import re

# Top-level blocks of the http{} context as the templates lay them out: each after an empty line,
# indented four spaces. The internal status server, after its comment, ends the last block.
_BLOCK_START = re.compile(r"\n\n(?=    (?:upstream \S+ \{|server \{|# Internal: ))")
_UPSTREAM_NAME = re.compile(r"    upstream (\S+) \{")
_PROXY_TO = re.compile(r"proxy_pass http://([^;$\s]+);")
# Sized from the number and length of the host names: not part of the frame, or every new host
# past 512 would make the whole file be checked. The master's load checks them with every name.
_NAME_HASH_SIZES = re.compile(r"server_names_hash_(?:bucket|max)_size \d+;")


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a config is made of, by hash: enough to tell which blocks another config adds.

    Hashes rather than the blocks themselves: the live config's text stays on disk only. A hash
    collision would only leave a block to be checked by the master's load instead.
    """

    frame: int
    blocks: frozenset[int]


@dataclasses.dataclass(frozen=True)
class Delta:
    text: str      # the config to `nginx -t`
    blocks: int    # server and upstream blocks in it
    of: int        # ... out of this many in the whole config


def layout_and_delta(text: str, version: str, live: Layout | None) -> tuple[Layout, Delta | None]:
    """The layout of `text`, and its delta against the `live` layout (None: check the whole,
    because nothing is live or the frame changed)."""
    parts = _BLOCK_START.split(text)
    if len(parts) < 2:  # not laid out as the templates do: nothing to go by
        return Layout(hash(text), frozenset()), None
    head, *blocks, tail = parts
    frame = hash((_NAME_HASH_SIZES.sub("", head.replace(version, "")), tail.replace(version, "")))
    hashes = [hash(block) for block in blocks]
    layout = Layout(frame, frozenset(hashes))
    if live is None or live.frame != frame:
        return layout, None
    servers = [block for block, digest in zip(blocks, hashes)
               if block.startswith("    server {") and (digest not in live.blocks or " default_server;" in block)]
    named = {name for block in servers for name in _PROXY_TO.findall(block)}
    kept = [block for block, digest in zip(blocks, hashes)
            if digest not in live.blocks or block in servers or _upstream_name(block) in named]
    return layout, Delta("\n\n".join([head, *kept, tail]), len(kept), len(blocks))


def _upstream_name(block: str) -> str | None:
    match = _UPSTREAM_NAME.match(block)
    return match.group(1) if match else None
