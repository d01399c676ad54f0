"""Turned and lowered heads synthesised from frontal photos, the way 300W-LP
was made from 300W: fit a 3D face to the photo, turn it by a known yaw and
pitch, and re-render the photo's own texture on the turned face.

Method
------
1. **3D face.** BlazeFace finds the face, FaceMesh
   (``jipjung_model.facemesh``, two passes: the detection's crop, then the
   crop of the first mesh) gives its 468 landmarks with depth: x, y in image
   pixels, z a relative depth in the same scale, larger = farther. FaceMesh
   is itself a learned fit of a 3D face to the image (as 3DDFA fits a 3DMM
   in 300W-LP); its depths agree with MediaPipe's canonical face to within
   a few per cent of the eye distance (nose tip 0.67 d in front of the eyes,
   cheek edges 0.9 d behind, d = eye distance), so they are used as they are.
2. **Mesh.** The triangles are those of MediaPipe's canonical face model
   (assets/canonical_face_model.obj, vertex i = landmark i: a disc of 898
   triangles whose edge is the 36-point face outline). Anchors extend it to
   the whole image so that hair, ears, neck and background move smoothly
   instead of leaving a ghost of the face where it was: an *inner ring*
   (``RING`` x each outline point's distance from the face centre,
   ``RING_BEHIND`` d behind that point: hair, ears, the top of the neck)
   and an *outer ring* (``OUTER_RING`` x, at the head centre's depth) joined
   to the outline and to each other by quads, and a *border* of fixed
   points framing the photo half a photo beyond its edges (the photo's edge
   pixels repeated there), joined to the outer ring by a Delaunay
   triangulation.
3. **Turning.** The points turn about a head centre behind the face
   (``PIVOT_BEHIND`` d behind the eyes, ``PIVOT_BELOW`` d below the eye
   line, between the eyes): yaw about the image's vertical axis, then pitch
   about its horizontal axis, and are projected orthographically (a webcam
   at arm's length sees a head almost orthographically). The face and the
   inner ring turn fully; the outer ring turns fully above the eyes and
   less and less down to the chin's level, below which it stays (the
   shoulders and chest do not turn with the head: the neck between them is
   stretched, as a neck twists); the border stays. The model's conventions
   (pose.py): positive yaw = the nose points to the image's right (the
   subject turns to their own left); positive pitch = head down.
4. **Warping.** Every triangle maps its turned position back to its place
   in the photo by an affine map. The anchor triangles are drawn first
   (those that turned over are dropped: they fold under their neighbours),
   then the face's triangles in painter's order (farthest first, by mean
   depth after turning); face triangles that face away from the camera after
   turning are dropped (their signed area changes sign). The drawing is a
   triangle-index image; one ``cv2.remap`` then samples the photo.

Yaw 0, pitch 0 reproduces the photo exactly (every triangle's map is the
identity). A photo costs ~0.1 s to fit and ~0.05 s a view to render.

How far these views can be trusted
----------------------------------
They are good for *geometry*: where the eyes, nose, mouth and face outline
go when a head turns by a known angle, which is what a head-pose reading
depends on. They are poor or wrong for:

- **texture that the photo does not show**: the cheek and ear turned toward
  the camera are the photo's few pixels of them stretched (no ear appears
  where the photo shows none); the side of the head is the hair or wall
  beside the face, stretched;
- **the far side**: the far eye and cheek are compressed and their
  triangles partly dropped, and the surface behind them is whatever the
  anchors map there, not the far ear or the back of the head;
- **hair and anything outside the face**: it has no depth of its own (the
  rings are two loops at guessed depths, the border does not move), so a
  full head of hair turns like a flat card, the far side of the head shows
  a hard edge where a real head would show hair (and a notch where the
  forehead's outline meets it, at 60 deg), lowering the head shows no crown
  (the hair above the forehead is stretched instead), and a face that
  nearly fills its photo drags streaks of the photo's edge pixels in;
- **large angles**: at 60 deg yaw or 50 deg pitch a third or more of the
  face surface is seen at a grazing angle from a frontal photo's pixels;
  the eye far from the camera is stretched from a few pixels, shading does
  not change with the turn, and the neck does not bend (the whole head
  turns about one fixed point);
- **self-consistency**: the 3D face is FaceMesh's own fit. A model that
  reads head pose from FaceMesh landmarks sees its own fit turned back at
  it, so its pose errors here are a lower bound of those on real turned
  heads; errors of BlazeFace's six keypoints are not so favoured.

Photos of really turned and lowered heads (``turned-woman-glasses.jpg``,
``down-office-laptop.jpg`` in test/fixtures/faces/) are the check that these
views do not flatter a model; they are not in the real-people set, which
needs a frontal photo of the same person for the lead-in and the reference.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from jipjung_model.blazeface import LEFT_EYE, RIGHT_EYE, SHORT_RANGE, BlazeFace
from jipjung_model.facemesh import DEFAULT_FACEMESH, FaceMesh, face_roi, mesh_roi

OBJ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "canonical_face_model.obj")

# Landmarks: the eye corners (subject's right eye = image left) and the nose tip.
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS, NOSE_TIP = (33, 133), (362, 263), 4

PIVOT_BEHIND = 1.4  # eye distances: an adult head centre is ~9 cm behind the eyes, d ~6.3 cm
PIVOT_BELOW = 0.3  # eye distances below the eye line (about the cheekbones)
RING = 1.3  # the inner anchor ring's distance from the face centre, in outline distances
RING_BEHIND = 0.3  # eye distances behind the outline point it extends
OUTER_RING = 1.8  # the outer ring, at the head centre's depth
BORDER_POINTS = 5  # per image side, corners included
MIN_FLAG = 0.5


@functools.lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """The canonical model's triangles (898 x 3 vertex indices)."""
    faces = []
    with open(OBJ, encoding="utf-8") as f:
        for line in f:
            if line.startswith("f "):
                faces.append([int(v.split("/")[0]) - 1 for v in line.split()[1:4]])
    out = np.array(faces, np.int32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def outline() -> np.ndarray:
    """The mesh's edge (the face outline) as one ordered loop of vertices:
    the edges that belong to one triangle only."""
    count: dict[tuple[int, int], int] = {}
    for t in mesh_triangles():
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            key = (min(a, b), max(a, b))
            count[key] = count.get(key, 0) + 1
    nxt: dict[int, list[int]] = {}
    for (a, b), n in count.items():
        if n == 1:
            nxt.setdefault(a, []).append(b)
            nxt.setdefault(b, []).append(a)
    start = min(nxt)
    loop, prev = [start], None
    while True:
        cur = loop[-1]
        step = next(v for v in nxt[cur] if v != prev)
        if step == start:
            break
        prev = cur
        loop.append(step)
    out = np.array(loop, np.int32)
    out.setflags(write=False)
    return out


@dataclass
class Head:
    """A photo's face as a mesh over the whole image.

    ``points``: V x 3 (x, y in continuous image pixels, z depth in pixels,
    larger = farther); the first 468 are the FaceMesh landmarks, then the
    ring, then the border. ``triangles``: the anchors' first (rows before
    ``face_start``), then the face's. ``weight``: how much each vertex
    turns with the head (1: fully; 0: stays; in between: blended). ``pivot``: the
    head centre. ``eye_distance`` in pixels; ``flag`` FaceMesh's face
    probability."""

    points: np.ndarray
    triangles: np.ndarray
    face_start: int
    weight: np.ndarray
    pivot: np.ndarray
    eye_distance: float
    flag: float
    front_sign: float  # the sign of a camera-facing triangle's signed area


@functools.lru_cache(maxsize=1)
def _networks() -> tuple[BlazeFace, FaceMesh]:
    return BlazeFace(SHORT_RANGE), FaceMesh(DEFAULT_FACEMESH)


def landmarks(image: np.ndarray) -> tuple[np.ndarray, float]:
    """FaceMesh's 468 x 3 points of the photo's most confident face, and
    its flag. Raises ValueError when there is no face."""
    detector, mesh = _networks()
    found = detector.detect(image, 0.5)
    if not found:
        raise ValueError("no face found")
    det = detector.refine(image, detector.refine(image, found[0]))
    result = mesh.run(image, *face_roi(det.box, det.keypoints[RIGHT_EYE], det.keypoints[LEFT_EYE]))
    result = mesh.run(image, *mesh_roi(result.points))
    if not result.flag >= MIN_FLAG:
        raise ValueError(f"FaceMesh flag {result.flag:.2f}: not a face")
    return result.points.astype(np.float64), float(result.flag)


def _delaunay(points: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """Delaunay triangles (indices into ``points``, 2-D, all inside
    ``rect`` = (x0, y0, x1, y1))."""
    x0, y0, x1, y1 = rect
    sub = cv2.Subdiv2D((int(x0) - 2, int(y0) - 2, int(x1 - x0) + 4, int(y1 - y0) + 4))
    # Subdiv2D keeps float32 coordinates: key the points by those.
    pts = np.asarray(points, np.float32)
    lookup = {}
    for i, (x, y) in enumerate(pts):
        sub.insert((float(x), float(y)))
        lookup[(float(x), float(y))] = i
    out = []
    for t in sub.getTriangleList().astype(np.float32):
        idx = [lookup.get((float(t[2 * k]), float(t[2 * k + 1]))) for k in range(3)]
        if None not in idx:
            out.append(idx)
    return np.array(out, np.int32).reshape(-1, 3)


def build(image: np.ndarray, points: np.ndarray, flag: float = 1.0) -> Head:
    """The head mesh of ``image`` from its 468 FaceMesh points."""
    h, w = image.shape[:2]
    eye_r = points[list(RIGHT_EYE_CORNERS)].mean(0)
    eye_l = points[list(LEFT_EYE_CORNERS)].mean(0)
    d = float(np.hypot(*(eye_l - eye_r)[:2]))
    eyes = (eye_r + eye_l) / 2
    ux = (eye_l - eye_r)[:2] / d
    down = np.array([-ux[1], ux[0]])
    pivot = np.array([*(eyes[:2] + PIVOT_BELOW * d * down), eyes[2] + PIVOT_BEHIND * d])

    loop = outline()
    m = len(loop)
    edge = points[loop, :2]
    centre = edge.mean(0)
    inner = centre + RING * (edge - centre)
    outer = centre + OUTER_RING * (edge - centre)
    # The frame's border is fixed beyond the photo (its edge pixels repeated there),
    # so that rings reaching past the photo's edge, as around a face that
    # nearly fills a portrait, need no clamping.
    x0, y0, x1, y1 = -0.5 * w, -0.5 * h, 1.5 * w, 1.5 * h
    border = {(float(x), float(y)) for x in np.linspace(x0, x1, BORDER_POINTS) for y in (y0, y1)}
    border |= {(float(x), float(y)) for y in np.linspace(y0, y1, BORDER_POINTS) for x in (x0, x1)}
    border2 = np.array(sorted(border))
    allpts = np.vstack([
        points,
        np.column_stack([inner, points[loop, 2] + RING_BEHIND * d]),
        np.column_stack([outer, np.full(m, pivot[2])]),
        np.column_stack([border2, np.full(len(border2), pivot[2])]),
    ])
    i0, o0, b0 = len(points), len(points) + m, len(points) + 2 * m

    # How much each point turns with the head: the face and the inner ring
    # fully; the outer ring fully above the eyes, not at all from the chin
    # down (shoulders and chest stay while the neck twists); the border not.
    weight = np.ones(len(allpts))
    chin = float((points[loop, :2] @ down).max())
    level = float(eyes[:2] @ down)
    along = outer @ down
    weight[o0:b0] = np.clip((chin - along) / max(chin - level, 1e-6), 0.0, 1.0)
    weight[b0:] = 0.0

    tris = []
    for a, b in ((loop, i0 + np.arange(m)), (i0 + np.arange(m), o0 + np.arange(m))):
        for i in range(m):  # quads between two loops
            j = (i + 1) % m
            tris.append([a[i], a[j], b[j]])
            tris.append([a[i], b[j], b[i]])
    ring_poly = outer.astype(np.float32).reshape(-1, 1, 2)
    rest = np.vstack([outer, border2])
    index = np.concatenate([o0 + np.arange(m), b0 + np.arange(len(border2))])
    for t in _delaunay(rest, (x0, y0, x1, y1)):
        c = rest[t].mean(0)
        if cv2.pointPolygonTest(ring_poly, (float(c[0]), float(c[1])), False) > 0:
            continue  # inside the outer ring: the face and the quads cover it
        tris.append(index[t].tolist())
    anchors = np.array(tris, np.int32)
    face = mesh_triangles()
    area = _signed_area(points[:, :2], face)
    return Head(allpts, np.vstack([anchors, face]), len(anchors), weight, pivot, d, flag,
                float(np.sign(area.sum())))


def fit(image: np.ndarray) -> Head:
    """FaceMesh on the photo, then the head mesh (see the module docstring)."""
    points, flag = landmarks(image)
    return build(image, points, flag)


def _signed_area(p: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def turn(points: np.ndarray, pivot: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """The points turned about ``pivot`` by yaw (about the image's vertical
    axis) then pitch (about its horizontal axis), degrees, pose.py's signs.
    Axes: x right, y down, z away from the camera."""
    y, p = math.radians(yaw), math.radians(pitch)
    # Yaw: the nose (in front, z < pivot) goes to +x for yaw > 0.
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    # Pitch: the nose goes down (+y) for pitch > 0.
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return (points - pivot) @ (rx @ ry).T + pivot


def render(image: np.ndarray, head: Head, yaw: float, pitch: float) -> np.ndarray:
    """The photo with the head turned by ``yaw`` and ``pitch`` (degrees)."""
    h, w = image.shape[:2]
    wt = head.weight[:, None]
    dst = head.points * (1 - wt) + turn(head.points, head.pivot, yaw, pitch) * wt
    tris = head.triangles
    anchors = np.arange(head.face_start)
    # An anchor triangle that turned over (its signed area changed sign) is
    # folded under its neighbours, which cover the same pixels: dropped.
    src_area = _signed_area(head.points[:, :2], tris[anchors])
    anchors = anchors[_signed_area(dst[:, :2], tris[anchors]) * src_area > 0]
    face = np.arange(head.face_start, len(tris))
    area = _signed_area(dst[:, :2], tris[face])
    face = face[area * head.front_sign > 1e-3]  # facing the camera
    depth = dst[tris[face], 2].mean(1)
    order = np.concatenate([anchors, face[np.argsort(-depth, kind="stable")]])

    # Per triangle, the affine map of its turned position back to the photo:
    # [src_x, src_y] = coef @ [x, y, 1]. Degenerate triangles are not drawn;
    # a pixel no triangle covers (none: the border frames the image) keeps
    # its own place (the last row, the identity).
    a = np.concatenate([dst[tris, :2], np.ones((len(tris), 3, 1))], axis=2)
    ok = np.abs(np.linalg.det(a)) > 1e-9
    coef = np.zeros((len(tris), 3, 2))
    coef[ok] = np.linalg.solve(a[ok], head.points[tris[ok], :2])
    identity = np.array([[1, 0, 0, 0, 1, 0]], np.float64)
    coef = np.concatenate([coef.transpose(0, 2, 1).reshape(-1, 6), identity]).astype(np.float32)

    ids = np.full((h, w), len(tris), np.int32)
    # Pixel (i, j) covers [i, i+1) x [j, j+1): its centre is (i + 0.5, j + 0.5);
    # fillConvexPoly and remap index pixels by their centres.
    fixed = np.round((dst[:, :2] - 0.5) * 16).astype(np.int32)
    for t in order[ok[order]]:
        cv2.fillConvexPoly(ids, fixed[tris[t]], int(t), cv2.LINE_8, 4)
    c = coef[ids]
    px = np.arange(w, dtype=np.float32)[None, :] + 0.5
    py = np.arange(h, dtype=np.float32)[:, None] + 0.5
    map_x = c[..., 0] * px + c[..., 1] * py + c[..., 2] - 0.5
    map_y = c[..., 3] * px + c[..., 4] * py + c[..., 5] - 0.5
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def turned_landmarks(head: Head, yaw: float, pitch: float) -> np.ndarray:
    """Where the 468 landmarks land in the turned view (x, y, z)."""
    return turn(head.points[:468], head.pivot, yaw, pitch)


def renderer(image_or_path: np.ndarray | str) -> Callable[[float, float], np.ndarray]:
    """``render(yaw, pitch)`` for one photo: the mesh fitted once, each view
    rendered once (read-only arrays)."""
    image = cv2.imread(image_or_path, cv2.IMREAD_COLOR) if isinstance(image_or_path, str) else image_or_path
    if image is None:
        raise FileNotFoundError(image_or_path)
    head = fit(image)
    views: dict[tuple[float, float], np.ndarray] = {}

    def view(yaw: float, pitch: float) -> np.ndarray:
        key = (float(yaw), float(pitch))
        if key not in views:
            out = render(image, head, yaw, pitch)
            out.setflags(write=False)
            views[key] = out
        return views[key]
    return view
