"""JPEG decoding and cheap image-quality measures."""

from __future__ import annotations

import cv2
import numpy as np

_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}

# Start-of-frame markers that carry the image size (baseline, extended,
# progressive, lossless, and their arithmetic-coded variants).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def decode_jpeg(data: bytes, reduce: int = 1) -> np.ndarray | None:
    """Decode JPEG (or any format OpenCV reads) to a BGR uint8 array.

    ``reduce`` 2 or 4 decodes at half or quarter size straight from the DCT
    coefficients, which is faster than decoding and resizing. Returns None
    when the bytes cannot be decoded.
    """
    if reduce not in _REDUCED:
        raise ValueError(f"reduce must be 1, 2 or 4, not {reduce}")
    if not data:
        return None
    buf = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buf, _REDUCED[reduce])
    except cv2.error:
        return None
    if image is None or image.size == 0:
        return None
    return image


def decode_frame(data: bytes, reduce: int, width: int = 0, height: int = 0) -> tuple[np.ndarray | None, str | None]:
    """Decode a frame and check it against the size its header declared.

    Returns ``(image, None)`` or ``(None, reason)`` with reason
    ``"undecodable"`` or ``"size_mismatch"``; never raises on bad bytes.
    """
    image = decode_jpeg(data, reduce)
    if image is None:
        return None, "undecodable"
    if width and height:
        h, w = image.shape[:2]
        # Reduced decoding rounds each dimension up.
        if w != -(-width // reduce) or h != -(-height // reduce):
            return None, "size_mismatch"
    return image, None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a JPEG's start-of-frame header, without
    decoding; None if the bytes are not a well-formed JPEG header."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _SOF:
            if i + 9 > n:
                return None
            h = (data[i + 5] << 8) | data[i + 6]
            w = (data[i + 7] << 8) | data[i + 8]
            return (w, h) if w and h else None
        if marker == 0xDA or length < 2:  # start of scan before any SOF
            return None
        i += 2 + length
    return None


def pick_reduce(data: bytes, min_width: int = 320) -> int:
    """The largest JPEG reduction (1, 2 or 4) that keeps at least
    ``min_width`` pixels across."""
    size = jpeg_size(data)
    if size is None:
        return 1
    for r in (4, 2):
        if size[0] // r >= min_width:
            return r
    return 1


def quality(image: np.ndarray) -> dict[str, float]:
    """Cheap image-quality measures on the luma channel:

    - ``brightness``: mean luma, 0-255;
    - ``contrast``: standard deviation of luma;
    - ``blur``: variance of the Laplacian (low = blurred or featureless),
      measured at 160 px width so it is comparable across frame sizes.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    if w > 160:
        grey = cv2.resize(grey, (160, max(1, round(h * 160 / w))), interpolation=cv2.INTER_AREA)
    mean, std = cv2.meanStdDev(grey)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    _, lap_std = cv2.meanStdDev(lap)
    return {
        "brightness": round(float(mean[0, 0]), 1),
        "contrast": round(float(std[0, 0]), 1),
        "blur": round(float(lap_std[0, 0]) ** 2, 1),
    }
