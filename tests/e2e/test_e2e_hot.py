"""Folder mode follows changes: added, changed, removed, broken and re-saved files; endpoint
changes; nginx dying. Each test has a controller and folder of its own."""

from __future__ import annotations

import os
import signal
import time

import pytest

import e2e_support as s

SERVED = 'ingress_ctrl_ingresses{state="served"}'
LOADS_TIMED, LOAD_SECONDS = "ingress_ctrl_nginx_load_seconds_count", "ingress_ctrl_nginx_load_seconds_sum"


@pytest.fixture(scope="module")
def ports(backends):
    return {"one": backends.start("hot-one"), "two": backends.start("hot-two"),
            "scale": backends.start("hot-scale", ["127.0.0.1", "127.0.0.2", "127.0.0.3"])}


def base_folder(ports) -> s.Path:
    folder = s.scratch_dir("manifests")
    s.write_manifests(folder, "base.yaml", [
        s.ingress_class(),
        *s.backed_service("one", ports["one"]),
        *s.backed_service("two", ports["two"]),
    ])
    s.write_manifests(folder, "first.yaml", [s.ingress("first", [s.rule("first.example", s.path("/a", "one"))])])
    return folder


@pytest.fixture
def hot(ports):
    folder = base_folder(ports)
    with s.running(folder) as controller:
        assert controller.backend("/a", "first.example") == "hot-one"
        yield controller, folder


def test_added_file_is_served(hot):
    ctl, folder = hot
    before = ctl.reloads()
    assert ctl.get("/", "second.example").status == 404
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "second.example")  # (and the controller counted the load)
    assert ctl.backend("/a", "first.example") == "hot-one"
    assert ctl.reloads() > before
    assert ctl.metrics()[SERVED] == 2


def test_added_file_in_a_new_subfolder_is_served(hot):
    ctl, folder = hot
    s.write_manifests(folder / "team-b" / "apps", "second.yaml",
                      [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "second.example")


def test_changed_file_serves_the_new_path(hot):
    ctl, folder = hot
    assert ctl.get("/b", "first.example").status == 404
    s.write_manifests(folder, "first.yaml", [s.ingress("first", [s.rule("first.example", s.path("/a", "one"), s.path("/b", "two"))])])
    ctl.wait_backend("hot-two", "/b", "first.example")
    assert ctl.backend("/a", "first.example") == "hot-one"


def test_changed_file_drops_the_removed_path(hot):
    ctl, folder = hot
    before = ctl.reloads()
    s.write_manifests(folder, "first.yaml", [s.ingress("first", [s.rule("first.example", s.path("/c", "two"))])])
    ctl.wait_backend("hot-two", "/c", "first.example")  # (and the old workers stopped accepting)
    assert ctl.reloads() > before
    assert ctl.backend("/a", "first.example") == 404


def test_in_place_write_is_followed(hot):
    ctl, folder = hot
    import yaml
    (folder / "first.yaml").write_text(yaml.safe_dump(s.ingress("first", [s.rule("first.example", s.path("/a", "two"))])))
    ctl.wait_backend("hot-two", "/a", "first.example")


def test_removed_file_stops_being_served(hot):
    ctl, folder = hot
    before = ctl.reloads()
    (folder / "first.yaml").unlink()
    ctl.wait_backend(404, "/a", "first.example")
    s.wait_until(lambda: ctl.reloads() == before + 1, what="one reload counted")
    s.wait_until(lambda: ctl.metrics()[SERVED] == 0, what="served count 0")


def test_unparsable_file_is_reported_and_its_routes_keep_serving(hot):
    ctl, folder = hot
    before = ctl.reloads()
    s.write_text(folder / "first.yaml", "kind: Ingress\nmetadata: {name: first\nspec: [unclosed\n")
    line = ctl.wait_stderr(r"first\.yaml: cannot parse")
    assert str(folder / "first.yaml") in line
    for _ in range(10):
        assert ctl.backend("/a", "first.example") == "hot-one"
        time.sleep(0.05)
    assert ctl.reloads() == before
    assert ctl.metrics()[SERVED] == 1
    # once fixed, the file is followed again
    s.write_manifests(folder, "first.yaml", [s.ingress("first", [s.rule("first.example", s.path("/a", "two"))])])
    ctl.wait_backend("hot-two", "/a", "first.example")


def test_file_with_a_bad_document_keeps_its_last_good_objects(hot):
    ctl, folder = hot
    s.write_text(folder / "first.yaml", "kind: Ingress\nmetadata: [not, a, mapping]\n")
    ctl.wait_stderr(r"first\.yaml: document 1")
    assert ctl.backend("/a", "first.example") == "hot-one"


def test_new_unparsable_file_does_not_disturb_others(hot):
    ctl, folder = hot
    s.write_text(folder / "broken.yaml", "{{{{")
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "second.example")
    ctl.wait_stderr(r"broken\.yaml: cannot parse")
    assert ctl.backend("/a", "first.example") == "hot-one"


