#!/usr/bin/env python3
"""The long injection-proof rendering run: N generated worlds, each through translate, render,
`nginx -t` and the crossplane checks (tests/fuzz/harness.py), counting instead of stopping.

    python3 scripts/fuzz_long.py                       # 20,000 examples, 1 process
    python3 scripts/fuzz_long.py --examples 500 --jobs 2
    python3 scripts/fuzz_long.py --write-doc           # also put the figures in docs/reliability.md

Exits 1 if any property was violated, printing the first examples of each. Needs nginx and the
test extras (`pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOC = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- fuzz-long:begin -->", "<!-- fuzz-long:end -->"
SAMPLES_PER_PROPERTY = 3


def run_job(job: int, examples: int, seed: int, state_root: str, nginx: bool) -> dict[str, Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from tests.fuzz.harness import Harness
    from tests.fuzz.world import World, worlds

    harness = Harness(Path(tempfile.mkdtemp(prefix=f"job{job}-", dir=state_root)), nginx=nginx)
    totals: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    started = time.monotonic()

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(world=worlds())
    def check(world: World) -> None:
        outcome = harness.check(world)
        totals["examples"] += 1
        totals.update(outcome.stats)
        totals["worlds_with_problems"] += bool(outcome.stats["problems"])
        totals["worlds_with_rejections"] += bool(outcome.stats["ingresses_rejected"])
        totals["worlds_serving"] += bool(outcome.stats["ingresses_served"])
        totals["nginx_t_runs"] += outcome.nginx_seconds > 0
        totals["nginx_t_ms"] += round(outcome.nginx_seconds * 1000)
        for prop in {prop for prop, _ in outcome.violations}:
            violations[prop] += 1
        for prop, detail in outcome.violations:
            if len(samples.setdefault(prop, [])) < SAMPLES_PER_PROPERTY:
                samples[prop].append(f"{detail}\n  world: {world!r}"[:6000])
        if totals["examples"] % 1000 == 0:
            rate = totals["examples"] / (time.monotonic() - started)
            print(f"[job {job}] {totals['examples']}/{examples} examples, {rate:.1f}/s, "
                  f"{sum(violations.values())} violations", file=sys.stderr, flush=True)

    check()
    return {"totals": dict(totals), "violations": dict(violations), "samples": samples,
            "seconds": time.monotonic() - started}


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    for result in results:
        totals.update(result["totals"])
        violations.update(result["violations"])
        for prop, found in result["samples"].items():
            samples.setdefault(prop, []).extend(found)
    return {"totals": dict(totals), "violations": dict(violations), "samples": samples}


def versions() -> dict[str, str]:
    import crossplane
    import hypothesis

    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return {
        "nginx": (nginx.stderr.strip().partition("/")[2] or "?"),
        "hypothesis": hypothesis.__version__,
        "crossplane": getattr(crossplane, "__version__", "?"),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
    }


def summary(args: argparse.Namespace, merged: dict[str, Any], seconds: float) -> str:
    t, v = Counter(merged["totals"]), Counter(merged["violations"])
    n = t["examples"]
    nginx_failures = v["nginx-t"]
    crossplane_failures = sum(count for prop, count in v.items() if prop.startswith("crossplane"))
    other = sum(v.values()) - nginx_failures - crossplane_failures
    ver = versions()
    command = f"python3 scripts/fuzz_long.py --examples {args.examples} --jobs {args.jobs} --seed {args.seed}"
    if args.write_doc:
        command += " --write-doc"
    lines = [
        f"Run of {datetime.date.today().isoformat()}: nginx {ver['nginx']}, hypothesis {ver['hypothesis']}, "
        f"crossplane {ver['crossplane']}, Python {ver['python']}, {ver['cpus']} CPUs, {args.jobs} process(es).",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| examples (generated worlds) | {n:,} |",
        f"| objects in them (after key validation) / dropped for lacking a kind or name | {t['objects']:,} / {t['objects_unkeyable']:,} |",
        f"| worlds with at least one problem reported | {t['worlds_with_problems']:,} ({t['worlds_with_problems'] / max(n, 1):.0%}) |",
        f"| worlds with at least one Ingress rejected | {t['worlds_with_rejections']:,} ({t['worlds_with_rejections'] / max(n, 1):.0%}) |",
        f"| worlds serving at least one Ingress | {t['worlds_serving']:,} ({t['worlds_serving'] / max(n, 1):.0%}) |",
        f"| Ingresses served / rejected | {t['ingresses_served']:,} / {t['ingresses_rejected']:,} |",
        f"| problems reported (rejecting) | {t['problems']:,} ({t['problems_rejecting']:,}) |",
        f"| rendered server / location / upstream blocks, certificates | {t['servers']:,} / {t['locations']:,} / {t['upstreams']:,}, {t['certificates']:,} |",
        f"| `nginx -t` runs / failures | {t['nginx_t_runs']:,} / **{nginx_failures}** |",
        f"| crossplane violations (parse, allow-list, structure) | **{crossplane_failures}** |",
        f"| other violations (translate/render raised, problems, marker, non-ASCII) | **{other}** |",
        f"| runtime | {seconds / 60:.1f} min ({n / max(seconds, 1e-9):.1f} examples/s; `nginx -t` {t['nginx_t_ms'] / max(t['nginx_t_runs'], 1):.0f} ms on average) |",
        "",
        f"Rerun: `{command}`",
    ]
    if v:
        lines += ["", "Violations by property: " + ", ".join(f"{prop} {count}" for prop, count in sorted(v.items()))]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {BEGIN} … {END} block to fill")
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20000, help="worlds to generate (default 20000)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1; each runs nginx -t in turn)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed of the first process (default 0)")
    parser.add_argument("--no-nginx", action="store_true", help="skip nginx -t (crossplane checks only)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--write-doc", action="store_true", help=f"put the figures in {DOC.relative_to(REPO)}")
    args = parser.parse_args()
    if not args.no_nginx and shutil.which("nginx") is None:
        parser.error("nginx is not installed (or use --no-nginx)")

    shares = [args.examples // args.jobs + (i < args.examples % args.jobs) for i in range(args.jobs)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-long-") as root:
        if args.jobs == 1:
            results = [run_job(0, shares[0], args.seed, root, not args.no_nginx)]
        else:
            with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
                futures = [pool.submit(run_job, i, share, args.seed + i, root, not args.no_nginx) for i, share in enumerate(shares)]
                results = [f.result() for f in futures]
    seconds = time.monotonic() - started
    merged = merge(results)
    text = summary(args, merged, seconds)
    print(text)
    for prop, found in sorted(merged["samples"].items()):
        print(f"\n== {prop}: first examples", file=sys.stderr)
        for sample in found[:SAMPLES_PER_PROPERTY]:
            print(re.sub(r"\s+\n", "\n", sample), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({**merged, "seconds": seconds, "args": vars(args) | {"json": str(args.json)}}, indent=1))
    if args.write_doc:
        write_doc(text)
    return 1 if merged["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
