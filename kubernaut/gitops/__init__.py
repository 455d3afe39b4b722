"""GitOps awareness: who owns a workload's desired state (Argo CD, Flux, Helm), and the change in Git that a
remediation becomes when the fix belongs in the repository rather than in the cluster (issue 15).

A library below the services: it reads the cluster only through ``kubernaut.cluster`` and knows no service.
"""
