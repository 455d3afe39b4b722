"""Bounds of path and query parameters shared by the routes."""

from __future__ import annotations

# Ids are BIGSERIAL and offsets BIGINT in PostgreSQL: a larger integer must be a 422 naming the parameter, not
# an overflow in the driver (a 500). Found by tests/system/test_fuzz.py.
MAX_ID = 2**63 - 1
MAX_OFFSET = 1_000_000_000
