"""The labelled evaluation set, generated deterministically from the fixture
photos in test/fixtures/ (nothing binary is committed).

Each ``Clip`` is one session of webcam-like 640x480 JPEG frames at 5 fps,
built with tests/frames.py (a photo on a noisy grey wall; every frame has its
own noise seed and a sub-pixel jitter, so no two frames are byte-identical
unless the clip means it). Labels:

- ``present`` per frame: True (a person's face is in view), False (nobody:
  empty scenes, the cat) or None (not counted: unusable images, faces on
  their side or upside down);
- ``states`` per batch (5 frames): the state the model must report, or None
  for a batch that is excluded from the confusion matrix (the first second
  of a change, where the duration rules are still deciding);
- ``roll`` per frame: the rotation applied to the photo (degrees,
  counter-clockwise on screen), or None.

Sessions that test looking away or closing the eyes begin with a 5-s
frontal lead-in (the calibration period), labelled focused, as a real
session would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import cv2
import numpy as np

from eval.synth import closed_eyes, side_by_side
from tests.frames import canvas_image, encode, photo

FPS = 5
BATCH = 5
LEAD_IN = 25  # frames: the default calibration period, 5 s
# The web client's JPEG quality (web/jipjung-client.js, 0.7): the frames are
# judged as the service receives them.
QUALITY = 70


@dataclass
class Clip:
    name: str
    group: str
    frames: list[Callable[[], bytes]] = field(default_factory=list)
    present: list[bool | None] = field(default_factory=list)
    roll: list[float | None] = field(default_factory=list)
    states: list[str | None] = field(default_factory=list)
    multiple_faces: bool = False
    not_focused: bool = False  # after the lead-in, no batch may read focused

    def add(self, n: int, make: Callable[[int], bytes], present: bool | None,
            roll: float | None = None) -> None:
        start = len(self.frames)
        for i in range(n):
            self.frames.append(partial(make, start + i))
            self.present.append(present)
            self.roll.append(roll)

    def label(self, *states: str | None) -> "Clip":
        self.states = list(states)
        assert len(self.states) * BATCH == len(self.frames), (self.name, len(self.states), len(self.frames))
        return self


def frame(source="astronaut", blur: float = 0.0, noise: float = 0.0, **kw) -> Callable[[int], bytes]:
    """A frame maker: frame k gets noise seed k and a 0-2 px jitter."""
    def make(k: int) -> bytes:
        src = np.array(source) if isinstance(source, np.ndarray) else source
        jitter = ((k * 7) % 5 - 2) * 0.001
        image = canvas_image(src, seed=k, **{**kw, "dx": kw.get("dx", 0.0) + jitter})
        if blur:
            image = cv2.GaussianBlur(image, (0, 0), blur)
        if noise:
            rng = np.random.default_rng(1000 + k)
            image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
        return encode(image, QUALITY)
    return make


def _simple(name: str, group: str, make, present, state, n: int = 25, roll=None) -> Clip:
    c = Clip(name, group)
    c.add(n, make, present, roll)
    return c.label(*[state] * (n // BATCH))


def clips() -> list[Clip]:
    out: list[Clip] = []
    F, D, A, U, R = "focused", "distracted", "absent", "unknown", "drowsy"
    out.append(_simple("frontal", "frontal", frame(), True, F, 50))
    for kw in (dict(dx=0.25), dict(dx=-0.25), dict(dy=0.15), dict(dx=0.2, dy=-0.1)):
        out.append(_simple(f"shifted {kw}", "shifted", frame(**kw), True, F))
    for s in (0.45, 0.6, 1.0):
        out.append(_simple(f"scale {s}", "scaled", frame(scale=s), True, F))
    for angle in (-30, -20, -10, 10, 20, 30):
        out.append(_simple(f"roll {angle}", "rotated", frame(angle=angle), True, F, 10, roll=float(angle)))
    out.append(_simple("dim x0.35", "darkened", frame(brightness=0.35), True, F))
    out.append(_simple("dark x0.05", "darkened", frame(brightness=0.05), None, U))
    out.append(_simple("blur 1.5 px", "blurred", frame(blur=1.5), True, F))
    out.append(_simple("blur 6 px", "blurred", frame(blur=6.0), None, U))
    out.append(_simple("noise 12", "noisy", frame(noise=12.0), True, F))
    for name in ("coffee", "brick"):
        out.append(_simple(f"empty {name}", "empty", frame(name), False, A))
    # A blank wall is featureless: flagged "flat" (like a covered lens), unknown.
    out.append(_simple("blank wall", "flat", frame(np.full((512, 512, 3), 128, np.uint8)), None, U))
    for s in (0.6, 0.8, 1.0):
        out.append(_simple(f"cat {s}", "cat", frame("chelsea", scale=s), False, A))
    two = _simple("two faces", "two faces", frame(side_by_side(), scale=0.5), True, F)
    two.multiple_faces = True
    out.append(two)

    # Partly out of frame: the face at the edge, cut by it.
    c = Clip("partly out of frame", "partly out")
    c.add(LEAD_IN, frame(), True)
    c.add(25, frame(dx=0.45, dy=-0.1), True)
    out.append(c.label(F, F, F, F, F, None, None, D, D, D))

    # Looking away: the three-quarter profile (camera.jpg) and its mirror
    # image, after a frontal lead-in. Distracted after 2 s.
    for name, src in (("profile", "camera"), ("profile mirrored", cv2.flip(photo("camera"), 1))):
        c = Clip(f"look away ({name})", "look away")
        c.add(LEAD_IN, frame(), True)
        c.add(25, frame(src), True)
        out.append(c.label(F, F, F, F, F, F, None, D, D, D))
    # Head on its side: not looking at the screen.
    for angle in (60, 90):
        c = Clip(f"rotated {angle}", "on its side")
        c.add(LEAD_IN, frame(), True)
        c.add(25, frame(angle=angle), None, float(angle))
        out.append(c.label(F, F, F, F, F, F, None, D, D, D))
    # Upside down: BlazeFace finds no face at all, so the set cannot express
    # "distracted" here; the clip only checks that it never reads focused.
    c = Clip("upside down", "on its side", not_focused=True)
    c.add(LEAD_IN, frame(), True)
    c.add(25, frame(angle=180), None, 180.0)
    out.append(c.label(F, F, F, F, F, None, None, None, None, None))
    # A 1-s glance away must not flip the state.
    c = Clip("glance 1 s", "durations")
    c.add(LEAD_IN, frame(), True)
    c.add(5, frame("camera"), True)
    c.add(20, frame(), True)
    out.append(c.label(F, F, F, F, F, F, F, F, F, F))

    closed = closed_eyes()
    # Eyes closed (synthetic) for 5 s after the lead-in: drowsy after 1 s.
    c = Clip("eyes closed", "eyes closed")
    c.add(LEAD_IN, frame(), True)
    c.add(25, frame(closed), True)
    out.append(c.label(F, F, F, F, F, None, R, R, R, R))
    # Repeated 0.8-s closures every 2 s (PERCLOS 0.4, no closure reaching
    # 1 s) for 15 s: PERCLOS over the trailing 10 s passes 0.3 after ~7.5 s.
    c = Clip("perclos 0.4", "eyes closed")
    c.add(LEAD_IN, frame(), True)
    for _ in range(15):
        c.add(6, frame(), True)
        c.add(4, frame(closed), True)
    out.append(c.label(F, F, F, F, F, *[None] * 8, *[R] * 22))
    # Ordinary blinks (one frame in seven): focused, no score lost.
    c = Clip("blinks", "blinks")
    for _ in range(7):
        c.add(6, frame(), True)
        c.add(1, frame(closed), True)
    c.add(1, frame(), True)
    out.append(c.label(*[F] * 10))
    # A stuck camera: the same bytes again and again.
    c = Clip("frozen", "frozen")
    same = frame()(0)
    c.add(25, lambda k: same, None)
    out.append(c.label(F, F, U, U, U))
    return out
