"""The worker process: load a model once, then analyse units of frames.

Started by the server's worker pool as ``python -m jipjung_model.worker``.
Requests arrive on file descriptor 3 and answers leave on file descriptor 4
(both overridable by env), never on stdout: a model that prints must not
corrupt the channel. stdout and stderr are read by the server's logger.

A unit comes whole (ANALYSE, answered by RESULT or ERROR) or frame by frame:
OPEN starts it (``Model.open``), each FRAME is added as it arrives and
acknowledged by FRAME_DONE, and CLOSE is answered by RESULT or ERROR. Any
number of units may be open at once, one per id. A model error costs its
unit only, never the worker; a message the protocol does not allow at that
point (an id opened twice, a FRAME or CLOSE of an id not open) is answered
by ERROR ``internal``, and the worker goes on.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

# One worker per core: native thread pools must not fan out, or N workers
# would fight over the same cores. Set before numpy or OpenCV load, hence
# before the imports below.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from . import codec  # noqa: E402
from .codec import Message, MessageType  # noqa: E402
from .interface import (  # noqa: E402
    STATES, Frame, Model, ModelOutputError, OpenUnit, Unit, UnitOutcome, UnitResult, validate_counts,
)

READ_CHUNK = 1 << 20


def load_model(spec: str) -> Model:
    """``spec`` is ``package.module:ClassName``."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"model spec {spec!r} is not of the form 'package.module:ClassName'")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls()
    if not isinstance(model, Model):
        raise TypeError(f"{spec} is not a subclass of jipjung_model.interface.Model")
    return model


def frame_from_meta(e: dict[str, Any], data: bytes) -> Frame:
    """One frame from its meta (ANALYSE's ``frames`` entry, FRAME's meta)."""
    return Frame(
        seq=int(e["seq"]),
        capture_ts=float(e["captureTs"]),
        format=int(e.get("format", 1)),
        data=data,
        width=int(e.get("width", 0)),
        height=int(e.get("height", 0)),
    )


def unit_from_request(meta: dict[str, Any], images: list[bytes]) -> Unit:
    entries = meta.get("frames")
    if not isinstance(entries, list) or len(entries) != len(images):
        raise codec.CodecError("ANALYSE meta.frames does not match the frame count")
    frames = [frame_from_meta(e, img) for e, img in zip(entries, images)]
    return Unit(
        frames=frames,
        closes_window=bool(meta.get("closesWindow")),
        batch_frames=int(meta.get("batchFrames", 5)),
        window_frames=int(meta.get("windowFrames", 50)),
        fps=float(meta.get("fps", 5)),
    )


