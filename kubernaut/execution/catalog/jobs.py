"""Actions on batch workloads: CronJob schedules and re-running a failed Job."""

from __future__ import annotations















