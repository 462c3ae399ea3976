"""Small, exact statistics for reports: percentiles and the Wilson interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a success rate (95 % by default); (0, 1) when empty."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
