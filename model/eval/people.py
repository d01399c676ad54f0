"""The real-people set: clips built from the photos of 71 real people
(test/fixtures/faces/, provenance in its README), run person by person.

Subjects: every frontal neutral portrait (London set ``london-NNN``, Canada
set ``canada-*``), every smiling portrait (``london-smiling-NNN``, the same
London people) and every webcam-like selfie (``selfie-*``). Each subject is
placed on the house's webcam canvas (tests/frames.py, through
dataset.frame: a noisy 640x480 wall, sub-pixel jitter) under each
condition below. Every clip is its own session, run in units of 5 frames
with the context carried as the server carries it.

Noise seeds repeat with a period of ``SEED_PERIOD`` frames (1 s, the same
period as the jitter): frame k of a condition is built with seed k mod 5,
so consecutive frames always differ (no "frozen" camera, no free still-face
reuse) but each condition's frames are built only five times. Building a
frame costs several times what the model spends on it; without this the set
could not be run often.

Conditions (frames; label):

- centred (scale 0.8), small (0.45), dim (x0.35): 50 frames, one 10-s
  window closed at the 50th frame with calibration running as in a real
  session; every batch focused, and the window focused with a score >= 70;
- scale 0.6, large (1.0), shifted, roll +20 and -20, blur 1.5 px, noise
  sigma 12: 15 frames, every batch focused; the roll clips carry the applied
  roll for the roll error;
- partly out (the face cut by the frame's right edge): 15 frames, no label:
  it must not crash, and the states are reported;
- upside down (180 deg) and on its side (90 deg): 15 frames, no frame may
  read focused.

After a 5-s frontal lead-in (the first 25 frames of the subject's centred
session; the branches continue that session, so the lead-in is analysed
once per subject), for frontal and selfie subjects:

- eyes closed: the eyes painted closed (synth.py) for 3 s: drowsy in the
  batches after the first (the first second is the duration rule deciding);
- blinks: one closed frame in seven for 7 s: every batch focused.

And for frontal subjects, the re-posed heads (repose.py) after the lead-in:

- turned (yaw +-45, +-60) or lowered (pitch 40, 50) for 3 s: the third
  second's batch distracted (the first two: the 2-s look-away onset);
- yaw +-20, head down 20 and up 20 for 3 s: every batch focused;
- glance: 1 s turned 60 deg (to the image's right for even-numbered
  subjects, to the left for odd) then 2 s frontal: every batch focused.

``--quick`` (run.py) takes every 5th subject of each kind under
``QUICK_CONDITIONS``.

Pose errors: reading - the subject's own frontal reading (the median over
its centred clip) - the applied angle, per frame. Yaw and pitch on the
re-posed views from their second second on (the head jumps to the view in
one frame and the face finder takes a few frames to re-centre on it; the
glance is too short and is left out); roll on the roll +-20 clips.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from eval.dataset import BATCH, FPS, LEAD_IN, frame
from eval.synth import closed_eyes
from jipjung_model.interface import FORMAT_JPEG, Frame, Unit, validate_result
from tests.frames import FIXTURES

FACES = os.path.join(FIXTURES, "faces")
SEED_PERIOD = 5  # frames; the jitter of dataset.frame has the same period
WINDOW = 50
MIN_WINDOW_SCORE = 70.0
F, D, R = "focused", "distracted", "drowsy"

# name -> (canvas keyword arguments, frames, kind of label)
CAMERA = {
    "centred": (dict(scale=0.8), 50, "window"),
    "small": (dict(scale=0.45), 50, "window"),
    "dim": (dict(brightness=0.35), 50, "window"),
    "scale 0.6": (dict(scale=0.6), 15, "focused"),
    "large": (dict(scale=1.0), 15, "focused"),
    "shifted": (dict(dx=0.25, dy=0.1), 15, "focused"),
    "roll +20": (dict(angle=20.0), 15, "focused"),
    "roll -20": (dict(angle=-20.0), 15, "focused"),
    "blur 1.5": (dict(blur=1.5), 15, "focused"),
    "noise 12": (dict(noise=12.0), 15, "focused"),
    "partly out": (dict(dx=0.45, dy=-0.1), 15, "report"),
    "upside down": (dict(angle=180.0), 15, "never focused"),
    "on its side": (dict(angle=90.0), 15, "never focused"),
}
EYES = ("eyes closed", "blinks")
# name -> (yaw, pitch) in degrees, the model's conventions (pose.py):
# positive yaw = the nose points to the image's right, positive pitch = head down.
VIEWS = {
    "yaw +20": (20.0, 0.0), "yaw -20": (-20.0, 0.0),
    "up 20": (0.0, -20.0), "down 20": (0.0, 20.0),
    "yaw +45": (45.0, 0.0), "yaw -45": (-45.0, 0.0),
    "yaw +60": (60.0, 0.0), "yaw -60": (-60.0, 0.0),
    "down 40": (0.0, 40.0), "down 50": (0.0, 50.0),
}
AWAY_YAW, AWAY_PITCH = 45.0, 40.0  # at or beyond: looking away (distracted)
GLANCE = "glance 1 s"
VIEW_FRAMES = 15
CONDITIONS = (*CAMERA, *EYES, *VIEWS, GLANCE)
QUICK_CONDITIONS = ("centred", "roll +20", "on its side", "eyes closed", "yaw -20", "yaw +45", "down 40", GLANCE)
QUICK_EVERY = 5


@dataclass(frozen=True)
class Subject:
    name: str  # file stem, e.g. "london-001"
    kind: str  # "frontal", "smiling" or "selfie"
    index: int  # position within its kind (the glance side, the quick subset)

    @property
    def path(self) -> str:
        return os.path.join(FACES, self.name + ".jpg")


def subjects(quick: bool = False) -> list[Subject]:
    """Every subject in a fixed order; ``quick``: every 5th of each kind."""
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(FACES, "*.jpg")))
    kinds = {
        "frontal": [n for n in names if n.startswith(("london-", "canada-")) and "smiling" not in n],
        "smiling": [n for n in names if n.startswith("london-smiling-")],
        "selfie": [n for n in names if n.startswith("selfie-")],
    }
    out = []
    for kind, group in kinds.items():
        for i, n in enumerate(group):
            if not quick or i % QUICK_EVERY == 0:
                out.append(Subject(n, kind, i))
    return out


def conditions_for(subject: Subject, quick: bool = False, only: tuple[str, ...] | None = None) -> list[str]:
    """The subject's conditions, in report order; ``only`` narrows them
    (the centred clip always runs: it is the lead-in and the reference)."""
    keep = QUICK_CONDITIONS if quick else CONDITIONS
    if only is not None:
        keep = tuple(c for c in keep if c in only or c == "centred")
    out = [c for c in CAMERA if c in keep]
    if subject.kind in ("frontal", "selfie"):
        out += [c for c in EYES if c in keep]
    if subject.kind == "frontal":
        out += [c for c in (*VIEWS, GLANCE) if c in keep]
    return out


def cycled(make: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """Frame k is frame k mod SEED_PERIOD of ``make``, built once."""
    cache: dict[int, bytes] = {}

    def get(k: int) -> bytes:
        key = k % SEED_PERIOD
        if key not in cache:
            cache[key] = make(key)
        return cache[key]
    return get


@dataclass
class PersonClip:
    """One clip of a subject. ``segments``: (frames, maker of frame k) in
    order; ``truth`` per frame: the applied (yaw, pitch, roll) or None;
    ``states`` per batch of the clip's own frames (None: not judged)."""

    condition: str
    segments: list[tuple[int, Callable[[int], bytes]]]
    states: list[str | None]
    lead_in: bool = False  # continues the centred session after LEAD_IN frames
    truth: list[tuple[float, float, float] | None] = field(default_factory=list)
    min_window: float | None = None
    never_focused: bool = False
    report_only: bool = False

    @property
    def length(self) -> int:
        return sum(n for n, _ in self.segments)


