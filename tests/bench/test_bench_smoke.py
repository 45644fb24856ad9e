"""The benchmark keeps working: `python -m bench --quick` runs every scenario at a tiny size and
writes the JSON figures and the report. No timing is asserted here (the machine is shared and
noisy); docs/performance.md holds the measurements, from a full run."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("kmock") is None, reason="kmock (the test extras) is not installed"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    doc = out / "performance.md"
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out), "--doc", str(doc)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), doc.read_text(), out


def test_every_scenario_reports_its_figures(run):
    results, _, _ = run
    assert results["quick"] is True
    assert {"environment", "sizes", "load_average", "seconds"} <= results.keys()
    for row in results["scale"]:
        assert {"n", "translate_cold_s", "translate_warm_s", "render_cold_s", "render_warm_s", "config_bytes",
                "nginx_t_s", "nginx_t_cpu_s", "reload_to_live_s", "start_to_live_s", "naive_nginx_t_s",
                "naive_reload_to_live_s", "nginx_master_mib", "nginx_worker_mib", "upstreams", "proxy_pass"} <= row.keys()
    assert [r["n"] for r in results["scale"]] == results["sizes"]["scale"]
    variants = results["nginx"]["rows"]
    assert variants[0]["variant"] == "ours" and len(variants) >= 4
    for row in variants:
        assert {"variant", "wall_s", "cpu_s", "maxrss_mib", "upstreams", "proxy_pass"} <= row.keys()
    assert {(r["mode"], r["n"]) for r in results["startup"]} >= {("folder", n) for n in results["sizes"]["startup"]} | {("kube", max(results["sizes"]["startup"]))}
    for row in results["startup"]:
        assert {"ready_s", "nginx_loads", "serves", "controller_mib", "nginx_master_mib", "nginx_worker_mib"} <= row.keys()
    assert sorted((r["mode"], r["check"]) for r in results["change"]) == [("folder", "changed"), ("folder", "whole"), ("kube", "changed")]
    for row in results["change"]:
        assert {"p50_s", "p99_s", "max_s", "reloads"} <= row.keys()
        assert len(row["latencies_s"]) == row["changes"]
    assert sorted(r["mode"] for r in results["churn"]) == ["folder", "kube"]
    for row in results["churn"]:
        assert {"updates", "span_s", "lag_s", "reloads", "reload_bound"} <= row.keys()
    dataplane = results["dataplane"]
    if shutil.which("wrk"):
        assert {"ours_rps", "hand_rps", "ours_p99_ms", "hand_p99_ms", "ratio", "pair_ratios"} <= dataplane.keys()
    else:
        assert "skipped" in dataplane


def test_the_report_has_every_table(run):
    _, doc, _ = run
    for heading in ("## Rerun", "## Targets", "## 1. Scale", "### What nginx's load time is made of", "## 2. Change-to-live", "## 3. Churn", "## 4. Data plane",
                    "## 5. Start-up and memory"):
        assert heading in doc, heading
    assert "python -m bench" in doc
    targets = doc.split("## Targets", 1)[1].split("\n## ", 1)[0]
    for target in ("Data plane" if shutil.which("wrk") else "translate + render", "reload-to-live", "change-to-live",
                   "churn", "controller RSS", "one nginx load"):
        assert target in targets, target


def test_the_plot_is_drawn_when_matplotlib_is_there(run):
    _, _, out = run
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (the bench extras) is not installed")
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
