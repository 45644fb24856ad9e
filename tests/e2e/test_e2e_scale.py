"""Many hosts, paths and Ingresses in one config: nginx's hash tables must fit them."""

from __future__ import annotations

import pytest

import e2e_support as s
from ingress_ctrl.translate.backends import upstream_name

HOSTS = 500


@pytest.fixture(scope="module")
def ctl(backends, folder):
    objects = [s.ingress_class(), *s.backed_service("many", backends.start("many"))]
    for index in range(HOSTS):
        host = f"host-{index:04d}.{'x' * (index % 50)}scale.example"
        objects.append(s.ingress(f"ingress-{index:04d}", [s.rule(host, s.path(f"/p{index}", "many"), s.path("/", "many", "Exact"))]))
    # JSON (`kind: List`) is much quicker to write and read than YAML at this size
    import json
    s.write_text(folder / "many.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    with s.running(folder) as controller:
        yield controller


@pytest.mark.parametrize("index", [0, 1, 49, 377, HOSTS - 1])
def test_every_host_is_served(ctl, index):
    host = f"host-{index:04d}.{'x' * (index % 50)}scale.example"
    reply = ctl.get(f"/p{index}/x", host)
    assert reply.backend == "many", reply
    assert ctl.get(f"/p{index + 1}", host).status == 404


def test_all_ingresses_are_served(ctl):
    assert ctl.metrics()['ingress_ctrl_ingresses{state="served"}'] == HOSTS
    config = (ctl.state_dir / "nginx.conf").read_text()
    assert config.count(f"upstream {upstream_name('default', 'many', 80)} {{") == 1  # one upstream shared by every Ingress


def test_nginx_hash_sizes_fit_the_names(ctl):
    """nginx warns (and searches at length on every load) when server_names_hash_* do not fit."""
    warnings = [line for line in ctl.stderr().splitlines() if "[warn]" in line]
    assert warnings == []
