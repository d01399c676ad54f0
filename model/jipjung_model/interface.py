"""The model plug-in interface.

A model is a class with ``load`` (called once per worker process, before the
worker says it is ready) and ``analyse`` (one unit of frames at once). The
server mostly sends a unit frame by frame as the frames arrive: the worker
then calls ``open`` at the unit's start, ``add`` on what it returned for
each frame and ``close`` at its end. The default ``open`` keeps the frames
and calls ``analyse`` at ``close``, so a model that implements only
``analyse`` works either way; one that overrides ``open`` does each frame's
work as the frame arrives, and the unit's result is ready sooner after its
last frame.

Workers keep no session state: whatever a model needs from earlier units of
the same session it returns as ``context`` and receives back with the next
unit, possibly in another worker process.

See docs/model.md for the contract and a worked example.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

STATES = ("focused", "distracted", "drowsy", "absent", "unknown")

FORMAT_JPEG = 1


@dataclass(frozen=True)
class Frame:
    """One captured frame as the client sent it (image bytes still encoded)."""

    seq: int
    capture_ts: float  # ms since the Unix epoch, client clock
    format: int  # FORMAT_JPEG
    data: bytes
    # Size the image's own header declares, checked by the server before
    # queueing; 0 when unknown. A decoded image of another size is invalid.
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Unit:
    """A run of frames from one session, in seq order.

    ``closes_window`` is true for the unit whose last frame completes a
    window (``window_frames`` frames) or ends the session; the model then
    also returns a window result.
    """

    frames: list[Frame]
    closes_window: bool
    batch_frames: int = 5
    window_frames: int = 50
    fps: float = 5.0


@dataclass
class UnitOutcome:
    """Score and state of a batch or a window.

    ``score`` is 0-100, or None when no frame of the unit could be analysed
    (``state`` is then ``unknown``). ``signals`` is a JSON-serialisable dict
    that reaches the client unchanged.
    """

    score: float | None
    state: str
    signals: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitResult:
    """What ``Model.analyse`` and ``OpenUnit.close`` return.

    ``frames`` has one JSON-serialisable dict per input frame, in the same
    order; each must hold ``"analysed": bool``: false only when the image
    could not be decoded (or decoded to another size than its header says),
    with the reason in ``"error"``. A decoded image too poor to judge (dark,
    covered, blurred, frozen) is analysed, with ``"usable": false`` and its
    ``"qualityFlags"``. ``window`` must be set when the unit closes a
    window. ``context`` (JSON-serialisable, or None) comes back with the
    session's next unit.
    """

    frames: list[dict[str, Any]]
    batch: UnitOutcome
    window: UnitOutcome | None = None
    context: dict[str, Any] | None = None


class ModelOutputError(ValueError):
    """A model returned something that breaks the contract above."""


class OpenUnit(ABC):
    """A unit being received frame by frame, as ``Model.open`` returns it.

    The worker calls ``add`` once per frame, in seq order, as each arrives,
    then ``close`` once. When ``add`` raises, the unit is lost (a model
    error at its close) and neither method is called on it again. A unit
    may be closed without any frame: it then closes a window.
    """

    @abstractmethod
    def add(self, frame: Frame) -> None:
        """Do this frame's work now."""

    @abstractmethod
    def close(self, closes_window: bool) -> UnitResult:
        """The unit's result: one ``frames`` entry per frame added, in
        order, and ``window`` set when ``closes_window``."""


class BufferedUnit(OpenUnit):
    """The default ``Model.open``: keeps the frames and hands them to
    ``analyse`` as one unit at close."""

    def __init__(
        self, model: Model, context: dict[str, Any] | None, batch_frames: int, window_frames: int, fps: float
    ) -> None:
        self.model = model
        self.context = context
        self.batch_frames = batch_frames
        self.window_frames = window_frames
        self.fps = fps
        self.frames: list[Frame] = []

    def add(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self, closes_window: bool) -> UnitResult:
        unit = Unit(self.frames, closes_window, self.batch_frames, self.window_frames, self.fps)
        return self.model.analyse(unit, self.context)


