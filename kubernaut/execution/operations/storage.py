"""PersistentVolumeClaims: expansion (never shrinks) and a bounded cleanup of orphaned claims."""

from __future__ import annotations



















