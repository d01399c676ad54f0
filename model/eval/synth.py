"""Synthetic edits of the fixture photos: closed eyes, a second face.

No fixture photo shows closed eyes, so closed eyes are *painted* on the
astronaut: each eye region (an ellipse around the eye keypoint, 0.64 d x
0.4 d with d the inter-eye distance) is replaced by the skin just below it
(the upper cheek, shifted up by 0.5 d), feathered into the face, and a thin
lash line (55 % of the skin's brightness, 0.03 d thick) is drawn along the
lid's lower edge. It looks like a closed lid at webcam resolution, but it is
an approximation: real lids have folds, lashes and shading that it lacks.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from jipjung_model.blazeface import LEFT_EYE, RIGHT_EYE, SHORT_RANGE, BlazeFace, Detection
from tests.frames import photo


@functools.lru_cache(maxsize=None)
def eye_keypoints(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo's eye keypoints (right, left), found by BlazeFace with a
    crop pass (deterministic)."""
    image = photo(name)
    det = BlazeFace(SHORT_RANGE)
    found = det.detect(image, 0.5)
    if not found:
        raise ValueError(f"no face in {name}")
    best = det.refine(image, det.refine(image, found[0]))
    return best.keypoints[RIGHT_EYE].copy(), best.keypoints[LEFT_EYE].copy()


@functools.lru_cache(maxsize=None)
def closed_eyes(name: str = "astronaut", which: str = "both") -> np.ndarray:
    """The photo with the eyes painted closed (``which``: both, right, left)."""
    image = photo(name).astype(np.float32)
    right, left = eye_keypoints(name)
    d = float(np.hypot(*(left - right)))
    h, w = image.shape[:2]
    out = image.copy()
    eyes = {"both": (right, left), "right": (right,), "left": (left,)}[which]
    for eye in eyes:
        cx, cy = float(eye[0]), float(eye[1]) + 0.05 * d
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (round(cx), round(cy)), (round(0.32 * d), round(0.2 * d)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.06 * d)[..., None]
        shift = np.float32([[1, 0, 0], [0, 1, -0.5 * d]])  # samples 0.5 d below
        cheek = cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
        cheek = cv2.GaussianBlur(cheek, (0, 0), 0.03 * d)
        out = out * (1 - mask) + cheek * mask
        skin = np.median(cheek[round(cy) - 2:round(cy) + 3, round(cx) - 2:round(cx) + 3].reshape(-1, 3), axis=0)
        lash = np.zeros((h, w), np.float32)
        cv2.ellipse(lash, (round(cx), round(cy - 0.08 * d)), (round(0.28 * d), round(0.12 * d)), 0, 20, 160,
                    1.0, max(1, round(0.03 * d)), cv2.LINE_AA)
        lash = cv2.GaussianBlur(lash, (0, 0), 0.02 * d + 0.3)[..., None]
        out = out * (1 - lash) + (skin * 0.55) * lash
    result = np.clip(out, 0, 255).astype(np.uint8)
    result.setflags(write=False)
    return result


@functools.lru_cache(maxsize=None)
def side_by_side(left: str = "astronaut", right: str = "astronaut") -> np.ndarray:
    """Two photos next to each other (two people in front of one camera)."""
    a, b = photo(left), photo(right)
    h = min(a.shape[0], b.shape[0])
    a = cv2.resize(a, (round(a.shape[1] * h / a.shape[0]), h))
    b = cv2.resize(b, (round(b.shape[1] * h / b.shape[0]), h))
    out = np.hstack([a, b])
    out.setflags(write=False)
    return out
