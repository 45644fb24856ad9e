"""Pure translation of Kubernetes objects into a typed nginx model (no I/O, no clock)."""

from ingress_ctrl.translate.core import translate

__all__ = ["translate"]
