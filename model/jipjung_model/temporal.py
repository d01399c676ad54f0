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
Each student's neutral pose (the yaw and pitch at which they look at the
screen: a camera beside or below the screen, or a face that the mesh reads a
few degrees off, is normal for them) and open-eye baseline are learned from
the first seconds in which the face is present, upright and steady, whatever
its absolute estimate:

- a *sample* is a frame with a plausible pose, |roll| <= ``calibrationMaxRoll``
  (20 deg), within ``calibrationMaxYaw`` (35 deg) / ``calibrationMaxPitch`` (30
  deg) of straight ahead (a plausibility gate, wide enough for any camera
  placement, not a test of attention) and *steady*: yaw and pitch within
  ``steadyDegrees`` (4 deg) of the previous frame's;
- the neutral is the *most frequent steady pose*: the sample with the most
  other samples within ``clusterDegrees`` (8 deg) in both yaw and pitch, and
  the median of that cluster. A glance at a notebook in the first seconds is a
  minority and does not move it; a student who looks away for most of the
  first seconds delays calibration rather than teaching it;
- it ends once ``calibrationSeconds`` (5 s) have passed and the cluster holds
  at least ``calibrationMinSamples`` (10) samples and half of all samples.
  ``progress`` (0-1, in every result) is the smaller of the elapsed share and
  the cluster's share of the samples it needs. Until it ends the population
  neutral (0, 0) and the population eye threshold ``eyesClosedOpenness``
  (0.27) apply. Samples are kept for the last ``calibrationWindowSeconds``
  (15 s) only, so a long look-away at the start is forgotten;
- after it ends, the neutral follows the student slowly: every steady frame
  within the attention limits' first angles (15 deg) of the neutral moves it
  by dt / ``neutralFollowSeconds`` (60 s) of the difference. A slow drift of
  posture or of the camera is followed; a look-away, which is outside those
  angles, never is;
- the open-eye baseline is the median openness of the cluster's frames; the
  eyes are closed below ``closedRatio`` (0.55) x baseline.

Roll is not calibrated (a camera is rarely rolled; a rolled head is a posture).

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
    "calibrationWindowSeconds": 15.0,
    "calibrationMinSamples": 10,
    "calibrationMaxYaw": 35.0,
    "calibrationMaxPitch": 30.0,
    "calibrationMaxRoll": 20.0,
    "steadyDegrees": 4.0,
    "clusterDegrees": 8.0,
    "neutralFollowSeconds": 60.0,
    "eyesClosedOpenness": 0.27,
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
REASON_BELOW = 0.9  # a factor below this is named as a reason the score fell

# The reasons a frame's score fell, as results name them (docs/model.md).
REASONS = ("no-face", "head-turned", "head-down", "head-up", "head-tilted", "off-centre",
           "eyes-closed", "eyes-heavy", "poor-image")
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
        "closedFrames": 0, "perclos": "", "last": None,
        # samples: [seq, yaw, pitch, eyes or None]
        "calib": {"start": None, "samples": [], "done": False, "progress": 0.0},
    }


