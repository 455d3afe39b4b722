"""Actions on PersistentVolumeClaims. Neither has an inverse: volumes cannot shrink, and deleted
data does not come back; hence the caps and the approval requirement."""

from __future__ import annotations












