"""Where objects come from: a folder of manifests (files) or the Kubernetes API (kube)."""
