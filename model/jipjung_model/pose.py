"""Attention limits of the head pose, and the ramp that turns a deviation
into a factor.

The pose itself comes from the face mesh (mesh_pose.py). Angles are degrees
from the student's neutral (temporal.py): up to the first limit a deviation
costs nothing, past the second the head is looking away.
"""

from __future__ import annotations

import math

YAW_OK, YAW_OFF = 15.0, 45.0
PITCH_OK, PITCH_OFF = 15.0, 45.0
ROLL_OK, ROLL_OFF = 25.0, 45.0


def ramp(x: float, lo: float, hi: float) -> float:
    """1 for x <= lo, 0 for x >= hi, half-cosine in between."""
    if x <= lo:
        return 1.0
    if x >= hi:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * (x - lo) / (hi - lo)))
