"""Eye openness from the eye regions that BlazeFace's eye keypoints locate.

BlazeFace gives one point per eye (roughly the eye centre) and nothing about
the eyelids, so openness is measured with classical image analysis on the
greyscale frame (decoded at full resolution: at 320x240 a laptop-distance
eye is only 2-3 pixels tall).

Measure (per eye)
-----------------
1. Cut an *eye-aligned patch* with one affine warp: centred on the eye
   keypoint, rotated so the eye line is horizontal (roll removed), scaled
   so that the inter-eye distance d is ``PATCH_D`` (40) pixels; the patch
   covers 0.7 d across and 0.6 d down (the keypoint often sits a little
   above the pupil). A 3x3 Gaussian removes sensor noise.
2. Threshold it *relative to itself*: ``tau = (darkest + median) / 2``,
   with the median standing for the surrounding skin. An open eye holds the
   darkest things in the patch (pupil, iris, lash line of the upper lid); a
   closed eye only a thin lash line (or nothing). Because the threshold is
   the midpoint between the patch's own darkest value and its skin, it does
   not depend on skin tone or exposure (a darker face or a dimmer room
   scales both); a patch with no real dark structure (darkest value above
   ``FLAT_RATIO`` (0.8) x median) is closed (openness 0).
3. For each column of the central half of the patch, the length of the
   vertical run of dark pixels through that column's darkest pixel. The
   openness is the 75th percentile of these lengths, divided by
   ``PATCH_D``: the height of the dark opening in inter-eye distances. The
   iris makes the tallest run of an open eye (about 0.15-0.25 d); a closed
   lid leaves a lash line of about 0.03-0.08 d.

Eyebrows and spectacle rims are horizontal dark bands too: the patch stops
0.3 d above and below the keypoint, short of the brow for a frontal face,
and a rim only matters where it touches the eye's own run. Whether the
measure holds with real glasses is not tested (no fixture photo has them).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PATCH_D = 40.0  # inter-eye distance in patch pixels
PATCH_W, PATCH_H = 28, 24  # 0.7 d x 0.6 d
FLAT_RATIO = 0.8
MIN_EYE_DISTANCE = 8.0  # image pixels; below this the eyes are not measured


def eye_patch(grey: np.ndarray, centre: np.ndarray, d: float, angle: float) -> np.ndarray:
    """The eye-aligned patch around ``centre`` (image pixels); ``angle`` is
    the eye line's angle (radians, image coordinates) and ``d`` the
    inter-eye distance in image pixels."""
    k = PATCH_D / d
    c, s = math.cos(angle) * k, math.sin(angle) * k
    # Patch pixel p = R(-angle) * k * (x - centre) + patch centre.
    m = np.array([[c, s, 0.0], [-s, c, 0.0]], np.float32)
    m[:, 2] = np.array([PATCH_W / 2, PATCH_H / 2], np.float32) - m[:, :2] @ centre.astype(np.float32)
    patch = cv2.warpAffine(grey, m, (PATCH_W, PATCH_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(patch, (3, 3), 0)


def openness(patch: np.ndarray) -> float:
    """Height of the eye's dark opening in inter-eye distances (see the
    module docstring)."""
    p = patch.astype(np.float32)
    median = float(np.median(p))
    darkest = float(p.min())
    if median <= 0 or darkest > FLAT_RATIO * median:
        return 0.0
    dark = p < (darkest + median) / 2
    w = p.shape[1]
    cols = range(w // 4, w - w // 4)
    runs = []
    for x in cols:
        col = dark[:, x]
        y = int(np.argmin(p[:, x]))
        if not col[y]:
            runs.append(0)
            continue
        top = y
        while top > 0 and col[top - 1]:
            top -= 1
        bottom = y
        while bottom < len(col) - 1 and col[bottom + 1]:
            bottom += 1
        runs.append(bottom - top + 1)
    return float(np.percentile(runs, 75)) / PATCH_D


def eye_openness(grey: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> tuple[float, float] | None:
    """(right, left) openness for the eye keypoints (image pixels of
    ``grey``), or None when the eyes are too close together to measure."""
    v = left_eye - right_eye
    d = float(math.hypot(v[0], v[1]))
    if not math.isfinite(d) or d < MIN_EYE_DISTANCE:
        return None
    angle = math.atan2(v[1], v[0])
    return tuple(round(openness(eye_patch(grey, e, d, angle)), 3) for e in (right_eye, left_eye))
