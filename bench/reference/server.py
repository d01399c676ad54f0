"""A single-process reference server for the bench: the baseline the service is measured against.

One Python process, one thread, asyncio and websockets: each frame is
handed to the model on the event loop as it arrives, the way a plain
per-frame server would use the model's incremental form (docs/model.md):
a batch's first frame opens a unit (``Model.open``), each frame is added to
it (``add``, the frame's work), and the batch's fifth frame closes it
(``close``), whose result is the batch result, and every tenth batch's the
window result too; the session's context goes from one batch to the next.
It speaks the part of protocol v1 (docs/protocol.md) the bench's load
generator uses: hello, welcome, binary frames, results, bye, summary. No
worker pool, queueing, shedding, throttle, reordering, resume or
authentication (every client is the demo user): it is the plain server the
service's scheduling has to beat, not a product.

    PYTHONPATH=model /usr/bin/python3 bench/reference/server.py [--port 0] [--model package.module:Class]

Once the model is loaded and the socket listens it prints one JSON line,
{"event": "listening", "port": N}, on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import struct
import sys
import time
import uuid
from http import HTTPStatus
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.server import serve

from jipjung_model.interface import STATES, Frame, Model, OpenUnit, UnitOutcome, UnitResult, validate_counts
from jipjung_model.worker import load_model

FPS = 5
BATCH_FRAMES = 5
WINDOW_FRAMES = 50
MAX_FRAME_BYTES = 512 * 1024
HELLO_TIMEOUT_S = 5
# version u8, format u8, reserved u16, seq u32, captureTs f64, big-endian (docs/protocol.md, "Frames").
HEADER = struct.Struct(">BBHId")


def zero_counts() -> dict[str, int]:
    return {"lost": 0, "rejected": 0, "duplicate": 0, "late": 0, "rateLimited": 0, "shed": 0}


class Session:
    """One connection's session: its model context and the batch and window being filled."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.id = str(uuid.uuid4())
        self.started = time.monotonic()
        self.context: dict[str, Any] | None = None
        self.result_id = 0
        self.received = self.analysed = self.rejected = self.lost = 0
        self.rejected_by: dict[str, int] = {}
        self.score_sum = 0.0
        self.state_seconds = {s: 0.0 for s in STATES}
        self.batch_from: int | None = None
        self.unit: OpenUnit | None = None  # the open batch's unit at the model
        self.batch_seqs: list[int] = []
        self.batch_counts = zero_counts()
        self.window_from: int | None = None
        self.window_counts, self.window_analysed, self.last_seq = zero_counts(), 0, -1

    def welcome(self) -> dict[str, Any]:
        return {
            "type": "welcome", "protocol": 1, "sessionId": self.id, "resumeToken": secrets.token_urlsafe(24),
            "resumed": False, "nextResultId": 1, "fps": FPS, "batchFrames": BATCH_FRAMES,
            "windowFrames": WINDOW_FRAMES, "maxFrameBytes": MAX_FRAME_BYTES,
            "model": {"name": self.model.name, "version": self.model.version}, "auth": "demo",
        }

    def on_frame(self, data: bytes) -> list[dict[str, Any]]:
        """Analyse one frame message; the messages it completes (errors, batch and window results)."""
        if len(data) <= HEADER.size or len(data) > MAX_FRAME_BYTES:
            return self.reject("frame_invalid", None)
        version, fmt, reserved, seq, capture_ts = HEADER.unpack_from(data)
        if version != 1 or fmt != 1 or reserved != 0:
            return self.reject("frame_invalid", None)
        self.received += 1
        out = []
        # A frame of another batch (a gap, or a count that starts again) closes the open one whole,
        # and the open window with it when the frame is of another window too.
        other_window = self.window_from is not None and seq - seq % WINDOW_FRAMES != self.window_from
        if self.batch_from is not None and seq - seq % BATCH_FRAMES != self.batch_from:
            out += self.close_batch(self.batch_from + BATCH_FRAMES - 1, other_window)
        if other_window:
            out += self.close_window()
        if self.batch_from is None:
            self.batch_from = seq - seq % BATCH_FRAMES
            self.unit = self.model.open(self.context, BATCH_FRAMES, WINDOW_FRAMES, FPS)
        if self.window_from is None:
            self.window_from = seq - seq % WINDOW_FRAMES
        assert self.unit is not None
        self.unit.add(Frame(seq, capture_ts, fmt, bytes(data[HEADER.size:])))
        self.batch_seqs.append(seq)
        self.last_seq = seq
        if seq % BATCH_FRAMES == BATCH_FRAMES - 1:
            out += self.close_batch(seq, seq % WINDOW_FRAMES == WINDOW_FRAMES - 1)
        return out

    def on_bye(self) -> list[dict[str, Any]]:
        """Close the open batch and window where the frames ended, then the summary."""
        return self.close_batch(self.last_seq, True) + self.close_window() + [self.summary()]

    def reject(self, code: str, seq: int | None) -> list[dict[str, Any]]:
        """Count a refused frame; one with a trusted seq (its header parsed) keeps its slot in the batch."""
        self.rejected += 1
        self.rejected_by[code] = self.rejected_by.get(code, 0) + 1
        error = {"type": "error", "code": code, "message": f"frame refused: {code}", "fatal": False}
        if seq is None:
            self.received += 1
            return [error]
        self.batch_counts["rejected"] += 1
        return [{**error, "seq": seq}]

    def close_unit(self, unit: OpenUnit, frames: int, closes_window: bool) -> UnitResult:
        result = validate_counts(frames, closes_window, unit.close(closes_window))
        self.context = result.context
        return result

    def close_batch(self, seq_to: int, closes_window: bool) -> list[dict[str, Any]]:
        """The batch's result from the model's close (with the window's when it closes one too)."""
        if self.batch_from is None or self.unit is None:
            return []
        result = self.close_unit(self.unit, len(self.batch_seqs), closes_window)
        frames = [{**entry, "seq": seq} for entry, seq in zip(result.frames, self.batch_seqs)]
        out = []
        for entry in frames:
            if not entry["analysed"]:
                out += self.reject("image_undecodable", entry["seq"])
        seq_from, slots = self.batch_from, seq_to - self.batch_from + 1
        analysed = sum(1 for f in frames if f["analysed"])
        self.batch_counts["lost"] = slots - len(frames)
        self.lost += self.batch_counts["lost"]
        outcome = result.batch
        self.analysed += analysed
        self.score_sum += (outcome.score or 0.0) * analysed
        self.state_seconds[outcome.state] += slots / FPS
        self.window_analysed += analysed
        for k, n in self.batch_counts.items():
            self.window_counts[k] += n
        out.append(self.result("batch", seq_from, seq_to, analysed, outcome, self.batch_counts, frames))
        self.batch_from, self.unit, self.batch_seqs, self.batch_counts = None, None, [], zero_counts()
        if closes_window:
            assert result.window is not None  # validate_counts saw to it
            out += self.window_result(result.window)
        return out

    def close_window(self) -> list[dict[str, Any]]:
        """The open window's result, once its last batch is closed: a unit of no frames that closes it."""
        if self.window_from is None:
            return []
        result = self.close_unit(self.model.open(self.context, BATCH_FRAMES, WINDOW_FRAMES, FPS), 0, True)
        assert result.window is not None  # validate_counts saw to it
        return self.window_result(result.window)

    def window_result(self, outcome: UnitOutcome) -> list[dict[str, Any]]:
        assert self.window_from is not None
        out = [self.result("window", self.window_from, self.last_seq, self.window_analysed, outcome,
                           self.window_counts)]
        self.window_from, self.window_counts, self.window_analysed = None, zero_counts(), 0
        return out

    def result(self, kind: str, seq_from: int, seq_to: int, analysed: int, outcome: UnitOutcome,
               counts: dict[str, int], frames: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        self.result_id += 1
        msg = {
            "type": "result", "kind": kind, "resultId": self.result_id, "seqFrom": seq_from, "seqTo": seq_to,
            "framesAnalyzed": analysed, "score": outcome.score, "state": outcome.state,
            "signals": outcome.signals, "counts": dict(counts),
        }
        return msg if frames is None else {**msg, "frames": frames}

    def summary(self) -> dict[str, Any]:
        return {
            "type": "summary", "sessionId": self.id, "userId": "demo",
            "durationMs": round((time.monotonic() - self.started) * 1000),
            "framesReceived": self.received, "framesAnalyzed": self.analysed, "framesRejected": self.rejected,
            "framesDropped": 0, "framesLost": self.lost, "rejected": self.rejected_by, "dropped": {},
            "resyncs": 0, "clockSkewMs": None, "results": self.result_id,
            "meanScore": round(self.score_sum / self.analysed, 1) if self.analysed else None,
            "stateSeconds": {s: round(x, 1) for s, x in self.state_seconds.items()},
        }


def stream_only(path: str, _headers: Any) -> Any:
    """Refuse the upgrade on any other path, as the service does."""
    return None if path == "/v1/stream" else (HTTPStatus.NOT_FOUND, [], b"not found\n")


async def serve_session(ws: Any, model: Model) -> None:
    def send(msg: dict[str, Any]) -> Any:
        return ws.send(json.dumps(msg, separators=(",", ":")))

    try:
        first = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S)
        hello = json.loads(first) if isinstance(first, str) else None
    except (asyncio.TimeoutError, ValueError, ConnectionClosed):
        hello = None
    if not isinstance(hello, dict) or hello.get("type") != "hello":
        await send({"type": "error", "code": "hello_required", "message": "send hello first", "fatal": True})
        await ws.close(1008, "hello_required")
        return
    session = Session(model)
    await send(session.welcome())
    try:
        await serve_frames(ws, session, send)
    except ConnectionClosed:
        pass  # gone without bye: no summary, as with the service


async def serve_frames(ws: Any, session: Session, send: Any) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            for msg in session.on_frame(message):
                await send(msg)
            # Let the other sessions' frames in between: each connection's backlog is served in turn.
            await asyncio.sleep(0)
            continue
        try:
            kind = json.loads(message).get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind != "bye":
            await send({"type": "error", "code": "bad_message", "message": "only bye is expected", "fatal": False})
            continue
        for msg in session.on_bye():
            await send(msg)
        await ws.close(1000, "bye")
        return


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="jipjung_model.default_model:ConcentrationModel")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    model.load({})
    # No pings: while the loop analyses a backlog a pong would be read late and the connection
    # closed for it; the bench's clients are on this machine.
    async with serve(
        lambda ws, *_: serve_session(ws, model), args.host, args.port, process_request=stream_only,
        compression=None, max_size=MAX_FRAME_BYTES + 64 * 1024, ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"event": "listening", "port": port}), flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
