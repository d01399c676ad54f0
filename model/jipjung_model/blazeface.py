"""MediaPipe BlazeFace (ONNX, Barracuda layout) run with OpenCV's DNN module.

The network takes one NHWC float32 image ``[1, S, S, 3]`` (RGB scaled to
[-1, 1]; S = 128 for the short-range model, 256 for the full-range one) and
returns, for every anchor, a logit and 16 regression values: box centre
offset (x, y) and size (w, h), then six keypoints (x, y) -- right eye, left
eye, nose tip, mouth centre, right ear, left ear (the subject's right and
left: for a person facing the camera the "right eye" is on the image's left)
-- all in pixels of the S x S input, offsets from the anchor centre, with y
pointing down (image coordinates; checked on a frontal photo: eyes come out
above the nose, the nose above the mouth).

Anchors: grids of ``S / stride`` cells per row; the short-range model has two
anchors per cell at stride 8 and six at stride 16 (16*16*2 + 8*8*6 = 896),
the full-range model two at stride 16 and six at stride 32. Anchor index
order is ((y * cells + x) * anchors_per_cell + a), as in the package's own
decoder; all anchors are unit-sized, so decoding is ``anchor_centre +
offset``.

``detect`` letterboxes the whole image into the input square; ``refine``
runs the network again on a square crop about 2.2x the size of a detection
(so the face fills about 45% of the 128 input, as in MediaPipe's own
training crops), which makes the keypoints precise enough for head pose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "blazeface")
SHORT_RANGE = os.path.join(ASSETS, "face_detection_front_128x128_barracuda.onnx")
FULL_RANGE = os.path.join(ASSETS, "face_detection_back_256x256_barracuda.onnx")

KEYPOINTS = ("rightEye", "leftEye", "nose", "mouth", "rightEar", "leftEar")
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)

REFINE_SCALE = 2.2


@dataclass
class Detection:
    """One face. ``box`` is (x, y, w, h) of the top-left corner and size, and
    ``keypoints`` a 6x2 array (order of KEYPOINTS), all in image pixels."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


