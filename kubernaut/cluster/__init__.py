"""The Kubernetes access layer: credentials (client), the async facade (api), errors, kinds, discovery."""
