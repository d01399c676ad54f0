"""The default concentration model: BlazeFace finds the face, FaceMesh follows it and gives the head pose.

Per frame
---------
1. Decode the JPEG, at half or quarter size straight from the DCT when the
   frame stays at least ``minDecodeWidth`` (320) pixels wide: a 640x480
   frame is analysed at 320x240, which detects and places keypoints as well
   as full size (the network sees 128 px anyway) and decodes ~2x faster.
2. Image quality (mean luma, luma contrast, Laplacian variance). A frame
   that is too dark, too bright or featureless is *not usable*: it is
   analysed, but gets ``state: "unknown"`` and ``score: null`` -- bad light
   is not inattention -- and no detection is run on it.
3. Face finding, two-pass, short-range BlazeFace only:

   - *Acquisition*: the whole frame (letterboxed to 128) gives candidates
     above ``candidateScore`` (0.25: a laptop-distance face of ~80 px in a
     640x480 frame only scores 0.3-0.6 at that resolution). Each of the best
     ``maxCandidates`` is verified by two crop passes (a square crop 2.2x the
     box, re-centred on the first crop's result); it is a face when the mean
     of the two crop scores is at least ``acceptScore`` (0.75). On the test
     photos, real faces score 0.8-0.95 there, while the best fakes (a cat, a
     helmet or a chest patch in a rotated photo) stay below 0.7.
   - *Tracking*: the student face found in the previous frame (also across
     units, through the context, while no more than ``trackGap`` frames
     apart) is followed by FaceMesh alone (facemesh.py), as MediaPipe does:
     each frame's mesh crop is the previous mesh's box x1.5, levelled by its
     eye line, kept while the mesh's face flag is at least
     ``meshTrackScore``; below it one crop pass around the last box tries
     to keep the track. A pose that jumps by more than ``meshJumpDegrees``
     from the previous frame gets a fresh crop from a detector pass, which
     also checks that the face was not flipped upside down. Every
     ``redetectEvery`` frames (4 s) the whole frame is scanned so that other
     faces are counted and a better student face can take over; it confirms
     the track when it finds it and the track's orientation has been
     checked, else one crop pass confirms it (``_seen_upright``). A still
     face (its 16x16 thumbnail differs from the one taken where the network
     last placed it by at most ``stillDifference``) reuses that location for
     up to ``stillReuse`` frames in a row; so does a face that only drifted
     or tilted within the image (``stillAlign``, motion.py), its location
     and mesh moved with it. When nobody has been in view for
     ``absentScanAfterSeconds`` (2 s), the whole frame is scanned only every
     ``absentScanSeconds`` (0.4 s), and candidates that failed verification
     are remembered (``rejectMemorySeconds``) in the context's ``scan`` entry.

   ``faces`` counts verified faces; on frames where only the track was
   followed it is 1 or 0. The student face is the verified face with the
   largest ``area * (1 - 0.5 * offCentre)``.
4. Head pose from a rigid fit of the student's mesh to MediaPipe's
   canonical face (mesh_pose.py).
5. Eye openness of both eyes (eyes.py) on the greyscale of the detection
   image (bicubic; ``eyesFullDecode`` uses a second, full-size greyscale
   decode instead, ~1.7 ms a 640x480 frame).
6. State and score over durations, with per-student calibration
   (temporal.py): a look-away becomes ``distracted`` after 2 s, drowsiness
   comes from PERCLOS and long closures, a blink changes nothing.

Per-frame entries keep the keys the server and browser rely on
(``analysed``, ``error``, ``usable``, ``qualityFlags``, ``face``,
``faces``, ``box``, ``score``, ``state``) and add the measurements
(``yaw``, ``pitch``, ``roll``, ``posePlausible``, ``eyes``,
``eyesClosed``) and the score components (``presence``, ``attention``,
``alertness``, ``perclos``; ``target``: the state this frame alone points
to). ``state`` and ``score`` are the debounced ones.

Each frame is analysed as it is added to an open unit (``open``, ``add``,
``close``); ``analyse`` of a whole unit does just that, so the two give the
same result.

Units: score = mean of the usable frames' scores (None when none is
usable, state ``unknown``); state = majority of the usable frames' states
(a tie goes to the later one). Signals (batch and window):
``facePresent``, ``faces`` (max), ``multipleFaces``, mean
``yaw``/``pitch``/``roll``, ``eyeOpenness``, ``perclos``, ``components``
(mean ``presence``, ``attention``, ``alertness``), ``calibration``,
``framesUsable``, ``qualityFlags``, ``stateShare``. The window aggregates
its frames the same way, through the context.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from . import mesh_pose, motion, temporal
from .blazeface import LEFT_EYE, RIGHT_EYE, SHORT_RANGE, BlazeFace, Detection
from .eyes import eye_openness
from .facemesh import DEFAULT_FACEMESH, DEFAULT_IRIS, FaceMesh, Iris, eye_opening, eye_roi, face_roi, mesh_roi
from .image import decode_frame, pick_reduce, quality
from .interface import Frame, Model, OpenUnit, Unit, UnitOutcome, UnitResult
from .pose import ramp  # noqa: F401  (re-exported: the public helpers of this model)

DEFAULTS: dict[str, Any] = {
    "detector": SHORT_RANGE,
    "faceMesh": DEFAULT_FACEMESH,
    # The eyes are measured on every frame by their image (eyes.py), which is
    # cheap but reads some closed lids as open and some open eyes as closed.
    # When that measure falls below irisCheckRatio x the open-eye reference
    # (the student's calibrated open eyes, else the population's), the iris
    # network (facemesh.py) places the lids: closed when their gap is under
    # irisClosedOpening of the eye's width, open from irisOpenOpening; between
    # the two (narrowed eyes: a smile, a blur) the image measure decides. Open
    # eyes read 0.32-0.40, smiling and blurred ones down to 0.23, painted closed
    # ones 0.05-0.20 on the real-face set. Two network passes,
    # each about as heavy as the mesh's, on such frames only: blinks and
    # closures, not open eyes. 0 disables it.
    "iris": DEFAULT_IRIS,
    "irisCheckRatio": 0.9,
    "irisClosedOpening": 0.2,
    "irisOpenOpening": 0.25,
    # A tracked face is followed by the mesh alone (no detector pass) while the
    # mesh's face flag stays at or above this.
    "meshTrackScore": 0.5,
    # The mesh's crop for the next frame comes from this frame's landmarks,
    # which lag a fast turn or nod: a crop placed for a frontal face reads a
    # head lowered by 40 deg as 14 deg, then converges by ~4 deg a frame.
    # When the pose read moves by more than this from the previous frame, the
    # detector places a fresh crop and the mesh runs again (one detector and
    # one mesh pass more, on such frames only).
    "meshJumpDegrees": 8.0,
    "uprightScore": 0.86,
    # A scan's whole-frame pass that finds the tracked face at this score
    # confirms it upright without a crop pass (see _seen_upright).
    "confirmScore": 0.9,
    "minDecodeWidth": 320,
    "candidateScore": 0.25,
    "maxCandidates": 3,
    "acceptScore": 0.75,
    "trackScore": 0.6,
    "trackGap": 10,
    "redetectEvery": 20,
    # A still face is not re-located: when the tracked face's region of the
    # image differs from where the network last located it by at most
    # stillDifference (mean absolute difference of a 16x16 thumbnail, in
    # units of the thumbnail's own standard deviation), its box and
    # keypoints are reused for up to stillReuse frames in a row. The eyes
    # are measured on every frame all the same. 0 disables it. A reused
    # frame is compared with the reference, not with the frame before it, so
    # a slow turn or nod is caught once it adds up (2-3 deg at 0.5-1 deg a
    # frame), however many frames it takes; and as the reference lives
    # within one unit, the network still places the face once a unit (1 s).
    "stillReuse": 4,
    "stillDifference": 0.08,
    # A face that only moved within the image plane (drifted, tilted) is
    # still when its region, aligned by that move (motion.py), differs from
    # the reference by at most stillAlignedDifference: its box, keypoints and
    # mesh are moved with it, and the pose is read from the moved mesh. The
    # alignment absorbs part of any change, so this bound is tighter than
    # stillDifference: on the test scenes a head drifting 2.6 px and tilting
    # 0.8 deg a frame leaves 0.03-0.035, one turning 4 deg or nodding 3 deg a
    # frame 0.07 or more, sensor noise alone 0.01. False: only an unmoved
    # region counts as still.
    "stillAlign": True,
    "stillAlignedDifference": 0.05,
    # A location is kept for reuse only once the pose read from it has
    # settled: it moved by at most this from the previous frame's.
    "stillSettledDegrees": 2.0,
    # Once nobody has been in view for absentScanAfterSeconds, the whole
    # frame is scanned at least every absentScanSeconds (a returning student
    # is found within this time), not on every frame: at 5 fps, 0.4 s =
    # every third frame. Before that, every frame (a detector miss or a
    # session's first frames cost no delay).
    "absentScanSeconds": 0.4,
    "absentScanAfterSeconds": 2.0,
    # A whole-frame candidate that failed verification is not verified again
    # for this long while the whole-frame pass keeps finding it at the same
    # place (IoU >= 0.5) with about the same score (+-0.05).
    "rejectMemorySeconds": 6.0,
    # Measure the eyes on a second, full-size greyscale decode (the original way;
    # ~1.7 ms a 640x480 frame here) instead of the detection image.
    "eyesFullDecode": False,
    "minBrightness": 30.0,
    "maxBrightness": 235.0,
    "minContrast": 10.0,
    # A dim room lowers the contrast with the light: a frame is flat only when
    # its contrast is low in absolute terms and against its own brightness
    # too (a blank wall 0.01, a dim face on a plain wall 0.17 or more).
    "minRelativeContrast": 0.08,
    # Laplacian variance / contrast^2: sharpness independent of the light
    # (a dim sharp frame has a low Laplacian variance but a high ratio). On
    # the real-face set, sharp faces read 0.23 or more, blurred by 1.5 px
    # (still judged) 0.10 or more, by 6 px 0.04 at most, in full and in dim
    # light alike.
    "minRelativeSharpness": 0.06,
    # The Laplacian variance itself falls with the light: sharp faces in dim
    # light (x0.35, the eval's "dim") read 27-40 at the web client's JPEG
    # quality. Only a frame with next to no detail left falls below this.
    "minSharpness": 8.0,
    "frozenFrames": 10,
    **temporal.DEFAULTS,
}


@dataclass
class Face(Detection):
    """A detection with its FaceMesh landmarks (468 x 3, image pixels), when
    the mesh was run on it."""

    mesh: np.ndarray | None = None
    # Upside down: the detector scores the face higher turned by 180 deg. No
    # mesh is run on it (the mesh would place an upright face there anyway).
    inverted: bool = False
    _pose: dict[str, Any] | None = None

    def pose(self) -> dict[str, Any]:
        """The mesh's head pose (mesh_pose.head_pose), computed once."""
        if self._pose is None:
            self._pose = mesh_pose.head_pose(self.mesh) if self.mesh is not None else {
                "plausible": False, "yaw": None, "pitch": None, "roll": None}
        return self._pose


