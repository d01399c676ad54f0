"""Synthetic edits of the fixture photos: closed eyes, a second face.

No fixture photo shows closed eyes, so closed eyes are *painted* on a
photo (the astronaut, or any face photo: the eyes are found by BlazeFace):
each eye region (an ellipse around the eye keypoint, 0.64 d x 0.4 d with d
the inter-eye distance, turned with the eye line) is replaced by the skin
just below it (the upper cheek, 0.5 d further down the face), feathered
into the face, and a thin lash line (55 % of the skin's brightness, 0.03 d
thick) is drawn along the lid's lower edge. It looks like a closed lid at
webcam resolution, but it is an approximation: real lids have folds, lashes
and shading that it lacks.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from jipjung_model.blazeface import LEFT_EYE, RIGHT_EYE, SHORT_RANGE, BlazeFace
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
    """The photo (a fixture name or a path) with the eyes painted closed
    (``which``: both, right, left)."""
    right, left = eye_keypoints(name)
    result = paint_closed_eyes(photo(name), right, left, which)
    result.setflags(write=False)
    return result


def paint_closed_eyes(image: np.ndarray, right: np.ndarray, left: np.ndarray, which: str = "both") -> np.ndarray:
    """Any BGR image with the eyes at ``right`` and ``left`` (pixel centres,
    the subject's right eye first) painted closed. The painting follows the
    eye line, so a tilted head gets tilted lids, and the skin is taken from
    below the eye along the face's own downward direction."""
    image = image.astype(np.float32)
    v = np.asarray(left, np.float64) - np.asarray(right, np.float64)
    d = float(np.hypot(*v))
    if d < 4:
        raise ValueError("eyes too close together to paint")
    ux = v / d
    down = np.array([-ux[1], ux[0]])  # perpendicular to the eye line, down the face
    angle = float(np.degrees(np.arctan2(ux[1], ux[0])))
    h, w = image.shape[:2]
    out = image.copy()
    shift = np.array([[1, 0, -0.5 * d * down[0]], [0, 1, -0.5 * d * down[1]]], np.float32)  # samples 0.5 d below
    cheek = cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
    cheek = cv2.GaussianBlur(cheek, (0, 0), 0.03 * d)
    eyes = {"both": (right, left), "right": (right,), "left": (left,)}[which]
    for eye in eyes:
        c = np.asarray(eye, np.float64) + 0.05 * d * down
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (round(c[0]), round(c[1])), (round(0.32 * d), round(0.2 * d)), angle, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.06 * d)[..., None]
        out = out * (1 - mask) + cheek * mask
        cx, cy = min(max(round(c[0]), 2), w - 3), min(max(round(c[1]), 2), h - 3)
        skin = np.median(cheek[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3), axis=0)
        lash = np.zeros((h, w), np.float32)
        lc = c - 0.08 * d * down
        cv2.ellipse(lash, (round(lc[0]), round(lc[1])), (round(0.28 * d), round(0.12 * d)), angle, 20, 160,
                    1.0, max(1, round(0.03 * d)), cv2.LINE_AA)
        lash = cv2.GaussianBlur(lash, (0, 0), 0.02 * d + 0.3)[..., None]
        out = out * (1 - lash) + (skin * 0.55) * lash
    return np.clip(out, 0, 255).astype(np.uint8)


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