def camera_clip(subject: Subject, condition: str) -> PersonClip:
    kw, n, kind = CAMERA[condition]
    make = frontal(subject) if condition == "centred" else cycled(frame(subject.path, **kw))
    truth = [(0.0, 0.0, kw["angle"]) if "roll" in condition else None] * n
    batches = n // BATCH
    if kind == "window":
        return PersonClip(condition, [(n, make)], [F] * batches, truth=truth, min_window=MIN_WINDOW_SCORE)
    if kind == "focused":
        return PersonClip(condition, [(n, make)], [F] * batches, truth=truth)
    return PersonClip(condition, [(n, make)], [None] * batches, truth=truth,
                      never_focused=kind == "never focused", report_only=kind == "report")


@functools.lru_cache(maxsize=2)
def frontal(subject: Subject) -> Callable[[int], bytes]:
    """The subject's centred frames (the lead-in and the returns to frontal
    share one cache)."""
    return cycled(frame(subject.path, **CAMERA["centred"][0]))


@functools.lru_cache(maxsize=2)
def closed(subject: Subject) -> Callable[[int], bytes]:
    return cycled(frame(closed_eyes(subject.path), **CAMERA["centred"][0]))


def eyes_clip(subject: Subject, condition: str) -> PersonClip:
    shut = closed(subject)
    if condition == "eyes closed":
        return PersonClip(condition, [(15, shut)], [None, R, R], lead_in=True)
    return PersonClip(condition, [(6, frontal(subject)), (1, shut)] * 5, [F] * 7, lead_in=True)


