"""Webcam-like test frames built from the photos in test/fixtures/.

``canvas`` places a photo on a 640x480 grey, slightly noisy background (like
a plain wall seen by a webcam), optionally scaled, shifted, rotated and
darkened, and returns it JPEG-encoded, as the browser client would send it.

Rotation follows OpenCV's convention: a positive ``angle`` turns the photo
counter-clockwise as seen on screen.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np

FIXTURES = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
)

WIDTH, HEIGHT = 640, 480


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """A fixture photo (BGR) by name ("astronaut") or path."""
    path = name if os.sep in name or name.endswith(".jpg") else os.path.join(FIXTURES, name + ".jpg")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    image.setflags(write=False)
    return image


def canvas_image(
    source: str | np.ndarray = "astronaut",
    scale: float = 0.8,
    dx: float = 0.0,
    dy: float = 0.0,
    angle: float = 0.0,
    brightness: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """The 640x480 BGR frame before encoding.

    ``scale``: photo height as a share of the frame height. ``dx``, ``dy``:
    shift of the photo centre from the frame centre, as shares of the frame
    width and height. ``angle``: rotation in degrees (counter-clockwise on
    screen) about the photo centre. ``brightness``: multiplies every pixel.
    """
    image = photo(source) if isinstance(source, str) else source
    rng = np.random.default_rng(seed)
    background = np.clip(rng.normal(128.0, 6.0, (HEIGHT, WIDTH, 1)), 0, 255)
    background = np.repeat(background, 3, axis=2).astype(np.float32)

    h, w = image.shape[:2]
    s = scale * HEIGHT / h
    cx, cy = WIDTH / 2 + dx * WIDTH, HEIGHT / 2 + dy * HEIGHT
    # Map the photo's centre to (cx, cy), scaled by s and rotated by angle.
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, s)
    m[0, 2] += cx - w / 2
    m[1, 2] += cy - h / 2
    warped = cv2.warpAffine(
        image, m, (WIDTH, HEIGHT), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    ).astype(np.float32)
    mask = cv2.warpAffine(
        np.ones((h, w), np.float32), m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR
    )[..., None]
    out = warped * mask + background * (1 - mask)
    out = np.clip(out * brightness, 0, 255).astype(np.uint8)
    return out


def encode(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def canvas(source: str | np.ndarray = "astronaut", quality: int = 85, **kwargs) -> bytes:
    """JPEG bytes of a 640x480 frame; keyword arguments as in canvas_image."""
    return encode(canvas_image(source, **kwargs), quality)


_MODEL = None


def shared_model():
    """One loaded ConcentrationModel for every test in the process (loading takes a while)."""
    global _MODEL
    if _MODEL is None:
        from jipjung_model.default_model import ConcentrationModel

        _MODEL = ConcentrationModel()
        _MODEL.load({})
    return _MODEL
