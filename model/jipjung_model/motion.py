"""How a face's region of the image changed between two frames.

The default model skips the mesh on a face that has not changed since the
network last located it (``stillReuse``). A student is never quite still:
the head drifts by a pixel or two and tilts by a degree between frames,
which changes a 16x16 thumbnail of the face by more than sensor noise does.
Such a move within the image plane does not change what the mesh would
read except the roll, so the region is first aligned by a rigid motion
(shift and turn, ``in_plane_motion``) and only what is left after it counts
as a change (``difference``). A turn or nod of the head changes the face's
appearance, which no in-plane motion explains: it stays a change.

Coordinates are continuous image coordinates as in facemesh.py: pixel
(i, j) covers [i, i+1) x [j, j+1).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Side of the square patch the motion is estimated on. The face's box is
# resampled to it, so the estimate costs the same for any face size.
PATCH = 32
# The change is measured on a 16x16 thumbnail (2x2 means of the patch).
THUMB = 16
# A motion larger than this is not followed: the network locates the face
# afresh (as a share of the face's box side, and in degrees).
MAX_SHIFT = 0.125
MAX_TURN = 6.0
# Iterations of OpenCV's ECC alignment (~0.08 ms each on a 32x32 patch). The
# moves it has to find are under a patch pixel or two, found in 3-6 steps;
# one that 10 do not find (a turning head) is not followed anyway, and
# giving up early halves what such a face costs (0.8 ms against 1.7 ms).
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 1e-3)


def face_patch(grey: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The square around ``box`` (side: its longer one) of ``grey`` resampled
    to PATCH x PATCH (float32), and the 3x3 transform from image coordinates
    to the patch's pixel indices; None for a box under 8 pixels."""
    x, y, w, h = box
    side = max(w, h)
    if not side >= 8 or not math.isfinite(side):
        return None
    k = PATCH / side
    # continuous image -> continuous patch, then -0.5 to pixel indices on
    # both sides (warpAffine maps pixel centres).
    to_patch = np.array([
        [k, 0.0, PATCH / 2 - k * (x + w / 2) - 0.5],
        [0.0, k, PATCH / 2 - k * (y + h / 2) - 0.5],
        [0.0, 0.0, 1.0],
    ])
    # The region the patch samples, with room for the smoothing below.
    sigma = 0.5 / k if k < 1.0 else 0.0
    margin = 2 + int(math.ceil(3 * sigma))
    gh, gw = grey.shape[:2]
    x0, y0 = max(0, int(x + w / 2 - side / 2) - margin), max(0, int(y + h / 2 - side / 2) - margin)
    x1 = min(gw, int(math.ceil(x + w / 2 + side / 2)) + margin)
    y1 = min(gh, int(math.ceil(y + h / 2 + side / 2)) + margin)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = grey[y0:y1, x0:x1]
    if sigma > 0:
        # Downscaling: smooth first, so that the patch's pixels average the
        # image's as a thumbnail does, not sample sensor noise.
        region = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    # warpAffine maps pixel indices of the region to pixel indices of the patch.
    m = to_patch[:2].copy()
    m[:, 2] += k * (0.5 + np.array([x0, y0]))
    patch = cv2.warpAffine(region, m, (PATCH, PATCH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return patch.astype(np.float32), to_patch


def thumbnail(patch: np.ndarray) -> np.ndarray:
    """A patch area-averaged to THUMB x THUMB."""
    return cv2.resize(patch, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


def change_unit(reference: np.ndarray) -> float:
    """The unit ``difference`` measures against ``reference`` in: its
    standard deviation, at least 4 grey levels, so that a flat region does
    not make noise look like a change."""
    return max(float(reference.std()), 4.0)


def difference(a: np.ndarray, b: np.ndarray, unit: float | None = None) -> float:
    """Mean absolute difference of two thumbnails in ``change_unit(a)``
    (``unit``: that, computed once for a reference compared many times)."""
    return float(np.mean(np.abs(a - b))) / (change_unit(a) if unit is None else unit)


def in_plane_motion(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The rigid motion (shift and turn) that takes ``reference``'s content to
    where it is in ``current`` (two patches taken at the same place), as a
    2x3 matrix on patch pixel indices, and ``current`` aligned back onto
    ``reference``; None when the alignment fails or the motion is larger
    than MAX_SHIFT or MAX_TURN."""
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        _, warp = cv2.findTransformECC(reference, current, warp, cv2.MOTION_EUCLIDEAN, _CRITERIA, None, 3)
    except cv2.error:
        return None  # did not converge (a flat or wholly changed patch)
    turn = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
    if math.hypot(float(warp[0, 2]), float(warp[1, 2])) > MAX_SHIFT * PATCH or abs(turn) > MAX_TURN:
        return None
    aligned = cv2.warpAffine(current, warp, (PATCH, PATCH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
    return warp, aligned


def image_motion(warp: np.ndarray, to_patch: np.ndarray) -> np.ndarray:
    """A motion on patch pixel indices (from in_plane_motion) as a 2x3
    matrix on image coordinates."""
    w = np.vstack([np.asarray(warp, np.float64), [0.0, 0.0, 1.0]])
    return (np.linalg.inv(to_patch) @ w @ to_patch)[:2]


def move_points(points: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """``points`` (N x 2 or N x 3: x, y first) moved by a 2x3 image motion;
    any third column (depth) is kept."""
    out = np.array(points, dtype=np.float64 if points.dtype != np.float32 else np.float32, copy=True)
    xy = np.asarray(points[:, :2], np.float64)
    out[:, :2] = xy @ motion[:, :2].T + motion[:, 2]
    return out
