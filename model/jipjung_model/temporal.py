"""States over durations, per-student calibration and the score.

Pure Python on per-frame observations (no image work), so that it can be
tested frame by frame. Everything it remembers lives in one JSON dict that
travels in the model's ``context`` (workers are stateless).

Per usable frame the model observes: whether there is a face, the head pose
(yaw, pitch, roll, plausible), the face centre factor c (1 while the face centre is within 60 % of the
half-frame from the centre, Chebyshev distance, half-cosine to 0 at the
edge: 0.5 at 80 %) and the eye openness (eyes.py) when measured.

Calibration
-----------
From the session's first usable frame, for ``calibrationSeconds`` (5 s):
frames with a plausible pose within ``calibrationMaxYaw`` (35 deg) /
``calibrationMaxPitch`` (30 deg) of straight ahead are samples. At the end,
with at least ``calibrationMinSamples`` (5) samples, the student's neutral
yaw and pitch are the samples' medians and the open-eye baseline is the
median openness (a blink or two do not move a median). Until then, and when
there were too few samples by ``calibrationMaxSeconds`` (30 s), population
defaults apply: neutral yaw = pitch = 0, eyes closed below
``eyesClosedOpenness`` (0.35). After calibration the eyes are closed below
``closedRatio`` (0.55) x baseline. So a camera beside the screen (the
student looks at the screen with yaw 30 deg) or narrow eyes read as the
student's normal after the first seconds. Roll is not calibrated (a camera
is rarely rolled; a rolled head is a posture).

Frame target
------------
- ``absent``: no face.
- ``drowsy``: the eyes have been closed for ``longClosureSeconds`` (1 s) in
  a row, or PERCLOS (share of eye-measured frames with eyes closed over the
  last ``perclosFrames`` (50) frames, at least ``perclosMinFrames`` (25)
  measured) is at least ``perclosDrowsy`` (0.3). Eyes only count while the
  head is within 20 deg pitch and 30 deg yaw of neutral (looking down at a
  keyboard lowers the lids; that is looking away, not sleep).
- ``distracted``: attention a = head x c below 0.5, with head =
  f(|yaw - yaw0|; 15, 45) f(|pitch - pitch0|; 15, 45) f(|roll|; 25, 45)
  (f: 1 up to the first angle, half-cosine to 0 at the second), 0 for an
  implausible pose (a face on its side or upside down).
- ``focused`` otherwise.

Debounced state
---------------
The session's state moves to a new target only after the target has held
for its onset: ``lookAwaySeconds`` (2 s) for distracted, ``returnSeconds``
(0.4 s) back to focused; drowsy has its own durations above. Absence is
immediate by default (``absentSeconds`` 0): the face finder already
bridges missed detections by tracking (default_model.py), and an empty
chair must read as absent, score 0, from its first second. The first usable frame of a session sets the state at
once (the first second already means something). Unusable frames
(``unknown``) neither advance nor reset the durations.

Score
-----
Per usable frame: score = 100 x presence x attention x alertness with

- presence: 0 when the state is absent, else 1;
- attention: a (above); while the state is still focused during a short
  look-away or a missed detection, the last focused frame's a is held, so
  a glance shorter than the onset costs nothing;
- alertness: f(PERCLOS; 0.15, 0.45), which is 1 for ordinary blink rates
  (about 0.05-0.1 at 5 fps) and 0.5 at the drowsy threshold; 0 during a
  long closure; 1 until ``perclosMinFrames`` frames were measured. A single
  blink changes nothing. When calibration ends, the closure history (counted
  against the population threshold) is cleared.

A unit's score is the mean of its usable frames' scores; its state is the
majority of its usable frames' states (a tie goes to the later frame).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .pose import PITCH_OFF, PITCH_OK, ROLL_OFF, ROLL_OK, YAW_OFF, YAW_OK, ramp

DEFAULTS: dict[str, Any] = {
    "calibrationSeconds": 5.0,
    "calibrationMaxSeconds": 30.0,
    "calibrationMinSamples": 5,
    "calibrationMaxYaw": 35.0,
    "calibrationMaxPitch": 30.0,
    "eyesClosedOpenness": 0.35,
    "closedRatio": 0.55,
    "lookAwaySeconds": 2.0,
    "absentSeconds": 0.0,
    "returnSeconds": 0.4,
    "longClosureSeconds": 1.0,
    "perclosFrames": 50,
    "perclosMinFrames": 25,
    "perclosDrowsy": 0.3,
    "perclosOk": 0.15,
    "perclosOff": 0.45,
}

ATTENDING = 0.5  # attention at which a frame counts as looking at the screen
EYES_MAX_PITCH, EYES_MAX_YAW = 20.0, 30.0


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _num(x: Any, default: float) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else default


def fresh() -> dict[str, Any]:
    return {
        "state": None, "target": None, "targetFrames": 0, "hold": 1.0,
        "closedFrames": 0, "perclos": "",
        "calib": {"start": None, "yaw": [], "pitch": [], "eyes": [], "done": False},
    }


def restore(raw: Any) -> dict[str, Any]:
    """The context's temporal state if well-formed, else a fresh one (the
    context round-trips through the server as JSON)."""
    t = fresh()
    if not isinstance(raw, dict):
        return t
    if raw.get("state") in ("focused", "distracted", "drowsy", "absent"):
        t["state"] = raw["state"]
    if raw.get("target") in ("focused", "distracted", "drowsy", "absent"):
        t["target"] = raw["target"]
    t["targetFrames"] = int(_num(raw.get("targetFrames"), 0))
    t["hold"] = min(1.0, max(0.0, _num(raw.get("hold"), 1.0)))
    t["closedFrames"] = int(_num(raw.get("closedFrames"), 0))
    if isinstance(raw.get("perclos"), str) and set(raw["perclos"]) <= {"0", "1"}:
        t["perclos"] = raw["perclos"]
    c = raw.get("calib")
    if isinstance(c, dict):
        calib = t["calib"]
        calib["start"] = int(c["start"]) if isinstance(c.get("start"), int) else None
        for key in ("yaw", "pitch", "eyes"):
            if isinstance(c.get(key), list):
                calib[key] = [float(v) for v in c[key] if isinstance(v, (int, float)) and math.isfinite(v)]
        calib["done"] = bool(c.get("done"))
        for key in ("yaw0", "pitch0", "eyes0"):
            if key in c:
                calib[key] = c[key] if isinstance(c[key], (int, float)) and math.isfinite(c[key]) else None
    return t


class Tracker:
    """Steps the temporal state frame by frame; see the module docstring."""

    def __init__(self, options: Mapping[str, Any], fps: float, state: dict[str, Any]) -> None:
        self.o = options
        self.dt = 1.0 / fps if fps > 0 else 0.2
        self.t = state

    # -- calibration -------------------------------------------------------

    @property
    def calibrating(self) -> bool:
        return not self.t["calib"]["done"]

    def neutral(self) -> tuple[float, float]:
        c = self.t["calib"]
        return (c.get("yaw0") or 0.0, c.get("pitch0") or 0.0) if c["done"] else (0.0, 0.0)

    def closed_below(self) -> float:
        c = self.t["calib"]
        if c["done"] and c.get("eyes0"):
            return self.o["closedRatio"] * c["eyes0"]
        return self.o["eyesClosedOpenness"]

    def _calibrate(self, seq: int, pose: dict[str, Any] | None, eyes: float | None) -> None:
        c, o = self.t["calib"], self.o
        if c["done"]:
            return
        if c["start"] is None:
            c["start"] = seq
        if pose is not None and pose["plausible"] and abs(pose["yaw"]) <= o["calibrationMaxYaw"] \
                and abs(pose["pitch"]) <= o["calibrationMaxPitch"]:
            c["yaw"].append(round(pose["yaw"], 1))
            c["pitch"].append(round(pose["pitch"], 1))
            if eyes is not None:
                c["eyes"].append(round(eyes, 3))
        elapsed = (seq - c["start"] + 1) * self.dt
        enough = len(c["yaw"]) >= o["calibrationMinSamples"]
        if (elapsed >= o["calibrationSeconds"] - 1e-9 and enough) or elapsed >= o["calibrationMaxSeconds"]:
            c["done"] = True
            if enough:
                c["yaw0"] = round(_median(c["yaw"]), 1)
                c["pitch0"] = round(_median(c["pitch"]), 1)
                c["eyes0"] = round(_median(c["eyes"]), 3) if len(c["eyes"]) >= o["calibrationMinSamples"] else None
            c["yaw"], c["pitch"], c["eyes"] = [], [], []
            # Closures counted against the population threshold are void.
            self.t["perclos"], self.t["closedFrames"] = "", 0

    def calibration_signal(self) -> dict[str, Any]:
        c = self.t["calib"]
        if not c["done"]:
            return {"running": True, "samples": len(c["yaw"])}
        return {"running": False, "yaw0": c.get("yaw0"), "pitch0": c.get("pitch0"), "eyes0": c.get("eyes0")}

    # -- frames ------------------------------------------------------------

    def attention(self, pose: dict[str, Any], centre: float) -> float:
        if not pose["plausible"]:
            return 0.0
        yaw0, pitch0 = self.neutral()
        return (
            ramp(abs(pose["yaw"] - yaw0), YAW_OK, YAW_OFF)
            * ramp(abs(pose["pitch"] - pitch0), PITCH_OK, PITCH_OFF)
            * ramp(abs(pose["roll"]), ROLL_OK, ROLL_OFF)
            * centre
        )

    def step(self, seq: int, face: bool, pose: dict[str, Any] | None, centre: float,
             eyes: float | None) -> dict[str, Any]:
        """One usable frame: the frame's state, score and components."""
        o, t = self.o, self.t
        threshold = self.closed_below()  # before this frame can end calibration
        a = self.attention(pose, centre) if face and pose is not None else 0.0
        eyes_closed = None
        if face and pose is not None and pose["plausible"] and eyes is not None:
            yaw0, pitch0 = self.neutral()
            if abs(pose["pitch"] - pitch0) <= EYES_MAX_PITCH and abs(pose["yaw"] - yaw0) <= EYES_MAX_YAW:
                eyes_closed = eyes < threshold
        self._calibrate(seq, pose if face else None, eyes)

        if eyes_closed is None:
            t["closedFrames"] = 0
        else:
            t["closedFrames"] = t["closedFrames"] + 1 if eyes_closed else 0
            t["perclos"] = (t["perclos"] + ("1" if eyes_closed else "0"))[-int(o["perclosFrames"]):]
        measured = len(t["perclos"])
        perclos = t["perclos"].count("1") / measured if measured else 0.0
        long_closure = t["closedFrames"] * self.dt >= o["longClosureSeconds"] - 1e-9
        perclos_high = measured >= o["perclosMinFrames"] and perclos >= o["perclosDrowsy"]

        if not face:
            target = "absent"
        elif long_closure or (perclos_high and eyes_closed is not None):
            target = "drowsy"
        elif a < ATTENDING:
            target = "distracted"
        else:
            target = "focused"

        onset = {"distracted": o["lookAwaySeconds"], "absent": o["absentSeconds"],
                 "focused": o["returnSeconds"], "drowsy": 0.0}[target]
        if t["state"] is None or target == t["state"]:
            t["state"], t["target"], t["targetFrames"] = target, None, 0
        else:
            t["targetFrames"] = t["targetFrames"] + 1 if t["target"] == target else 1
            t["target"] = target
            if t["targetFrames"] * self.dt >= onset - 1e-9:
                t["state"], t["target"], t["targetFrames"] = target, None, 0
        state = t["state"]

        if state == "focused" and target == "focused":
            t["hold"] = round(a, 3)
        presence = 0.0 if state == "absent" else 1.0
        attention = t["hold"] if state == "focused" and target != "focused" else a
        if long_closure:
            alertness = 0.0
        elif measured >= o["perclosMinFrames"]:
            alertness = ramp(perclos, o["perclosOk"], o["perclosOff"])
        else:
            alertness = 1.0
        if state == "drowsy":
            alertness = min(alertness, 0.5)
        score = 100.0 * presence * attention * alertness
        return {
            "state": state, "score": round(score, 1), "target": target,
            "attention": round(attention, 3), "alertness": round(alertness, 3),
            "presence": presence, "eyesClosed": eyes_closed, "perclos": round(perclos, 3),
        }


def majority(states: list[str]) -> str:
    """The most frequent state; a tie goes to the state seen last."""
    counts: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, s in enumerate(states):
        counts[s] = counts.get(s, 0) + 1
        last[s] = i
    return max(counts, key=lambda s: (counts[s], last[s]))
