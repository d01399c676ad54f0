"""The IPC wire codec, pure code: bytes in, messages out, and back.

Mirrors src/ipc/codec.ts; docs/protocol.md ("IPC protocol") has the byte
tables and test/golden/ipc/ holds the golden files both sides decode.

Every message::

    offset size field
    0      4    length of everything after this field (u32, big-endian)
    4      1    type
    5      1    flags, 0
    6      2    reserved, 0
    8      4    request id (u32), 0 when the message answers no request
    12     ...  payload

ANALYSE payload: u32 meta length, meta JSON (UTF-8), u16 frame count, then
per frame a u32 length and the image bytes. FRAME has the same layout with
one frame's meta and a count of exactly 1. SHUTDOWN has no payload; every
other payload is JSON.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct(">IBBHI")
HEADER_SIZE = HEADER.size  # 12
PROTOCOL_VERSION = 2
# A security limit: a length above it means a corrupt stream, not a message.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class MessageType(enum.IntEnum):
    READY = 1
    INIT_FAILED = 2
    ANALYSE = 3
    RESULT = 4
    ERROR = 5
    SHUTDOWN = 6
    OPEN = 7
    FRAME = 8
    CLOSE = 9
    FRAME_DONE = 10


# Messages whose payload carries images (AnalyseRequest), not JSON.
_IMAGE_TYPES = (MessageType.ANALYSE, MessageType.FRAME)


class CodecError(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    type: MessageType
    request_id: int
    payload: Any  # dict for JSON messages; AnalyseRequest for ANALYSE and FRAME; None for SHUTDOWN


@dataclass(frozen=True)
class AnalyseRequest:
    """The payload of ANALYSE (the unit's meta, its images) and of FRAME
    (one frame's meta, a list of its one image)."""

    meta: dict[str, Any]
    frames: list[bytes]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def encode(message: Message) -> bytes:
    if message.type in _IMAGE_TYPES:
        req: AnalyseRequest = message.payload
        if message.type == MessageType.FRAME and len(req.frames) != 1:
            raise CodecError(f"a FRAME carries exactly one frame, not {len(req.frames)}")
        meta = _json_bytes(req.meta)
        parts = [struct.pack(">I", len(meta)), meta, struct.pack(">H", len(req.frames))]
        for frame in req.frames:
            parts.append(struct.pack(">I", len(frame)))
            parts.append(frame)
        payload = b"".join(parts)
    elif message.type == MessageType.SHUTDOWN:
        payload = b""
    else:
        payload = _json_bytes(message.payload)
    return HEADER.pack(len(payload) + HEADER_SIZE - 4, message.type, 0, 0, message.request_id) + payload


def decode_body(type_: int, request_id: int, payload: bytes | memoryview) -> Message:
    try:
        mtype = MessageType(type_)
    except ValueError:
        raise CodecError(f"unknown message type {type_}") from None
    view = memoryview(payload)
    if mtype in _IMAGE_TYPES:
        request = _decode_images(view, mtype.name)
        if mtype == MessageType.FRAME and len(request.frames) != 1:
            raise CodecError(f"a FRAME carries exactly one frame, not {len(request.frames)}")
        return Message(mtype, request_id, request)
    if mtype == MessageType.SHUTDOWN:
        return Message(mtype, request_id, None)
    try:
        return Message(mtype, request_id, json.loads(bytes(view)))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"bad JSON payload: {exc}") from None


def _decode_images(view: memoryview, what: str) -> AnalyseRequest:
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise CodecError(f"{what} payload is truncated")
        chunk = view[pos : pos + n]
        pos += n
        return chunk

    (meta_len,) = struct.unpack(">I", take(4))
    try:
        meta = json.loads(bytes(take(meta_len)))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"bad {what} meta: {exc}") from None
    (count,) = struct.unpack(">H", take(2))
    frames = []
    for _ in range(count):
        (length,) = struct.unpack(">I", take(4))
        frames.append(bytes(take(length)))
    if pos != len(view):
        raise CodecError(f"{len(view) - pos} trailing bytes after {what} frames")
    return AnalyseRequest(meta, frames)


class Decoder:
    """Incremental decoder: feed bytes as they arrive, take whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        # Bodies are decoded from a view of the buffer (decode_body copies
        # what it keeps), and the consumed bytes are cut once at the end: a
        # unit of frames is copied once on its way in, not three times.
        # (A CodecError leaves the stream unusable: the worker stops on it.)
        view = memoryview(buf)
        while len(buf) - pos >= HEADER_SIZE:
            length, type_, flags, reserved, request_id = HEADER.unpack_from(buf, pos)
            if length < HEADER_SIZE - 4 or length > MAX_MESSAGE_BYTES:
                raise CodecError(f"message length {length} out of range")
            total = length + 4
            if len(buf) - pos < total:
                break
            out.append(decode_body(type_, request_id, view[pos + HEADER_SIZE:pos + total]))
            pos += total
        del view  # no view of the buffer may remain for it to shrink
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
