"""`python -m bench [--quick] [--only SCENARIOS] [--out DIR] [--doc PATH]`: run the benchmark, write
the raw figures (JSON), the plot (PNG) and docs/performance.md.

Scenarios: scale, nginx (variants of the config), startup, change, churn, dataplane. Sizes: the issue's by default (about 20
minutes on the 2-core reference machine); `--quick` runs every scenario at a tiny size (the
test suite does, to keep the benchmark working: tests/bench/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import procs

SCENARIOS = ("scale", "nginx", "startup", "change", "churn", "dataplane")


@dataclasses.dataclass(frozen=True)
class Sizes:
    scale: tuple[int, ...] = (100, 1000, 10000)
    reps: int = 3                 # translate/render/nginx -t repetitions (medians)
    reload_reps: int = 3          # reload-to-live repetitions, ours and naive (2 at 10,000)
    variants_n: int = 10000       # nginx -t on variants of the config (bench/variants.py)
    variants_reps: int = 2
    startup: tuple[int, ...] = (100, 1000, 10000)   # folder mode; Kubernetes mode at the largest
    change_n: int = 1000
    changes: int = 100
    churn_n: int = 1000
    churn_updates: int = 1000
    churn_window: float = 10.0
    dataplane_n: int = 1000
    dataplane_rounds: int = 4
    dataplane_seconds: float = 5.0
    dataplane_connections: int = 64


QUICK = Sizes(scale=(20, 60), reps=1, reload_reps=1, variants_n=60, variants_reps=1, startup=(40,), change_n=30, changes=3, churn_n=30,
              churn_updates=20, churn_window=1.0, dataplane_n=20, dataplane_rounds=2, dataplane_seconds=1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every scenario at a tiny size (seconds, not minutes)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where results.json and cost.png go")
    parser.add_argument("--doc", type=Path, default=Path(__file__).parents[1] / "docs" / "performance.md",
                        help="the Markdown report to write ('-' for none)")
    parser.add_argument("--label", default="", help="a name for this run, e.g. 'before' (results-LABEL.json, no report)")
    parser.add_argument("--set", action="append", default=[], metavar="SIZE=VALUE",
                        help="override one size, e.g. --set changes=20 --set scale=100,1000 (see Sizes in bench/run.py)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other scenarios' figures from the existing results file (rerun a subset)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report and plot from the existing results file")
    args = parser.parse_args(argv)
    if args.report_only:
        from bench import report
        results = json.loads((args.out / "results.json").read_text())
        plot = report.plot(results, args.out / "cost.png")
        before = args.out / "results-before.json"
        report.write(results, json.loads(before.read_text()) if before.exists() else None, args.doc, args.out / "results.json", plot)
        print(f"report: {args.doc}")
        return 0
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else Sizes()
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in {f.name for f in dataclasses.fields(Sizes)}:
            parser.error(f"--set {item}: no size named {key!r}")
        current = getattr(sizes, key)
        parsed = tuple(int(v) for v in value.split(",")) if isinstance(current, tuple) else type(current)(value)
        sizes = dataclasses.replace(sizes, **{key: parsed})
    results = run(sizes, only, quick=args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"results-{args.label}.json" if args.label else "results.json"
    if args.merge and (args.out / name).exists():
        previous = json.loads((args.out / name).read_text())
        for key in ("load_average", "seconds"):
            results[key] = {**previous.get(key, {}), **results[key]}
        results["merged"] = sorted(set(previous.get("merged", [])) | {previous["environment"]["date"]})
        results = {**{k: v for k, v in previous.items() if k in SCENARIOS}, **results}
    procs.dump_json(args.out / name, results)
    print(f"raw figures: {args.out / name}")
    if not args.label:
        from bench import report
        plot = report.plot(results, args.out / "cost.png")
        print(f"plot: {plot or 'skipped (matplotlib is not installed: pip install -e .[bench])'}")
        if str(args.doc) != "-":
            before = args.out / "results-before.json"
            report.write(results, json.loads(before.read_text()) if before.exists() and not args.quick else None,
                         args.doc, args.out / name, plot)
            print(f"report: {args.doc}")
    return 0


def environment() -> dict[str, Any]:
    nginx = subprocess.run([procs.NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    wrk = procs.shutil.which("wrk")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=procs.REPO_ROOT).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "ingress_ctrl", "templates"], capture_output=True, text=True,
                                cwd=procs.REPO_ROOT).stdout.strip())
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "nginx": nginx.replace("nginx version: ", ""),
            "wrk": bool(wrk), "platform": platform.platform(),
            "commit": os.environ.get("BENCH_PRODUCT_COMMIT") or commit + (" + uncommitted changes" if dirty else ""),
            "product_root": str(procs.PRODUCT_ROOT)}


def run(sizes: Sizes, only: list[str], quick: bool = False) -> dict[str, Any]:
    from bench import dataplane, live, scale, variants

    def log(message: str) -> None:
        print(message, flush=True)

    results: dict[str, Any] = {"environment": environment(), "quick": quick, "sizes": dataclasses.asdict(sizes),
                               "load_average": {}, "seconds": {}}
    backend = procs.BackendNginx()
    try:
        for scenario in SCENARIOS:
            if scenario not in only:
                continue
            log(f"{scenario} (1-min load average {procs.load_average():.2f})")
            start = time.monotonic()
            results["load_average"][scenario] = [round(procs.load_average(), 2)]
            if scenario == "scale":
                results["scale"] = [scale.run(n, backend.port, sizes.reps, min(sizes.reload_reps, 2) if n >= 10000 else sizes.reload_reps, log)
                                    for n in sizes.scale]
            elif scenario == "nginx":
                results["nginx"] = variants.run(sizes.variants_n, sizes.variants_reps, backend.port, log)
            elif scenario == "startup":
                results["startup"] = [live.startup("folder", n, backend, log) for n in sizes.startup]
                results["startup"].append(live.startup("kube", max(sizes.startup), backend, log))
            elif scenario == "change":
                results["change"] = [live.change_to_live(mode, sizes.change_n, sizes.changes, backend, log, check)
                                     for mode, check in (("folder", "changed"), ("kube", "changed"), ("folder", "whole"))]
            elif scenario == "churn":
                results["churn"] = [live.churn(mode, sizes.churn_n, sizes.churn_updates, sizes.churn_window, backend, log=log)
                                    for mode in ("kube", "folder")]
            elif scenario == "dataplane":
                results["dataplane"] = dataplane.run(sizes.dataplane_n, sizes.dataplane_rounds, sizes.dataplane_seconds,
                                                     sizes.dataplane_connections, backend, log)
            results["load_average"][scenario].append(round(procs.load_average(), 2))
            results["seconds"][scenario] = round(time.monotonic() - start, 1)
    finally:
        backend.stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