def test_identical_resave_does_not_reload(hot):
    ctl, folder = hot
    before = ctl.reloads()
    first = folder / "first.yaml"
    text = first.read_text()
    s.write_text(first, text)        # atomic re-save, same bytes
    first.write_text(text)           # in-place re-save, same bytes
    os.utime(first)                  # touch
    s.write_text(folder / "notes.txt", "not a manifest")     # ignored suffix
    s.write_manifests(folder, "base-copy.yaml", [s.ingress_class()])  # same object again: nothing changes
    time.sleep(1.5)  # several debounce periods: any reload would have happened by now
    assert ctl.reloads() == before
    # a real change still reloads, exactly once
    s.write_manifests(folder, "first.yaml", [s.ingress("first", [s.rule("first.example", s.path("/a", "two"))])])
    ctl.wait_backend("hot-two", "/a", "first.example")
    s.wait_until(lambda: ctl.reloads() == before + 1, what="one reload counted")
    time.sleep(0.3)
    assert ctl.reloads() == before + 1


def test_hidden_files_are_ignored(hot):
    ctl, folder = hot
    s.write_manifests(folder, ".second.yaml.swp.yaml", [s.ingress("hidden", [s.rule("hidden.example", s.path("/", "two"))])])
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "second.example")
    assert ctl.get("/", "hidden.example").status == 404


def test_metrics_follow_the_served_count(hot):
    ctl, folder = hot
    metrics = ctl.metrics()
    assert metrics['ingress_ctrl_nginx_reloads_total{result="success"}'] >= 1
    assert metrics['ingress_ctrl_nginx_reloads_total{result="failure"}'] == 0
    assert metrics[SERVED] == 1
    assert metrics['ingress_ctrl_config_last_reload_successful'] == 1
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    s.wait_until(lambda: ctl.metrics()[SERVED] == 2, what="served count 2")
    assert ctl.reloads() == metrics['ingress_ctrl_nginx_reloads_total{result="success"}'] + 1