class Model(ABC):
    """Base class of every model. Subclasses set ``name`` and implement
    ``analyse``; ``load`` and ``open`` are optional."""

    name = "model"
    version = "0"

    def load(self, options: Mapping[str, Any]) -> None:
        """Load weights once per process. ``options`` come from the
        server's MODEL_OPTIONS (JSON)."""

    @abstractmethod
    def analyse(self, unit: Unit, context: dict[str, Any] | None) -> UnitResult:
        """Analyse one unit. Raise to report a model error for this unit
        only; the session and the worker go on."""

    def open(
        self, context: dict[str, Any] | None, batch_frames: int = 5, window_frames: int = 50, fps: float = 5.0
    ) -> OpenUnit:
        """Start a unit whose frames will come one by one (see OpenUnit).

        This default keeps the frames and calls ``analyse`` at close. A
        model that overrides it, to do each frame's work in ``add``, must
        keep ``analyse`` equivalent: the same result for a unit, whichever
        way it arrives (the default model's ``analyse`` is ``open``, ``add``
        of each frame, then ``close``). Raising in ``add`` or ``close``
        costs this unit only, as in ``analyse``.
        """
        return BufferedUnit(self, context, batch_frames, window_frames, fps)


def validate_result(unit: Unit, result: Any) -> UnitResult:
    """Check a model's output for ``unit`` against the contract; raise
    ModelOutputError.

    The worker checks the RESULT it builds from it once more, by the rules
    the server applies on receipt (``worker.check_result_body``); keep the
    two in step with src/ipc/messages.ts.
    """
    return validate_counts(len(unit.frames), unit.closes_window, result)


def validate_counts(frame_count: int, closes_window: bool, result: Any) -> UnitResult:
    """``validate_result`` for a unit known by its frame count and whether
    it closes a window: a unit received frame by frame, whose images the
    worker did not keep."""
    if not isinstance(result, UnitResult):
        raise ModelOutputError(f"the model returned {type(result).__name__}, not UnitResult")
    if not isinstance(result.frames, list) or len(result.frames) != frame_count:
        raise ModelOutputError(
            f"expected {frame_count} frame entries, got "
            f"{len(result.frames) if isinstance(result.frames, list) else type(result.frames).__name__}"
        )
    for i, entry in enumerate(result.frames):
        if not isinstance(entry, dict) or not isinstance(entry.get("analysed"), bool):
            raise ModelOutputError(f"frame entry {i} lacks a boolean 'analysed'")
    outcomes = [("batch", result.batch)]
    if closes_window:
        if result.window is None:
            raise ModelOutputError("unit closes a window but no window result was returned")
        outcomes.append(("window", result.window))
    for label, outcome in outcomes:
        if not isinstance(outcome, UnitOutcome):
            raise ModelOutputError(f"{label} is not a UnitOutcome")
        if outcome.state not in STATES:
            raise ModelOutputError(f"{label} state {outcome.state!r} is not one of {STATES}")
        score = outcome.score
        if score is not None:
            # bool is an int to Python but not a number on the wire (src/ipc/messages.ts).
            if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
                raise ModelOutputError(f"{label} score is not a finite number")
            if not 0 <= score <= 100:
                raise ModelOutputError(f"{label} score {score} is outside 0-100")
        if not isinstance(outcome.signals, dict):
            raise ModelOutputError(f"{label} signals is not a dict")
    if result.context is not None and not isinstance(result.context, dict):
        raise ModelOutputError("context must be a dict or None")
    return result


class WindowAccumulator:
    """Aggregates batch outcomes into a window outcome through the context,
    for models that have no window logic of their own.

    The window score is the mean of the analysed frames' batch scores
    (weighted by analysed frames); the state is the one that covered most
    analysed frames, or ``unknown`` when none was analysed.
    """

    KEY = "window"

    @classmethod
    def add(
        cls, context: dict[str, Any], batch: UnitOutcome, analysed: int
    ) -> dict[str, Any]:
        acc = dict(context.get(cls.KEY) or {"scoreSum": 0.0, "analysed": 0, "states": {}})
        states = dict(acc["states"])
        if batch.score is not None and analysed > 0:
            acc["scoreSum"] += batch.score * analysed
            acc["analysed"] += analysed
            states[batch.state] = states.get(batch.state, 0) + analysed
        acc["states"] = states
        return {**context, cls.KEY: acc}

    @classmethod
    def close(cls, context: dict[str, Any]) -> tuple[UnitOutcome, dict[str, Any]]:
        acc = context.get(cls.KEY) or {"scoreSum": 0.0, "analysed": 0, "states": {}}
        rest = {k: v for k, v in context.items() if k != cls.KEY}
        if acc["analysed"] == 0:
            return UnitOutcome(None, "unknown", {"framesAnalysed": 0}), rest
        state = max(acc["states"].items(), key=lambda kv: kv[1])[0]
        total = acc["analysed"]
        shares = {s: round(n / total, 3) for s, n in acc["states"].items()}
        return (
            UnitOutcome(round(acc["scoreSum"] / total, 1), state, {"stateShare": shares}),
            rest,
        )
