"""Head yaw, pitch and roll from BlazeFace's six keypoints.

Head pose geometry
------------------
Keypoints: right eye R, left eye L, nose tip N, mouth centre M, right ear
ER, left ear EL (the subject's right/left: R is on the image's left for a
face looking at the camera). Image coordinates, y down.

- **roll** = atan2(-(L.y - R.y), L.x - R.x): the angle of the eye line,
  positive when the head is turned counter-clockwise as seen in the image
  (the same sense as a positive angle of ``cv2.getRotationMatrix2D``), i.e.
  the subject tilts the head toward their right shoulder.
- The keypoints are then put in the *face frame*: origin at the eye
  midpoint E, x along R->L, y perpendicular (down the face), unit = the
  inter-eye distance d. Let n = N, m = M, and e = midpoint of the ears in
  that frame.
- **yaw**: turning the head by yaw y moves the nose tip (in front of the eye
  plane by ~Dn = 0.32 d) sideways by Dn sin y, and the ears (behind it by
  ~De = 1.27 d) the other way by De sin y, while d shrinks by cos y. So
  n.x - e.x = (Dn + De) tan y, and yaw = atan((n.x - e.x) / 1.6). Using
  both nose and ears makes the cue ~5x less sensitive to keypoint noise than
  the nose alone. Positive yaw: the nose points to the image's right, i.e.
  the subject turns to their own left.
- **pitch**: with a generic head (eyes 45 mm above and 20 mm behind the nose
  tip, mouth 25 mm below and 12 mm behind it), tilting the head down by p
  changes t = n.y / m.y (nose between eye line and mouth, independent of
  scale and yaw) as t(p) = (a cos p + 20 sin p) / (70 cos p + 8 sin p), with
  a = 70 t0. Solving: tan p = 70 (t - t0) / (20 - 8 t). The frontal
  reference t0 = 0.57 is the value BlazeFace gives on a frontal portrait
  looking at the camera (the astronaut photo; the anthropometric model says
  0.64). Positive pitch: head down (chin toward the chest).

Plausibility: a detection whose face frame is not that of an upright face
is a face that is present but not attending (``posePlausible: false``,
``state: "distracted"``, score 0): |roll| > 45 deg (head on its side or
upside down -- BlazeFace finds faces rotated by 45-90 deg and gives their
roll correctly), or the nose not clearly below the eye line (n.y*d/w <
0.08 with w the box width), or the mouth not below the nose, or the mouth
absurdly far (m.y*d/w > 0.9). Faces seen nearly in profile (d/w < 0.2)
are plausible; their yaw comes out large.

Measured error on the fixtures (``npm run eval``, docs/model.md): roll
follows an applied rotation of the astronaut photo within a few degrees.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .blazeface import LEFT_EAR, LEFT_EYE, MOUTH, NOSE, RIGHT_EAR, RIGHT_EYE, Detection

# Pose model constants (see the module docstring).
YAW_DEPTH = 1.6  # nose-tip depth + ear depth, in inter-eye distances
PITCH_T0 = 0.57  # frontal nose/mouth ratio from the eye line
PITCH_P, PITCH_B, PITCH_Q = 70.0, 20.0, 8.0  # mm: eye-mouth height, eye depth, eye-mouth depth
MAX_ROLL = 45.0

# Attention limits, degrees (see temporal.py): no penalty up to the first,
# none left from the second.
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


def head_pose(det: Detection) -> dict[str, Any]:
    """Yaw, pitch, roll (degrees) and plausibility from the keypoints; see
    the module docstring for the geometry and sign conventions."""
    kp = det.keypoints
    v = kp[LEFT_EYE] - kp[RIGHT_EYE]
    d = float(math.hypot(v[0], v[1]))
    box_w = max(det.box[2], 1e-6)
    if d < 1e-6:
        return {"plausible": False, "yaw": None, "pitch": None, "roll": None}
    roll = math.degrees(math.atan2(-v[1], v[0]))
    # Face frame: x along the eye line, y perpendicular (down the face).
    ux = v / d
    uy = np.array([-ux[1], ux[0]])
    origin = (kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2
    rel = kp - origin
    fx = rel @ ux / d
    fy = rel @ uy / d
    nose_x, nose_y, mouth_y = fx[NOSE], fy[NOSE], fy[MOUTH]
    ears_x = (fx[RIGHT_EAR] + fx[LEFT_EAR]) / 2
    scale = d / box_w  # face-frame units -> box widths
    plausible = (
        abs(roll) <= MAX_ROLL
        and nose_y * scale >= 0.08
        and (mouth_y - nose_y) * scale >= 0.03
        and mouth_y * scale <= 0.9
    )
    yaw = math.degrees(math.atan((nose_x - ears_x) / YAW_DEPTH))
    t = nose_y / mouth_y if mouth_y > 1e-6 else PITCH_T0
    pitch = math.degrees(
        math.atan2(PITCH_P * (t - PITCH_T0), PITCH_B - PITCH_Q * t)
    )
    return {"plausible": bool(plausible), "yaw": yaw, "pitch": pitch, "roll": roll}
