"""ingress-ctrl: Kubernetes Ingress objects in, a validated and hot-reloaded nginx config out."""

__version__ = "0.1.0"
