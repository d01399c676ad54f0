"""The default concentration model: BlazeFace face detection + head pose.

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
     apart) is re-found with one crop pass around its last box, kept when
     that crop scores at least ``trackScore`` (0.6). The whole frame is
     re-scanned every ``redetectEvery`` frames (and whenever the track is
     lost) so that other faces are counted and a better student face can
     take over. In the common case this costs 1.2 network passes per frame.

   ``faces`` counts verified faces; on frames where only the track was
   followed it is 1 or 0. The student face is the verified face with the
   largest ``area * (1 - 0.5 * offCentre)``.
4. Head pose from the student face's six keypoints (below).
5. Frame score and state (below).

Head pose geometry
------------------
Keypoints: right eye R, left eye L, nose tip N, mouth centre M, right ear
ER, left ear EL (the subject's right/left: R is on the image's left for a
face looking at the camera). Image coordinates, y down.

- **roll** = atan2(-(L.y - R.y), L.x - R.x): the angle of the eye line,
  positive when the head is turned counter-clockwise as seen in the image
  (the same sense as a positive angle of ``cv2.getRotationMatrix2D``), i.e.
  the subject tilts the head toward their right shoulder.
- The keypoints are then put in the *face frame*: origin at the eye
  midpoint E, x along R->L, y perpendicular (down the face), unit = the
  inter-eye distance d. Let n = N, m = M, and e = midpoint of the ears in
  that frame.
- **yaw**: turning the head by yaw y moves the nose tip (in front of the eye
  plane by ~Dn = 0.32 d) sideways by Dn sin y, and the ears (behind it by
  ~De = 1.27 d) the other way by De sin y, while d shrinks by cos y. So
  n.x - e.x = (Dn + De) tan y, and yaw = atan((n.x - e.x) / 1.6). Using
  both nose and ears makes the cue ~5x less sensitive to keypoint noise than
  the nose alone. Positive yaw: the nose points to the image's right, i.e.
  the subject turns to their own left.
- **pitch**: with a generic head (eyes 45 mm above and 20 mm behind the nose
  tip, mouth 25 mm below and 12 mm behind it), tilting the head down by p
  changes t = n.y / m.y (nose between eye line and mouth, independent of
  scale and yaw) as t(p) = (a cos p + 20 sin p) / (70 cos p + 8 sin p), with
  a = 70 t0. Solving: tan p = 70 (t - t0) / (20 - 8 t). The frontal
  reference t0 = 0.57 is the value BlazeFace gives on a frontal portrait
  looking at the camera (the astronaut photo; the anthropometric model says
  0.64). Positive pitch: head down (chin toward the chest).

Plausibility: a detection whose face frame is not that of an upright face
is a face that is present but not attending (``posePlausible: false``,
``state: "distracted"``, score 0): |roll| > 45 deg (head on its side or
upside down -- BlazeFace finds faces rotated by 45-90 deg and gives their
roll correctly), or the nose not clearly below the eye line (n.y*d/w <
0.08 with w the box width), or the mouth not below the nose, or the mouth
absurdly far (m.y*d/w > 0.9). Faces seen nearly in profile (d/w < 0.2)
are plausible; their yaw comes out large.

Scores and states
-----------------
Frame score (usable frames): 0 without a usable face; otherwise
100 * f(|yaw|; 15, 45) * f(|pitch|; 15, 45) * f(|roll|; 25, 45) * c, where
f(x; lo, hi) is 1 up to lo, 0 from hi, a half-cosine between; c = 1 while
the face centre is within 60% of the half-frame from the centre (Chebyshev
distance), easing to 0.5 at the frame edge. State: ``absent`` without a
face, ``focused`` when the score is at least 50, else ``distracted``.

Batch: score = mean of the usable frames' scores (None when none is
usable); state = ``absent`` when more than half of the usable frames have
no face, otherwise ``focused``/``distracted`` by majority over the frames
with a face (a tie goes by the mean score of those frames >= 50);
``unknown`` when no frame is usable. Signals: ``facePresent`` (share of
usable frames with a face), ``faces`` (max), mean ``yaw``/``pitch``/``roll``
over the frames with a pose (or null), ``framesUsable``.

Window: ``WindowAccumulator`` (interface.py), fed with every batch.
"""

