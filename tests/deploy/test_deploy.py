"""deploy/, the images and examples/, checked offline against Kubernetes' schemas and our own code.

Nothing here talks to a cluster or a registry: the schemas come from the kubernetes-validate
package, and the flags, ports, probe paths, Lease name and RBAC are compared with the controller's
real argument parser, web app and resource tables (ingress_ctrl.sources.kube_flags).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from ingress_ctrl import cli  # noqa: E402
from ingress_ctrl.sources import kube_flags  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLES = ROOT / "examples"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # what `kubectl apply -f DIR` reads
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
K8S_VERSION = kubernetes_validate.utils.latest_version()  # newest schema set the package ships
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass"}

Obj = dict[str, Any]


# --- loading ---------------------------------------------------------------------------------

def _documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _is_kube_object(doc: Any) -> bool:
    return (isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)
            and not doc["apiVersion"].startswith("kustomize.config.k8s.io/"))


def _manifest_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def _objects(folder: Path) -> list[tuple[Path, Obj]]:
    return [(path, doc) for path in _manifest_files(folder) for doc in _documents(path) if _is_kube_object(doc)]


DEPLOY_OBJECTS = _objects(DEPLOY)
EXAMPLE_OBJECTS = _objects(EXAMPLES)


def _one(kind: str, name: str | None = None) -> Obj:
    found = [o for _, o in DEPLOY_OBJECTS if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/, found {len(found)}"
    return found[0]


def _deployment() -> Obj:
    return _one("Deployment")


def _pod_spec() -> Obj:
    return _deployment()["spec"]["template"]["spec"]


def _container(name: str) -> Obj:
    (container,) = [c for c in _pod_spec()["containers"] if c["name"] == name]
    return container


# --- Dockerfiles -----------------------------------------------------------------------------

def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and line continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, rest = text.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return instructions


def _exec_form(path: Path, instruction: str) -> list[str] | None:
    values = [args for word, args in _dockerfile(path) if word == instruction]
    if not values:
        return None
    parsed = json.loads(values[-1])  # the last one wins; must be the JSON (exec) form
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), f"{path}: {instruction} must be a JSON array"
    return parsed


CONTROLLER_DOCKERFILE = ROOT / "Dockerfile"
BACKEND_DOCKERFILE = ROOT / "default-backend" / "Dockerfile"
IMAGES = {  # Dockerfile -> (build context, the Deployment's container built from it)
    CONTROLLER_DOCKERFILE: (ROOT, "controller"),
    BACKEND_DOCKERFILE: (ROOT / "default-backend", "default-backend"),
}


def _kube_argv(dockerfile: Path, container: Obj) -> list[str]:
    """The process's argv as the kubelet builds it from the image and the container, $(VAR) expanded."""
    entrypoint, cmd = _exec_form(dockerfile, "ENTRYPOINT") or [], _exec_form(dockerfile, "CMD") or []
    if "command" in container:
        argv = list(container["command"]) + list(container.get("args", []))
    else:
        argv = entrypoint + list(container["args"] if "args" in container else cmd)
    return [_expand(arg, container) for arg in argv]


def _expand(text: str, container: Obj) -> str:
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            path = var["valueFrom"]["fieldRef"]["fieldPath"]
            env[var["name"]] = {"metadata.namespace": _deployment()["metadata"]["namespace"],
                                "metadata.name": "ingress-ctrl-0123456789-abcde"}[path]
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


def _controller_args():
    container = _container("controller")
    argv = _kube_argv(CONTROLLER_DOCKERFILE, container)
    assert argv[0] == "ingress-ctrl", argv
    parser = cli.build_parser()
    # argparse accepts abbreviations and repeats; the Deployment must spell every flag exactly, once.
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    known = set(commands.choices[argv[1]]._option_string_actions)
    flags = [arg.partition("=")[0] for arg in argv[2:] if arg.startswith("-")]
    assert set(flags) <= known, f"not flags of `ingress-ctrl {argv[1]}`: {set(flags) - known}"
    assert len(flags) == len(set(flags)), "a flag is given twice"
    return parser.parse_args(argv[1:])


def _backend_args():
    sys.path.insert(0, str(ROOT / "default-backend"))
    try:
        import default_backend
    finally:
        sys.path.remove(str(ROOT / "default-backend"))
    argv = _kube_argv(BACKEND_DOCKERFILE, _container("default-backend"))
    assert argv[:2] == ["python", "/app/default_backend.py"], argv
    return default_backend.parse_args(argv[2:])


# --- schemas ---------------------------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("schema validation tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


