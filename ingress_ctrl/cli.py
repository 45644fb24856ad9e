"""Command line: `render` (print nginx.conf), `serve` (folder mode), `run` (Kubernetes mode)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ingress_ctrl.settings import ClassSettings, NginxSettings, ObjectRef, Settings, SyncSettings, TranslateSettings, DEFAULT_CONTROLLER_CLASS


def _ref(flag: str):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> ObjectRef:
        try:
            return ObjectRef.parse(text, flag=flag)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 100000")
    return int(text)


def _state_dir(text: str) -> Path:
    # The path is written into nginx.conf: allow only plain path characters.
    if not text or any(not (c.isalnum() or c in "/._-") for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: use only letters, digits and / . _ -")
    return Path(text).absolute()


def _add_class_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ingress class and defaults")
    group.add_argument("--ingress-class", default="nginx", help="legacy kubernetes.io/ingress.class annotation value we serve (default: nginx)")
    group.add_argument("--controller-class", default=DEFAULT_CONTROLLER_CLASS, help=f"IngressClass spec.controller value we serve (default: {DEFAULT_CONTROLLER_CLASS})")
    group.add_argument("--watch-ingress-without-class", action="store_true", help="also serve Ingresses that name no class")
    group.add_argument("--default-backend-service", type=_ref("--default-backend-service"), metavar="NS/NAME", help="Service for requests that match no rule (default: 404 from nginx)")
    group.add_argument("--default-ssl-certificate", type=_ref("--default-ssl-certificate"), metavar="NS/NAME", help="TLS Secret for hosts without their own (default: a self-signed one)")
    group.add_argument("--state-dir", type=_state_dir, default=Path("/tmp/ingress-ctrl"), help="where nginx.conf, certificates and nginx's own files live (default: /tmp/ingress-ctrl)")


def _add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nginx and the controller")
    group.add_argument("--http-port", type=_port, default=80, help="default: 80")
    group.add_argument("--https-port", type=_port, default=443, help="default: 443")
    group.add_argument("--healthz-port", type=_port, default=10254, help="/healthz, /readyz, /metrics (default: 10254)")
    group.add_argument("--listen-address", default="", help="address nginx and the healthz port bind (default: all)")
    group.add_argument("--nginx-binary", default="nginx", help="default: nginx from PATH")
    group.add_argument("--access-log", default="stdout", help="nginx access log: a path, stdout, or off (default: stdout)")
    group.add_argument("--worker-shutdown-timeout", default="30s", help="how long old nginx workers may finish requests after a reload (default: 30s)")
    group.add_argument("--shutdown-grace-period", type=float, default=0.0, help="seconds to keep serving after SIGTERM before nginx quits (default: 0)")
    group.add_argument("--upstream-keepalive-connections", type=_positive_int, default=64,
                       help="idle upstream connections each nginx worker keeps per Service port (default: 64)")
    group.add_argument("--config-check", choices=["changed", "whole"], default="changed",
                       help="what nginx -t reads before a reload: the blocks a change made, or the whole config (default: changed)")
    group.add_argument("--sync-debounce", type=float, default=0.1, help="seconds of quiet before a sync (default: 0.1)")
    group.add_argument("--sync-max-delay", type=float, default=1.0, help="longest wait after a change before a sync (default: 1.0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingress-ctrl", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="print the nginx.conf for a folder of manifests")
    render.add_argument("--manifests", type=Path, action="append", required=True, metavar="PATH", help="a manifest file or folder (repeatable)")
    _add_class_flags(render)

    serve = commands.add_parser("serve", help="run nginx for a folder of manifests, following changes")
    serve.add_argument("--manifests", type=Path, action="append", required=True, metavar="PATH", help="a manifest file or folder (repeatable)")
    _add_class_flags(serve)
    _add_runtime_flags(serve)

    from ingress_ctrl.sources import kube_flags  # the Kubernetes mode's own flags live with it
    run = commands.add_parser("run", help="run against a Kubernetes cluster")
    _add_class_flags(run)
    _add_runtime_flags(run)
    kube_flags.add_flags(run)
    return parser


def resolvers(path: Path = Path("/etc/resolv.conf")) -> tuple[str, ...]:
    """Name servers for ExternalName Services, as the Pod's resolver knows them."""
    found = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ()
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                found.append(str(ipaddress.ip_address(parts[1])))
            except ValueError:
                continue
    return tuple(found)


def settings_from(args: argparse.Namespace) -> Settings:
    translate = TranslateSettings(
        classes=ClassSettings(args.ingress_class, args.controller_class, args.watch_ingress_without_class),
        default_backend_service=args.default_backend_service,
        default_ssl_certificate=args.default_ssl_certificate,
    )
    if args.command == "render":
        return Settings(translate=translate, nginx=NginxSettings(state_dir=args.state_dir, resolvers=resolvers()))
    nginx = NginxSettings(
        http_port=args.http_port, https_port=args.https_port, listen_address=args.listen_address,
        binary=args.nginx_binary, state_dir=args.state_dir, access_log=args.access_log,
        worker_shutdown_timeout=args.worker_shutdown_timeout, resolvers=resolvers(),
        upstream_keepalive_connections=args.upstream_keepalive_connections, config_check=args.config_check,
    )
    return Settings(
        translate=translate, nginx=nginx, sync=SyncSettings(args.sync_debounce, args.sync_max_delay),
        healthz_port=args.healthz_port, healthz_address=args.listen_address,
        shutdown_grace_period=args.shutdown_grace_period,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    if args.command == "render":
        return _render(args.manifests, settings)
    if args.command == "serve":
        return asyncio.run(_serve(args.manifests, settings))
    from ingress_ctrl.sources import kube
    return asyncio.run(kube.run(args, settings))


def _render(paths: list[Path], settings: Settings) -> int:
    from ingress_ctrl.render import render
    from ingress_ctrl.sources.files import ManifestError, load_all
    from ingress_ctrl.state import Store
    from ingress_ctrl.translate import translate

    try:
        objects = load_all(paths)
    except ManifestError as error:
        print(f"ingress-ctrl: {error}", file=sys.stderr)
        return 2
    store = Store()
    store.replace(objects)
    translation = translate(store.snapshot(), settings.translate, datetime.datetime.now(datetime.timezone.utc))
    for problem in translation.problems:
        print(problem, file=sys.stderr)
    sys.stdout.write(render(translation.config, settings.nginx).text)
    return 0


async def _serve(paths: list[Path], settings: Settings) -> int:
    from ingress_ctrl.controller import Controller
    from ingress_ctrl.sources.files import FolderSource, ManifestError, discover
    from ingress_ctrl.state import Store

    try:
        discover(paths)
    except ManifestError as error:
        print(f"ingress-ctrl: {error}", file=sys.stderr)
        return 2
    store = Store()
    return await Controller(settings, store, [FolderSource(paths, store)]).run()
