"""Flags of Kubernetes mode (`ingress-ctrl run`), kept beside the Kopf source that reads them."""

from __future__ import annotations

import argparse


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kubernetes")
    group.add_argument("--watch-namespace", default="", help="comma-separated namespaces to watch (default: all)")