def test_each_load_is_timed_in_a_histogram(hot):
    """ingress_ctrl_nginx_load_seconds: one observation per successful load (nginx's part: from the
    signal until the new version answers), in the same unit as the wall clock around it."""
    ctl, folder = hot
    before, reloads_before = ctl.metrics(), ctl.reloads()
    started = time.monotonic()
    s.write_manifests(folder, "timed.yaml", [s.ingress("timed", [s.rule("timed.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "timed.example")
    elapsed = time.monotonic() - started
    after, reloads = ctl.metrics(), ctl.reloads()
    assert reloads > reloads_before
    assert after[LOADS_TIMED] - before[LOADS_TIMED] == reloads - reloads_before
    assert after[LOADS_TIMED] == reloads  # every load since the start, the first one too
    assert 0 < after[LOAD_SECONDS] - before[LOAD_SECONDS] < elapsed


def test_endpoint_changes_are_followed(hot, ports):
    ctl, folder = hot
    port = ports["scale"]
    s.write_manifests(folder, "scale.yaml", [
        s.service("scale"), s.endpoint_slice("scale", port, ["127.0.0.1"]),
        s.ingress("scale", [s.rule("scale.example", s.path("/", "scale"))]),
    ])
    ctl.wait_backend("hot-scale", "/", "scale.example")

    def addresses() -> set[str]:
        return {ctl.get(f"/{i}", "scale.example").data["address"].split(":")[0] for i in range(30)}

    assert addresses() == {"127.0.0.1"}
    # scale up
    s.write_manifests(folder, "scale.yaml", [
        s.service("scale"), s.endpoint_slice("scale", port, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
        s.ingress("scale", [s.rule("scale.example", s.path("/", "scale"))]),
    ])
    s.wait_until(lambda: addresses() == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}, what="three endpoints")
    # one endpoint turns not ready
    s.write_manifests(folder, "scale.yaml", [
        s.service("scale"), s.endpoint_slice("scale", port, [("127.0.0.1", False), "127.0.0.2", "127.0.0.3"]),
        s.ingress("scale", [s.rule("scale.example", s.path("/", "scale"))]),
    ])
    s.wait_until(lambda: addresses() == {"127.0.0.2", "127.0.0.3"}, what="two endpoints")
    # none ready: 503
    s.write_manifests(folder, "scale.yaml", [
        s.service("scale"), s.endpoint_slice("scale", port, [("127.0.0.2", False)]),
        s.ingress("scale", [s.rule("scale.example", s.path("/", "scale"))]),
    ])
    ctl.wait_backend(503, "/", "scale.example")


def test_tls_secret_added_later_is_served(hot):
    ctl, folder = hot
    s.write_manifests(folder, "tls.yaml", [s.ingress("tls", [s.rule("tls.example", s.path("/", "one"))],
                                                      tls=[{"hosts": ["tls.example"], "secretName": "tls-cert"}])])
    ctl.wait_backend("hot-one", "/", "tls.example")
    assert s.common_name(ctl.get_tls("/", "tls.example").certificate) == s.DEFAULT_CERT_CN
    certificate, key = s.make_certificate("tls.example", ["tls.example"])
    s.write_manifests(folder, "secret.yaml", [s.tls_secret("tls-cert", certificate, key)])
    s.wait_until(lambda: s.common_name(ctl.get_tls("/", "tls.example").certificate) == "tls.example", what="new certificate")
    # rotated
    certificate, key = s.make_certificate("tls.example rotated", ["tls.example"])
    s.write_manifests(folder, "secret.yaml", [s.tls_secret("tls-cert", certificate, key)])
    s.wait_until(lambda: s.common_name(ctl.get_tls("/", "tls.example").certificate) == "tls.example rotated", what="rotated certificate")
    # the old one is collected once the old workers are gone (just after the new one answers)
    own = lambda: [p for p in (ctl.state_dir / "certs").glob("*.pem") if p.name != "default.pem"]  # noqa: E731
    s.wait_until(lambda: len(own()) == 1, what="the old certificate file collected")


def test_nginx_killed_is_restarted(hot):
    ctl, folder = hot
    pid = int((ctl.state_dir / "nginx.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    ctl.wait_backend("hot-one", "/a", "first.example", timeout=8)
    s.wait_until(lambda: int((ctl.state_dir / "nginx.pid").read_text() or 0) not in (0, pid), what="new nginx pid")
    assert not s.process_alive(pid)
    s.wait_until(lambda: ctl.metrics().get("ingress_ctrl_nginx_restarts_total") == 1, what="restart counted")
    assert ctl.healthz("/readyz")[0] == 200
    # and it still follows changes
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
    ctl.wait_backend("hot-two", "/", "second.example")


def test_new_controller_starts_on_the_state_dir_of_a_killed_one(ports):
    """A crashed pod's state dir (an emptyDir survives container restarts) must not block a restart."""
    folder = base_folder(ports)
    first = s.Controller(folder).start()
    try:
        assert first.backend("/a", "first.example") == "hot-one"
        pid = int((first.state_dir / "nginx.pid").read_text())
    finally:
        first.kill()  # the controller and its nginx both SIGKILLed, as a container runtime would
    s.wait_until(lambda: not s.process_alive(pid), what="nginx gone")
    with s.running(folder, state_dir=first.state_dir, start_timeout=10) as again:
        again.wait_backend("hot-one", "/a", "first.example")


def test_removing_the_ingress_class_stops_serving_its_ingresses(hot, ports):
    ctl, folder = hot
    s.write_manifests(folder, "base.yaml", [*s.backed_service("one", ports["one"]), *s.backed_service("two", ports["two"])])
    ctl.wait_backend(404, "/a", "first.example")
    s.wait_until(lambda: ctl.metrics()[SERVED] == 0, what="served count 0")
    s.write_manifests(folder, "class.yaml", [s.ingress_class()])
    ctl.wait_backend("hot-one", "/a", "first.example")


def test_requests_keep_succeeding_through_reloads(hot):
    ctl, folder = hot
    import threading
    failures: list[object] = []
    count = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal count
        while not stop.is_set():
            try:
                reply = ctl.get("/a", "first.example")
                if reply.backend != "hot-one":
                    failures.append(reply)
            except OSError as error:
                failures.append(error)
            count += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        before = ctl.reloads()
        for index in range(5):
            s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path(f"/v{index}", "two"))])])
            ctl.wait_backend("hot-two", f"/v{index}", "second.example")
        s.wait_until(lambda: ctl.reloads() >= before + 5, what="five reloads")
    finally:
        stop.set()
        thread.join(10)
    assert count > 20
    assert failures == []


def test_in_flight_request_survives_a_reload(hot):
    ctl, folder = hot
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(ctl.get, "/a?sleep=2", "first.example")
        time.sleep(0.3)
        s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
        ctl.wait_backend("hot-two", "/", "second.example")
        assert not slow.done()
        reply = slow.result(10)
    assert reply.status == 200
    assert reply.backend == "hot-one"


async def test_websocket_survives_a_reload(hot):
    import asyncio

    import aiohttp
    ctl, folder = hot
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{ctl.http_port}/a/ws", headers={"Host": "first.example"}) as ws:
            await ws.send_str("before")
            assert await ws.receive_str(timeout=5) == "hot-one:before"
            s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/", "two"))])])
            await asyncio.to_thread(ctl.wait_backend, "hot-two", "/", "second.example")
            await ws.send_str("after")
            assert await ws.receive_str(timeout=5) == "hot-one:after"


def test_a_standing_problem_is_logged_once(hot):
    ctl, folder = hot
    s.write_manifests(folder, "evil.yaml", [s.ingress("evil", [s.rule("evil.example", s.path("/a;b", "one"))])])
    ctl.wait_stderr(r"Ingress default/evil: spec\.rules\[0\]\.http\.paths\[0\]\.path")
    for index in range(3):  # unrelated changes: the same problem is not repeated on every sync
        s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path(f"/v{index}", "two"))])])
        ctl.wait_backend("hot-two", f"/v{index}", "second.example")
    assert ctl.stderr().count("Ingress default/evil:") == 1
    (folder / "evil.yaml").unlink()
    s.write_manifests(folder, "second.yaml", [s.ingress("second", [s.rule("second.example", s.path("/gone", "two"))])])
    ctl.wait_backend("hot-two", "/gone", "second.example")  # synced without the problem
    s.write_manifests(folder, "evil2.yaml", [s.ingress("evil", [s.rule("evil.example", s.path("/a;b", "one"))])])
    s.wait_until(lambda: ctl.stderr().count("Ingress default/evil:") == 2, what="logged again after it went away")
