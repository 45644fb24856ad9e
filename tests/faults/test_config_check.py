"""What `nginx -t` reads before a reload (ingress_ctrl/delta.py): the blocks a change made, checked
as a config of their own; the whole file at start, after the master refused a config, or with
--config-check whole. Real nginx throughout; the refused configs are text edits of rendered ones
(no Ingress can produce them: translate and render refuse such input before nginx sees it)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ingress_ctrl.delta import layout_and_delta
from ingress_ctrl.nginx import NginxError, NginxProcess
from ingress_ctrl.render import Rendered, render
from ingress_ctrl.settings import NginxSettings, TranslateSettings
from ingress_ctrl.state import Store
from ingress_ctrl.translate import translate
from tests.faults import harness as h

HOSTS = ("a.example", "b.example", "c.example")


def rendered_world(settings: NginxSettings, echo_port: int, hosts: tuple[str, ...]) -> Rendered:
    """One Ingress and one Service per host, all to the echo backend."""
    store = Store()
    store.put(h.ingress_class())
    for host in hosts:
        name = host.split(".")[0]
        for obj in [*h.service(name, echo_port), h.ingress(name, h.rule(host, h.path("/", name)))]:
            store.put(obj)
    translation = translate(store.snapshot(), TranslateSettings(), datetime.datetime.now(datetime.timezone.utc))
    return render(translation.config, settings)


def edited(rendered: Rendered, edit: Callable[[str], str]) -> Rendered:
    """A text edit of a rendered config, with a version of its own."""
    version = hashlib.sha256(edit(rendered.text).encode()).hexdigest()[:16]
    return Rendered(edit(rendered.text).replace(rendered.version, version), version)


def upstream_of(text: str, service: str) -> str:
    match = re.search(rf"\n    upstream (\S+_default_{service}_80) {{", text)
    assert match
    return match.group(1)


def with_nginx(tmp_path: Path, check: Callable[[NginxProcess, NginxSettings], Awaitable[None]], **settings: Any) -> None:
    async def scenario() -> None:
        nginx_settings = NginxSettings(http_port=h.free_port(), https_port=h.free_port(), listen_address="127.0.0.1",
                                       binary=h.NGINX, state_dir=tmp_path / "state", worker_shutdown_timeout="1s",
                                       confirm_timeout=600, **settings)
        nginx = NginxProcess(nginx_settings)
        await nginx.prepare()
        supervisor = asyncio.create_task(nginx.supervise())
        try:
            await check(nginx, nginx_settings)
        finally:
            await nginx.stop(2)
            supervisor.cancel()

    asyncio.run(scenario())


def test_the_delta_holds_the_new_blocks_the_default_server_and_the_upstreams_they_name(echo):
    settings = NginxSettings(state_dir=Path("/nonexistent"))
    before = rendered_world(settings, echo.port, HOSTS[:2])
    after = rendered_world(settings, echo.port, HOSTS)
    layout, whole = layout_and_delta(before.text, before.version, None)
    assert whole is None  # nothing live: the whole file is checked

    _, delta = layout_and_delta(after.text, after.version, layout)
    assert delta is not None
    assert delta.of == 7  # default server, three servers, three upstreams
    assert delta.blocks == 3  # the default server, c's server and c's upstream
    assert 'server_name "c.example";' in delta.text and "default_server;" in delta.text
    assert 'server_name "a.example";' not in delta.text and 'server_name "b.example";' not in delta.text
    assert re.search(r"upstream \S+_default_c_80 \{", delta.text)
    assert not re.search(r"upstream \S+_default_[ab]_80 \{", delta.text)
    # the frame is all there: http-level settings and the status server
    assert delta.text.startswith(after.text[:after.text.index("\n    upstream ")])
    assert delta.text.endswith(after.text[after.text.index("\n\n    # Internal: "):])


def test_a_changed_http_level_setting_checks_the_whole_file(echo):
    before = rendered_world(NginxSettings(state_dir=Path("/nonexistent")), echo.port, HOSTS)
    after = rendered_world(NginxSettings(state_dir=Path("/nonexistent"), access_log="stdout"), echo.port, HOSTS)
    layout, _ = layout_and_delta(before.text, before.version, None)
    assert layout_and_delta(after.text, after.version, layout)[1] is None


def test_host_name_hash_sizes_are_not_part_of_the_frame(echo):
    """They grow with the number of hosts: a new host past 512 must not make every check whole."""
    before = rendered_world(NginxSettings(state_dir=Path("/nonexistent")), echo.port, HOSTS)
    layout, _ = layout_and_delta(before.text, before.version, None)
    grown = edited(before, lambda text: re.sub(r"server_names_hash_max_size \d+;", "server_names_hash_max_size 4096;", text))
    _, delta = layout_and_delta(grown.text, grown.version, layout)
    assert delta is not None and "server_names_hash_max_size 4096;" in delta.text


def test_a_change_is_checked_by_its_blocks_and_served(tmp_path, echo):
    async def check(nginx: NginxProcess, settings: NginxSettings) -> None:
        first = await nginx.check(rendered_world(settings, echo.port, HOSTS[:2]), ())
        assert first.checked == "whole"  # nothing is live yet
        await nginx.activate(first)
        second = await nginx.check(rendered_world(settings, echo.port, HOSTS), ())
        assert second.checked == "3 of 7 blocks"
        await nginx.activate(second)
        for host in HOSTS:
            assert await asyncio.to_thread(h.backend_of, settings.http_port, "/", host) == "echo"
        # a new server to an old upstream: nginx -t fails unless that upstream is in the delta
        d_server = ('\n\n    server {\n        listen "127.0.0.1:%d";\n        server_name "d.example";\n'
                    '        location / {\n            proxy_pass http://%s;\n        }\n    }'
                    % (settings.http_port, upstream_of(second.rendered.text, "a")))
        third = edited(second.rendered, lambda text: text.replace("\n\n    # Internal: ", d_server + "\n\n    # Internal: "))
        third_candidate = await nginx.check(third, ())
        assert third_candidate.checked == "3 of 8 blocks"
        await nginx.activate(third_candidate)
        assert await asyncio.to_thread(h.backend_of, settings.http_port, "/", "d.example") == "echo"

    with_nginx(tmp_path, check)


def test_whole_checks_when_asked(tmp_path, echo):
    async def check(nginx: NginxProcess, settings: NginxSettings) -> None:
        await nginx.apply(rendered_world(settings, echo.port, HOSTS[:2]), ())
        candidate = await nginx.check(rendered_world(settings, echo.port, HOSTS), ())
        assert candidate.checked == "whole"

    with_nginx(tmp_path, check, config_check="whole")


def test_a_bad_new_block_is_refused_by_the_check(tmp_path, echo):
    async def check(nginx: NginxProcess, settings: NginxSettings) -> None:
        good = rendered_world(settings, echo.port, HOSTS)
        await nginx.apply(good, ())
        bad = edited(rendered_world(settings, echo.port, HOSTS[:1] + ("d.example",)),
                     lambda text: re.sub(r"proxy_pass http://\S+_default_d_80;", "proxy_pass http://nowhere_upstream;", text))
        with pytest.raises(NginxError, match="nowhere_upstream"):
            await nginx.check(bad, ())
        assert await nginx.live_version() == good.version

    with_nginx(tmp_path, check)


def test_a_config_the_master_refuses_is_noticed_and_the_whole_file_is_checked_next(tmp_path, echo):
    """A new upstream block named like an old one passes the delta check (the old one is not in it)
    but not the master's load: the refusal comes back from nginx's log, not from a timeout (600 s
    here), the last good config stays live and on disk, and the next check reads the whole file."""
    async def check(nginx: NginxProcess, settings: NginxSettings) -> None:
        good = rendered_world(settings, echo.port, HOSTS)
        await nginx.apply(good, ())
        a_upstream = re.search(r"\n    upstream (\S+_default_a_80) \{\n.*?\n    \}\n", good.text, re.S)
        assert a_upstream
        clash = a_upstream.group(0).replace("keepalive 64;", "keepalive 32;")
        bad = edited(good, lambda text: text.replace(a_upstream.group(0), a_upstream.group(0) + clash, 1))
        candidate = await nginx.check(bad, ())
        assert candidate.checked != "whole"
        # checked in part while `candidate` is pending (the pipeline), with the same clash
        later = await nginx.check(edited(bad, lambda text: text.replace("keepalive 32;", "keepalive 16;")), ())
        assert later.checked != "whole"
        with pytest.raises(NginxError, match=r"refused the config: duplicate upstream"):
            await asyncio.wait_for(nginx.activate(candidate), 120)  # fail, rather than hang, without the log
        assert await nginx.live_version() == good.version
        assert (settings.state_dir / "nginx.conf").read_text() == good.text
        with pytest.raises(NginxError, match="duplicate upstream") as refused_again:
            await asyncio.wait_for(nginx.activate(later), 120)
        assert "refused the config" not in str(refused_again.value)  # the whole file was checked first
        with pytest.raises(NginxError, match="duplicate upstream"):
            await nginx.check(bad, ())  # the whole file this time: its blocks alone passed
        again = await nginx.check(rendered_world(settings, echo.port, HOSTS[:2]), ())
        assert again.checked == "whole"  # until a config is live again
        await nginx.activate(again)
        assert (await nginx.check(good, ())).checked != "whole"

    with_nginx(tmp_path, check)
