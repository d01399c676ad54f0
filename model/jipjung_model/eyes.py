"""Eye openness from the eye regions that BlazeFace's eye keypoints locate.

BlazeFace gives one point per eye (roughly the eye centre) and nothing about
the eyelids, so openness is measured with classical image analysis on the
greyscale frame: the one the detector saw (a 640x480 frame decoded at
320x240 straight from the DCT), with bicubic upsampling, or a full-size one.
At 320x240 a laptop-distance eye is only 2-3 pixels tall; the reduced decode
has already averaged 2x2 pixels (so no extra smoothing is needed against
sensor noise), and bicubic interpolation keeps the iris' contrast where
bilinear would wash it out: on the eval frames the readings agree with the
full-size ones within about 0.05 (open eyes 0.48-0.68 against 0.49-0.64,
synthetic closed eyes 0.10-0.23 against 0.10-0.23), whereas bilinear
without the full-size decode read open eyes 0.05-0.15 lower.

Measure (per eye)
-----------------
1. Cut an *eye-aligned patch* with one affine warp: centred across on the
   eye keypoint, rotated so the eye line is horizontal (roll removed),
   scaled so that the inter-eye distance d is ``PATCH_D`` (40) pixels; it
   covers 0.7 d across and from 0.2 d above to 0.25 d below the keypoint
   (the keypoint tends to sit a little above the pupil; the brow, 0.35-0.5 d
   above the eye, stays out). On a full-size frame: bilinear, then a 3x3
   Gaussian removes sensor noise; on a reduced one: bicubic, no Gaussian.
2. openness = 1 - p5 / median: the Weber contrast of the darkest 5 % of the
   patch's central half (pupil, iris, the lash line of an open upper lid)
   against the patch median (the surrounding skin). An open eye shows its
   dark iris: about 0.6 on the fixture faces. A closed lid is skin with a
   thin lash line: about 0.2 on the synthetic closed eyes (eval/synth.py).

Why this measure: it is a ratio, so it does not change with exposure or
with a uniform scaling of the face's brightness (a dimmer room, a darker
face under the same light); and it needs no eyelid landmarks, which
BlazeFace does not give. It is not a geometric eye aspect ratio: a student
whose iris contrasts less with their skin reads lower when open, which is
why the closed threshold is relative to the student's calibrated baseline
(``closedRatio`` x baseline, see temporal.py), with a population threshold
until calibration ends. Spectacle rims usually lie outside the patch; when
they cross it they read as "open" (a missed closure, never a false
drowsiness). Not tested with real glasses or real closed eyes: no fixture
photo has them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PATCH_D = 40.0  # inter-eye distance in patch pixels
PATCH_W, PATCH_H = 28, 18  # 0.7 d x 0.45 d
PATCH_TOP = 8  # rows above the keypoint: 0.2 d
MIN_EYE_DISTANCE = 8.0  # full-size frame pixels; below this the eyes are not measured


def eye_patch(grey: np.ndarray, centre: np.ndarray, d: float, angle: float, reduced: bool = False) -> np.ndarray:
    """The eye-aligned patch around ``centre`` (image pixels); ``angle`` is
    the eye line's angle (radians, image coordinates) and ``d`` the
    inter-eye distance in image pixels. ``reduced``: ``grey`` was decoded
    at reduced size (see the module docstring)."""
    k = PATCH_D / d
    c, s = math.cos(angle) * k, math.sin(angle) * k
    # Patch pixel p = R(-angle) * k * (x - centre) + patch centre.
    m = np.array([[c, s, 0.0], [-s, c, 0.0]], np.float32)
    m[:, 2] = np.array([PATCH_W / 2, PATCH_TOP], np.float32) - m[:, :2] @ centre.astype(np.float32)
    if reduced:
        return cv2.warpAffine(grey, m, (PATCH_W, PATCH_H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    patch = cv2.warpAffine(grey, m, (PATCH_W, PATCH_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(patch, (3, 3), 0)


def _quantile(values: np.ndarray, q: float) -> float:
    """np.quantile(values, q) (linear interpolation) by partial sorting:
    the same number, without numpy's per-call overhead, which outweighs the
    work on a few hundred pixels."""
    flat = values.reshape(-1)
    pos = q * (flat.size - 1)
    lo = int(pos)
    hi = min(lo + 1, flat.size - 1)
    part = np.partition(flat, (lo, hi))
    a, b = float(part[lo]), float(part[hi])
    return a + (b - a) * (pos - lo)


def openness(patch: np.ndarray) -> float:
    """Weber contrast of the darkest 5 % of the patch's central half
    against the patch median (see the module docstring), 0-1."""
    median = _quantile(patch, 0.5)
    if median <= 1.0:
        return 0.0
    w = patch.shape[1]
    dark = _quantile(patch[:, w // 4: w - w // 4], 0.05)
    return max(0.0, min(1.0, 1.0 - dark / median))


def eye_openness(
    grey: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray, reduce: int = 1
) -> tuple[float, float] | None:
    """(right, left) openness for the eye keypoints (image pixels of
    ``grey``), or None when the eyes are too close together to measure.
    ``reduce``: ``grey`` was decoded at 1/reduce of the frame's size."""
    v = left_eye - right_eye
    d = float(math.hypot(v[0], v[1]))
    reduced = reduce > 1
    if not math.isfinite(d) or d * reduce < MIN_EYE_DISTANCE:
        return None
    angle = math.atan2(v[1], v[0])
    right, left = (round(openness(eye_patch(grey, e, d, angle, reduced)), 3) for e in (right_eye, left_eye))
    return right, left