def cluster(samples: list[list[Any]], width: float) -> list[list[Any]]:
    """The samples around the most frequent pose: those within ``width`` deg
    (yaw and pitch) of the sample that has the most such neighbours."""
    best: list[list[Any]] = []
    for s in samples:
        near = [t for t in samples if abs(t[1] - s[1]) <= width and abs(t[2] - s[2]) <= width]
        if len(near) > len(best):
            best = near
    return best


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
    last = raw.get("last")
    if isinstance(last, list) and len(last) == 3 and all(_finite(v) for v in last):
        t["last"] = [int(last[0]), float(last[1]), float(last[2])]
    c = raw.get("calib")
    if isinstance(c, dict):
        calib = t["calib"]
        calib["start"] = int(c["start"]) if isinstance(c.get("start"), int) else None
        samples = c.get("samples")
        for v in samples if isinstance(samples, list) else ():
            if isinstance(v, list) and len(v) == 4 and all(_finite(x) for x in v[:3]) \
                    and (v[3] is None or _finite(v[3])):
                calib["samples"].append([int(v[0]), float(v[1]), float(v[2]), v[3]])
        calib["done"] = bool(c.get("done"))
        calib["progress"] = min(1.0, max(0.0, _num(c.get("progress"), 0.0)))
        for key in ("yaw0", "pitch0", "eyes0"):
            if key in c:
                calib[key] = c[key] if _finite(c[key]) else None
        if calib["done"] and (calib.get("yaw0") is None or calib.get("pitch0") is None):
            calib.update(done=False, progress=0.0)
    return t


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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
        return (c["yaw0"], c["pitch0"]) if c["done"] else (0.0, 0.0)

    def open_reference(self) -> float:
        """The open-eye openness: the student's calibrated one, else the
        population's (the closed threshold over closedRatio)."""
        c = self.t["calib"]
        if c["done"] and c.get("eyes0"):
            return float(c["eyes0"])
        return self.o["eyesClosedOpenness"] / self.o["closedRatio"]

    def closed_below(self) -> float:
        c = self.t["calib"]
        if c["done"] and c.get("eyes0"):
            return self.o["closedRatio"] * c["eyes0"]
        return self.o["eyesClosedOpenness"]

    def _calibrate(self, seq: int, pose: dict[str, Any] | None, eyes: float | None) -> None:
        c, o, t = self.t["calib"], self.o, self.t
        upright = pose is not None and pose["plausible"] and abs(pose["roll"]) <= o["calibrationMaxRoll"]
        yaw, pitch = (pose["yaw"], pose["pitch"]) if upright and pose is not None else (0.0, 0.0)
        last, t["last"] = t["last"], ([seq, round(yaw, 1), round(pitch, 1)] if upright else None)
        steady = (
            upright and last is not None and last[0] == seq - 1
            and abs(yaw - last[1]) <= o["steadyDegrees"]
            and abs(pitch - last[2]) <= o["steadyDegrees"]
        )
        if c["done"]:
            yaw0, pitch0 = c["yaw0"], c["pitch0"]
            if steady and abs(yaw - yaw0) <= YAW_OK and abs(pitch - pitch0) <= PITCH_OK:
                k = min(1.0, self.dt / o["neutralFollowSeconds"])
                c["yaw0"] = round(yaw0 + k * (yaw - yaw0), 2)
                c["pitch0"] = round(pitch0 + k * (pitch - pitch0), 2)
            return
        start = c["start"] = seq if c["start"] is None else c["start"]
        if steady and abs(yaw) <= o["calibrationMaxYaw"] and abs(pitch) <= o["calibrationMaxPitch"]:
            c["samples"].append([seq, round(yaw, 1), round(pitch, 1),
                                 None if eyes is None else round(eyes, 3)])
        keep = o["calibrationWindowSeconds"] / self.dt
        c["samples"] = [v for v in c["samples"] if 0 <= seq - v[0] < keep]
        best = cluster(c["samples"], o["clusterDegrees"])
        elapsed = (seq - start + 1) * self.dt
        need = max(o["calibrationMinSamples"], (len(c["samples"]) + 1) // 2)
        c["progress"] = round(min(1.0, elapsed / o["calibrationSeconds"], len(best) / need), 2)
        if c["progress"] < 1.0:
            return
        c["done"] = True
        c["yaw0"] = round(_median([v[1] for v in best]), 1)
        c["pitch0"] = round(_median([v[2] for v in best]), 1)
        eyes_seen = [v[3] for v in best if v[3] is not None]
        c["eyes0"] = round(_median(eyes_seen), 3) if len(eyes_seen) >= o["calibrationMinSamples"] // 2 else None
        c["samples"] = []
        # Closures counted against the population threshold are void.
        t["perclos"], t["closedFrames"] = "", 0

    def calibration_signal(self) -> dict[str, Any]:
        c = self.t["calib"]
        if not c["done"]:
            return {"running": True, "progress": c["progress"], "samples": len(c["samples"])}
        return {"running": False, "progress": 1.0, "yaw0": round(c["yaw0"], 1), "pitch0": round(c["pitch0"], 1),
                "eyes0": c.get("eyes0")}

    # -- frames ------------------------------------------------------------

    def factors(self, pose: dict[str, Any], centre: float) -> dict[str, float]:
        """The attention's factors, each 0-1, keyed by the reason a low one
        gives (see ``REASONS``)."""
        if not pose["plausible"]:
            return {"head-tilted": 0.0, "off-centre": centre}
        yaw0, pitch0 = self.neutral()
        pitch = pose["pitch"] - pitch0
        return {
            "head-turned": ramp(abs(pose["yaw"] - yaw0), YAW_OK, YAW_OFF),
            "head-down" if pitch > 0 else "head-up": ramp(abs(pitch), PITCH_OK, PITCH_OFF),
            "head-tilted": ramp(abs(pose["roll"]), ROLL_OK, ROLL_OFF),
            "off-centre": centre,
        }

    def attention(self, pose: dict[str, Any], centre: float) -> float:
        return math.prod(self.factors(pose, centre).values())

    def step(self, seq: int, face: bool, pose: dict[str, Any] | None, centre: float,
             eyes: float | None, closed: bool | None = None) -> dict[str, Any]:
        """One usable frame: the frame's state, score and components.
        ``closed``: a finer reading of whether the eyes are closed than
        ``eyes`` against the threshold (the iris network's), when there is one."""
        o, t = self.o, self.t
        threshold = self.closed_below()  # before this frame can end calibration
        factors = self.factors(pose, centre) if face and pose is not None else {}
        a = math.prod(factors.values()) if factors else 0.0
        eyes_closed = None
        if face and pose is not None and pose["plausible"] and eyes is not None:
            yaw0, pitch0 = self.neutral()
            if abs(pose["pitch"] - pitch0) <= EYES_MAX_PITCH and abs(pose["yaw"] - yaw0) <= EYES_MAX_YAW:
                eyes_closed = closed if closed is not None else eyes < threshold
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
        # What lowered this frame's score, worst first (a held glance lowered nothing).
        if not face:
            reasons = ["no-face"]
        else:
            low = {} if attention >= REASON_BELOW else {k: v for k, v in factors.items() if v < REASON_BELOW}
            if long_closure:
                low["eyes-closed"] = alertness
            elif alertness < REASON_BELOW:
                low["eyes-heavy"] = alertness
            reasons = sorted(low, key=lambda k: low[k])
        return {
            "reasons": reasons,
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
