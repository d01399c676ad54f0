"""The model plug-in interface.

A model is a class with ``load`` (called once per worker process, before the
worker says it is ready) and ``analyse`` (called once per unit of frames).
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
    """What ``Model.analyse`` returns.

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


class Model(ABC):
    """Base class of every model. Subclasses set ``name`` and implement
    ``analyse``; ``load`` is optional."""

    name = "model"
    version = "0"

    def load(self, options: Mapping[str, Any]) -> None:
        """Load weights once per process. ``options`` come from the
        server's MODEL_OPTIONS (JSON)."""

    @abstractmethod
    def analyse(self, unit: Unit, context: dict[str, Any] | None) -> UnitResult:
        """Analyse one unit. Raise to report a model error for this unit
        only; the session and the worker go on."""


def validate_result(unit: Unit, result: Any) -> UnitResult:
    """Check a model's output against the contract; raise ModelOutputError.

    The worker checks the RESULT it builds from it once more, by the rules
    the server applies on receipt (``worker.check_result_body``); keep the
    two in step with src/ipc/messages.ts.
    """
    if not isinstance(result, UnitResult):
        raise ModelOutputError(f"analyse returned {type(result).__name__}, not UnitResult")
    if not isinstance(result.frames, list) or len(result.frames) != len(unit.frames):
        raise ModelOutputError(
            f"expected {len(unit.frames)} frame entries, got "
            f"{len(result.frames) if isinstance(result.frames, list) else type(result.frames).__name__}"
        )
    for i, entry in enumerate(result.frames):
        if not isinstance(entry, dict) or not isinstance(entry.get("analysed"), bool):
            raise ModelOutputError(f"frame entry {i} lacks a boolean 'analysed'")
    outcomes = [("batch", result.batch)]
    if unit.closes_window:
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
