"""The ingress-ctrl benchmark: scale, change-to-live, churn, data plane, start-up.

`python -m bench` runs it all and writes docs/performance.md, bench/results/results.json and
bench/results/cost.png; `python -m bench --quick` runs every scenario at a tiny size.
"""