def view_clip(subject: Subject, condition: str, render: Callable[[float, float], Any]) -> PersonClip:
    """A re-posed clip; ``render(yaw, pitch)`` gives the subject's photo
    re-posed (repose.py)."""
    if condition == GLANCE:
        yaw = 60.0 if subject.index % 2 == 0 else -60.0
        turned = cycled(frame(render(yaw, 0.0), **CAMERA["centred"][0]))
        return PersonClip(condition, [(5, turned), (10, frontal(subject))], [F, F, F], lead_in=True)
    yaw, pitch = VIEWS[condition]
    make = cycled(frame(render(yaw, pitch), **CAMERA["centred"][0]))
    away = abs(yaw) >= AWAY_YAW or pitch >= AWAY_PITCH
    states = [None, None, D] if away else [F, F, F]
    # The head jumps to the view in one frame; the face finder re-centres
    # its crop over the next frames, so the pose is read from the second second.
    return PersonClip(condition, [(VIEW_FRAMES, make)], states, lead_in=True,
                      truth=[None] * BATCH + [(yaw, pitch, 0.0)] * (VIEW_FRAMES - BATCH))


class Session:
    """One session of the model: frames in, units of 5 out, the context
    carried through a JSON round trip as the server carries it."""

    def __init__(self, model, context: dict | None = None, seq: int = 0, stats: dict | None = None):
        self.model, self.context, self.seq = model, context, seq
        self.stats = stats if stats is not None else {"seconds": 0.0, "frames": 0}
        self.batches: list = []
        self.windows: list = []
        self.frames: list[dict] = []

    def branch(self) -> "Session":
        """A new session continuing this one (its results start empty)."""
        return Session(self.model, json.loads(json.dumps(self.context)), self.seq, self.stats)

    def feed(self, data: list[bytes]) -> None:
        for start in range(0, len(data), BATCH):
            chunk = data[start:start + BATCH]
            first = self.seq
            unit = Unit(
                [Frame(first + i, 1.7e12 + 1000.0 / FPS * (first + i), FORMAT_JPEG, d, 640, 480)
                 for i, d in enumerate(chunk)],
                closes_window=(first + len(chunk)) % WINDOW == 0, fps=FPS,
            )
            t0 = time.perf_counter()
            result = self.model.analyse(unit, self.context)
            self.stats["seconds"] += time.perf_counter() - t0
            self.stats["frames"] += len(chunk)
            validate_result(unit, result)
            self.context = json.loads(json.dumps(result.context))
            self.batches.append(result.batch)
            if result.window is not None:
                self.windows.append(result.window)
            self.frames.extend(result.frames)
            self.seq += len(chunk)


def _frames(clip: PersonClip, first: int) -> list[bytes]:
    out, k = [], first
    for n, make in clip.segments:
        for _ in range(n):
            out.append(make(k))
            k += 1
    return out