def _from_mesh(points: np.ndarray, flag: float) -> Face:
    """A face located by the mesh alone: the landmarks' bounding box, and
    BlazeFace's six keypoints taken from the mesh (eye centres, nose tip,
    mouth centre, the cheek edges for the ears)."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    right, left = mesh_pose.eye_centres(points)
    p = points[:, :2]
    kp = np.array([
        right, left, p[mesh_pose.NOSE_TIP],
        (p[mesh_pose.MOUTH_UPPER] + p[mesh_pose.MOUTH_LOWER]) / 2,
        p[mesh_pose.RIGHT_CHEEK_EDGE], p[mesh_pose.LEFT_CHEEK_EDGE],
    ], dtype=np.float64)
    box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    return Face(float(flag), box, kp, points)


def _iou(a: tuple, b: tuple) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _same_face(a: Detection, b: Detection) -> bool:
    """Overlapping boxes, or one box's centre inside the other."""
    if _iou(a.box, b.box) > 0.3:
        return True
    for p, q in ((a, b), (b, a)):
        cx, cy = p.center
        x, y, w, h = q.box
        if x <= cx <= x + w and y <= cy <= y + h:
            return True
    return False


def _valid_track(track: Any) -> dict[str, Any] | None:
    """The context's track if well-formed (it round-trips through the
    server as JSON), else None."""
    try:
        box = [float(v) for v in track["box"]]
        seq, scan_seq = int(track["seq"]), int(track["scanSeq"])
    except (TypeError, KeyError, ValueError):
        return None
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        return None
    roi, pose = _numbers(track.get("roi"), 4), _numbers(track.get("pose"), 2)
    return {
        "box": box, "seq": seq, "scanSeq": scan_seq, "inverted": track.get("inverted") is True,
        "checked": track.get("checked") is True,
        "roi": roi if roi is not None and roi[2] > 0 else None, "pose": pose,
    }