ALL_OBJECTS = [(path, obj) for path, obj in DEPLOY_OBJECTS + EXAMPLE_OBJECTS]


@pytest.mark.parametrize("path, obj", ALL_OBJECTS,
                         ids=[f"{p.parent.name}/{p.name}:{o['kind']}/{o['metadata']['name']}" for p, o in ALL_OBJECTS])
def test_validates_against_kubernetes_schema(path: Path, obj: Obj, no_network: None) -> None:
    # strict: unknown fields are errors too, as with `kubectl apply --validate=strict`.
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_every_manifest_file_holds_kubernetes_objects() -> None:
    for folder in (DEPLOY, EXAMPLES):
        for path in _manifest_files(folder):
            docs = _documents(path)
            assert docs and all(_is_kube_object(d) for d in docs), f"{path}: not (only) Kubernetes objects"
    assert K8S_VERSION.split(".")[:1] == ["1"] and int(K8S_VERSION.split(".")[1]) >= 30, K8S_VERSION


# --- kustomize and kubectl apply -f ----------------------------------------------------------

def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    present = [DEPLOY / name for name in KUSTOMIZATION_NAMES if (DEPLOY / name).exists()]
    assert len(present) == 1, f"deploy/ needs exactly one of {KUSTOMIZATION_NAMES}"
    kustomization = yaml.safe_load(present[0].read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    assert sorted(resources) == [p.name for p in _manifest_files(DEPLOY)]
    # `kubectl apply -f deploy/` would choke on a kustomization file it can read.
    assert present[0].suffix not in MANIFEST_SUFFIXES


def test_apply_f_creates_the_namespace_first() -> None:
    """`kubectl apply -f deploy/` applies files in name order: the Namespace must come first."""
    namespace = _one("Namespace")["metadata"]["name"]
    kinds_in_order = [o["kind"] for _, o in DEPLOY_OBJECTS]
    assert kinds_in_order[0] == "Namespace"
    for _, obj in DEPLOY_OBJECTS:
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], obj["metadata"]
        else:
            assert obj["metadata"].get("namespace") == namespace, f"{obj['kind']} {obj['metadata']['name']}"


def test_names_are_unique() -> None:
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for _, o in DEPLOY_OBJECTS]
    assert len(keys) == len(set(keys))


# --- the Deployment against the code --------------------------------------------------------

