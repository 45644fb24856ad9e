"""Which Ingresses are ours: ingressClassName, the legacy annotation, class-less Ingresses."""

from __future__ import annotations

import pytest

import e2e_support as s

# host -> how its Ingress names (or does not name) a class
INGRESSES = {
    "by-name.classes": {"class_name": "nginx"},
    "second-class-of-ours.classes": {"class_name": "internal"},
    "other-controller.classes": {"class_name": "other"},
    "unknown-class.classes": {"class_name": "no-such-class"},
    "legacy.classes": {"class_name": None, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
    "legacy-other.classes": {"class_name": None, "annotations": {"kubernetes.io/ingress.class": "other"}},
    "legacy-custom.classes": {"class_name": None, "annotations": {"kubernetes.io/ingress.class": "custom"}},
    "no-class.classes": {"class_name": None},
}

ALWAYS = {"by-name.classes", "second-class-of-ours.classes", "legacy.classes"}

# variant -> (controller flags, name of the IngressClass marked default, hosts served)
VARIANTS = {
    "plain": ([], None, ALWAYS),
    "watch-without-class": (["--watch-ingress-without-class"], None, ALWAYS | {"no-class.classes"}),
    "default-class-ours": ([], "nginx", ALWAYS | {"no-class.classes"}),
    "default-class-other": ([], "other", ALWAYS),
    "custom-flags": (["--ingress-class", "custom", "--controller-class", "example.org/other"], None,
                     {"other-controller.classes", "legacy-custom.classes"}),
}


@pytest.fixture(scope="module")
def backend_port(backends):
    return backends.start("classy")


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, backend_port):
    args, default, served = VARIANTS[request.param]
    folder = s.scratch_dir("manifests")
    objects = [
        s.ingress_class("nginx", default=default == "nginx"),
        s.ingress_class("internal"),
        s.ingress_class("other", controller="example.org/other", default=default == "other"),
        *s.backed_service("classy", backend_port),
    ]
    for index, (host, options) in enumerate(INGRESSES.items()):
        objects.append(s.ingress(f"ingress-{index}", [s.rule(host, s.path("/", "classy"))], **options))
    s.write_manifests(folder, "all.yaml", objects)
    with s.running(folder, args) as controller:
        yield controller, served


@pytest.mark.parametrize("host", list(INGRESSES))
def test_class_selection(variant, host):
    controller, served = variant
    reply = controller.get("/", host)
    if host in served:
        assert reply.backend == "classy", reply
    else:
        assert reply.status == 404, reply
        assert reply.backend is None


def test_served_count_in_metrics(variant):
    controller, served = variant
    assert controller.metrics()['ingress_ctrl_ingresses{state="served"}'] == len(served)
