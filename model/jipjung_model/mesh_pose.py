"""Head yaw, pitch and roll from the 468 FaceMesh landmarks.

The pose is the rotation of a weighted rigid fit (Umeyama: rotation, one
scale, translation) of the observed mesh to MediaPipe's canonical face
(assets/face-geometry), over the landmarks and weights MediaPipe's own
geometry pipeline uses: mostly the nose bridge, eye corners and cheekbones,
which a smile or an open mouth hardly moves. A face's proportions and its
expression move the whole fit a little rather than one cue a lot, which is
why this replaces the six-keypoint formulas of pose.py, whose pitch read the
nose's place between eye line and mouth (a smile moved it by 10-20 deg).

Frames. The canonical model has x to the image's right (the subject's left),
y up and z toward the camera. FaceMesh gives image pixels (x right, y down)
and a relative depth z, smaller toward the camera, in about the same scale as
x, so the observed points are mapped to (x, -y, -z) before the fit. Under a
webcam's near-orthographic view the observed mesh is then s R c + t.

Angles, with R = Ry(yaw) Rx(pitch) Rz(roll) (rotations about the camera's
y, x and z axes) and the nose direction n = R z = (sin y cos p, -sin p,
cos y cos p):

- **yaw** = atan2(n.x, n.z): positive when the nose points to the image's
  right (the subject turns to their own left), as in pose.py;
- **pitch** = asin(-n.y): positive when the head is lowered;
- **roll** = atan2(R[1,0], R[1,1]): positive when the head is turned
  counter-clockwise as seen on screen, as in pose.py.

The canonical face is an average face looking straight ahead; a real face
looking at the camera reads within about 10 deg of zero in pitch (measured
per person by ``npm run eval``), and calibration learns each student's own
neutral (temporal.py).
"""

from __future__ import annotations

import math
import os
import re
from functools import lru_cache
from typing import Any

import numpy as np

from .facemesh import LEFT_EYE_INNER, LEFT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_OUTER

GEOMETRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "face-geometry")

# Landmark indices (the subject's right eye is on the image's left); the eye
# corners come from facemesh.py, which frames its crops with them.
RIGHT_EYE_UPPER, RIGHT_EYE_LOWER = 159, 145
LEFT_EYE_UPPER, LEFT_EYE_LOWER = 386, 374
NOSE_TIP = 1
MOUTH_UPPER, MOUTH_LOWER = 13, 14
RIGHT_CHEEK_EDGE, LEFT_CHEEK_EDGE = 234, 454

MAX_ROLL = 45.0  # beyond it a face is on its side or upside down: present, not attending


@lru_cache(maxsize=1)
def canonical() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The canonical vertices (468x3), and the fit's landmark ids and
    normalised weights."""
    vertices = []
    with open(os.path.join(GEOMETRY, "canonical_face_model.obj"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("v "):
                vertices.append([float(v) for v in line.split()[1:4]])
    with open(os.path.join(GEOMETRY, "geometry_pipeline_metadata_landmarks.pbtxt"), encoding="utf-8") as f:
        basis = re.findall(r"procrustes_landmark_basis\s*\{\s*landmark_id:\s*(\d+)\s+weight:\s*([0-9.eE+-]+)", f.read())
    ids = np.array([int(i) for i, _ in basis])
    weights = np.array([float(w) for _, w in basis])
    model = np.array(vertices, dtype=np.float64)
    if model.shape != (468, 3) or len(ids) == 0:
        raise ValueError("face geometry assets are incomplete")
    return model, ids, weights / weights.sum()


def fit(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Weighted rigid fit of canonical -> observed: rotation R (3x3), scale,
    translation, and the weighted RMS residual in canonical units (cm)."""
    model, ids, w = canonical()
    obs = np.asarray(points, dtype=np.float64)[ids] * np.array([1.0, -1.0, -1.0])
    src = model[ids]
    mu_s, mu_o = w @ src, w @ obs
    a, b = src - mu_s, obs - mu_o
    cov = (b * w[:, None]).T @ a  # observed x canonical
    u, sv, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    var_s = float(w @ np.sum(a * a, axis=1))
    scale = float((sv * np.array([1.0, 1.0, d])).sum() / var_s) if var_s > 0 else 1.0
    t = mu_o - scale * rot @ mu_s
    resid = b - scale * (a @ rot.T)
    rms = math.sqrt(float(w @ np.sum(resid * resid, axis=1))) / scale if scale > 0 else math.inf
    return rot, scale, t, rms


def angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Ry(yaw) Rx(pitch) Rz(roll)."""
    n = rot[:, 2]
    yaw = math.degrees(math.atan2(n[0], n[2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -n[1]))))
    roll = math.degrees(math.atan2(rot[1, 0], rot[1, 1]))
    return yaw, pitch, roll


def head_pose(points: np.ndarray) -> dict[str, Any]:
    """Yaw, pitch, roll (degrees), plausibility and the fit's residual (cm)
    from a 468x3 mesh in image pixels; see the module docstring."""
    if points is None or not np.all(np.isfinite(points)):
        return {"plausible": False, "yaw": None, "pitch": None, "roll": None, "fit": None}
    rot, _, _, rms = fit(points)
    yaw, pitch, roll = angles(rot)
    return {"plausible": abs(roll) <= MAX_ROLL, "yaw": yaw, "pitch": pitch, "roll": roll, "fit": rms}


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres in image pixels, where eyes.py centres its
    patch: the mean of each eye's corners and mid-lid points, which sits on
    the pupil's height as BlazeFace's eye keypoint does (the corners alone
    sit a little lower)."""
    p = np.asarray(points)[:, :2]
    right = p[[RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER]].mean(0)
    left = p[[LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_UPPER, LEFT_EYE_LOWER]].mean(0)
    return right, left
