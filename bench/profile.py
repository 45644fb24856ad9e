"""`python -m bench.profile [N]`: pyinstrument profiles of the controller's own work at N Ingresses
(default 10,000): a cold sync (start-up) and a warm one (one Ingress changed), written to
bench/results/profile-{cold,warm}.txt. The running controller can be sampled as well, with
`py-spy record --pid PID --format speedscope -o profile.json` (both from PyPI: the bench extras)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from bench import objects, scale
from ingress_ctrl.render import render
from ingress_ctrl.state import Store
from ingress_ctrl.translate import translate


def main(n: int = 10000, out: Path = Path(__file__).parent / "results") -> None:
    import pyinstrument

    store = Store()
    for obj in objects.world(n, 18080):
        store.put(obj)
    settings = scale.nginx_settings(Path("/tmp/ingress-bench-profile"))
    now = datetime.datetime.now(datetime.timezone.utc)
    out.mkdir(parents=True, exist_ok=True)
    for label in ("cold", "warm"):
        if label == "cold":
            scale.forget_caches()
        else:
            store.put(objects.ingress(n // 2, extra_paths=("/profiled",)))
        profiler = pyinstrument.Profiler(interval=0.0005)
        profiler.start()
        translation = translate(store.snapshot(), scale.SETTINGS, now)
        render(translation.config, settings)
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False)
        (out / f"profile-{label}.txt").write_text(text)
        print(f"{label}: {out / f'profile-{label}.txt'}")
        print("\n".join(text.splitlines()[:40]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