from __future__ import annotations

import math
import os
import zlib
from typing import Any, Mapping

import cv2
import numpy as np

from .blazeface import (
    LEFT_EAR, LEFT_EYE, MOUTH, NOSE, RIGHT_EAR, RIGHT_EYE, SHORT_RANGE, BlazeFace, Detection,
)
from .image import decode_frame, pick_reduce, quality
from .interface import Frame, Model, Unit, UnitOutcome, UnitResult, WindowAccumulator

DEFAULTS: dict[str, Any] = {
    "detector": SHORT_RANGE,
    "minDecodeWidth": 320,
    "candidateScore": 0.25,
    "maxCandidates": 3,
    "acceptScore": 0.75,
    "trackScore": 0.6,
    "trackGap": 10,
    "redetectEvery": 5,
    "minBrightness": 30.0,
    "maxBrightness": 235.0,
    "minContrast": 10.0,
    "minSharpness": 30.0,
    "frozenFrames": 10,
}

# Pose model constants (see the module docstring).
YAW_DEPTH = 1.6  # nose-tip depth + ear depth, in inter-eye distances
PITCH_T0 = 0.57  # frontal nose/mouth ratio from the eye line
PITCH_P, PITCH_B, PITCH_Q = 70.0, 20.0, 8.0  # mm: eye-mouth height, eye depth, eye-mouth depth
MAX_ROLL = 45.0

# Frame score limits, degrees.
YAW_OK, YAW_OFF = 15.0, 45.0
PITCH_OK, PITCH_OFF = 15.0, 45.0
ROLL_OK, ROLL_OFF = 25.0, 45.0
FOCUSED_SCORE = 50.0


def ramp(x: float, lo: float, hi: float) -> float:
    """1 for x <= lo, 0 for x >= hi, half-cosine in between."""
    if x <= lo:
        return 1.0
    if x >= hi:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * (x - lo) / (hi - lo)))