def _numbers(raw: Any, n: int) -> list[float] | None:
    """``raw`` as a list of ``n`` finite floats, or None."""
    try:
        v = [float(x) for x in raw or ()]
    except (TypeError, ValueError):
        return None
    return v if len(v) == n and all(math.isfinite(x) for x in v) else None


def _valid_scan(raw: Any) -> dict[str, Any]:
    """The context's whole-frame scan memory if well-formed, else an empty
    one: ``seq`` of the last whole-frame scan, ``empty`` the seq since which
    the scans found nobody (None: someone was found), and ``rejected``
    candidates, each ``[x, y, w, h, score, seq]`` (box normalised to the
    frame)."""
    out: dict[str, Any] = {"seq": None, "empty": None, "rejected": [], "faces": 0}
    if not isinstance(raw, dict):
        return out
    if isinstance(raw.get("faces"), int) and not isinstance(raw.get("faces"), bool) and 0 <= raw["faces"] <= 64:
        out["faces"] = raw["faces"]
    for key in ("seq", "empty"):
        if isinstance(raw.get(key), int):
            out[key] = raw[key]
    for r in raw.get("rejected") or ():
        try:
            v = [float(x) for x in r]
        except (TypeError, ValueError):
            continue
        if len(v) == 6 and all(math.isfinite(x) for x in v):
            out["rejected"].append(v[:5] + [int(v[5])])
    return out


def _moved(face: Detection, by: np.ndarray) -> Detection:
    """``face`` moved by a 2x3 image motion (motion.py): its box's centre,
    keypoints and mesh; the box keeps its size."""
    x, y, w, h = face.box
    (cx, cy), = motion.move_points(np.array([face.center]), by)
    box = (float(cx - w / 2), float(cy - h / 2), w, h)
    keypoints = motion.move_points(face.keypoints, by)
    if not isinstance(face, Face):
        return Detection(face.score, box, keypoints)
    mesh = None if face.mesh is None else motion.move_points(face.mesh, by)
    return Face(face.score, box, keypoints, mesh, face.inverted)


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(float(x), nd)


