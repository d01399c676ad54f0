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
    """Answer each ANALYSE with ``reply(request_id, meta, body)``: the bytes to
    send, or None for the model's own reply (``body``)."""
    worker = sys.modules["__main__"]

    def serve(channel, model):
        while True:
            messages = channel.receive()
            if messages is None:
                return 0
            for message in messages:
                if message.type == MessageType.SHUTDOWN:
                    return 0
                body = worker.analyse(model, message.payload)
                raw = reply(message.request_id, message.payload.meta, body)
                if raw is None:
                    raw = codec.encode(Message(MessageType.RESULT, message.request_id, body))
                channel.send_bytes(raw)

    worker.serve = serve