def head_pose(det: Detection) -> dict[str, Any]:
    """Yaw, pitch, roll (degrees) and plausibility from the keypoints; see
    the module docstring for the geometry and sign conventions."""
    kp = det.keypoints
    v = kp[LEFT_EYE] - kp[RIGHT_EYE]
    d = float(math.hypot(v[0], v[1]))
    box_w = max(det.box[2], 1e-6)
    if d < 1e-6:
        return {"plausible": False, "yaw": None, "pitch": None, "roll": None}
    roll = math.degrees(math.atan2(-v[1], v[0]))
    # Face frame: x along the eye line, y perpendicular (down the face).
    ux = v / d
    uy = np.array([-ux[1], ux[0]])
    origin = (kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2
    rel = kp - origin
    fx = rel @ ux / d
    fy = rel @ uy / d
    nose_x, nose_y, mouth_y = fx[NOSE], fy[NOSE], fy[MOUTH]
    ears_x = (fx[RIGHT_EAR] + fx[LEFT_EAR]) / 2
    scale = d / box_w  # face-frame units -> box widths
    plausible = (
        abs(roll) <= MAX_ROLL
        and nose_y * scale >= 0.08
        and (mouth_y - nose_y) * scale >= 0.03
        and mouth_y * scale <= 0.9
    )
    yaw = math.degrees(math.atan((nose_x - ears_x) / YAW_DEPTH))
    t = nose_y / mouth_y if mouth_y > 1e-6 else PITCH_T0
    pitch = math.degrees(
        math.atan2(PITCH_P * (t - PITCH_T0), PITCH_B - PITCH_Q * t)
    )
    return {"plausible": bool(plausible), "yaw": yaw, "pitch": pitch, "roll": roll}


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
    return {"box": box, "seq": seq, "scanSeq": scan_seq}


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(float(x), nd)


class ConcentrationModel(Model):
    """BlazeFace + keypoint head pose; see the module docstring."""

    name = "blazeface-pose"
    version = "0.1.0"

    def __init__(self) -> None:
        self.options: dict[str, Any] = dict(DEFAULTS)
        self.detector: BlazeFace | None = None

    def load(self, options: Mapping[str, Any]) -> None:
        cv2.setNumThreads(1)
        self.options = {**DEFAULTS, **{k: v for k, v in (options or {}).items() if k in DEFAULTS}}
        path = self.options["detector"]
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(SHORT_RANGE), path)
        self.detector = BlazeFace(path)

    # -- faces -----------------------------------------------------------

    def _verify(self, image: np.ndarray, cand: Detection) -> Detection | None:
        """Two crop passes; the re-centred second crop's detection when the
        mean crop score reaches acceptScore."""
        det = self.detector
        r1 = det.refine(image, cand)
        if r1.score < 0.5:
            return None
        r2 = det.refine(image, r1)
        if (r1.score + r2.score) / 2 < self.options["acceptScore"]:
            return None
        return r2

    def _find_faces(
        self, image: np.ndarray, seq: int, track: dict[str, Any] | None
    ) -> tuple[list[Detection], Detection | None, dict[str, Any] | None, bool]:
        """Verified faces, the student face, the new track, and whether the
        whole frame was scanned."""
        o = self.options
        h, w = image.shape[:2]
        faces: list[Detection] = []
        tracked = None
        if track is not None:
            bx, by, bw, bh = track["box"]
            prior = Detection(1.0, (bx * w, by * h, bw * w, bh * h), np.zeros((6, 2)))
            r = self.detector.refine(image, prior)
            if r.score >= o["trackScore"]:
                tracked = r
                faces.append(r)
        scan = tracked is None or track is None or seq - track.get("scanSeq", -10**9) >= o["redetectEvery"]
        if scan:
            cands = self.detector.detect(image, o["candidateScore"])
            for cand in cands[: o["maxCandidates"]]:
                if any(_same_face(cand, f) for f in faces):
                    continue  # already verified (whole-frame boxes are coarse)
                found = self._verify(image, cand)
                if found is not None and not any(_same_face(found, f) for f in faces):
                    faces.append(found)
        faces = [f for f in faces if np.all(np.isfinite(f.box)) and np.all(np.isfinite(f.keypoints))]
        student = None
        if faces:
            def priority(f: Detection) -> float:
                cx, cy = f.center
                off = min(1.0, max(abs(cx / w - 0.5), abs(cy / h - 0.5)) / 0.5)
                return f.box[2] * f.box[3] * (1.0 - 0.5 * off)
            student = max(faces, key=priority)
        new_track = None
        if student is not None:
            x, y, bw, bh = student.box
            new_track = {
                "box": [x / w, y / h, bw / w, bh / h],
                "seq": seq,
                "scanSeq": seq if scan or track is None else track["scanSeq"],
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
        if q["contrast"] < o["minContrast"]:
            flags.append("flat")  # a covered lens or a blank picture
        elif q["blur"] < o["minSharpness"]:
            flags.append("blurry")
        if repeats >= o["frozenFrames"]:
            flags.append("frozen")  # the same bytes again and again: a stuck camera
        return flags

    def _analyse_frame(
        self, frame: Frame, track: dict[str, Any] | None, repeats: int
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        seq, data = frame.seq, frame.data
        o = self.options
        entry: dict[str, Any] = {
            "seq": seq, "analysed": False, "usable": False, "face": False, "faces": 0,
            "faceScore": None, "box": None, "yaw": None, "pitch": None, "roll": None,
            "posePlausible": None, "quality": None, "score": None, "state": "unknown",
        }
        image, error = decode_frame(data, pick_reduce(data, o["minDecodeWidth"]), frame.width, frame.height)
        if image is None:
            entry["error"] = error
            return entry, track
        entry["analysed"] = True
        q = quality(image)
        entry["quality"] = q
        flags = self._quality_flags(q, repeats)
        entry["qualityFlags"] = flags
        usable = not flags
        entry["usable"] = usable
        if not usable:
            return entry, track  # keep the track: the face may come back
        faces, student, track, _ = self._find_faces(image, seq, track)
        entry["faces"] = len(faces)
        h, w = image.shape[:2]
        if student is None:
            entry.update(score=0.0, state="absent")
            return entry, track
        x, y, bw, bh = student.box
        entry["face"] = True
        entry["faceScore"] = round(float(student.score), 3)
        entry["box"] = [round(x / w, 4), round(y / h, 4), round(bw / w, 4), round(bh / h, 4)]
        pose = head_pose(student)
        entry["posePlausible"] = pose["plausible"]
        entry["roll"] = _r(pose["roll"])
        if not pose["plausible"]:
            entry.update(score=0.0, state="distracted")
            return entry, track
        entry["yaw"], entry["pitch"] = _r(pose["yaw"]), _r(pose["pitch"])
        cx, cy = (x + bw / 2) / w, (y + bh / 2) / h
        off = max(abs(cx - 0.5), abs(cy - 0.5)) / 0.5
        centre = 1.0 - 0.5 * (1.0 - ramp(off, 0.6, 1.0))
        score = 100.0 * (
            ramp(abs(pose["yaw"]), YAW_OK, YAW_OFF)
            * ramp(abs(pose["pitch"]), PITCH_OK, PITCH_OFF)
            * ramp(abs(pose["roll"]), ROLL_OK, ROLL_OFF)
            * centre
        )
        entry["score"] = round(score, 1)
        entry["state"] = "focused" if score >= FOCUSED_SCORE else "distracted"
        return entry, track

    # -- units -----------------------------------------------------------

    @staticmethod
    def _batch(frames: list[dict[str, Any]]) -> tuple[UnitOutcome, int]:
        usable = [f for f in frames if f["analysed"] and f["usable"]]
        n = len(usable)
        flag_counts: dict[str, int] = {}
        for f in frames:
            for flag in f.get("qualityFlags") or ():
                flag_counts[flag] = flag_counts.get(flag, 0) + 1
        if n == 0:
            return UnitOutcome(None, "unknown", {
                "facePresent": None, "faces": 0, "yaw": None, "pitch": None,
                "roll": None, "framesUsable": 0, "qualityFlags": flag_counts,
            }), 0
        with_face = [f for f in usable if f["face"]]
        score = sum(f["score"] for f in usable) / n
        if len(with_face) * 2 < n:
            state = "absent"
        else:
            focused = sum(1 for f in with_face if f["state"] == "focused")
            distracted = len(with_face) - focused
            if focused != distracted:
                state = "focused" if focused > distracted else "distracted"
            else:
                mean = sum(f["score"] for f in with_face) / len(with_face)
                state = "focused" if mean >= FOCUSED_SCORE else "distracted"

        def mean(key: str) -> float | None:
            vals = [f[key] for f in usable if f[key] is not None]
            return round(sum(vals) / len(vals), 1) if vals else None

        signals = {
            "facePresent": round(len(with_face) / n, 3),
            "faces": max(f["faces"] for f in usable),
            "yaw": mean("yaw"),
            "pitch": mean("pitch"),
            "roll": mean("roll"),
            "framesUsable": n,
            "qualityFlags": flag_counts,
        }
        return UnitOutcome(round(score, 1), state, signals), n

    def analyse(self, unit: Unit, context: dict[str, Any] | None) -> UnitResult:
        if self.detector is None:
            self.load({})
        context = dict(context or {})
        track = _valid_track(context.get("track"))
        frozen = context.get("frozen") or {"crc": None, "repeats": 0}
        crc, repeats = frozen["crc"], frozen["repeats"]
        frames = []
        for frame in unit.frames:
            if track is not None and not (0 < frame.seq - track["seq"] <= self.options["trackGap"]):
                track = None
            frame_crc = zlib.crc32(frame.data)
            repeats = repeats + 1 if frame_crc == crc else 0
            crc = frame_crc
            entry, track = self._analyse_frame(frame, track, repeats)
            frames.append(entry)
        context["frozen"] = {"crc": crc, "repeats": repeats}
        batch, usable = self._batch(frames)
        context["track"] = track
        context = WindowAccumulator.add(context, batch, usable)
        window = None
        if unit.closes_window:
            window, context = WindowAccumulator.close(context)
        return UnitResult(frames, batch, window, context)