class ConcentrationModel(Model):
    """BlazeFace + FaceMesh head pose; see the module docstring."""

    name = "facemesh-pose"
    version = "0.4.4"

    def __init__(self) -> None:
        self.options: dict[str, Any] = dict(DEFAULTS)
        self._detector: BlazeFace | None = None
        self._mesh: FaceMesh | None = None
        self._iris: Iris | None = None

    def load(self, options: Mapping[str, Any]) -> None:
        cv2.setNumThreads(1)
        self.options = {**DEFAULTS, **{k: v for k, v in (options or {}).items() if k in DEFAULTS}}
        path = self.options["detector"]
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(SHORT_RANGE), path)
        self._detector = BlazeFace(path)
        self._mesh = FaceMesh(self.options["faceMesh"])
        self._iris = Iris(self.options["iris"]) if self.options["irisCheckRatio"] > 0 else None

    @property
    def detector(self) -> BlazeFace:
        if self._detector is None:
            self.load({})
        assert self._detector is not None
        return self._detector

    @property
    def mesh(self) -> FaceMesh:
        if self._mesh is None:
            self.load({})
        assert self._mesh is not None
        return self._mesh

    def _iris_opening(self, image: np.ndarray, mesh: np.ndarray) -> float | None:
        """Mean lid gap over eye width of both eyes by the iris network, in
        MediaPipe's eye crops from the mesh; None without the network."""
        if self._iris is None:
            return None
        gaps = []
        for left in (False, True):
            r = self._iris.run(image, *eye_roi(mesh, left), left)
            gaps.append(eye_opening(r.contour))
        return sum(gaps) / len(gaps)

    # -- faces -----------------------------------------------------------

    def _mesh_at(self, image: np.ndarray, centre: tuple[float, float], size: float, angle: float) -> Face:
        r = self.mesh.run(image, centre, size, angle)
        return _from_mesh(r.points, r.flag)

    def _mesh_of(self, image: np.ndarray, det: Detection) -> Face:
        """The mesh in MediaPipe's crop for a detection (its box x1.5,
        levelled by its eye keypoints)."""
        kp = det.keypoints
        return self._mesh_at(image, *face_roi(det.box, kp[RIGHT_EYE], kp[LEFT_EYE]))

    def _after_jump(self, image: np.ndarray, face: Face, last: list[float]) -> Face:
        """``face``, or the face re-located by the detector and meshed afresh
        when its pose moved by more than meshJumpDegrees since the last frame
        (see DEFAULTS), or marked upside down when the detector finds it so."""
        pose = face.pose()
        if pose["yaw"] is None or max(
                abs(pose["yaw"] - last[0]), abs(pose["pitch"] - last[1])) <= self.options["meshJumpDegrees"]:
            return face
        det = self.detector.refine(image, face)
        if det.score < self.options["trackScore"]:
            return face
        if self._inverted(image, det, det.score):
            # A face flipped from one frame to the next (a phone turned over)
            # reads as a jump, and the mesh would place an upright face on it.
            return Face(det.score, det.box, det.keypoints, inverted=True)
        again = self._mesh_of(image, det)
        return again if again.score >= self.options["meshTrackScore"] else face

    def _with_mesh(self, image: np.ndarray, det: Detection) -> Face:
        """The detector's face with its mesh, from MediaPipe's crop for a
        detection. The detector's box and score are kept: the detector
        verified this face, whatever the mesh's own flag."""
        if isinstance(det, Face) and (det.mesh is not None or det.inverted):
            return det
        located = self._mesh_of(image, det)
        return Face(det.score, det.box, located.keypoints, located.mesh)

    def _verify(self, image: np.ndarray, cand: Detection) -> Face | None:
        """Two crop passes; the re-centred second crop's detection when the
        mean crop score reaches acceptScore, marked when it is upside down."""
        det = self.detector
        r1 = det.refine(image, cand)
        if r1.score < 0.5:
            return None
        r2 = det.refine(image, r1)
        if (r1.score + r2.score) / 2 < self.options["acceptScore"]:
            return None
        return Face(r2.score, r2.box, r2.keypoints, inverted=self._inverted(image, r2, r2.score))

    def _seen_upright(self, tracked: Detection, cands: list[Detection], checked: bool) -> bool:
        """Whether the whole-frame pass confirms an upright track by itself,
        saving the crop pass that would: it finds the tracked face, and the
        track's orientation was already checked by the detector (``checked``)
        or the find scores confirmScore or more (upside-down faces score at
        most 0.85 on it on the real-face set)."""
        if isinstance(tracked, Face) and tracked.inverted:
            return False
        need = self.options["candidateScore"] if checked else self.options["confirmScore"]
        return any(c.score >= need and _same_face(c, tracked) for c in cands)

    def _inverted(self, image: np.ndarray, face: Detection, upright_score: float) -> bool:
        """Whether the face is upside down: BlazeFace finds some upside-down
        faces (0.6-0.75 on a crop pass) and FaceMesh places an upright mesh on
        them with flag ~1, but the same crop turned by 180 deg scores higher
        than the face as it is (on the real-face set: by 0.1-0.6, and 0.1-0.6
        lower for every upright face). An upright crop score of at least
        ``uprightScore`` settles it without the turned pass: upside-down faces
        scored at most 0.82 there, and 95 % of upright faces 0.89 or more."""
        if upright_score >= self.options["uprightScore"]:
            return False
        h, w = image.shape[:2]
        x, y, bw, bh = face.box
        turned = Detection(1.0, (w - x - bw, h - y - bh, bw, bh), face.keypoints)
        return self.detector.refine(cv2.rotate(image, cv2.ROTATE_180), turned).score > upright_score

    def _still_face(self, grey: np.ndarray | None, still: dict[str, Any] | None, seq: int) -> Detection | None:
        """The face the network located on the previous frames, when its
        region of ``grey`` has not changed since (see ``stillReuse``), moved
        with its region when that only moved within the image plane
        (``stillAlign``)."""
        o = self.options
        if grey is None or not still or still["seq"] != seq - 1 or still["reused"] >= o["stillReuse"]:
            return None
        face = still["face"]
        taken = motion.face_patch(grey, face.box)
        if taken is None:
            return None
        patch, reference, unit = taken[0], still["thumb"], still["unit"]
        moved = None
        if motion.difference(reference, motion.thumbnail(patch), unit) > o["stillDifference"]:
            found = motion.in_plane_motion(still["patch"], patch) if o["stillAlign"] else None
            if found is None or motion.difference(
                    reference, motion.thumbnail(found[1]), unit) > o["stillAlignedDifference"]:
                return None
            moved = motion.image_motion(found[0], still["toPatch"])
        still["reused"] += 1
        still["seq"] = seq
        return face if moved is None else _moved(face, moved)

    def _remember_still(
        self, grey: np.ndarray | None, still: dict[str, Any] | None, face: Detection, seq: int,
        prior: Detection, last_pose: list[float] | None = None,
    ) -> None:
        """Keep the network's fresh result for ``face`` as the reference of
        _still_face, or forget the reference. Only a converged location is
        kept: each crop pass re-centres on the previous box, so a face found
        a frame or two ago is still being placed more precisely, and reusing
        that location would keep its error. So is the mesh's reading: after
        a turn its crop follows the head over a few frames, and the pose read
        moves by several degrees a frame until it settles (``last_pose``,
        the previous frame's yaw and pitch, against stillSettledDegrees)."""
        if still is None:
            return
        taken = None
        (px, py), (fx, fy) = prior.center, face.center
        size = max(prior.box[2], prior.box[3])
        converged = (
            math.hypot(fx - px, fy - py) <= 0.03 * size
            and abs(max(face.box[2], face.box[3]) / size - 1.0) <= 0.03
        )
        if converged and last_pose is not None and isinstance(face, Face) and face.mesh is not None:
            pose = face.pose()
            if pose["yaw"] is None:
                converged = False
            else:
                moved = max(abs(pose["yaw"] - last_pose[0]), abs(pose["pitch"] - last_pose[1]))
                converged = moved <= self.options["stillSettledDegrees"]
        if grey is not None and converged and face.score >= self.options["trackScore"]:
            taken = motion.face_patch(grey, face.box)
        if taken is None:
            still.clear()
        else:
            patch, to_patch = taken
            thumb = motion.thumbnail(patch)
            still.update(face=face, patch=patch, toPatch=to_patch, thumb=thumb, unit=motion.change_unit(thumb),
                         reused=0, seq=seq)

    def _find_faces(
        self, image: np.ndarray, seq: int, track: dict[str, Any] | None,
        memory: dict[str, Any] | None = None, fps: float = 5.0,
        grey: np.ndarray | None = None, still: dict[str, Any] | None = None,
    ) -> tuple[list[Detection], Face | None, dict[str, Any] | None, bool]:
        """Verified faces, the student face (with its mesh), the new track, and whether the
        whole frame was scanned. ``memory`` (see _valid_scan) is updated in
        place; None: scan now and remember nothing. ``still`` (a dict kept
        over the frames of one unit, updated in place) and ``grey`` (the
        image's greyscale) let a still face be reused (``stillReuse``);
        None: locate the face on every frame."""
        o = self.options
        h, w = image.shape[:2]
        fps = fps if isinstance(fps, (int, float)) and fps > 0 else 5.0
        faces: list[Detection] = []
        tracked = None
        # Whether the detector checked the track's orientation since it began
        # (a track the mesh follows keeps its orientation: a slow turn turns
        # its crop too, and a fresh crop comes from a detector pass).
        checked = track is not None and track.get("checked") is True
        if track is not None:
            bx, by, bw, bh = track["box"]
            prior = Detection(1.0, (bx * w, by * h, bw * w, bh * h), np.zeros((6, 2)))
            r = self._still_face(grey, still, seq)
            if r is None and track.get("inverted"):
                r = self.detector.refine(image, prior)
                r = Face(r.score, r.box, r.keypoints, inverted=True) if r.score >= o["trackScore"] else None
                if still:
                    still.clear()
            elif r is None:
                if track.get("roi") is not None:
                    # Followed by the mesh alone, as MediaPipe does: the mesh's
                    # own crop for the next frame, no detector pass.
                    cx, cy, size, angle = track["roi"]
                    r = self._mesh_at(image, (cx * w, cy * h), size * w, angle)
                    if r.score < o["meshTrackScore"]:
                        r = None
                    elif track.get("pose") is not None:
                        r = self._after_jump(image, r, track["pose"])
                if r is None:
                    checked = False
                    r = self.detector.refine(image, prior)
                    if r.score < o["trackScore"]:
                        r = None
                if r is not None:
                    self._remember_still(grey, still, r, seq, prior, track.get("pose"))
                elif still:
                    still.clear()
            if r is not None:
                tracked = r
                faces.append(r)
        if tracked is not None and track is not None:
            scan = seq - track.get("scanSeq", -10**9) >= o["redetectEvery"]
        elif track is not None or memory is None or memory["seq"] is None or memory["empty"] is None:
            scan = True  # the face was just lost (or nothing is known): look everywhere now
        else:
            empty_for = seq - memory["empty"]
            every = 1 + int(o["absentScanSeconds"] * fps + 1e-9)
            if not 0 <= empty_for or empty_for < o["absentScanAfterSeconds"] * fps - 1e-9:
                scan = True  # only just empty: maybe a detector miss
            else:
                scan = not (0 < seq - memory["seq"] < every)  # nobody for a while
        cands = self.detector.detect(image, o["candidateScore"]) if scan else []
        if scan and tracked is not None and not self._seen_upright(tracked, cands, checked):
            # The mesh alone follows whatever is in its crop: on a face turned
            # upside down it still places an upright face with flag ~1. The
            # detector confirms the track and its orientation on every scan.
            check = self.detector.refine(image, tracked)
            faces.remove(tracked)
            inverted = check.score >= o["trackScore"] and self._inverted(image, check, check.score)
            if check.score < o["trackScore"] or inverted != (isinstance(tracked, Face) and tracked.inverted):
                tracked = None if check.score < o["trackScore"] else Face(
                    check.score, check.box, check.keypoints, inverted=inverted)
                if still:
                    still.clear()
            if tracked is not None:
                faces.append(tracked)
                checked = True
        if scan:
            rejected = []
            if memory is not None:
                keep = o["rejectMemorySeconds"] * fps
                rejected = [r for r in memory["rejected"] if 0 <= seq - r[5] < keep]
            for cand in cands[: o["maxCandidates"]]:
                if any(_same_face(cand, f) for f in faces):
                    continue  # already verified (whole-frame boxes are coarse)
                x, y, bw, bh = cand.box
                nbox = (x / w, y / h, bw / w, bh / h)
                if any(_iou(nbox, tuple(r[:4])) >= 0.5 and abs(cand.score - r[4]) <= 0.05 for r in rejected):
                    continue  # the same false candidate as on a recent frame
                found = self._verify(image, cand)
                if found is None:
                    rejected.append([*nbox, float(cand.score), seq])
                elif not any(_same_face(found, f) for f in faces):
                    faces.append(found)
            if memory is not None:
                memory["seq"] = seq
                memory["faces"] = len(faces)
                memory["rejected"] = rejected[-8:]
                if faces:
                    memory["empty"] = None
                elif memory["empty"] is None or seq < memory["empty"]:
                    memory["empty"] = seq
        faces = [f for f in faces if np.all(np.isfinite(f.box)) and np.all(np.isfinite(f.keypoints))]
        chosen = None
        if faces:
            def priority(f: Detection) -> float:
                cx, cy = f.center
                off = min(1.0, max(abs(cx / w - 0.5), abs(cy / h - 0.5)) / 0.5)
                return f.box[2] * f.box[3] * (1.0 - 0.5 * off)
            chosen = max(faces, key=priority)
        if chosen is not tracked and still:
            still.clear()
        new_track = None
        student = None
        if chosen is not None:
            student = self._with_mesh(image, chosen)
            if student is not chosen and still and still.get("face") is chosen:
                still["face"] = student
            x, y, bw, bh = student.box
            roi = pose = None
            if student.mesh is not None:
                (cx, cy), size, angle = mesh_roi(student.mesh)
                roi = [cx / w, cy / h, size / w, angle]
                p = student.pose()
                pose = None if p["yaw"] is None else [round(p["yaw"], 1), round(p["pitch"], 1)]
            new_track = {
                "box": [x / w, y / h, bw / w, bh / h],
                "seq": seq,
                "scanSeq": seq if scan or track is None else track["scanSeq"],
                "roi": roi,
                "pose": pose,
                "inverted": student.inverted,
                "checked": checked if chosen is tracked else True,
            }
        return faces, student, new_track, scan

    # -- frames ----------------------------------------------------------

    def _quality_flags(self, q: dict[str, float], repeats: int) -> list[str]:
        """Reasons a decoded image cannot be judged: bad light is reported
        as bad light, not as inattention."""
        o = self.options
        flags = []
        if q["brightness"] < o["minBrightness"]:
            flags.append("dark")
        if q["brightness"] > o["maxBrightness"]:
            flags.append("overexposed")
        if q["contrast"] < o["minContrast"] and q["contrast"] < o["minRelativeContrast"] * max(q["brightness"], 1.0):
            flags.append("flat")  # a covered lens or a blank picture
        elif q["blur"] < o["minSharpness"] or q["blur"] < o["minRelativeSharpness"] * q["contrast"] ** 2:
            flags.append("blurry")
        if repeats >= o["frozenFrames"]:
            flags.append("frozen")  # the same bytes again and again: a stuck camera
        return flags

    def _analyse_frame(
        self, frame: Frame, track: dict[str, Any] | None, repeats: int, tracker: temporal.Tracker,
        memory: dict[str, Any] | None = None, fps: float = 5.0, still: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        seq, data = frame.seq, frame.data
        o = self.options
        entry: dict[str, Any] = {
            "seq": seq, "analysed": False, "usable": False, "face": False, "faces": 0,
            "faceScore": None, "box": None, "yaw": None, "pitch": None, "roll": None,
            "posePlausible": None, "eyes": None, "eyesClosed": None, "quality": None,
            "score": None, "state": "unknown",
        }
        reduce = pick_reduce(data, o["minDecodeWidth"])
        image, error = decode_frame(data, reduce, frame.width, frame.height)
        if image is None:
            entry["error"] = error
            return entry, track
        entry["analysed"] = True
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        q = quality(grey)
        entry["quality"] = q
        flags = self._quality_flags(q, repeats)
        entry["qualityFlags"] = flags
        usable = not flags
        entry["usable"] = usable
        if not usable:
            return entry, track  # keep the track: the face may come back
        faces, student, track, _ = self._find_faces(image, seq, track, memory, fps, grey, still)
        entry["faces"] = len(faces)
        if student is not None and memory is not None and memory["seq"] is not None \
                and 0 <= seq - memory["seq"] < o["redetectEvery"]:
            # Between whole-frame scans only the student is followed: the
            # others seen by the last scan are still counted until the next.
            entry["faces"] = max(len(faces), memory["faces"])
        h, w = image.shape[:2]
        pose: dict[str, Any] | None = None
        centre, eyes = 1.0, None
        closed: bool | None = None
        if student is not None:
            x, y, bw, bh = student.box
            entry["face"] = True
            entry["faceScore"] = round(float(student.score), 3)
            entry["box"] = [round(x / w, 4), round(y / h, 4), round(bw / w, 4), round(bh / h, 4)]
            if student.inverted:
                pose = {"plausible": False, "yaw": None, "pitch": None, "roll": 180.0}
            else:
                pose = student.pose()
            entry["posePlausible"] = pose["plausible"]
            entry["roll"] = _r(pose["roll"])
            if pose["plausible"]:
                entry["yaw"], entry["pitch"] = _r(pose["yaw"]), _r(pose["pitch"])
                measured = self._eyes(data, grey, reduce, student)
                if measured is not None:
                    entry["eyes"] = {"right": measured[0], "left": measured[1]}
                    eyes = (measured[0] + measured[1]) / 2
                    if student.mesh is not None and eyes < o["irisCheckRatio"] * tracker.open_reference():
                        opening = self._iris_opening(image, student.mesh)
                        if opening is not None:
                            entry["irisOpening"] = round(opening, 3)
                            if opening < o["irisClosedOpening"]:
                                closed = True
                            elif opening >= o["irisOpenOpening"]:
                                closed = False
            cx, cy = (x + bw / 2) / w, (y + bh / 2) / h
            off = max(abs(cx - 0.5), abs(cy - 0.5)) / 0.5
            centre = ramp(off, 0.6, 1.0)  # leaving the centre is looking away too
        step = tracker.step(seq, student is not None, pose, centre, eyes, closed)
        entry.update(
            score=step["score"], state=step["state"], target=step["target"], reasons=step["reasons"],
            eyesClosed=step["eyesClosed"],
            attention=step["attention"], alertness=step["alertness"], presence=step["presence"],
            perclos=step["perclos"],
        )
        return entry, track

    def _eyes(self, data: bytes, grey: np.ndarray, reduce: int, face: Detection) -> tuple[float, float] | None:
        """Eye openness on the detection image's greyscale (``grey``, decoded
        at 1/reduce size), or with ``eyesFullDecode`` on a full-size greyscale
        decode."""
        kp = face.keypoints
        if reduce > 1 and self.options["eyesFullDecode"]:
            full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if full is None:
                return None
            kp = kp * np.array([full.shape[1] / grey.shape[1], full.shape[0] / grey.shape[0]])
            grey, reduce = full, 1
        return eye_openness(grey, kp[RIGHT_EYE], kp[LEFT_EYE], reduce)

    # -- units -----------------------------------------------------------

    def analyse(self, unit: Unit, context: dict[str, Any] | None) -> UnitResult:
        # One code path whichever way a unit arrives: whole, it is opened,
        # fed and closed at once.
        opened = self.open(context, unit.batch_frames, unit.window_frames, unit.fps)
        for frame in unit.frames:
            opened.add(frame)
        return opened.close(unit.closes_window)

    def open(
        self, context: dict[str, Any] | None, batch_frames: int = 5, window_frames: int = 50, fps: float = 5.0
    ) -> ConcentrationUnit:
        if self._detector is None:
            self.load({})
        return ConcentrationUnit(self, context, fps)


class ConcentrationUnit(OpenUnit):
    """A unit of ConcentrationModel: each frame is analysed as it is added,
    the batch and window are summarised at close. The still face is reused
    within the unit only, as it is not carried in the context."""

    def __init__(self, model: ConcentrationModel, context: dict[str, Any] | None, fps: float) -> None:
        self.model = model
        self.fps = fps
        self.context = context = dict(context or {})
        self.track = _valid_track(context.get("track"))
        frozen = context.get("frozen") or {"crc": None, "repeats": 0}
        self.crc, self.repeats = frozen.get("crc"), int(frozen.get("repeats") or 0)
        self.tracker = temporal.Tracker(model.options, fps, temporal.restore(context.get("temporal")))
        self.memory = _valid_scan(context.get("scan"))
        self.frames: list[dict[str, Any]] = []
        self.still: dict[str, Any] = {}

    def add(self, frame: Frame) -> None:
        track = self.track
        if track is not None and not (0 < frame.seq - track["seq"] <= self.model.options["trackGap"]):
            track = None
        frame_crc = zlib.crc32(frame.data)
        self.repeats = self.repeats + 1 if frame_crc == self.crc else 0
        self.crc = frame_crc
        entry, self.track = self.model._analyse_frame(
            frame, track, self.repeats, self.tracker, self.memory, self.fps, self.still)
        self.frames.append(entry)

    def close(self, closes_window: bool) -> UnitResult:
        context, frames, tracker = self.context, self.frames, self.tracker
        context["frozen"] = {"crc": self.crc, "repeats": self.repeats}
        context["track"] = self.track
        context["scan"] = self.memory
        context["temporal"] = tracker.t
        sums = summary_add(empty_summary(), frames)
        calibration = tracker.calibration_signal()
        batch = summarise(sums, calibration)
        window_sums = summary_merge(_valid_summary(context.get("window")), sums)
        window = None
        if closes_window:
            window = summarise(window_sums, calibration)
            context.pop("window", None)
        else:
            context["window"] = window_sums
        return UnitResult(frames, batch, window, context)


# -- aggregation over a unit ---------------------------------------------------

_SUM_KEYS = ("n", "analysed", "score", "face", "facesMax", "multi", "yawN", "yaw", "pitch", "roll", "rollN",
             "eyesN", "eyes", "measured", "closed", "presence", "attention", "alertness")


REASON_SHARE = 0.3  # a reason named by this share of a unit's analysed frames is the unit's


def empty_summary() -> dict[str, Any]:
    return {**{k: 0 for k in _SUM_KEYS}, "states": {}, "last": None, "flags": {}, "reasons": {}}


def _valid_summary(raw: Any) -> dict[str, Any]:
    s = empty_summary()
    if not isinstance(raw, dict):
        return s
    for k in _SUM_KEYS:
        v = raw.get(k)
        if isinstance(v, (int, float)) and math.isfinite(v):
            s[k] = v
    for k in ("states", "flags", "reasons"):
        if isinstance(raw.get(k), dict):
            s[k] = {str(a): int(b) for a, b in raw[k].items() if isinstance(b, int)}
    if raw.get("last") in ("focused", "distracted", "drowsy", "absent"):
        s["last"] = raw.get("last")
    return s


def summary_add(s: dict[str, Any], frames: list[dict[str, Any]]) -> dict[str, Any]:
    s = {**s, "states": dict(s["states"]), "flags": dict(s["flags"]), "reasons": dict(s["reasons"])}
    for f in frames:
        for flag in f.get("qualityFlags") or ():
            s["flags"][flag] = s["flags"].get(flag, 0) + 1
        if not f["analysed"]:
            continue
        s["analysed"] += 1
        for reason in f.get("reasons") or (() if f["usable"] else ("poor-image",)):
            s["reasons"][reason] = s["reasons"].get(reason, 0) + 1
        if not f["usable"]:
            continue
        s["n"] += 1
        s["score"] += f["score"]
        s["states"][f["state"]] = s["states"].get(f["state"], 0) + 1
        s["last"] = f["state"]
        s["face"] += 1 if f["face"] else 0
        s["facesMax"] = max(s["facesMax"], f["faces"])
        s["multi"] += 1 if f["faces"] > 1 else 0
        if f["yaw"] is not None:
            s["yawN"] += 1
            s["yaw"] += f["yaw"]
            s["pitch"] += f["pitch"]
        if f["roll"] is not None:
            s["rollN"] += 1
            s["roll"] += f["roll"]
        if f["eyes"] is not None:
            s["eyesN"] += 1
            s["eyes"] += (f["eyes"]["right"] + f["eyes"]["left"]) / 2
        if f["eyesClosed"] is not None:
            s["measured"] += 1
            s["closed"] += 1 if f["eyesClosed"] else 0
        for k in ("presence", "attention", "alertness"):
            s[k] += f[k]
    return s


def summary_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {k: a[k] + b[k] for k in _SUM_KEYS}
    out["facesMax"] = max(a["facesMax"], b["facesMax"])
    out["states"] = {k: a["states"].get(k, 0) + b["states"].get(k, 0) for k in {**a["states"], **b["states"]}}
    for key in ("flags", "reasons"):
        out[key] = {k: a[key].get(k, 0) + b[key].get(k, 0) for k in {**a[key], **b[key]}}
    out["last"] = b["last"] or a["last"]
    return out


def summarise(s: dict[str, Any], calibration: dict[str, Any]) -> UnitOutcome:
    """Score, state and signals of a unit from its frame sums (see the
    module docstring)."""
    n = s["n"]

    def mean(total: str, count: str | int, nd: int = 1) -> float | None:
        c = s[count] if isinstance(count, str) else count
        return round(s[total] / c, nd) if c else None

    signals = {
        "facePresent": round(s["face"] / n, 3) if n else None,
        "faces": s["facesMax"],
        "multipleFaces": s["multi"] > 0,
        "yaw": mean("yaw", "yawN"), "pitch": mean("pitch", "yawN"), "roll": mean("roll", "rollN"),
        "eyeOpenness": mean("eyes", "eyesN", 3),
        "perclos": mean("closed", "measured", 3),
        "components": {k: mean(k, n, 3) for k in ("presence", "attention", "alertness")} if n else None,
        "calibration": calibration,
        "framesUsable": n,
        "qualityFlags": s["flags"],
        "reasons": sorted((k for k, v in s["reasons"].items() if v >= REASON_SHARE * s["analysed"] and v > 0),
                          key=lambda k: -s["reasons"][k]),
    }
    if n == 0:
        return UnitOutcome(None, "unknown", signals)
    counts = s["states"]
    state = max(counts, key=lambda k: (counts[k], k == s["last"]))
    signals["stateShare"] = {k: round(v / n, 3) for k, v in counts.items()}
    return UnitOutcome(round(s["score"] / n, 1), state, signals)