def _outcome(o: UnitOutcome | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {"score": None if o.score is None else float(o.score), "state": o.state, "signals": o.signals}


def _is_number(value: Any) -> bool:
    # JSON has no booleans among its numbers; Python counts True as 1.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_outcome(label: str, outcome: Any) -> None:
    if not isinstance(outcome, dict):
        raise ModelOutputError(f"RESULT.{label} is not an object")
    score = outcome.get("score", ...)
    if score is ... or (score is not None and not (_is_number(score) and 0 <= score <= 100)):
        raise ModelOutputError(f"RESULT.{label}.score is not a number in 0-100 or null")
    if outcome.get("state") not in STATES:
        raise ModelOutputError(f"RESULT.{label}.state is not one of {STATES}")
    if not isinstance(outcome.get("signals"), dict):
        raise ModelOutputError(f"RESULT.{label}.signals is not an object")


def check_result_body(body: Any, frame_count: int, closes_window: bool) -> None:
    """Check a RESULT body as it goes on the wire; raise ModelOutputError.

    The same rules as the server's check where the message arrives
    (src/ipc/messages.ts), which kills a worker that breaks them: this one
    makes the worker report a model error for the unit instead.
    test/golden/ipc/replies.json holds cases both must judge alike.
    """
    if not isinstance(body, dict):
        raise ModelOutputError("RESULT is not an object")
    missing = [k for k in ("frames", "batch", "window", "context", "modelMs") if k not in body]
    if missing:
        raise ModelOutputError(f"RESULT lacks {', '.join(missing)}")
    frames = body["frames"]
    if not isinstance(frames, list) or len(frames) != frame_count:
        raise ModelOutputError(f"RESULT.frames is not a list of {frame_count} entries")
    for i, entry in enumerate(frames):
        if not isinstance(entry, dict) or not isinstance(entry.get("analysed"), bool):
            raise ModelOutputError(f"RESULT.frames.{i} is not an object with a boolean 'analysed'")
    _check_outcome("batch", body["batch"])
    if body["window"] is not None:
        _check_outcome("window", body["window"])
    elif closes_window:
        raise ModelOutputError("RESULT.window is null, but the unit closes a window")
    if body["context"] is not None and not isinstance(body["context"], dict):
        raise ModelOutputError("RESULT.context is not an object or null")
    if not (_is_number(body["modelMs"]) and body["modelMs"] >= 0):
        raise ModelOutputError("RESULT.modelMs is not a number >= 0")


def result_body(result: UnitResult, frame_count: int, closes_window: bool, model_ms: float) -> dict[str, Any]:
    """The RESULT body of a model's result, checked against the model
    contract (``validate_counts``), then as the server will."""
    result = validate_counts(frame_count, closes_window, result)
    body = {
        "frames": result.frames,
        "batch": _outcome(result.batch),
        "window": _outcome(result.window),
        "context": result.context,
        "modelMs": round(model_ms, 3),
    }
    check_result_body(body, frame_count, closes_window)
    return body


def analyse(model: Model, request: codec.AnalyseRequest) -> dict[str, Any]:
    unit = unit_from_request(request.meta, request.frames)
    started = time.perf_counter()
    result = model.analyse(unit, request.meta.get("context"))
    model_ms = (time.perf_counter() - started) * 1000
    return result_body(result, len(unit.frames), unit.closes_window, model_ms)


@dataclass
class Opened:
    """A unit sent frame by frame, from its OPEN to its CLOSE."""

    unit: OpenUnit | None
    frames: int = 0
    model_ms: float = 0.0
    # Why the unit is lost (ERROR code and message), reported at its CLOSE:
    # the model raised on its OPEN or one of its frames, or the OPEN was malformed.
    failure: tuple[str, str] | None = None


def open_unit(model: Model, meta: Any) -> Opened:
    """The unit an OPEN starts; a lost one when it cannot be (nothing
    answers an OPEN: its CLOSE reports why)."""
    try:
        if not isinstance(meta, dict):
            raise TypeError("OPEN is not an object")
        args = (
            meta.get("context"), int(meta.get("batchFrames", 5)), int(meta.get("windowFrames", 50)),
            float(meta.get("fps", 5)),
        )
    except (TypeError, ValueError) as exc:
        return Opened(None, failure=("internal", f"bad OPEN: {exc}"))
    try:
        return Opened(model.open(*args))
    except Exception as exc:  # a model bug must cost one unit, not the worker
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return Opened(None, failure=("model_error", f"{type(exc).__name__}: {exc}"))


def add_frame(opened: Opened, request: codec.AnalyseRequest) -> dict[str, Any]:
    """Add a FRAME to its unit; the FRAME_DONE body. A frame of a lost unit
    is acknowledged without work; a frame whose work raises loses the unit."""
    meta = request.meta if isinstance(request.meta, dict) else {}
    model_ms = 0.0
    opened.frames += 1
    if opened.failure is None and opened.unit is not None:
        try:
            frame = frame_from_meta(meta, request.frames[0])
        except (KeyError, TypeError, ValueError) as exc:
            opened.failure = ("internal", f"bad FRAME meta: {exc!r}")
        else:
            started = time.perf_counter()
            try:
                opened.unit.add(frame)
            except Exception as exc:  # a model bug must cost one unit, not the worker
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
                opened.failure = ("model_error", f"{type(exc).__name__}: {exc}")
            model_ms = (time.perf_counter() - started) * 1000
            opened.model_ms += model_ms
    return {"seq": meta.get("seq"), "modelMs": round(model_ms, 3)}


def close_unit(opened: Opened, closes_window: bool) -> dict[str, Any]:
    """The RESULT body of a unit sent frame by frame, whose model time is
    its frames' and its close's."""
    assert opened.unit is not None and opened.failure is None
    started = time.perf_counter()
    result = opened.unit.close(closes_window)
    model_ms = opened.model_ms + (time.perf_counter() - started) * 1000
    return result_body(result, opened.frames, closes_window, model_ms)


class Channel:
    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.decoder = codec.Decoder()

    def send(self, message: Message) -> None:
        self.send_bytes(codec.encode(message))

    def send_bytes(self, encoded: bytes) -> None:
        data = memoryview(encoded)
        while data:
            written = os.write(self.fd_out, data)
            data = data[written:]

    def receive(self) -> list[Message] | None:
        """Block for the next messages; None at end of stream."""
        while True:
            chunk = os.read(self.fd_in, READ_CHUNK)
            if not chunk:
                return None
            messages = self.decoder.feed(chunk)
            if messages:
                return messages


def _error(request_id: int, code: str, message: str) -> Message:
    return Message(MessageType.ERROR, request_id, {"code": code, "message": message})


def _answer(channel: Channel, request_id: int, work: Callable[[], dict[str, Any]]) -> None:
    """Send RESULT with the body ``work()`` builds, or ERROR ``model_error``
    when the model raised or broke its contract."""
    try:
        reply = Message(MessageType.RESULT, request_id, work())
        encoded = codec.encode(reply)  # fails here, not mid-write, on non-JSON output
    except (ModelOutputError, TypeError, ValueError) as exc:
        kind = "malformed output" if isinstance(exc, (ModelOutputError, TypeError)) else "bad value"
        print(f"model {kind}: {exc}", file=sys.stderr, flush=True)
        channel.send(_error(request_id, "model_error", f"{kind}: {exc}"))
        return
    except Exception as exc:  # a model bug must cost one unit, not the worker
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        channel.send(_error(request_id, "model_error", f"{type(exc).__name__}: {exc}"))
        return
    channel.send_bytes(encoded)


def serve(channel: Channel, model: Model) -> int:
    opened: dict[int, Opened] = {}  # units sent frame by frame, by id, from OPEN to CLOSE
    while True:
        messages = channel.receive()
        if messages is None:
            return 0
        for message in messages:
            if message.type == MessageType.SHUTDOWN:
                return 0
            rid, payload = message.request_id, message.payload
            if message.type == MessageType.ANALYSE:
                _answer(channel, rid, functools.partial(analyse, model, payload))
            elif message.type == MessageType.OPEN:
                if rid in opened:
                    channel.send(_error(rid, "internal", f"OPEN of unit {rid}, which is open already"))
                else:
                    opened[rid] = open_unit(model, payload)
            elif message.type == MessageType.FRAME:
                unit = opened.get(rid)
                if unit is None:
                    channel.send(_error(rid, "internal", f"FRAME for unit {rid}, which is not open"))
                else:
                    channel.send(Message(MessageType.FRAME_DONE, rid, add_frame(unit, payload)))
            elif message.type == MessageType.CLOSE:
                unit = opened.pop(rid, None)
                if unit is None:
                    channel.send(_error(rid, "internal", f"CLOSE of unit {rid}, which is not open"))
                elif not isinstance(payload, dict):
                    channel.send(_error(rid, "internal", "bad CLOSE: not an object"))
                elif unit.failure is not None:
                    channel.send(_error(rid, *unit.failure))
                else:
                    _answer(channel, rid, functools.partial(close_unit, unit, bool(payload.get("closesWindow"))))
            else:
                channel.send(_error(rid, "internal", f"unexpected message {message.type.name}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jipjung_model.worker")
    parser.add_argument(
        "--model", default=os.environ.get("JIPJUNG_MODEL", "jipjung_model.default_model:ConcentrationModel")
    )
    parser.add_argument("--options", default=os.environ.get("JIPJUNG_MODEL_OPTIONS", "{}"))
    args = parser.parse_args(argv)

    # The server supervises us; a Ctrl-C in its terminal must not kill us
    # mid-unit before it has decided to.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(int(os.environ.get("JIPJUNG_IPC_IN", "3")), int(os.environ.get("JIPJUNG_IPC_OUT", "4")))
    try:
        options = json.loads(args.options)
        model = load_model(args.model)
        model.load(options)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        failure = {"message": f"{type(exc).__name__}: {exc}", "model": args.model}
        channel.send(Message(MessageType.INIT_FAILED, 0, failure))
        return 1
    import platform

    channel.send(Message(MessageType.READY, 0, {
        "protocol": codec.PROTOCOL_VERSION,
        "model": getattr(model, "name", type(model).__name__),
        "version": str(getattr(model, "version", "0")),
        "pid": os.getpid(),
        "python": platform.python_version(),
    }))
    return serve(channel, model)


if __name__ == "__main__":
    sys.exit(main())
