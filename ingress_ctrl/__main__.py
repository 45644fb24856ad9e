"""`python -m ingress_ctrl` is the same as the `ingress-ctrl` console script."""

from ingress_ctrl.cli import main

raise SystemExit(main())
