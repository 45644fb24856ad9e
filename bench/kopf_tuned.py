"""`python -m bench.kopf_tuned run …`: `ingress-ctrl run` with Kopf's queueing settings changed from
the environment: an experiment for the memory target (docs/performance.md), not a product change.

Kopf runs one asyncio task per object that had an event, and keeps it for
`settings.queueing.idle_timeout` after the object's last event (Kopf's default 5 s; the product
sets 0.2 s, `KOPF_IDLE_TIMEOUT` in ingress_ctrl/sources/kube.py): at start-up, with 30,000 objects
listed within seconds, 5 s meant 30,000 tasks at once. BENCH_KOPF_IDLE_TIMEOUT (seconds) and
BENCH_KOPF_WORKER_LIMIT set those two settings.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import kopf

from ingress_ctrl.sources import kube


def _tuned_registry(original: Any) -> Any:
    def registry(self: kube.KubeSource) -> kopf.OperatorRegistry:
        found = original(self)

        @kopf.on.startup(registry=found)
        def tune(settings: kopf.OperatorSettings, **_: Any) -> None:
            if os.environ.get("BENCH_KOPF_IDLE_TIMEOUT"):
                settings.queueing.idle_timeout = float(os.environ["BENCH_KOPF_IDLE_TIMEOUT"])
            if os.environ.get("BENCH_KOPF_WORKER_LIMIT"):
                settings.queueing.worker_limit = int(os.environ["BENCH_KOPF_WORKER_LIMIT"])
        return found
    return registry


kube.KubeSource.registry = _tuned_registry(kube.KubeSource.registry)  # type: ignore[method-assign]

if __name__ == "__main__":
    from ingress_ctrl.cli import main
    sys.exit(main(sys.argv[1:]))
