"""The worker process: load a model once, then answer ANALYSE requests.

Started by the server's worker pool as ``python -m jipjung_model.worker``.
Requests arrive on file descriptor 3 and answers leave on file descriptor 4
(both overridable by env), never on stdout: a model that prints must not
corrupt the channel. stdout and stderr are read by the server's logger.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import signal
import sys
import time
import traceback
from typing import Any

# One worker per core: native thread pools must not fan out, or N workers
# would fight over the same cores. Set before numpy or OpenCV load, hence
# before the imports below.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from . import codec  # noqa: E402
from .codec import Message, MessageType  # noqa: E402
from .interface import STATES, Frame, Model, ModelOutputError, Unit, UnitOutcome, validate_result  # noqa: E402

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


def unit_from_request(meta: dict[str, Any], images: list[bytes]) -> Unit:
    entries = meta.get("frames")
    if not isinstance(entries, list) or len(entries) != len(images):
        raise codec.CodecError("ANALYSE meta.frames does not match the frame count")
    frames = [
        Frame(
            seq=int(e["seq"]),
            capture_ts=float(e["captureTs"]),
            format=int(e.get("format", 1)),
            data=img,
            width=int(e.get("width", 0)),
            height=int(e.get("height", 0)),
        )
        for e, img in zip(entries, images)
    ]
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


def analyse(model: Model, request: codec.AnalyseRequest) -> dict[str, Any]:
    unit = unit_from_request(request.meta, request.frames)
    started = time.perf_counter()
    result = validate_result(unit, model.analyse(unit, request.meta.get("context")))
    model_ms = (time.perf_counter() - started) * 1000
    body = {
        "frames": result.frames,
        "batch": _outcome(result.batch),
        "window": _outcome(result.window),
        "context": result.context,
        "modelMs": round(model_ms, 3),
    }
    check_result_body(body, len(unit.frames), unit.closes_window)
    return body


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


def serve(channel: Channel, model: Model) -> int:
    while True:
        messages = channel.receive()
        if messages is None:
            return 0
        for message in messages:
            if message.type == MessageType.SHUTDOWN:
                return 0
            if message.type != MessageType.ANALYSE:
                channel.send(
                    Message(MessageType.ERROR, message.request_id,
                            {"code": "internal", "message": f"unexpected message {message.type.name}"})
                )
                continue
            try:
                body = analyse(model, message.payload)
                reply = Message(MessageType.RESULT, message.request_id, body)
                encoded = codec.encode(reply)  # fails here, not mid-write, on non-JSON output
            except (ModelOutputError, TypeError, ValueError) as exc:
                kind = "malformed output" if isinstance(exc, (ModelOutputError, TypeError)) else "bad value"
                print(f"model {kind}: {exc}", file=sys.stderr, flush=True)
                channel.send(Message(MessageType.ERROR, message.request_id,
                                     {"code": "model_error", "message": f"{kind}: {exc}"}))
                continue
            except Exception as exc:  # a model bug must cost one unit, not the worker
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
                channel.send(Message(MessageType.ERROR, message.request_id,
                                     {"code": "model_error", "message": f"{type(exc).__name__}: {exc}"}))
                continue
            channel.send_bytes(encoded)


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
