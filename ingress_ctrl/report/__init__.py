"""Reporting sinks of Kubernetes mode: Ingress status, Events, and the Lease that elects their writer."""
