"""Statistics over measured outcomes, shared by the autonomy gate and the learning feedback."""

from __future__ import annotations

import math


def wilson_lower_bound(successes: float, cases: float, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval: a success rate we are ~97.5 % sure the truth exceeds."""
    if cases == 0:
        return 0.0
    p = successes / cases
    denominator = 1 + z * z / cases
    centre = p + z * z / (2 * cases)
    margin = z * math.sqrt(p * (1 - p) / cases + z * z / (4 * cases * cases))
    return max(0.0, (centre - margin) / denominator)