def _anchors(size: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres (N, 2) in input pixels, in the network's output order."""
    out = []
    for stride, per_cell in layers:
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5), (ys + 0.5)], axis=-1).reshape(-1, 2) * stride
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box against many."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class BlazeFace:
    """A BlazeFace detector. Not thread-safe (one instance per process)."""

    def __init__(self, path: str = SHORT_RANGE, iou_threshold: float = 0.3):
        self.net = cv2.dnn.readNetFromONNX(path)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.outputs = ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"]
        if "back_256" in os.path.basename(path):
            self.size = 256
            self.anchors = _anchors(256, ((16, 2), (32, 6)))
        else:
            self.size = 128
            self.anchors = _anchors(128, ((8, 2), (16, 6)))
        self.iou_threshold = iou_threshold
        self._input = np.empty((1, self.size, self.size, 3), np.float32)
        # [0, 255] -> [-1, 1] as a table: cv2.LUT writes float32 straight
        # into the input blob (~10x faster than the numpy cast).
        self._lut = (np.arange(256, dtype=np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)).reshape(256, 1)

    # -- network ---------------------------------------------------------

    def _run(self, square_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and raw regressions (N, 16) for one S x S BGR image."""
        x = self._input
        cv2.LUT(cv2.cvtColor(square_bgr, cv2.COLOR_BGR2RGB), self._lut, dst=x[0])
        self.net.setInput(x)
        l0, l1, r0, r1 = self.net.forward(self.outputs)
        logits = np.concatenate([l0.reshape(-1), l1.reshape(-1)])
        regs = np.concatenate([r0.reshape(-1, 16), r1.reshape(-1, 16)])
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
        return scores, regs

    def _decode(
        self, scores: np.ndarray, regs: np.ndarray, threshold: float
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Weighted NMS over anchors above threshold; boxes (x0,y0,x1,y1) and
        keypoints (6, 2) in input pixels."""
        idx = np.nonzero(scores >= threshold)[0]
        if idx.size == 0:
            return []
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        s = scores[idx]
        r = regs[idx]
        a = self.anchors[idx]
        centre = a + r[:, 0:2]
        half = r[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        out = []
        remaining = np.arange(len(idx))
        while remaining.size:
            top = remaining[0]
            ious = _iou(boxes[top], boxes[remaining])
            group = remaining[ious > self.iou_threshold]
            remaining = remaining[ious <= self.iou_threshold]
            w = s[group][:, None]
            box = (boxes[group] * w).sum(0) / w.sum()
            kp = (kps[group] * w[:, :, None]).sum(0) / w.sum()
            out.append((float(s[top]), box, kp))
        return out

    # -- public ----------------------------------------------------------

    def detect(self, image_bgr: np.ndarray, threshold: float = 0.5) -> list[Detection]:
        """Faces in the whole image (letterboxed), best first."""
        h, w = image_bgr.shape[:2]
        size = self.size
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image_bgr, (nw, nh), interpolation=interp)
        ox, oy = (size - nw) // 2, (size - nh) // 2
        square = cv2.copyMakeBorder(
            small, oy, size - nh - oy, ox, size - nw - ox, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        scores, regs = self._run(square)
        # Input pixel p maps to image pixel (p - offset) / scale_x (per axis,
        # since rounding makes the two scales differ slightly).
        sx, sy = nw / w, nh / h
        off = np.array([ox, oy], np.float32)
        fac = np.array([sx, sy], np.float32)
        dets = []
        for score, box, kp in self._decode(scores, regs, threshold):
            p0 = (box[:2] - off) / fac
            p1 = (box[2:] - off) / fac
            dets.append(
                Detection(
                    score,
                    (float(p0[0]), float(p0[1]), float(p1[0] - p0[0]), float(p1[1] - p0[1])),
                    ((kp - off) / fac).astype(np.float64),
                )
            )
        return dets

    def refine(
        self, image_bgr: np.ndarray, detection: Detection, threshold: float = 0.3
    ) -> Detection:
        """Second pass on a square crop ~2.2x the detection, centred on it
        (padded with black where it leaves the image). Returns the crop's
        detection nearest the centre mapped back to image pixels, or the
        input detection with score 0 when the crop finds nothing. The score is
        the crop's own (more reliable than the whole-frame one)."""
        size = self.size
        cx, cy = detection.center
        side = REFINE_SCALE * max(detection.box[2], detection.box[3])
        if not (np.isfinite(side) and np.isfinite(cx) and np.isfinite(cy)) or side < 4:
            return Detection(0.0, detection.box, detection.keypoints)
        k = size / side  # image px -> crop input px
        x0, y0 = cx - side / 2, cy - side / 2
        m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float32)
        interp = cv2.INTER_AREA if k < 0.5 else cv2.INTER_LINEAR
        if k < 0.5:
            # Downscale large crops with area averaging (warpAffine would alias).
            ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
            ix1, iy1 = int(np.ceil(x0 + side)), int(np.ceil(y0 + side))
            h, w = image_bgr.shape[:2]
            crop = cv2.copyMakeBorder(
                image_bgr[max(iy0, 0):min(iy1, h), max(ix0, 0):min(ix1, w)],
                max(0, -iy0), max(0, iy1 - h), max(0, -ix0), max(0, ix1 - w),
                cv2.BORDER_CONSTANT, value=(0, 0, 0),
            )
            square = cv2.resize(crop, (size, size), interpolation=interp)
            kx, ky = size / (ix1 - ix0), size / (iy1 - iy0)
            x0, y0 = float(ix0), float(iy0)
        else:
            square = cv2.warpAffine(
                image_bgr, m, (size, size), flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
            )
            kx = ky = k
        scores, regs = self._run(square)
        found = self._decode(scores, regs, threshold)
        if not found:
            return Detection(0.0, detection.box, detection.keypoints)
        centre = np.array([size / 2, size / 2])
        # The face we zoomed on sits at the centre of the crop.
        score, box, kp = min(
            found, key=lambda f: np.hypot(*(((f[1][:2] + f[1][2:]) / 2) - centre))
        )
        fac = np.array([kx, ky])
        org = np.array([x0, y0])
        p0 = box[:2] / fac + org
        p1 = box[2:] / fac + org
        return Detection(
            score,
            (float(p0[0]), float(p0[1]), float(p1[0] - p0[0]), float(p1[1] - p0[1])),
            (kp / fac + org).astype(np.float64),
        )