def _named_port(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def _service_target(service: Obj, port: int) -> tuple[Obj, int]:
    """The container and container port that Service port `port` reaches."""
    selector = service["spec"]["selector"]
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), f"Service {service['metadata']['name']} does not select the controller Pods"
    (spec,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    target = spec.get("targetPort", port)
    for container in _pod_spec()["containers"]:
        for declared in container.get("ports", []):
            if target in (declared.get("name"), declared["containerPort"]):
                assert declared.get("protocol", "TCP") == spec.get("protocol", "TCP")
                return container, declared["containerPort"]
    raise AssertionError(f"Service {service['metadata']['name']} port {port}: no container port {target!r}")


def test_controller_args_parse_with_the_real_parser() -> None:
    args = _controller_args()
    assert args.command == "run"
    ingress_class = _one("IngressClass")
    assert args.controller_class == ingress_class["spec"]["controller"]
    assert args.ingress_class == ingress_class["metadata"]["name"]
    settings = cli.settings_from(args)  # every value also builds the real settings
    assert settings.nginx.http_port == args.http_port


def test_image_default_command_parses() -> None:
    entrypoint, cmd = _exec_form(CONTROLLER_DOCKERFILE, "ENTRYPOINT"), _exec_form(CONTROLLER_DOCKERFILE, "CMD")
    assert entrypoint == ["ingress-ctrl"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entrypoint[0]] == "ingress_ctrl.cli:main"
    assert cli.build_parser().parse_args(cmd).command == "run"


def test_load_balancer_service_reaches_nginx_ports() -> None:
    args = _controller_args()
    service = _one("Service", "ingress-ctrl")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert sorted(p["port"] for p in service["spec"]["ports"]) == [80, 443]
    assert _service_target(service, 80) == (_container("controller"), args.http_port)
    assert _service_target(service, 443) == (_container("controller"), args.https_port)
    if min(args.http_port, args.https_port) < 1024:  # no capabilities: the Pod must lower the unprivileged port range
        sysctls = {s["name"]: s["value"] for s in _pod_spec()["securityContext"].get("sysctls", [])}
        assert int(sysctls.get("net.ipv4.ip_unprivileged_port_start", 1024)) <= min(args.http_port, args.https_port)


def test_publish_service_is_the_load_balancer() -> None:
    args = _controller_args()
    service = _one("Service", "ingress-ctrl")
    assert args.publish_service == f"{service['metadata']['namespace']}/{service['metadata']['name']}"


def test_default_backend_service_reaches_the_default_backend() -> None:
    args = _controller_args()
    ref = args.default_backend_service
    service = _one("Service", ref.name)
    assert service["metadata"]["namespace"] == ref.namespace
    first_port = service["spec"]["ports"][0]["port"]  # the controller uses the Service's first port
    container, port = _service_target(service, first_port)
    assert container["name"] == "default-backend"
    backend = _backend_args()
    assert port == backend.port
    taken = {args.http_port, args.https_port, args.healthz_port}
    assert backend.port not in taken, "the containers share the Pod's network namespace"


def _route_paths() -> set[str]:
    from ingress_ctrl.metrics import Metrics
    from ingress_ctrl.web import make_app
    app = make_app(Metrics(), lambda: True, lambda: True)
    return {route.resource.canonical for route in app.router.routes()}


def test_probes_use_the_healthz_port_and_paths() -> None:
    args = _controller_args()
    controller = _container("controller")
    paths = _route_paths()
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = controller[probe]["httpGet"]
        assert get["path"] == path and path in paths
        assert _named_port(controller, get["port"]) == args.healthz_port
    declared = {p["containerPort"] for p in controller["ports"]}
    assert declared == {args.http_port, args.https_port, args.healthz_port}
    backend = _container("default-backend")
    for probe in ("livenessProbe", "readinessProbe"):
        get = backend[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert _named_port(backend, get["port"]) == _backend_args().port


def test_lease_name_namespace_and_pod_namespace() -> None:
    args = _controller_args()
    env = {v["name"]: v for v in _container("controller")["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = _one("Role")
    assert role["metadata"]["namespace"] == _deployment()["metadata"]["namespace"]
    names = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
    assert names == {args.election_id}


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", duration)
    assert match, duration
    return int(match[1]) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match[2]]


def test_shutdown_fits_in_the_grace_period() -> None:
    args = _controller_args()
    grace = _pod_spec()["terminationGracePeriodSeconds"]
    assert args.shutdown_grace_period > 0, "keep serving while endpoints and load balancers drop the Pod"
    assert args.shutdown_grace_period + _seconds(args.worker_shutdown_timeout) < grace
    # The default backend outlives the controller's grace period (its local nginx still uses it).
    sleep = _container("default-backend")["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert float(sleep[1]) > args.shutdown_grace_period
    assert float(sleep[1]) + _backend_args().shutdown_timeout < grace


def test_writable_state_only_on_empty_dirs() -> None:
    args = _controller_args()
    controller = _container("controller")
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m for m in controller["volumeMounts"]}
    empty_dirs = {path for path, m in mounts.items() if "emptyDir" in volumes[m["name"]]}
    assert "/tmp" in empty_dirs
    state = PurePosixPath(str(args.state_dir))
    # Strictly inside the mount: the kubelet creates the mount point root-owned, and the controller
    # must own (and chmod) its state directory.
    assert any(PurePosixPath(p) in state.parents for p in empty_dirs), f"{state} is not inside an emptyDir mount"
    for path, mount in mounts.items():
        assert path in empty_dirs or mount.get("readOnly") is True, f"{path} is writable but not an emptyDir"
    assert "volumeMounts" not in _container("default-backend")


def test_examples_are_served_by_this_deployment() -> None:
    """The examples' Ingresses, with deploy/'s IngressClass and the Deployment's flags: all ours, none rejected."""
    from ingress_ctrl.sources.files import load_all
    from ingress_ctrl.state import Store
    from ingress_ctrl.translate import translate

    settings = cli.settings_from(_controller_args())
    deployed = load_all(_manifest_files(DEPLOY))
    examples = [(key, obj) for key, obj in load_all(_manifest_files(EXAMPLES)) if key.kind != "IngressClass"]
    store = Store()
    store.replace(deployed + examples)
    translation = translate(store.snapshot(), settings.translate, datetime.datetime.now(datetime.timezone.utc))
    ingresses = {key for key, _ in examples if key.kind == "Ingress"}
    assert ingresses, "no example Ingresses found"
    assert set(translation.served) == ingresses
    assert not translation.rejected


# --- RBAC, derived from the code's own tables ------------------------------------------------

def _grants(rules: list[Obj]) -> set[tuple[str, str, str]]:
    granted = set()
    for rule in rules:
        assert "nonResourceURLs" not in rule
        for value in itertools.chain(rule["apiGroups"], rule["resources"], rule["verbs"]):
            assert "*" not in value, f"wildcard in {rule}"
        granted |= set(itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"]))
    return granted


def _needed(resources: tuple[kube_flags.Resource, ...]) -> set[tuple[str, str, str]]:
    return {(r.group, r.plural, verb) for r in resources for verb in r.verbs}


def test_cluster_role_is_exactly_what_the_controller_watches_and_writes() -> None:
    role = _one("ClusterRole")
    assert all("resourceNames" not in rule for rule in role["rules"])
    granted = _grants(role["rules"])
    needed = _needed(kube_flags.WATCHED + kube_flags.WRITTEN)
    assert needed - granted == set(), "missing"
    assert granted - needed == set(), "more than the controller uses"


def test_lease_role_is_exactly_leader_election_in_the_own_namespace() -> None:
    args = _controller_args()
    role = _one("Role")
    assert _grants(role["rules"]) == _needed((kube_flags.LEASE,))
    for rule in role["rules"]:
        if rule["verbs"] == ["create"]:
            assert "resourceNames" not in rule  # create cannot be limited by name
        else:
            assert rule.get("resourceNames") == [args.election_id]


def test_roles_are_bound_to_the_deployment_service_account_only() -> None:
    account = _one("ServiceAccount")
    assert _pod_spec()["serviceAccountName"] == account["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = _one(binding_kind)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": _one(role_kind)["metadata"]["name"]}
        assert binding["subjects"] == [subject]
    role_binding = _one("RoleBinding")
    assert role_binding["metadata"]["namespace"] == _one("Role")["metadata"]["namespace"]


# --- locked down -----------------------------------------------------------------------------

def test_pod_meets_the_restricted_pod_security_standard() -> None:
    pod = _pod_spec()
    assert _one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    pod_context = pod["securityContext"]
    assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] != 0
    assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
    allowed_volumes = {"emptyDir", "projected", "configMap", "secret", "downwardAPI", "ephemeral", "persistentVolumeClaim", "csi"}
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= allowed_volumes, volume
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context.get("privileged", False) is False
        assert context.get("seccompProfile", pod_context["seccompProfile"])["type"] == "RuntimeDefault"
        assert context.get("runAsUser", pod_context["runAsUser"]) != 0
        assert all("hostPort" not in p for p in container.get("ports", []))
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]


def test_api_token_only_in_the_controller_container() -> None:
    pod = _pod_spec()
    assert pod["automountServiceAccountToken"] is False
    assert _one("ServiceAccount")["automountServiceAccountToken"] is False
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    sources = volume["projected"]["sources"]
    assert any("serviceAccountToken" in s for s in sources)
    assert any(s.get("configMap", {}).get("name") == "kube-root-ca.crt" for s in sources)
    for container in pod["containers"]:
        mounted = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        if container["name"] == "controller":
            assert mounted[volume["name"]] == "/var/run/secrets/kubernetes.io/serviceaccount"
        else:
            assert volume["name"] not in mounted


def test_availability() -> None:
    deployment = _deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spread = _pod_spec()["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()


# --- images ----------------------------------------------------------------------------------

def _dockerignore_patterns(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """Docker's .dockerignore rules: (is an exception '!', regex), last match wins."""
    path = context / ".dockerignore"
    patterns = []
    if not path.exists():
        return patterns
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        text = str(PurePosixPath(line.lstrip("!").strip().lstrip("/")))
        regex, i = "", 0
        while i < len(text):
            if text.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif text.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif text[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif text[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif text[i] == "[":
                end = text.index("]", i)
                regex, i = regex + text[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(text[i]), i + 1
        patterns.append((exception, re.compile(regex + r"\Z")))
    return patterns


def _ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]  # the path or any parent
    ignored = False
    for exception, regex in patterns:
        if any(regex.match(c) for c in candidates):
            ignored = not exception
    return ignored


def _context_files(context: Path) -> list[str]:
    patterns = _dockerignore_patterns(context)
    files = []
    for path in sorted(context.rglob("*")):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(context).as_posix()
            if not _ignored(relative, patterns):
                files.append(relative)
    return files


def _copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    copies = []
    for word, args in _dockerfile(dockerfile):
        if word in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_copies_existing_unignored_paths(dockerfile: Path) -> None:
    context, _ = IMAGES[dockerfile]
    included = set(_context_files(context))
    copies = _copies(dockerfile)
    assert copies
    for sources, _ in copies:
        for source in sources:
            path = context / source
            assert path.exists(), f"{dockerfile}: COPY {source}: no such path in {context}"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            for file in files:
                relative = file.relative_to(context).as_posix()
                assert relative in included, f"{dockerfile}: COPY {source}: {relative} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_base_pinned_and_user_matches_the_pod(dockerfile: Path) -> None:
    instructions = _dockerfile(dockerfile)
    bases = [args for word, args in instructions if word == "FROM"]
    assert bases and all(re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", b) for b in bases), bases
    (user,) = [args for word, args in instructions if word == "USER"][-1:]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be numeric (runAsNonRoot checks it) and not root"
    pod = _pod_spec()["securityContext"]
    assert int(uid) == pod["runAsUser"] and (not gid or int(gid) == pod["runAsGroup"])


def test_both_images_share_the_base() -> None:
    bases = {dockerfile: [a for w, a in _dockerfile(dockerfile) if w == "FROM"] for dockerfile in IMAGES}
    assert bases[CONTROLLER_DOCKERFILE] == bases[BACKEND_DOCKERFILE]


def test_controller_image_exposes_the_deployment_ports() -> None:
    exposed = {int(p) for w, a in _dockerfile(CONTROLLER_DOCKERFILE) if w == "EXPOSE" for p in a.split()}
    assert exposed == {p["containerPort"] for p in _container("controller")["ports"]}


def test_deployment_images_are_the_documented_placeholders() -> None:
    images = {c["name"]: c["image"] for c in _pod_spec()["containers"]}
    assert images == {"controller": "ghcr.io/ingress-ctrl/controller:0.1.0",
                      "default-backend": "ghcr.io/ingress-ctrl/default-backend:0.1.0"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert all(image.endswith(":" + version) for image in images.values())


def test_build_context_is_minimal_and_installs_with_its_templates(tmp_path: Path) -> None:
    """Copy the context as Docker would (.dockerignore applied), build the package from it, and
    import the result from elsewhere: the templates must come with the installed package."""
    files = _context_files(ROOT)
    for unwanted in ("tests/", "docs/", "deploy/", "examples/", ".git/", "default-backend/"):
        assert not any(f.startswith(unwanted) for f in files), f"{unwanted} is in the build context"
    assert "pyproject.toml" in files and any(f.startswith("templates/") and f.endswith(".j2") for f in files)
    context = tmp_path / "context"
    for relative in files:
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, context / relative)
    lib = tmp_path / "lib"
    build = (
        "import sys; from setuptools.dist import Distribution\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "dist = Distribution(); dist.script_name = 'setup.py'\n"
        "apply_configuration(dist, 'pyproject.toml')\n"
        "cmd = dist.get_command_obj('build_py'); cmd.build_lib = sys.argv[1]; cmd.compile = 0\n"
        "dist.run_command('build_py')\n"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", build, str(lib)], cwd=context, check=True, capture_output=True)
    probe = (
        "import ingress_ctrl, ingress_ctrl.render as r, ingress_ctrl.cli as c\n"
        "print(ingress_ctrl.__file__); print(r.templates_dir()); c.build_parser().parse_args(['run'])\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"},
                            check=True, capture_output=True, text=True)
    package, templates = result.stdout.split()
    assert Path(package).is_relative_to(lib)
    assert Path(templates) == lib / "ingress_ctrl" / "templates"
    assert (Path(templates) / "nginx.conf.j2").is_file()


def test_clients_see_the_service_ports_not_the_container_ports() -> None:
    from ingress_ctrl.render import render
    from ingress_ctrl.state import Store
    from ingress_ctrl.translate import translate

    args = _controller_args()
    settings = cli.settings_from(args)
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "redirect", "namespace": "demo", "creationTimestamp": "2024-01-01T00:00:00Z",
                     "annotations": {"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}},
        "spec": {"ingressClassName": _one("IngressClass")["metadata"]["name"], "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "echo", "port": {"number": 80}}}}]}}]},
    }
    store = Store()
    store.put(_one("IngressClass"))
    store.put(ingress)
    translation = translate(store.snapshot(), settings.translate, datetime.datetime.now(datetime.timezone.utc))
    text = render(translation.config, settings.nginx).text
    assert "return 308 https://$host" in text
    assert f":{args.https_port}" not in text.split("return 308", 1)[1].split(";", 1)[0], "redirect names the container port"
    # X-Forwarded-Port is nginx's $server_port: right only if the Service's ports are the listen ports.
    service_ports = {p["name"]: p["port"] for p in _one("Service", "ingress-ctrl")["spec"]["ports"]}
    assert (service_ports["http"], service_ports["https"]) == (args.http_port, args.https_port)
