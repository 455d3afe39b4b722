"""Kubernaut: AlertManager alerts about Kubernetes workloads into safe, verified remediations on Ray."""

__version__ = "0.1.0"
