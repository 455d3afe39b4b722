"""Connection to the Kubernetes API (credentials, reachability)."""
