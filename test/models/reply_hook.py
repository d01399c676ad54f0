"""Lets a fixture worker answer units below the model contract.

The worker's own checks (``validate_result``, ``check_result_body``, the
codec) keep a model from sending a malformed reply. The fixtures built on
this stand for a worker that is broken or compromised anyway: they replace
the worker's serve loop, so that what reaches the server is exactly the
bytes they choose.
"""

import json
import sys

from jipjung_model import codec
from jipjung_model.codec import Message, MessageType


def raw_message(type_, request_id, payload):
    """A message with any header values and payload bytes."""
    return codec.HEADER.pack(len(payload) + codec.HEADER_SIZE - 4, type_, 0, 0, request_id) + payload


def json_message(type_, request_id, body):
    """A JSON message with any body, NaN allowed: the server's side must cope."""
    return raw_message(type_, request_id, json.dumps(body).encode())


def replace_replies(reply):
    """Answer each unit with ``reply(request_id, meta, body)``: the bytes to
    send, or None for the model's own reply (``body``). A unit sent frame by
    frame is answered at its CLOSE, with ``meta`` as an ANALYSE of the same
    unit would carry it; its frames are acknowledged as a worker does."""
    worker = sys.modules["__main__"]

    def serve(channel, model):
        units = {}
        while True:
            messages = channel.receive()
            if messages is None:
                return 0
            for message in messages:
                rid = message.request_id
                if message.type == MessageType.SHUTDOWN:
                    return 0
                if message.type == MessageType.OPEN:
                    units[rid] = codec.AnalyseRequest({**message.payload, "frames": []}, [])
                    continue
                if message.type == MessageType.FRAME:
                    unit = units[rid]
                    unit.meta["frames"].append(message.payload.meta)
                    unit.frames.append(message.payload.frames[0])
                    done = {"seq": message.payload.meta["seq"], "modelMs": 0}
                    channel.send(Message(MessageType.FRAME_DONE, rid, done))
                    continue
                if message.type == MessageType.CLOSE:
                    request = units.pop(rid)
                    request.meta["closesWindow"] = message.payload["closesWindow"]
                else:
                    request = message.payload
                body = worker.analyse(model, request)
                raw = reply(rid, request.meta, body)
                if raw is None:
                    raw = codec.encode(Message(MessageType.RESULT, rid, body))
                channel.send_bytes(raw)

    worker.serve = serve
