"""How big a fault run is, and its seed.

``PAYSTREAM_FAULTS_SCALE`` multiplies the payments and the faults of every
scenario: 1 (the default) is the size ``make test`` runs, about a minute per
scenario; ``make faults`` runs 10. ``PAYSTREAM_FAULTS_SEED`` replays a run: every
random choice of a scenario (when to kill, for how long, amounts and payees)
comes from a generator seeded with it and the scenario's name, and a failing
scenario prints the seed it ran with.
"""

from __future__ import annotations

import os
import random

import pytest

SCALE = int(os.environ.get("PAYSTREAM_FAULTS_SCALE", "1"))
SEED = int(os.environ.get("PAYSTREAM_FAULTS_SEED") or random.SystemRandom().randrange(10**9))
if SCALE < 1:
    raise ValueError(f"PAYSTREAM_FAULTS_SCALE must be 1 or more, not {SCALE}")

# Per scenario: pytest's default of 300 s is for scale 1.
MARKS = [pytest.mark.faults, pytest.mark.timeout(300 * SCALE)]


def scaled(count: int) -> int:
    return count * SCALE


def scenario_rng(name: str) -> random.Random:
    """The scenario's random choices: the run's seed and the scenario's name."""
    return random.Random(f"{SEED}:{name}")
