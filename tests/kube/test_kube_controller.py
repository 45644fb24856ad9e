"""The real `ingress-ctrl run` against a real HTTP Kubernetes API (kmock + k8semu), real nginx
and real echo backends: driven only through the API, judged by what nginx serves, by Ingress
status, Events and metrics.

One emulator and one controller for the module (`--watch-namespace app1,app2,infra`,
`--publish-service infra/ingress-lb`, an nginx wrapper that refuses configs on demand); every
test has its own hosts and object names, so the tests do not depend on each other's leftovers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ingress_ctrl.metrics import config_hash
from tests.kube import support
from tests.kube.support import eventually, stays

LB = [{"ip": "203.0.113.10"}]
NAMESPACES = ("app1", "app2", "infra")
ING = "networking.k8s.io/v1/ingresses"


class Env:
    def __init__(self, world: Any, backends: support.Backends) -> None:
        self.world = world
        self.api: support.Api = world.api
        self.emulator: support.Emulator = world.emulator
        self.alpha_port = backends.start("alpha", "127.0.0.2")
        self.beta_port = support.free_port(["127.0.0.3", "127.0.0.4"])
        backends.start("beta-1", "127.0.0.3", self.beta_port)
        backends.start("beta-2", "127.0.0.4", self.beta_port)
        self.nginx_binary, self.marker = support.failing_nginx(world.dir)
        api = self.api
        api.create("ingressclasses", support.ingress_class("ours"))
        api.create("ingressclasses", support.ingress_class("theirs", controller="example.com/other"))
        api.create("services", support.service("infra", "ingress-lb"))
        api.patch("services", "infra", "ingress-lb", {"status": {"loadBalancer": {"ingress": LB}}}, sub="status")
        self.web("app1")
        self.web("app2")
        self.web("outside", "127.0.0.3", self.beta_port)  # beta-1: tells it apart from app2's web
        self.ctl = world.controller("ctl-a", extra=(
            "--watch-namespace", ",".join(NAMESPACES), "--publish-service", "infra/ingress-lb",
        ), nginx_binary=self.nginx_binary)
        self.ctl.start()
        self.token = self.ctl.token

    def web(self, namespace: str, address: str = "127.0.0.2", port: int | None = None) -> None:
        """Service `web` in `namespace`, with the alpha backend (or another) behind it."""
        self.api.create("services", support.service(namespace, "web"))
        self.api.create("endpointslices", support.endpoint_slice(namespace, "web", [address], port or self.alpha_port))

    def status_writes(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [w for w in self.emulator.writes(self.token)
                if w["resource"] == ING and w["subresource"] == "status" and (w["namespace"], w["name"]) == (namespace, name)]

    def reasons(self, namespace: str, name: str) -> list[str]:
        return [e["reason"] for e in self.api.events(namespace, name)]

    def served_and_live(self, namespace: str, name: str, host: str, backend: str = "alpha") -> None:
        """Wait for the status; at that moment nginx must already route the host."""
        eventually(lambda: self.api.lb(namespace, name) == LB, what=f"status of {namespace}/{name}")
        assert self.ctl.serves(host, backend), f"status was written before {host} was live"
        assert self.reasons(namespace, name).count("Sync") == 1

    def unserved_and_cleared(self, namespace: str, name: str, host: str) -> None:
        eventually(lambda: self.ctl.not_served(host), what=f"{host} no longer served")
        eventually(lambda: not self.api.lb(namespace, name), what=f"status of {namespace}/{name} cleared")


@pytest.fixture(scope="module")
def env(world: Any, backends: support.Backends) -> Iterator[Env]:
    yield Env(world, backends)


def test_serves_ingress_and_reports_status_event_and_metrics(env: Env) -> None:
    api, ctl = env.api, env.ctl
    before = ctl.metrics()
    started = time.time()
    api.create("ingresses", support.ingress("app1", "basic", "basic.example", "web"))
    eventually(lambda: env.reasons("app1", "basic") == ["Sync"], what="a Sync event")
    assert ctl.serves("basic.example", "alpha"), "Sync was posted before the config was live"
    env.served_and_live("app1", "basic", "basic.example")
    event = api.events("app1", "basic")[0]
    assert event["type"] == "Normal" and event["reportingController"] == support.CONTROLLER
    assert event["regarding"]["uid"] == api.get("ingresses", "app1", "basic")["metadata"]["uid"]
    live = ctl.live_version()
    assert live in event["note"]

    after = ctl.metrics()
    assert after['ingress_ctrl_nginx_reloads_total{result="success"}'] > before['ingress_ctrl_nginx_reloads_total{result="success"}']
    assert after['ingress_ctrl_nginx_reloads_total{result="failure"}'] == 0
    assert after["ingress_ctrl_config_last_reload_successful"] == 1
    assert after["ingress_ctrl_config_last_reload_timestamp_seconds"] >= started - 1
    assert after["ingress_ctrl_config_hash"] == config_hash(live)
    assert after['ingress_ctrl_ingresses{state="served"}'] == before['ingress_ctrl_ingresses{state="served"}'] + 1
    assert after["ingress_ctrl_nginx_restarts_total"] == 0


def test_status_means_every_nginx_worker_serves_it(env: Env) -> None:
    """On a reload nginx starts the new workers, and only ~100 ms later tells the old ones to
    stop accepting: status must not be written while old workers can still answer."""
    api, ctl = env.api, env.ctl
    for i in range(10):
        name = f"prompt-{i}"
        old = {pid for pid, title in ctl.workers().items() if title == "nginx: worker process"}
        assert old
        api.create("ingresses", support.ingress("app1", name, f"{name}.example", "web"))
        eventually(lambda: api.lb("app1", name) == LB, interval=0.002, what=f"status of {name}")
        still = {pid: title for pid, title in ctl.workers().items() if pid in old and title == "nginx: worker process"}
        replies = [ctl.get(f"{name}.example") for _ in range(4)]
        assert still == {}, f"old workers still accepting after the status was written: {still}"
        assert [r.backend for r in replies] == ["alpha"] * 4, replies


def test_class_selection(env: Env) -> None:
    api, ctl = env.api, env.ctl
    api.create("ingresses", support.ingress("app1", "cls-ours", "cls-ours.example", "web", class_name="ours"))
    api.create("ingresses", support.ingress("app1", "cls-theirs", "cls-theirs.example", "web", class_name="theirs"))
    api.create("ingresses", support.ingress("app1", "cls-legacy", "cls-legacy.example", "web", class_name=None,
                                            annotations={"kubernetes.io/ingress.class": "nginx"}))
    api.create("ingresses", support.ingress("app1", "cls-legacy-other", "cls-legacy-other.example", "web", class_name=None,
                                            annotations={"kubernetes.io/ingress.class": "traefik"}))
    api.create("ingresses", support.ingress("app1", "cls-none", "cls-none.example", "web", class_name=None))
    api.create("ingresses", support.ingress("app1", "cls-late", "cls-late.example", "web", class_name="late"))
    env.served_and_live("app1", "cls-ours", "cls-ours.example")
    env.served_and_live("app1", "cls-legacy", "cls-legacy.example")
    for name in ("cls-theirs", "cls-legacy-other", "cls-none", "cls-late"):
        assert ctl.not_served(f"{name}.example"), name
        assert not api.lb("app1", name), name
        assert env.reasons("app1", name) == [], name
        assert env.status_writes("app1", name) == [], name

    # An IngressClass of ours that appears later takes its Ingresses in; deleting it lets them go.
    api.create("ingressclasses", support.ingress_class("late"))
    env.served_and_live("app1", "cls-late", "cls-late.example")
    api.delete("ingressclasses", None, "late")
    env.unserved_and_cleared("app1", "cls-late", "cls-late.example")

    # Our class made the default: the class-less Ingress is ours, the others' are still not.
    api.patch("ingressclasses", None, "ours", {"metadata": {"annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}})
    try:
        env.served_and_live("app1", "cls-none", "cls-none.example")
        assert ctl.not_served("cls-theirs.example") and ctl.not_served("cls-legacy-other.example")
    finally:
        api.patch("ingressclasses", None, "ours", {"metadata": {"annotations": {"ingressclass.kubernetes.io/is-default-class": None}}})
    env.unserved_and_cleared("app1", "cls-none", "cls-none.example")

    # Leaving our class: no longer served, status cleared; the others go on.
    api.patch("ingresses", "app1", "cls-ours", {"spec": {"ingressClassName": "theirs"}})
    env.unserved_and_cleared("app1", "cls-ours", "cls-ours.example")
    assert ctl.serves("cls-legacy.example", "alpha")
    # ...and coming back.
    api.patch("ingresses", "app1", "cls-ours", {"spec": {"ingressClassName": "ours"}})
    eventually(lambda: api.lb("app1", "cls-ours") == LB)
    assert ctl.serves("cls-ours.example", "alpha")
    for name in ("cls-theirs", "cls-legacy-other"):
        assert env.reasons("app1", name) == [] and env.status_writes("app1", name) == [], name


def test_namespace_scoping(env: Env) -> None:
    api, ctl = env.api, env.ctl
    api.create("ingresses", support.ingress("outside", "scoped", "scoped-outside.example", "web"))
    api.create("ingresses", support.ingress("app2", "scoped", "scoped-inside.example", "web"))
    env.served_and_live("app2", "scoped", "scoped-inside.example")
    # Long enough for a watch event and a resync (2 s) to have brought it in, were it watched.
    stays(lambda: ctl.not_served("scoped-outside.example"), 2.5, what="the Ingress outside --watch-namespace unserved")
    assert not api.lb("outside", "scoped")
    assert api.events("outside") == []
    assert [w for w in env.emulator.writes(env.token) if w["namespace"] == "outside"] == []
    # A change to it is ignored as well: were it watched, it would take the host over (it is
    # the older Ingress) and send it to its own namespace's backend, beta-1.
    api.patch("ingresses", "outside", "scoped", {"spec": {"rules": [{"host": "scoped-inside.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    stays(lambda: ctl.serves("scoped-inside.example", "alpha"), 2.5, what="the inside Ingress unaffected")
    assert api.events("outside") == []


def test_rejected_ingress(env: Env) -> None:
    api, ctl = env.api, env.ctl
    before = ctl.metrics()['ingress_ctrl_ingresses{state="rejected"}']
    api.create("ingresses", support.ingress("app1", "rej-good", "rej-good.example", "web"))
    api.create("ingresses", support.ingress("app1", "rej-snippet", "rej-snippet.example", "web", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet": "return 200 'owned';"}))
    eventually(lambda: env.reasons("app1", "rej-snippet") == ["Rejected"], what="a Rejected event")
    event = api.events("app1", "rej-snippet")[0]
    assert event["type"] == "Warning"
    assert "configuration-snippet" in event["note"] and "snippet" in event["note"]
    env.served_and_live("app1", "rej-good", "rej-good.example")
    assert ctl.not_served("rej-snippet.example")
    assert not api.lb("app1", "rej-snippet")
    assert env.status_writes("app1", "rej-snippet") == []
    eventually(lambda: ctl.metrics()['ingress_ctrl_ingresses{state="rejected"}'] == before + 1)

    # A served Ingress that turns bad: left out, status cleared, one Rejected with the field.
    api.create("ingresses", support.ingress("app1", "rej-flip", "rej-flip.example", "web"))
    env.served_and_live("app1", "rej-flip", "rej-flip.example")
    api.patch("ingresses", "app1", "rej-flip", [{"op": "replace", "path": "/spec/rules/0/http/paths/0/path", "value": "/a;b"}])
    env.unserved_and_cleared("app1", "rej-flip", "rej-flip.example")
    eventually(lambda: env.reasons("app1", "rej-flip") == ["Sync", "Rejected"])
    note = api.events("app1", "rej-flip")[1]["note"]
    assert "spec.rules[0].http.paths[0].path" in note and "/a;b" in note
    assert ctl.serves("rej-good.example", "alpha"), "a rejected Ingress took another one down"

    # Not one event per reload: other changes and resyncs post nothing more about them.
    api.create("ingresses", support.ingress("app1", "rej-other", "rej-other.example", "web"))
    env.served_and_live("app1", "rej-other", "rej-other.example")
    time.sleep(2.5)  # a resync period
    assert env.reasons("app1", "rej-snippet") == ["Rejected"]
    assert env.reasons("app1", "rej-flip") == ["Sync", "Rejected"]

    # Fixed: served again, status again, a new Sync.
    api.patch("ingresses", "app1", "rej-flip", [{"op": "replace", "path": "/spec/rules/0/http/paths/0/path", "value": "/"}])
    eventually(lambda: api.lb("app1", "rej-flip") == LB)
    assert ctl.serves("rej-flip.example", "alpha")
    eventually(lambda: env.reasons("app1", "rej-flip") == ["Sync", "Rejected", "Sync"])
    eventually(lambda: ctl.metrics()['ingress_ctrl_ingresses{state="rejected"}'] == before + 1)


def test_status_follows_publish_service(env: Env) -> None:
    api = env.api
    api.create("ingresses", support.ingress("app2", "pub", "pub.example", "web"))
    env.served_and_live("app2", "pub", "pub.example")
    moved = [{"ip": "203.0.113.20"}, {"hostname": "lb.example.net"}]
    api.patch("services", "infra", "ingress-lb", {"status": {"loadBalancer": {"ingress": moved}}}, sub="status")
    try:
        eventually(lambda: api.lb("app2", "pub") == moved, what="status following the Service")
        eventually(lambda: api.lb("app1", "basic") == moved if api.get("ingresses", "app1", "basic") else True)
        assert env.ctl.serves("pub.example", "alpha")
    finally:
        api.patch("services", "infra", "ingress-lb", {"status": {"loadBalancer": {"ingress": LB}}}, sub="status")
    eventually(lambda: api.lb("app2", "pub") == LB)
    assert len(env.status_writes("app2", "pub")) == 3  # set, moved, back: each exactly once
    assert env.reasons("app2", "pub") == ["Sync"]


def test_status_changed_by_someone_else_is_put_back_without_a_sync(env: Env) -> None:
    """A status-only change starts no sync (no reload, no re-render), yet a status someone else
    wrote is put back; our own status writes, come back as watch events, write nothing more."""
    api, ctl = env.api, env.ctl
    api.create("ingresses", support.ingress("app2", "other", "other.example", "web"))
    env.served_and_live("app2", "other", "other.example")
    writes = len(env.status_writes("app2", "other"))
    reloads = ctl.metrics()['ingress_ctrl_nginx_reloads_total{result="success"}']
    api.patch("ingresses", "app2", "other", {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}}, sub="status")
    eventually(lambda: api.lb("app2", "other") == LB, what="our status put back")
    assert len(env.status_writes("app2", "other")) == writes + 1
    assert ctl.metrics()['ingress_ctrl_nginx_reloads_total{result="success"}'] == reloads


def test_endpoint_churn(env: Env) -> None:
    api, ctl = env.api, env.ctl
    port = env.beta_port
    api.create("services", support.service("app2", "churn"))
    api.create("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.3"], port, name="churn-a"))
    api.create("ingresses", support.ingress("app2", "churn", "churn.example", "churn"))
    env.served_and_live("app2", "churn", "churn.example", backend="beta-1")
    pid = ctl.nginx_pid()
    writes = len(env.status_writes("app2", "churn"))
    reloads = ctl.reloads()

    def backends_seen(count: int = 8) -> set[str | None]:
        return {ctl.get("churn.example").backend for _ in range(count)}

    # Scale up: both endpoints get requests.
    api.apply("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.3", "127.0.0.4"], port, name="churn-a"))
    eventually(lambda: backends_seen() == {"beta-1", "beta-2"}, what="round robin over two endpoints")
    # Replace: only the new one.
    api.apply("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.4"], port, name="churn-a"))
    eventually(lambda: backends_seen() == {"beta-2"})
    assert all(ctl.get("churn.example").address == f"127.0.0.4:{port}" for _ in range(5))
    # Not ready: 503, and nothing else is affected.
    api.apply("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.4"], port, name="churn-a", ready=False))
    eventually(lambda: ctl.get("churn.example").status == 503)
    assert ctl.serves("basic.example", "alpha")
    # A second slice for the same Service.
    api.create("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.3"], port, name="churn-b"))
    eventually(lambda: backends_seen() == {"beta-1"})
    # All slices gone: 503.
    api.delete("endpointslices", "app2", "churn-a")
    api.delete("endpointslices", "app2", "churn-b")
    eventually(lambda: ctl.get("churn.example").status == 503)
    api.create("endpointslices", support.endpoint_slice("app2", "churn", ["127.0.0.3", "127.0.0.4"], port, name="churn-c"))
    eventually(lambda: backends_seen() == {"beta-1", "beta-2"})
    # The Service goes and comes back.
    api.delete("services", "app2", "churn")
    eventually(lambda: ctl.get("churn.example").status == 503)
    api.create("services", support.service("app2", "churn"))
    eventually(lambda: backends_seen() == {"beta-1", "beta-2"})

    assert ctl.reloads() >= reloads + 5
    assert ctl.reloads("failure") == 0
    assert ctl.nginx_pid() == pid, "nginx was restarted, not reloaded"
    assert ctl.metric("ingress_ctrl_nginx_restarts_total") == 0
    # Endpoint churn is not a change of the Ingress: no new event, no status write.
    time.sleep(0.5)
    assert env.reasons("app2", "churn") == ["Sync"]
    assert len(env.status_writes("app2", "churn")) == writes == 1
    assert api.lb("app2", "churn") == LB


def test_secret_rotation(env: Env) -> None:
    api, ctl = env.api, env.ctl
    host = "secure.example"
    cert_a, key_a, serial_a = support.certificate("secure A", [host])
    cert_b, key_b, serial_b = support.certificate("secure B", [host])
    cert_c, key_c, serial_c = support.certificate("secure C", [host])

    def served_serial() -> int:
        reply = ctl.get(host, tls=True)
        assert reply.backend == "alpha", reply
        return reply.certificate.serial_number

    api.create("secrets", support.tls_secret("app2", "secure-tls", cert_a, key_a))
    api.create("ingresses", support.ingress("app2", "secure", host, "web", tls=[([host], "secure-tls")]))
    env.served_and_live("app2", "secure", host)
    eventually(lambda: served_serial() == serial_a, what="certificate A")

    api.apply("secrets", support.tls_secret("app2", "secure-tls", cert_b, key_b))
    eventually(lambda: served_serial() == serial_b, what="the rotated certificate B")
    assert env.reasons("app2", "secure") == ["Sync"]

    # The Secret goes away: the default certificate, plain HTTP unaffected.
    api.delete("secrets", "app2", "secure-tls")
    eventually(lambda: served_serial() not in (serial_a, serial_b))
    reply = ctl.get(host, tls=True)
    from cryptography.x509.oid import NameOID
    assert reply.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ingress-ctrl default certificate"
    assert ctl.serves(host, "alpha")
    # ...and comes back with another certificate.
    api.create("secrets", support.tls_secret("app2", "secure-tls", cert_c, key_c))
    eventually(lambda: served_serial() == serial_c, what="certificate C")
    # Non-TLS Secrets are never read into the controller (nor would a change to them reload nginx).
    reloads = ctl.reloads()
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "creds", "namespace": "app2"},
                           "data": {"password": "aHVudGVyMg=="}})
    time.sleep(1.0)
    assert ctl.reloads() == reloads
    assert ctl.reloads("failure") == 0


def test_reload_failure(env: Env) -> None:
    api, ctl = env.api, env.ctl
    api.create("ingresses", support.ingress("app1", "rf-kept", "rf-kept.example", "web"))
    env.served_and_live("app1", "rf-kept", "rf-kept.example")
    live = ctl.live_version()
    failures = ctl.reloads("failure")
    env.marker.touch()
    try:
        api.create("ingresses", support.ingress("app1", "rf-new", "rf-new.example", "web"))
        eventually(lambda: env.reasons("app1", "rf-new") == ["ReloadFailed"], what="a ReloadFailed event")
        event = api.events("app1", "rf-new")[0]
        assert event["type"] == "Warning" and "refused by the test marker" in event["note"]
        metrics = ctl.metrics()
        assert metrics['ingress_ctrl_nginx_reloads_total{result="failure"}'] >= failures + 1
        assert metrics["ingress_ctrl_config_last_reload_successful"] == 0
        assert metrics["ingress_ctrl_config_hash"] == config_hash(live)
        # The last good config stays live; the refused Ingress gets no status.
        assert ctl.live_version() == live
        assert ctl.not_served("rf-new.example")
        assert ctl.serves("rf-kept.example", "alpha")
        assert not api.lb("app1", "rf-new") and env.status_writes("app1", "rf-new") == []
        # The failed sync is retried (each try counts), but not posted again: one event per change.
        eventually(lambda: ctl.reloads("failure") >= failures + 2, what="a retry of the failed sync")
        assert env.reasons("app1", "rf-new") == ["ReloadFailed"]
        assert env.reasons("app1", "rf-kept") == ["Sync"]
        assert ctl.metric("ingress_ctrl_config_last_reload_successful") == 0
    finally:
        env.marker.unlink()
    # nginx accepts configs again: a retry brings the Ingress in, with no change in the API.
    env.served_and_live("app1", "rf-new", "rf-new.example")
    assert env.reasons("app1", "rf-new") == ["ReloadFailed", "Sync"]
    metrics = ctl.metrics()
    assert metrics["ingress_ctrl_config_last_reload_successful"] == 1
    assert metrics["ingress_ctrl_config_hash"] == config_hash(ctl.live_version()) != config_hash(live)
    failed = metrics['ingress_ctrl_nginx_reloads_total{result="failure"}']
    time.sleep(1.5)
    assert ctl.reloads("failure") == failed, "retries went on after a success"


@pytest.mark.parametrize("how", ["dropped", "gone-and-compacted"])
def test_lost_watch_recovers_without_stale_routes(env: Env, how: str) -> None:
    api, ctl = env.api, env.ctl
    name, host = f"lost-{how}", f"lost-{how}.example"
    api.create("ingresses", support.ingress("app2", name, host, "web"))
    env.served_and_live("app2", name, host)
    pid = ctl.nginx_pid()
    watches = env.emulator.watch_count()
    assert watches > 0
    if how == "dropped":
        # The connection drops and the delete happens before the watch is back: Kopf resumes
        # from its last resourceVersion, and the emulator replays what it missed.
        env.emulator.drop_watches()
        api.delete("ingresses", "app2", name)
    else:
        # The delete is never seen by a watch, the history is compacted, the streams end with
        # 410 Gone: Kopf re-lists, which does not report the vanished Ingress; the resync must.
        assert env.emulator.remove("ingresses", "app2", name)
        env.emulator.compact()
        env.emulator.drop_watches(gone=True)
    eventually(lambda: ctl.not_served(host), timeout=12, what="the deleted Ingress no longer served")
    assert ctl.nginx_pid() == pid, "nginx was restarted"
    assert ctl.metric("ingress_ctrl_nginx_restarts_total") == 0
    assert ctl.serves("basic.example", "alpha")
    eventually(lambda: env.emulator.watch_count() >= watches, what="the watches re-established")
    # The watches work again: a new Ingress and a change arrive.
    api.create("ingresses", support.ingress("app2", f"{name}-after", f"after-{host}", "web"))
    env.served_and_live("app2", f"{name}-after", f"after-{host}")
    assert ctl.healthz("/readyz") == 200


def test_controller_writes_only_status_events_and_its_lease(env: Env) -> None:
    """Last: no finalizers, no Kopf annotations or progress storage, nothing written to watched objects."""
    writes = env.emulator.writes(env.token)
    assert writes, "the controller wrote nothing at all"
    allowed = {("PATCH", ING, "status"), ("POST", "events.k8s.io/v1/events", None),
               ("POST", "coordination.k8s.io/v1/leases", None), ("PUT", "coordination.k8s.io/v1/leases", None)}
    unexpected = [w for w in writes if (w["method"], w["resource"], w["subresource"]) not in allowed]
    assert unexpected == []
    assert all(w["namespace"] == support.POD_NAMESPACE for w in writes if w["resource"] == "coordination.k8s.io/v1/leases")
    assert [w for w in env.emulator.writes() if "kopf" in w["agent"].lower()] == []
    watched = {support.RESOURCES[k][0] for k in support.WATCHED_KINDS}
    checked = 0
    for resource, namespace, name, body in env.emulator.objects():
        if resource not in watched:
            continue
        checked += 1
        meta = body.get("metadata") or {}
        assert not meta.get("finalizers"), (resource, namespace, name)
        assert not [a for a in (meta.get("annotations") or {}) if "kopf" in a], (resource, namespace, name)
        assert set(body.get("status") or {}) <= {"loadBalancer"}, (resource, namespace, name)
    assert checked > 20