def _median(values: list[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def judge(clip: PersonClip, session: Session) -> dict[str, Any]:
    """The clip's outcome from the results of its own frames (a branch
    holds only the frames after the lead-in)."""
    batches, frames = session.batches, session.frames
    got = [b.state for b in batches]
    ok = all(w is None or w == h for w, h in zip(clip.states, got))
    window = None
    if clip.min_window is not None:
        w = session.windows[0] if session.windows else None
        window = None if w is None else w.score
        ok = ok and w is not None and w.state == F and w.score is not None and w.score >= clip.min_window
    if clip.never_focused:
        ok = ok and all(f["state"] != F for f in frames)
    counts: dict[str, int] = {}
    for s in got:
        counts[s] = counts.get(s, 0) + 1
    flags: dict[str, int] = {}
    for f in frames:
        for flag in f.get("qualityFlags") or ():
            flags[flag] = flags.get(flag, 0) + 1
    return {
        "condition": clip.condition, "ok": True if clip.report_only else ok, "reportOnly": clip.report_only,
        "want": clip.states, "got": got, "window": window, "counts": counts, "flags": flags,
        "scores": [b.score for b in batches],
    }


def pose_errors(clip: PersonClip, frames: list[dict], neutral: dict[str, float | None]) -> list[dict]:
    """Per frame with an applied rotation: the reading minus the subject's
    frontal reading minus the applied angle (None: no reading)."""
    out = []
    for t, f in zip(clip.truth, frames):
        if t is None:
            continue
        e: dict[str, Any] = {"condition": clip.condition, "applied": list(t)}
        for key, applied in zip(("yaw", "pitch", "roll"), t):
            v, n0 = f.get(key), neutral.get(key)
            e[key] = None if v is None or n0 is None else round(v - n0 - applied, 2)
        out.append(e)
    return out


def run_subject(model, subject: Subject, quick: bool = False, render_factory=None,
                only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every clip of one subject (``quick``, ``only``: see conditions_for).
    ``render_factory(path)`` returns the ``render(yaw, pitch)`` of
    repose.py for the photo, or None when the re-posed views cannot be made
    (then they are left out)."""
    stats = {"seconds": 0.0, "frames": 0}
    t_start = time.perf_counter()
    names = conditions_for(subject, quick, only)
    out: dict[str, Any] = {"subject": subject.name, "kind": subject.kind, "clips": [], "pose": [], "notes": []}

    # The centred session first: its first 5 s are every branch's lead-in.
    centred = camera_clip(subject, "centred")
    base = Session(model, stats=stats)
    data = _frames(centred, 0)
    base.feed(data[:LEAD_IN])
    lead = base.branch()
    base.feed(data[LEAD_IN:])
    out["clips"].append(judge(centred, base))
    neutral = {k: _median([f[k] for f in base.frames if f.get(k) is not None]) for k in ("yaw", "pitch", "roll")}
    out["neutral"] = {k: None if v is None else round(v, 1) for k, v in neutral.items()}

    render = None
    if any(n in VIEWS or n == GLANCE for n in names):
        try:
            render = render_factory(subject.path) if render_factory else None
        except Exception as e:  # noqa: BLE001 - a photo the mesh cannot fit is reported, not fatal
            out["notes"].append(f"re-posing failed: {e}")
        if render is None:
            names = [n for n in names if n not in VIEWS and n != GLANCE]
            if not out["notes"]:
                out["notes"].append("re-posed views not available")

    for name in names:
        if name == "centred":
            continue
        try:
            if name in CAMERA:
                clip = camera_clip(subject, name)
            elif name in EYES:
                clip = eyes_clip(subject, name)
            else:
                assert render is not None, "the views were left out above when nothing can re-pose"
                clip = view_clip(subject, name, render)
            if clip.lead_in:
                session = lead.branch()
                session.feed(_frames(clip, LEAD_IN))
            else:
                session = Session(model, stats=stats)
                session.feed(_frames(clip, 0))
            out["clips"].append(judge(clip, session))
            out["pose"].extend(pose_errors(clip, session.frames, neutral))
        except Exception:  # noqa: BLE001 - a crash is a failed clip, reported with its traceback
            out["clips"].append({"condition": name, "ok": False, "reportOnly": False,
                                 "error": traceback.format_exc(limit=3), "want": [], "got": [], "window": None,
                                 "counts": {}, "flags": {}, "scores": []})
    out["frames"] = stats["frames"]
    out["seconds"] = stats["seconds"]
    out["wallSeconds"] = time.perf_counter() - t_start
    return out
